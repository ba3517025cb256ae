"""Markdown rows of the training comparison from the two JSON files of one run:

  python3 compare.py FOXGATE_JSON TORCH_JSON [FOXGATE_JSON ...] > table.md

FOXGATE_JSON: `foxgate bench train --json` rows (with their `data`); TORCH_JSON: train_bench.py
--json (a file whose rows have `data.mode`). Prints one table per model and B×T, then the issue's
goals per model: foxgate 'highest' ≥ 0.7× torch fp32, 'high' ≥ torch fp32 (and against TF32),
peak memory ≤ torch's.
"""
import json
import math
import sys


def load(paths):
    fox, torch, headers = [], [], []
    for p in paths:
        try:
            with open(p) as f:
                j = json.load(f)
        except (OSError, ValueError) as e:
            print(f"<!-- {p}: not read ({e}) -->")
            continue
        rows = j.get("rows", [])
        head = {k: v for k, v in j.items() if k != "rows"}
        if any((r.get("data") or {}).get("mode") for r in rows):
            torch += rows
            headers.append(("torch", head))
        else:
            fox += [r for r in rows if r.get("bench") == "train"]
            headers.append(("foxgate", head))
    return fox, torch, headers


def gb(b):
    return "" if b is None else f"{b / 1e9:.2f}"


def label(r):
    d = r.get("data") or {}
    if "mode" in d:
        return {"fp32": "torch fp32", "tf32": "torch TF32", "bf16": "torch bf16 autocast"}[d["mode"]] + (
            " (SDPA + float mask)" if r["case"].startswith("fox") else " (SDPA causal)"
        )
    return r["impl"]


def split(d):
    if "gpuMs" not in d:
        return ""
    t = d["gpuMs"]
    pct = lambda ms: f"{100 * ms / t:.0f}%" if t > 0 else "?"  # noqa: E731
    return f"{pct(d['attentionMs'])} / {pct(d['matmulMs'])} / {pct(d['otherMs'])} of {t:.0f} ms"


def tps(r):
    v = r.get("value")
    return None if r.get("failed") or v is None or (isinstance(v, float) and math.isnan(v)) else v


def main(paths):
    fox, torch, headers = load(paths)
    for who, h in headers:
        print(f"<!-- {who}: {json.dumps(h)} -->")
    groups = {}
    for r in fox + torch:
        d = r.get("data") or {}
        key = (d.get("model") or r["case"].split()[0], r["case"].split(" B=")[0], d.get("B"), d.get("T"))
        groups.setdefault(key, []).append(r)
    for (model, case, B, T), rows in groups.items():
        ref = {((r.get("data") or {}).get("mode")): r for r in rows if "mode" in (r.get("data") or {})}
        fp32 = tps(ref["fp32"]) if "fp32" in ref else None
        print(f"\n{case}, B×T = {B}×{T}\n")
        print("| run | tokens/s | ms/step | peak GB | GPU time attention / matmul / other (one step) | vs torch fp32 | note |")
        print("| --- | ---: | ---: | ---: | --- | ---: | --- |")
        for r in rows:
            d = r.get("data") or {}
            v = tps(r)
            ratio = f"{v / fp32:.2f}×" if v and fp32 else ""
            note = r.get("note", "")
            if r.get("failed"):
                note = note[:120]
            ms = d.get("msPerStep")
            print(
                f"| {label(r)} | {'' if v is None else f'{v:,.0f}'} | {'' if ms is None else f'{ms:.0f}'} | {gb(d.get('peakBytes'))} | {split(d)} | {ratio} | {note if v is None else ''} |"
            )
        # the goals
        fx = {((r.get("data") or {}).get("precision"), (r.get("data") or {}).get("acp")): r for r in rows if "precision" in (r.get("data") or {})}
        base = [k for k in fx if k[1] in (False, None)]
        lines = []
        for prec in ("highest", "high"):
            k = next((k for k in base if k[0] == prec), None)
            if not k or not tps(fx[k]):
                continue
            v = tps(fx[k])
            if fp32:
                goal = 0.7 if prec == "highest" else 1.0
                lines.append(f"foxgate '{prec}' / torch fp32 = {v / fp32:.2f} (goal ≥ {goal}: {'met' if v / fp32 >= goal else 'not met'})")
            if prec == "high" and "tf32" in ref and tps(ref["tf32"]):
                lines.append(f"foxgate 'high' / torch TF32 = {v / tps(ref['tf32']):.2f}")
            if prec == "highest" and "fp32" in ref and (ref["fp32"].get("data") or {}).get("peakBytes"):
                a, b = (fx[k].get("data") or {}).get("peakBytes"), ref["fp32"]["data"]["peakBytes"]
                if a:
                    lines.append(f"peak foxgate 'highest' {gb(a)} GB vs torch fp32 {gb(b)} GB (goal ≤: {'met' if a <= b else 'not met'})")
        fg0 = next((r["data"]["step0Loss"] for r in rows if "precision" in (r.get("data") or {}) and r["data"].get("step0Loss") is not None), None)
        for r in rows:
            d = r.get("data") or {}
            if "mode" in d and d.get("step0Loss") is not None and fg0 is not None:
                rel = abs(d["step0Loss"] - fg0) / abs(fg0)
                lines.append(f"step-0 loss {label(r)} {d['step0Loss']:.7f} vs foxgate {fg0:.7f} (rel {rel:.1e})")
        for line in lines:
            print(f"- {line}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1:])
