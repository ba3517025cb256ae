"""PyTorch peer of `foxgate bench train`: tokens/s of a full training step (forward, backward,
AdamW; the loss read back once per step) of the same models, on the same batch, with the same
AdamW hyper-parameters, in fp32, TF32 and bf16 autocast; peak memory by
torch.cuda.max_memory_allocated (reset before the timed steps).

  python3 train_bench.py --weights STEP0_DIR --steps 8 --json torch.json
      STEP0_DIR is what `foxgate bench train --save-step0 STEP0_DIR` wrote: per model
      STEP0_DIR/<model>-<preset>/ with model.safetensors, config.json, tokens.i32, step0.json.
      The models load foxgate's initial weights and batch; before timing, the fp32 (TF32 off)
      loss at step 0 must equal foxgate's within --tol (relative, default 1e-4), else the run
      exits 1 after printing both ("STEP-0 CHECK FAILED").
  python3 train_bench.py --models foxPro,transformer --preset 125M --context 4096 --batch 8
      the same without foxgate files: torch's own initialisation, foxgate's token stream.
  python3 train_bench.py --fixture DIR
      only the float64 structure check on the CPU against DIR/<model>-<preset>/ written by
      bench/torch/fixture.ts (large random weights; foxgate's float64 loss), tolerance 1e-9.

Forgetting attention is SDPA with the float mask Λ_i − Λ_j (see models.py): where the
[B, H, T, T] masks of every layer do not fit, the row says OOM.
"""
import argparse
import contextlib
import gc
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from fg_config import model_config, read_config  # noqa: E402
from safetensors_io import load_state_dict  # noqa: E402

MODES = ("fp32", "tf32", "bf16")
ADAMW = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)


def random_ids(n, V):
    """foxgate's token stream (apps/cli/src/bench/train.ts randomIds): a 32-bit LCG, ids s mod V."""
    s = 2463534242
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out[i] = s % V
    return out


def read_step0(d):
    with open(os.path.join(d, "step0.json")) as f:
        meta = json.load(f)
    ids = np.fromfile(os.path.join(d, meta.get("tokens", "tokens.i32")), dtype="<i4").astype(np.int64)
    B, T = meta["B"], meta["T"]
    if ids.size != B * (T + 1):
        raise ValueError(f"{d}: tokens hold {ids.size} ids, expected B·(T+1) = {B * (T + 1)}")
    return meta, ids.reshape(B, T + 1)


def set_mode(torch, mode):
    tf32 = mode != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def autocast(torch, mode):
    return torch.autocast("cuda", dtype=torch.bfloat16) if mode == "bf16" else contextlib.nullcontext()


def fused_adamw(torch, model, param_groups):
    groups = param_groups(model, ADAMW["weight_decay"])
    kw = dict(lr=ADAMW["lr"], betas=ADAMW["betas"], eps=ADAMW["eps"])
    try:
        return torch.optim.AdamW(groups, fused=True, **kw), "fused"
    except (TypeError, RuntimeError):
        return torch.optim.AdamW(groups, **kw), "foreach"


def row(case, impl, value, note, data=None, failed=False):
    r = dict(bench="train", case=case, impl=impl, value=value, unit="tok/s", note=note)
    if data is not None:
        r["data"] = data
    if failed:
        r["failed"] = True
    return r


def bench_case(torch, name, c, mode, ids, B, T, steps, warmup, weights, step0, tol, failures):
    from models import FoxgateLM, count_params, param_groups

    case = f"{name} {c.get('preset', '')} B={B} T={T}".replace("  ", " ")
    impl = f"torch {mode}" + (" (SDPA, float mask)" if c["fgate_type"] == "full" else " (SDPA causal)")
    dev = "cuda"
    model = opt = x = y = None
    try:
        set_mode(torch, mode)
        torch.manual_seed(0)
        model = FoxgateLM(c).to(dev)
        if weights is not None:
            model.load_foxgate(weights)
        opt, kind = fused_adamw(torch, model, param_groups)
        t = torch.from_numpy(ids).to(dev)
        x, y = t[:, :T].contiguous(), t[:, 1:].contiguous()
        with torch.no_grad(), autocast(torch, mode):
            first = model(x, y).float().item()
        check = ""
        if step0 is not None:
            rel = abs(first - step0) / abs(step0)
            check = f"step-0 loss {first:.6f} vs foxgate {step0:.6f} (rel {rel:.1e})"
            print(f"step-0 {name} {mode}: torch {first:.7f} foxgate {step0:.7f} rel {rel:.2e}", flush=True)
            if mode == "fp32" and not rel <= tol:
                failures.append(f"{name}: torch fp32 step-0 loss {first:.7f} vs foxgate {step0:.7f} (rel {rel:.2e} > {tol})")

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast(torch, mode):
                loss = model(x, y)
            loss.backward()
            opt.step()
            return loss.detach().float().item()

        for _ in range(warmup):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        losses = [step() for _ in range(steps)]
        e1.record()
        e1.synchronize()
        ms = e0.elapsed_time(e1) / steps
        peak = torch.cuda.max_memory_allocated()
        curve = f"loss {losses[0]:.4f} → {losses[-1]:.4f} over {steps} steps"
        parts = [f"{ms:.1f} ms/step", curve, f"{count_params(model) / 1e6:.2f}M params", f"peak {peak / 1e9:.2f} GB", f"AdamW {kind}"]
        if check:
            parts.append(check)
        data = dict(model=name, B=B, T=T, steps=steps, mode=mode, msPerStep=ms, peakBytes=peak, losses=losses, step0Loss=first)
        return row(case, impl, B * T / (ms / 1000), ", ".join(parts), data)
    except torch.cuda.OutOfMemoryError as e:
        msg = str(e).split("\n")[0][:160]
        return row(case, impl, float("nan"), f"OOM: {msg}", dict(model=name, B=B, T=T, mode=mode, oom=True), failed=True)
    finally:
        del model, opt, x, y
        gc.collect()
        torch.cuda.empty_cache()


