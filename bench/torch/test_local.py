"""Checks of bench/torch without torch (numpy only), against files foxgate wrote:

  python3 test_local.py FIXTURE_DIR [STEP0_DIR]

FIXTURE_DIR from `tsx bench/torch/fixture.ts FIXTURE_DIR`: the safetensors reader against
known.safetensors / known.json (every dtype foxgate writes, plus hand-made BF16 and F16 bytes),
and the float64 numpy forward (np_reference.py, the structure models.py writes in torch) against
foxgate's float64 losses (tolerance 1e-10). STEP0_DIR from `foxgate bench train --save-step0`:
the float32 checkpoints, token batches and step-0 losses (tolerance 1e-5). Exits 1 on a mismatch.
"""
import json
import os
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fg_config import read_config  # noqa: E402
from np_reference import loss  # noqa: E402
from safetensors_io import read_safetensors  # noqa: E402

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def reader_checks(d):
    arrays, meta = read_safetensors(os.path.join(d, "known.safetensors"))
    with open(os.path.join(d, "known.json")) as f:
        known = json.load(f)
    check(meta == {"format": "pt"}, f"metadata {meta}")
    check(sorted(arrays) == sorted(known), f"names {sorted(arrays)}")
    for k, e in known.items():
        a = arrays[k]
        want = np.array(e["values"], dtype=a.dtype).reshape(e["shape"])
        same = a.shape == tuple(e["shape"]) and np.array_equal(a, want)
        check(same, f"{k}: {e['dtype']}{e['shape']} read as {a.dtype}{list(a.shape)}")
    # BF16 and F16 by hand: 1.0, -2.0, 0.5 and the largest finite value of each
    bf16 = struct.pack("<4H", 0x3F80, 0xC000, 0x3F00, 0x7F7F)
    f16 = struct.pack("<4H", 0x3C00, 0xC000, 0x3800, 0x7BFF)
    header = json.dumps({"b": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]}, "h": {"dtype": "F16", "shape": [4], "data_offsets": [8, 16]}}).encode()
    with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
        f.write(struct.pack("<Q", len(header)) + header + bf16 + f16)
    got, _ = read_safetensors(f.name)
    os.unlink(f.name)
    max_bf16 = float(np.frombuffer(struct.pack("<I", 0x7F7F0000), dtype="<f4")[0])
    check(got["b"].dtype == np.float32 and got["b"].tolist() == [[1.0, -2.0], [0.5, max_bf16]], f"BF16 {got['b'].tolist()}")
    check(got["h"].tolist() == [1.0, -2.0, 0.5, 65504.0], f"F16 {got['h'].tolist()}")


def loss_checks(d, tol):
    for sub in sorted(os.listdir(d)):
        p = os.path.join(d, sub)
        if not os.path.isdir(p):
            continue
        c = read_config(os.path.join(p, "config.json"))
        with open(os.path.join(p, "step0.json")) as f:
            meta = json.load(f)
        ids = np.fromfile(os.path.join(p, "tokens.i32"), dtype="<i4").astype(np.int64).reshape(meta["B"], meta["T"] + 1)
        W, _ = read_safetensors(os.path.join(p, "model.safetensors"))
        got = loss(c, W, ids[:, :-1], ids[:, 1:])
        rel = abs(got - meta["loss"]) / abs(meta["loss"])
        check(rel <= tol, f"{sub}: numpy float64 loss {got:.12f} vs foxgate {meta['loss']:.12f} (rel {rel:.1e}, tol {tol:g})")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    reader_checks(sys.argv[1])
    loss_checks(sys.argv[1], 1e-10)
    if len(sys.argv) > 2:
        loss_checks(sys.argv[2], 1e-5)
    print(f"{len(failures)} failed" if failures else "all passed")
    sys.exit(1 if failures else 0)
