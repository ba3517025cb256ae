"""A tiny safetensors reader (numpy only), for foxgate checkpoints where the `safetensors` module is absent.

Format: an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
{dtype, shape, data_offsets: [begin, end]} (offsets into the data after the header; an optional
"__metadata__" entry), then the data, row-major, little-endian.
"""
import json
import struct

import numpy as np

_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}


def read_safetensors(path):
    """Returns ({name: numpy array}, metadata dict). BF16 tensors become float32."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file ({len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f"{path}: header length {n} runs past the end of the file ({len(raw)} bytes)")
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    data_len = len(raw) - base
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, e in header.items():
        dtype, shape, (begin, end) = e["dtype"], [int(d) for d in e["shape"]], e["data_offsets"]
        if not 0 <= begin <= end <= data_len:
            raise ValueError(f"{path}: {name}: data_offsets [{begin}, {end}] outside the {data_len} data bytes")
        count = int(np.prod(shape)) if shape else 1
        buf = raw[base + begin : base + end]
        if dtype == "BF16":
            if len(buf) != 2 * count:
                raise ValueError(f"{path}: {name}: {len(buf)} bytes for {count} BF16 values")
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif dtype in _DTYPES:
            dt = _DTYPES[dtype]
            if len(buf) != dt.itemsize * count:
                raise ValueError(f"{path}: {name}: {len(buf)} bytes for {count} {dtype} values")
            arr = np.frombuffer(buf, dtype=dt)
        else:
            raise ValueError(f"{path}: {name}: unsupported dtype {dtype}")
        out[name] = arr.reshape(shape).copy()
    return out, meta


def load_state_dict(path):
    """The tensors of `path` as torch tensors: the `safetensors` module when installed, else this reader."""
    import torch

    try:
        from safetensors.torch import load_file

        return load_file(path)
    except ImportError:
        arrays, _ = read_safetensors(path)
        return {k: torch.from_numpy(v) for k, v in arrays.items()}
