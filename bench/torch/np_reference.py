"""The foxgate models' forward and loss in float64 numpy, line by line as models.py writes them in
torch: the local check (no torch here) that the architecture read from packages/models/src is the
one foxgate computes. Small sizes only ([B,H,T,T] scores)."""
import numpy as np

from fg_config import QK_NORM_EPS, head_dim, rope_tables


def rms(x, w, eps):
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y if w is None else y * w


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def logsigmoid(x):
    return -np.logaddexp(0, -x)


def linear(W, name, x):
    y = x @ W[name + ".weight"].T
    b = W.get(name + ".bias")
    return y if b is None else y + b


def project(W, name, x, shifted, H):
    if not shifted:
        return linear(W, name, x)
    kh = linear(W, name + ".linear", x)  # [B,T,h]
    B, T, h = kh.shape
    prev = np.concatenate([np.zeros((B, 1, h)), kh[:, :-1]], axis=1)
    a = sigmoid(linear(W, name + ".shift_proj", x))[..., None]  # [B,T,H,1]
    D = h // H
    out = kh.reshape(B, T, H, D) + a * (prev.reshape(B, T, H, D) - kh.reshape(B, T, H, D))
    return out.reshape(B, T, h)


def head_norm(x, w, eps):
    H, D = x.shape[-2:]
    return rms(x, None, eps) * (w if w.shape[0] == D else w.reshape(H, D))


def rope(x, base):
    B, T, H, D = x.shape
    cos, sin = rope_tables(T, D, base)
    cos, sin = cos[:, None, :], sin[:, None, :]
    rot = np.concatenate([-x[..., D // 2 :], x[..., : D // 2]], axis=-1)
    return x * cos + rot * sin


def attention(c, W, p, x):
    B, T, h = x.shape
    H, D = c["num_heads"], head_dim(c)
    q = linear(W, p + "q_proj", x).reshape(B, T, H, D)
    k = project(W, p + "k_proj", x, c["use_k_shift"], H).reshape(B, T, H, D)
    v = project(W, p + "v_proj", x, c["use_v_shift"], H).reshape(B, T, H, D)
    if c["qk_norm"]:
        q = head_norm(q, W[p + "q_norm.weight"], QK_NORM_EPS)
        k = head_norm(k, W[p + "k_norm.weight"], QK_NORM_EPS)
    if c["use_rope"]:
        q, k = rope(q, c["rope_base"]), rope(k, c["rope_base"])
    qh, kh, vh = (t.transpose(0, 2, 1, 3) for t in (q, k, v))  # [B,H,T,D]
    s = qh @ kh.transpose(0, 1, 3, 2) / np.sqrt(D)
    if c["fgate_type"] == "full":
        lam = np.cumsum(logsigmoid(linear(W, p + "fgate_proj", x)), axis=1).transpose(0, 2, 1)  # [B,H,T]
        s = s + lam[..., :, None] - lam[..., None, :]
    s = np.where(np.tril(np.ones((T, T), dtype=bool)), s, -np.inf)
    s = np.exp(s - s.max(-1, keepdims=True))
    o = (s / s.sum(-1, keepdims=True)) @ vh
    o = o.transpose(0, 2, 1, 3)  # [B,T,H,D]
    if c["use_output_norm"]:
        o = head_norm(o, W[p + "output_norm.weight"], c["norm_eps"])
    flat = o.reshape(B, T, h)
    if c["use_output_gate"]:
        flat = flat * sigmoid(linear(W, p + "ogate_proj", x))
    return linear(W, p + "o_proj", flat)


def loss(c, W, x_ids, y_ids):
    """Mean cross-entropy of the forward's logits against the aligned targets, float64."""
    W = {k: v.astype(np.float64) for k, v in W.items()}
    eps = c["norm_eps"]
    x = W["model.embeddings.weight"][x_ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        x = x + attention(c, W, p + "attn.", rms(x, W[p + "attn_norm.weight"], eps))
        hn = rms(x, W[p + "mlp_norm.weight"], eps)
        gu = linear(W, p + "mlp.gate_proj", hn)
        g, u = np.split(gu, 2, axis=-1)
        x = x + linear(W, p + "mlp.down_proj", g * sigmoid(g) * u)
    hN = rms(x, W["model.norm.weight"], eps)
    logits = hN @ (W["lm_head.weight"] if "lm_head.weight" in W else W["model.embeddings.weight"]).T
    m = logits.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[..., 0]
    picked = np.take_along_axis(logits, y_ids[..., None], axis=-1)[..., 0]
    return float(np.mean(lse - picked))
