"""The foxgate models in PyTorch, written from packages/models/src (config.ts, model.ts,
attention-layer.ts, layers/): Transformer++ (RoPE, RMSNorm, SwiGLU, no biases) and FoX / FoX-Pro
(forget gate, QK-norm, output norm and gate, token shift, no RoPE). Parameter names are foxgate's
checkpoint names (the official FoX state_dict names), so a foxgate model.safetensors loads as is.

Forgetting attention is what a PyTorch user without the official kernel writes: SDPA with the
float mask Λ_i − Λ_j (Λ = cumsum of log forget gates over time), −inf above the diagonal, which
materialises [B, H, T, T] per layer.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from fg_config import QK_NORM_EPS, head_dim, intermediate_size, rope_tables


def _up(x):
    """Half-precision activations are normalised in float32; float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def rms(x, w, eps):
    """x / sqrt(mean(x², -1) + eps) · w (tensor/src/ops/composite.ts rmsNorm), in x's dtype."""
    xf = _up(x)
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    if w is not None:
        y = y * w.to(y.dtype)
    return y.to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return rms(x, self.weight, self.eps)


def head_norm(x, w, eps):
    """Per-head RMSNorm of x [..., H, D]; w is [H·D] (per head) or [D] (shared)."""
    H, D = x.shape[-2:]
    n = rms(x, None, eps)
    return n * (w if w.shape[0] == D else w.view(H, D)).to(n.dtype)


class ShiftLinear(nn.Module):
    """k_t = α_t·k̂_{t−1} + (1 − α_t)·k̂_t per head, k̂ = linear(x), α = sigmoid(shift_proj(x)), k̂_{−1} = 0."""

    def __init__(self, dim, heads):
        super().__init__()
        self.linear = nn.Linear(dim, dim, bias=False)
        self.shift_proj = nn.Linear(dim, heads, bias=False)
        self.heads = heads

    def forward(self, x):
        B, T, h = x.shape
        kh = self.linear(x)
        prev = F.pad(kh[:, :-1], (0, 0, 1, 0))
        a = torch.sigmoid(self.shift_proj(x)).unsqueeze(-1)  # [B,T,H,1]
        D = h // self.heads
        kh4 = kh.view(B, T, self.heads, D)
        return (kh4 + a * (prev.view(B, T, self.heads, D) - kh4)).reshape(B, T, h)


