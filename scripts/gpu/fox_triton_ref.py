"""The official FoX Triton kernel as an anchor for `foxgate bench attention`, printed as JSON lines.

Times `forgetting_attention` of the `forgetting_transformer` package (the paper authors' kernel)
at the attention benchmark's shapes (B=4, H=16, D=64, T in 2048/8192/16384; half the heads with
gate logits ~U(5,10), half ~U(0,5), log_fgate = logsigmoid), q/k/v in bf16 (the dtype the kernel
is written for) and log_fgate in f32, forward and forward+backward, and with ACP where the
installed version takes `adaptive_threshold`. The package is not part of this repository and
the GPU machine has no network: when it is not installed this prints one row saying so and
exits 0, so scripts/gpu/bench-all.sh records "not installed" instead of a number.
"""
import inspect
import json
import sys
import time


def row(bench, case, impl, value, unit, note=""):
    print(json.dumps(dict(bench=bench, case=case, impl=impl, value=value, unit=unit, note=note)), flush=True)


try:
    import torch
    from forgetting_transformer import forgetting_attention
except Exception as e:  # noqa: BLE001 - any import failure means "no anchor here"
    row("attention", "all", "fox-triton-official", None, "ms", f"not installed on this machine: {type(e).__name__}: {e}")
    sys.exit(0)

dev = "cuda"
print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__}), flush=True)
has_acp = "adaptive_threshold" in inspect.signature(forgetting_attention).parameters


def timeit(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / iters


B, H, D = 4, 16, 64
g = torch.Generator(device=dev).manual_seed(0)
for T in [2048, 8192, 16384]:
    q, k, v = (torch.randn(B, T, H, D, device=dev, generator=g).bfloat16().requires_grad_() for _ in range(3))
    lo = torch.cat([torch.full((H // 2,), 5.0), torch.zeros(H - H // 2)]).to(dev)
    logits = lo + 5.0 * torch.rand(B, T, H, device=dev, generator=g)
    log_f = torch.nn.functional.logsigmoid(logits).float().requires_grad_()
    go = torch.randn(B, T, H, D, device=dev, generator=g).bfloat16()
    for acp in [False, True] if has_acp else [False]:
        kw = {"adaptive_threshold": "auto"} if acp else {}
        tag = " ACP" if acp else ""
        try:
            f = lambda: forgetting_attention(q, k, v, log_f, head_first=False, **kw)  # noqa: E731
            row("attention", f"T={T} fwd{tag}", "fox-triton-official-bf16", timeit(f, 10) * 1e3, "ms")

            def fb():
                o = f()
                torch.autograd.grad(o, (q, k, v, log_f), go)

            row("attention", f"T={T} fwd+bwd{tag}", "fox-triton-official-bf16", timeit(fb, 5) * 1e3, "ms")
        except Exception as e:  # noqa: BLE001 - a failed case is a row, the others still run
            row("attention", f"T={T}{tag}", "fox-triton-official-bf16", None, "ms", f"FAILED: {type(e).__name__}: {str(e)[:200]}")
    if not has_acp:
        row("attention", f"T={T} ACP", "fox-triton-official-bf16", None, "ms", "this version has no adaptive_threshold")
    del q, k, v, log_f, go
sys.exit(0)
