"""Small building blocks shared by the pixel decoder, the transformer decoder and the heads.

All of them are plain PyTorch with no data-dependent Python control flow, so they trace and
export with the dynamo ONNX exporter (opset 18).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _tracing() -> bool:
    """True while torch.compile / torch.export / the ONNX exporters trace the model."""
    compiler = torch.compiler
    exporting = getattr(compiler, 'is_exporting', lambda: False)()
    return bool(compiler.is_compiling() or exporting or torch.jit.is_tracing())


class PositionEmbeddingSine(nn.Module):
    """Normalised 2-D sine position embedding (DETR / Mask2Former ``PositionEmbeddingSine``).

    Args:
        num_pos_feats: half the output channels; output has ``2 * num_pos_feats`` channels.
        temperature: frequency base (10000).
    """

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0):
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature
        self._cache: dict[tuple, Tensor] = {}

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C, H, W) any dtype; returns (1, 2 * num_pos_feats, H, W) in x's dtype.

        The embedding depends only on (H, W), so eager calls reuse a small per-size cache
        (not while tracing or exporting, where it is recomputed as graph ops).
        """
        h, w = x.shape[-2:]
        if _tracing():
            return self._compute(h, w, x.device, x.dtype)
        key = (int(h), int(w), x.device, x.dtype, torch.is_inference_mode_enabled())
        pos = self._cache.get(key)
        if pos is None:
            if len(self._cache) >= 16:
                self._cache.clear()
            pos = self._cache[key] = self._compute(h, w, x.device, x.dtype)
        return pos

    def _compute(self, h, w, device, dtype) -> Tensor:
        eps, scale = 1e-6, 2 * math.pi
        y_embed = torch.arange(1, h + 1, device=device, dtype=torch.float32)
        x_embed = torch.arange(1, w + 1, device=device, dtype=torch.float32)
        y_embed = (y_embed / (y_embed[-1:] + eps) * scale)[:, None].expand(h, w)
        x_embed = (x_embed / (x_embed[-1:] + eps) * scale)[None, :].expand(h, w)
        dim_t = torch.arange(self.num_pos_feats, device=device, dtype=torch.float32)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode='floor') / self.num_pos_feats
        )
        pos_x = x_embed[:, :, None] / dim_t
        pos_y = y_embed[:, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, 0::2].sin(), pos_x[:, :, 1::2].cos()), dim=3).flatten(2)
        pos_y = torch.stack((pos_y[:, :, 0::2].sin(), pos_y[:, :, 1::2].cos()), dim=3).flatten(2)
        return torch.cat((pos_y, pos_x), dim=2).permute(2, 0, 1)[None].to(dtype)


class MLP(nn.Module):
    """Multi-layer perceptron with ReLU between layers (Mask2Former ``MLP``)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: Tensor) -> Tensor:
        """x: (..., in_dim) -> (..., out_dim)."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Attention(nn.Module):
    """Multi-head attention on ``F.scaled_dot_product_attention`` with a boolean keep-mask.

    Unlike ``nn.MultiheadAttention`` it bakes no sequence length into an exported graph and
    keeps (B, L, C) batch-first tensors throughout.

    Args:
        dim: model width C (query, output). kv_dim: key/value input width (default C).
        num_heads: heads; C must be divisible by it.
    """

    def __init__(self, dim: int, num_heads: int, kv_dim: int | None = None, dropout: float = 0.0):
        super().__init__()
        kv_dim = kv_dim or dim
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(kv_dim, dim)
        self.v_proj = nn.Linear(kv_dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.dropout = dropout
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.out_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(
        self, query: Tensor, key: Tensor, value: Tensor, keep_mask: Tensor | None = None
    ) -> Tensor:
        """query (B, Lq, C), key/value (B, Lk, C_kv); keep_mask bool broadcastable to
        (B, heads, Lq, Lk), True = may attend (every row needs one True). Returns (B, Lq, C)."""
        return self.attend(query, *self.project_kv(key, value), keep_mask)

    def project_kv(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Projected keys and values, (B', heads, Lk, C / heads) each, for ``attend``; lets
        several queries share one projection (sentences of the same image)."""
        b, lk, h = key.shape[0], key.shape[1], self.num_heads
        c = self.k_proj.out_features
        k = self.k_proj(key).view(b, lk, h, c // h).transpose(1, 2)
        v = self.v_proj(value).view(b, value.shape[1], h, c // h).transpose(1, 2)
        return k, v

    def attend(
        self, query: Tensor, k: Tensor, v: Tensor, keep_mask: Tensor | None = None
    ) -> Tensor:
        """Attention of query (B, Lq, C) over ``project_kv`` output (B, heads, Lk, C / heads);
        keep_mask as in ``forward``. Returns (B, Lq, C)."""
        b, lq, c = query.shape
        h = self.num_heads
        q = self.q_proj(query).view(b, lq, h, c // h).transpose(1, 2)
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep_mask, dropout_p=drop)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, c))


class FFN(nn.Module):
    """Post-norm feed-forward block: ``LN(x + W2 relu(W1 x))`` (Mask2Former FFNLayer)."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, L, C) -> (B, L, C)."""
        return self.norm(x + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(x))))))