class Rope(nn.Module):
    """Rotate-half RoPE on [B, T, H, D] (layers/rope.ts), tables built in float64 per length."""

    def __init__(self, D, base):
        super().__init__()
        self.D, self.base, self.cache = D, base, {}

    def forward(self, x):
        B, T, H, D = x.shape
        key = (T, x.device, x.dtype)
        if key not in self.cache:
            cos, sin = rope_tables(T, D, self.base)
            dt = torch.float32 if x.dtype in (torch.bfloat16, torch.float16) else x.dtype
            self.cache[key] = tuple(torch.from_numpy(a).to(dt).to(x.device)[:, None, :] for a in (cos, sin))
        cos, sin = self.cache[key]
        rot = torch.cat([-x[..., D // 2 :], x[..., : D // 2]], dim=-1)
        return (x * cos + rot * sin).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h, H = c["hidden_size"], c["num_heads"]
        self.c, self.H, self.D = c, H, head_dim(c)
        self.q_proj = nn.Linear(h, h, bias=False)
        self.k_proj = ShiftLinear(h, H) if c["use_k_shift"] else nn.Linear(h, h, bias=False)
        self.v_proj = ShiftLinear(h, H) if c["use_v_shift"] else nn.Linear(h, h, bias=False)
        self.o_proj = nn.Linear(h, h, bias=False)
        self.gated = c["fgate_type"] == "full"
        if self.gated:
            self.fgate_proj = nn.Linear(h, H, bias=True)
        if c["use_output_gate"]:
            self.ogate_proj = nn.Linear(h, h, bias=False)
        if c["use_output_norm"]:
            self.output_norm = RMSNorm(h, c["norm_eps"])
        if c["qk_norm"]:
            n = self.D if c["qk_norm_share_param_across_head"] else h
            self.q_norm = RMSNorm(n, QK_NORM_EPS)
            self.k_norm = RMSNorm(n, QK_NORM_EPS)
        self.rope = Rope(self.D, c["rope_base"]) if c["use_rope"] else None

    def forward(self, x):
        B, T, h = x.shape
        H, D, c = self.H, self.D, self.c
        q = self.q_proj(x).view(B, T, H, D)
        k = self.k_proj(x).view(B, T, H, D)
        v = self.v_proj(x).view(B, T, H, D)
        if c["qk_norm"]:
            q = head_norm(q, self.q_norm.weight, QK_NORM_EPS)
            k = head_norm(k, self.k_norm.weight, QK_NORM_EPS)
        if self.rope is not None:
            q, k = self.rope(q), self.rope(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B,H,T,D]
        if self.gated:
            logf = F.logsigmoid(_up(self.fgate_proj(x)))  # [B,T,H]
            lam = torch.cumsum(logf, dim=1).transpose(1, 2)  # [B,H,T]
            bias = lam.unsqueeze(-1) - lam.unsqueeze(-2)  # [B,H,T,T]: Λ_i − Λ_j
            causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            bias = bias.masked_fill(~causal, float("-inf"))
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        else:
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        o = o.transpose(1, 2)  # [B,T,H,D]
        if c["use_output_norm"]:
            o = head_norm(o, self.output_norm.weight, c["norm_eps"])
        flat = o.reshape(B, T, h)
        if c["use_output_gate"]:
            flat = flat * torch.sigmoid(self.ogate_proj(x))
        return self.o_proj(flat)


class SwiGLU(nn.Module):
    """down(silu(gate) ⊙ up), [gate, up] = the two halves of gate_proj(x) (the official fused layout)."""

    def __init__(self, h, inter):
        super().__init__()
        self.gate_proj = nn.Linear(h, 2 * inter, bias=False)
        self.down_proj = nn.Linear(inter, h, bias=False)

    def forward(self, x):
        g, u = self.gate_proj(x).chunk(2, dim=-1)
        return self.down_proj(F.silu(g) * u)


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.attn_norm = RMSNorm(h, c["norm_eps"])
        self.attn = Attention(c)
        self.mlp_norm = RMSNorm(h, c["norm_eps"])
        self.mlp = SwiGLU(h, intermediate_size(c))

    def forward(self, x):
        x = x + self.attn(self.attn_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class Backbone(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = nn.ModuleList([Layer(c) for _ in range(c["num_hidden_layers"])])
        self.norm = RMSNorm(c["hidden_size"], c["norm_eps"])


class FoxgateLM(nn.Module):
    """`model.*` and `lm_head` as foxgate names them; forward(ids, targets) → mean cross-entropy."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Backbone(c)
        self.lm_head = None if c["tie_word_embeddings"] else nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self):
        """foxgate's init: weights N(0, initializer_range²), biases 0, norm weights 1 (other random draws)."""
        std = self.c["initializer_range"]
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                p.zero_()
            elif p.dim() >= 2:
                p.normal_(0.0, std)
            else:
                p.fill_(1.0)

    def forward(self, ids, targets):
        x = self.model.embeddings(ids)
        for layer in self.model.layers:
            x = layer(x)
        hn = self.model.norm(x)
        logits = self.lm_head(hn) if self.lm_head is not None else hn @ self.model.embeddings.weight.t()
        return F.cross_entropy(_up(logits).reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @torch.no_grad()
    def load_foxgate(self, tensors):
        """Copies a foxgate state dict in; every missing, extra or mis-shaped name is an error."""
        own = dict(self.named_parameters())
        missing = sorted(set(own) - set(tensors))
        extra = sorted(set(tensors) - set(own))
        bad = [f"{k} {tuple(tensors[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in tensors and tuple(tensors[k].shape) != tuple(own[k].shape)]
        if missing or extra or bad:
            raise ValueError(f"the weights do not match the model: missing {missing[:5]}, extra {extra[:5]}, shapes {bad[:5]}")
        for k, p in own.items():
            p.copy_(tensors[k].to(p.dtype))


def param_groups(model, weight_decay):
    """foxgate's AdamW decay mask: rank ≥ 2 decays, norm weights and biases do not (train/src/optim/decay.ts)."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return [dict(params=decay, weight_decay=weight_decay), dict(params=rest, weight_decay=0.0)]


def count_params(model):
    return sum(p.numel() for p in model.parameters())

