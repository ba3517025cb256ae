"""Reference timings with PyTorch on the GPU machine, printed as JSON lines.

fp32 matmul (cuBLAS, TF32 off), the same products with TF32 on and in bf16 (the anchors of
foxgate's matmul precision 'high', f16 operands on the tensor cores), and fp32 causal SDPA at the
attention benchmark's shapes, so that BENCHMARKS.md compares foxgate's WebGPU numbers with
numbers from the same device and run (scripts/gpu/bench-all.sh runs it).
"""
import json
import sys
import time

import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"


def timeit(fn, iters):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t) / iters


def row(bench, case, impl, value, unit, note=""):
    print(json.dumps(dict(bench=bench, case=case, impl=impl, value=value, unit=unit, note=note)), flush=True)


print(json.dumps({"device": torch.cuda.get_device_name(0), "torch": torch.__version__}), flush=True)
for n in [1024, 2048, 4096, 8192]:
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    s = timeit(lambda: a @ b, 20 if n < 8192 else 8)
    row("matmul", f"n={n}", "torch-cublas-fp32", 2 * n**3 / s / 1e12, "TFLOP/s")
    torch.backends.cuda.matmul.allow_tf32 = True
    s = timeit(lambda: a @ b, 20 if n < 8192 else 8)
    row("matmul", f"n={n}", "torch-cublas-tf32", 2 * n**3 / s / 1e12, "TFLOP/s")
    torch.backends.cuda.matmul.allow_tf32 = False
    a16, b16 = a.bfloat16(), b.bfloat16()
    s = timeit(lambda: a16 @ b16, 20 if n < 8192 else 8)
    row("matmul", f"n={n}", "torch-cublas-bf16", 2 * n**3 / s / 1e12, "TFLOP/s", "bf16 in, bf16 out")
    del a16, b16

B, H, D = 4, 16, 64
for T in [2048, 8192, 16384]:
    q, k, v = (torch.randn(B, H, T, D, device=dev, requires_grad=True) for _ in range(3))
    f = lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    row("attention", f"T={T} fwd", "torch-sdpa-fp32", timeit(f, 10) * 1e3, "ms")
    go = torch.randn(B, H, T, D, device=dev)

    def fb():
        o = f()
        torch.autograd.grad(o, (q, k, v), go)

    row("attention", f"T={T} fwd+bwd", "torch-sdpa-fp32", timeit(fb, 5) * 1e3, "ms")
sys.exit(0)
