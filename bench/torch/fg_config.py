"""foxgate's model configs in Python: the defaults of packages/models/src/config.ts, for runs
without a checkpoint, and the reading of a checkpoint's config.json."""
import json
import math

BASE = dict(
    vocab_size=261,
    hidden_size=64,
    hidden_ratio=4,
    intermediate_size=None,
    num_hidden_layers=2,
    num_heads=2,
    use_rope=False,
    rope_base=500000,
    fgate_type="full",
    qk_norm=False,
    qk_norm_share_param_across_head=False,
    use_k_shift=False,
    use_v_shift=False,
    use_output_gate=False,
    use_output_norm=False,
    norm_eps=1e-6,
    tie_word_embeddings=False,
    initializer_range=0.02,
)
PRO = dict(hidden_ratio=3.5, qk_norm=True, use_k_shift=True, use_v_shift=True, use_output_gate=True, use_output_norm=True)
MODEL_DEFAULTS = {
    "transformer": dict(use_rope=True, fgate_type="none"),
    "fox": dict(use_rope=False, fgate_type="full"),
    "foxPro": dict(PRO, use_rope=False, fgate_type="full"),
    "transformerPro": dict(PRO, use_rope=True, fgate_type="none"),
}
PRESETS = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_heads=2),
    "small": dict(hidden_size=512, num_hidden_layers=6, num_heads=8),
    "125M": dict(hidden_size=768, num_hidden_layers=12, num_heads=12),
    "360M": dict(hidden_size=1024, num_hidden_layers=24, num_heads=16),
    "760M": dict(hidden_size=1536, num_hidden_layers=24, num_heads=24),
}
# QK-norm epsilon of the FoX-Pro blocks (attention-layer.ts QK_NORM_EPS)
QK_NORM_EPS = 1e-5
FIELDS = list(BASE.keys())


def model_config(model, preset):
    if model not in MODEL_DEFAULTS:
        raise ValueError(f"model must be one of {', '.join(MODEL_DEFAULTS)}, got {model!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    c = dict(BASE, **MODEL_DEFAULTS[model], **PRESETS[preset])
    c["model"] = model
    return c


def read_config(path):
    """A checkpoint's config.json (foxgate's saveCheckpoint writes every field)."""
    with open(path) as f:
        raw = json.load(f)
    missing = [k for k in FIELDS if k not in raw]
    if missing:
        raise ValueError(f"{path}: missing fields {', '.join(missing)}")
    c = {k: raw[k] for k in FIELDS}
    c["model"] = raw.get("model", "?")
    if raw.get("model") == "sparsek":
        raise ValueError(f"{path}: model 'sparsek' is not implemented here")
    return c


def head_dim(c):
    return c["hidden_size"] // c["num_heads"]


def intermediate_size(c):
    if c["intermediate_size"] is not None:
        return c["intermediate_size"]
    i = int(c["hidden_size"] * c["hidden_ratio"] * 2 / 3)
    return 256 * math.ceil(i / 256)


def rope_tables(T, D, base):
    """cos, sin [T, D] of rotate-half RoPE, float64 numpy (models/src/layers/rope.ts)."""
    import numpy as np

    half = D // 2
    inv = np.array([base ** (-(2 * i) / D) for i in range(half)], dtype=np.float64)
    a = np.arange(T, dtype=np.float64)[:, None] * inv[None, :]
    a = np.concatenate([a, a], axis=1)
    return np.cos(a), np.sin(a)