def fixture_check(dirs, tol):
    """float64 on the CPU: torch's loss on foxgate's fixture weights vs foxgate's float64 loss."""
    import torch

    from models import FoxgateLM

    bad = []
    for d in dirs:
        c = read_config(os.path.join(d, "config.json"))
        meta, ids = read_step0(d)
        model = FoxgateLM(c).double()
        model.load_foxgate(load_state_dict(os.path.join(d, "model.safetensors")))
        t = torch.from_numpy(ids)
        with torch.no_grad():
            got = model(t[:, :-1], t[:, 1:]).item()
        rel = abs(got - meta["loss"]) / abs(meta["loss"])
        ok = rel <= tol
        print(f"fixture {os.path.basename(d)}: torch float64 {got:.12f} foxgate {meta['loss']:.12f} rel {rel:.2e} {'ok' if ok else 'FAILED'}", flush=True)
        if not ok:
            bad.append(f"{d}: rel {rel:.2e} > {tol}")
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="foxPro,transformer")
    ap.add_argument("--preset", default="125M")
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--modes", default="fp32,tf32,bf16")
    ap.add_argument("--weights", help="folder foxgate's --save-step0 wrote (weights, batch and step-0 loss per model)")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative tolerance of the fp32 step-0 check")
    ap.add_argument("--fixture", help="float64 structure check only, against bench/torch/fixture.ts output")
    ap.add_argument("--json", help="write the rows here")
    a = ap.parse_args(argv)

    if a.fixture:
        dirs = sorted(os.path.join(a.fixture, d) for d in os.listdir(a.fixture) if os.path.isdir(os.path.join(a.fixture, d)))
        if not dirs:
            print(f"train_bench: no model folders in {a.fixture}", file=sys.stderr)
            return 2
        bad = fixture_check(dirs, 1e-9)
        if bad:
            print("FIXTURE CHECK FAILED: " + "; ".join(bad), file=sys.stderr)
            return 1
        return 0

    import torch

    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            print(f"train_bench: --modes items must be among {', '.join(MODES)}, got {m!r}", file=sys.stderr)
            return 2
    header = dict(device=torch.cuda.get_device_name(0), torch=torch.__version__, cuda=torch.version.cuda, date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    print(json.dumps(header), flush=True)
    rows, failures = [], []
    for name in [m for m in a.models.split(",") if m]:
        weights = step0 = None
        d = os.path.join(a.weights, f"{name}-{a.preset}") if a.weights else None
        if d and not os.path.isfile(os.path.join(d, "step0.json")):
            failures.append(f"{name}: no step-0 files in {d} (did foxgate's run write them?); timed on torch's own weights")
            print(f"train_bench: {failures[-1]}", file=sys.stderr, flush=True)
            d = None
        if d:
            c = read_config(os.path.join(d, "config.json"))
            meta, ids = read_step0(d)
            B, T, step0 = meta["B"], meta["T"], meta["loss"]
            weights = load_state_dict(os.path.join(d, "model.safetensors"))
        else:
            c = model_config(name, a.preset)
            B, T = a.batch, a.context
            ids = random_ids(B * (T + 1), c["vocab_size"]).reshape(B, T + 1)
        c["preset"] = a.preset
        for mode in modes:
            r = bench_case(torch, name, c, mode, ids, B, T, a.steps, a.warmup, weights, step0, a.tol, failures)
            rows.append(r)
            print(json.dumps(r), flush=True)
    w = max(len(r["case"]) for r in rows)
    for r in rows:
        v = "OOM" if r.get("failed") else f"{r['value']:.0f}"
        print(f"{r['case']:<{w}}  {r['impl']:<28}  {v:>8} tok/s  {r['note']}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(header, rows=rows), f, indent=1)
    if failures:
        print("STEP-0 CHECK FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
