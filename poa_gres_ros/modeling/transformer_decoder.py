"""Masked-attention transformer decoder with query-text interaction
(docs/method.md#transformer-decoder).

Mask2Former's decoder (learnable queries, masked cross-attention cycling over strides 32/16/8,
self-attention, FFN, post-norm, a prediction before layer 1 and after every layer) plus
InstAlign's text conditioning in every layer: queries -> text cross-attention with a key
padding mask, and the text update ``T_k = LN(T_{k-1} + Attn(T_{k-1}, Q, Q))`` + FFN. The order
of the steps is ``DecoderConfig.layer_order`` (a default of ours).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from poa_gres_ros.core.model_config import DecoderConfig, HeadConfig
from poa_gres_ros.modeling.common import FFN, MLP, Attention, PositionEmbeddingSine
from poa_gres_ros.modeling.heads import (
    PredictionHeads,
    attention_keep_mask,
    poa_token_mask,
)


class POADecoderLayer(nn.Module):
    """One decoder layer; steps run in ``layer_order`` (a subset of model_config.LAYER_STEPS)."""

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        dim, heads = cfg.hidden_dim, cfg.num_heads
        self.order = tuple(cfg.layer_order)
        self.drop = nn.Dropout(cfg.dropout)
        self.cross_attn = Attention(dim, heads, dropout=cfg.dropout)
        self.cross_norm = nn.LayerNorm(dim)
        if 'text_cross_attn' in self.order:
            self.text_cross_attn = Attention(dim, heads, dropout=cfg.dropout)
            self.text_cross_norm = nn.LayerNorm(dim)
        if 'text_update' in self.order:
            self.text_update_attn = Attention(dim, heads, dropout=cfg.dropout)
            self.text_update_norm = nn.LayerNorm(dim)
            self.text_ffn = FFN(dim, cfg.text_ffn_dim, cfg.dropout) if cfg.text_ffn_dim else None
            # gated pre-norm update: T + tanh(g) * Attn(LN(T), Q), g = 0 at initialisation, so
            # the text stream starts as the encoder's tokens and cannot collapse to one vector
            self.text_gate = nn.Parameter(torch.zeros(1)) if cfg.text_update_gate else None
        self.self_attn = Attention(dim, heads, dropout=cfg.dropout)
        self.self_norm = nn.LayerNorm(dim)
        self.ffn = FFN(dim, cfg.dim_feedforward, cfg.dropout)

    def forward(
        self,
        q: Tensor,
        q_pos: Tensor,
        memory_key: Tensor,
        memory: Tensor,
        keep_mask: Tensor | None,
        text: Tensor,
        text_keep: Tensor,
        image_index: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """q (B, N, C); q_pos (1 or B, N, C); memory_key = memory + position embedding and
        memory (B_img, HW, C) of this layer's level, one per image; image_index (B,) int64
        maps each sentence to its image (None: B_img = B, in order); keep_mask (B, 1, N, HW)
        bool or None; text (B, L, C); text_keep (B, 1, 1, L) bool (real tokens). Returns the
        updated (queries, text)."""
        for step in self.order:
            if step == 'masked_cross_attn':
                k, v = self.cross_attn.project_kv(memory_key, memory)  # once per image
                if image_index is not None:
                    k, v = k[image_index], v[image_index]
                att = self.cross_attn.attend(q + q_pos, k, v, keep_mask)
                q = self.cross_norm(q + self.drop(att))
            elif step == 'text_cross_attn':
                att = self.text_cross_attn(q + q_pos, text, text, text_keep)
                q = self.text_cross_norm(q + self.drop(att))
            elif step == 'text_update':
                text = self._update_text(text, q, q_pos)
            elif step == 'self_attn':
                qk = q + q_pos
                q = self.self_norm(q + self.drop(self.self_attn(qk, qk, q)))
            else:  # 'ffn'
                q = self.ffn(q)
        return q, text

    def _update_text(self, text: Tensor, q: Tensor, q_pos: Tensor) -> Tensor:
        """Text <- query cross-attention (docs/method.md#text-stream). Gated: the residual
        ``T + tanh(g) Attn(LN(T), Q)`` (FFN likewise gated); ungated: the post-norm
        ``LN(T + Attn(T, Q))`` followed by the post-norm FFN."""
        if self.text_gate is None:
            att = self.text_update_attn(text, q + q_pos, q)
            text = self.text_update_norm(text + self.drop(att))
            return self.text_ffn(text) if self.text_ffn is not None else text
        gate = torch.tanh(self.text_gate)
        att = self.text_update_attn(self.text_update_norm(text), q + q_pos, q)
        text = text + gate * self.drop(att)
        if self.text_ffn is not None:
            ffn = self.text_ffn
            hidden = ffn.linear2(ffn.dropout(F.relu(ffn.linear1(ffn.norm(text)))))
            text = text + gate * ffn.dropout(hidden)
        return text


def mask_weights(mask_logits: Tensor) -> Tensor:
    """Pixel weights ``sigmoid(S)`` of mask position and mask pooling, written as
    ``1 / (1 + exp(-S))`` so that they keep their relative precision far below 0.5 in exported
    graphs too (docs/method.md#mask-position).

    Both features divide weighted sums by the total weight, so a query whose mask is nearly
    empty (every logit below about -10) is described by the ratios of tiny weights. ONNX
    Runtime's CPU ``Sigmoid`` kernel is an approximation with an absolute error of about 1e-7
    that returns exactly 0 below -18 (1.5e-8 exact; 4.1e-8 at -17 comes out as 8.9e-8), which
    moved these ratios by up to 0.7 and the exported model's mask logits by 0.05-0.2. ``Exp``
    keeps its relative precision there; in torch the two forms agree to float rounding.

    Args:
        mask_logits: (B, N, h, w) float logits (detached here).
    Returns:
        (B, N, h, w) weights in [0, 1], in float32 or the input's dtype if wider (exactly 0
        below about -88, where ``exp`` overflows to inf in float32).
    """
    x = mask_logits.detach()
    x = x.to(torch.promote_types(x.dtype, torch.float32))
    return torch.reciprocal(torch.exp(-x) + 1.0)


def mask_geometry(mask_logits: Tensor) -> Tensor:
    """Where each query's current mask is and how big (docs/method.md#mask-position).

    Args:
        mask_logits: (B, N, h, w) instance mask logits at any resolution (detached here).
    Returns:
        (B, N, 5) float: soft centroid x and y, spread (standard deviation) in x and y, all
        as fractions of the image width / height, and the soft area as a fraction of the
        image, with sigmoid(S) as the pixel weights (``mask_weights``).
    """
    w = mask_weights(mask_logits).float()
    h_, w_ = w.shape[-2:]
    ys = (torch.arange(h_, device=w.device, dtype=w.dtype) + 0.5) / h_
    xs = (torch.arange(w_, device=w.device, dtype=w.dtype) + 0.5) / w_
    col, row = w.sum(-2), w.sum(-1)  # (B, N, w), (B, N, h)
    mass = col.sum(-1).clamp_min(1e-6)
    cx, cy = (col * xs).sum(-1) / mass, (row * ys).sum(-1) / mass
    sx = ((col * xs * xs).sum(-1) / mass - cx * cx).clamp_min(0.0).add(1e-6).sqrt()
    sy = ((row * ys * ys).sum(-1) / mass - cy * cy).clamp_min(0.0).add(1e-6).sqrt()
    area = mass / float(h_ * w_)
    return torch.stack([cx, cy, sx, sy, area], -1).to(mask_logits.dtype)


class MaskPositionEmbedding(nn.Module):
    """Sine embedding of ``mask_geometry`` + a linear map to C, zero-initialised (so a new
    model starts with the plain learnable query positions)."""

    def __init__(self, dim: int, num_freqs: int = 8):
        super().__init__()
        self.register_buffer('freqs', (2.0 ** torch.arange(num_freqs)) * math.pi, persistent=False)
        self.proj = nn.Linear(5 * 2 * num_freqs, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, geometry: Tensor) -> Tensor:
        """geometry (B, N, 5) -> (B, N, C)."""
        x = geometry[..., None] * self.freqs.to(geometry.dtype)  # (B, N, 5, F)
        return self.proj(torch.cat([x.sin(), x.cos()], -1).flatten(-2))


class MaskPooledFeatures(nn.Module):
    """Object descriptors (docs/method.md#mask-pooling): each query's current mask, as
    weights ``sigmoid(S)`` (``mask_weights``), averages the frozen backbone's feature maps;
    the per-level averages are normalised, concatenated and mapped to C by a 2-layer MLP whose
    last layer starts at zero (a new model starts without them).

    Args:
        in_channels: backbone channels per level ('res2'..'res5' -> C_l).
        levels: the levels pooled, e.g. ('res3', 'res4', 'res5').
        dim: C.
    """

    def __init__(self, in_channels: dict[str, int], levels: tuple[str, ...], dim: int):
        super().__init__()
        self.levels = tuple(levels)
        self.norms = nn.ModuleList(nn.LayerNorm(in_channels[lvl]) for lvl in self.levels)
        self.proj = MLP(sum(in_channels[lvl] for lvl in self.levels), dim, dim, 2)
        nn.init.zeros_(self.proj.layers[-1].weight)
        nn.init.zeros_(self.proj.layers[-1].bias)

    def forward(
        self, mask_logits: Tensor, features: dict[str, Tensor], image_index: Tensor | None
    ) -> Tensor:
        """mask_logits (B, N, h, w) (detached here); features: level -> (B_img, C_l, H_l,
        W_l); image_index (B,) int64 or None (B_img = B). Returns (B, N, C)."""
        w = mask_weights(mask_logits).to(mask_logits.dtype)
        parts = []
        for lvl, norm in zip(self.levels, self.norms):
            f = features[lvl].to(w.dtype)
            if image_index is not None:
                f = f[image_index]
            m = F.interpolate(w, size=f.shape[-2:], mode='bilinear', align_corners=False)
            pooled = torch.einsum('bnhw,bchw->bnc', m, f) / (m.sum((-2, -1))[..., None] + 1e-6)
            parts.append(norm(pooled))
        return self.proj(torch.cat(parts, -1))


class POATransformerDecoder(nn.Module):
    """Queries, decoder layers and the per-layer prediction heads.

    Args:
        cfg: DecoderConfig. head_cfg: HeadConfig.
        in_dim: channels of the pixel decoder's multi-scale maps. mask_dim: channels of F_mask.
        text_dim: D_text, hidden size of the text encoder (read from its config).
        backbone_channels: the backbone's channels per level (for ``mask_pooling``).
    """

    def __init__(
        self,
        cfg: DecoderConfig,
        head_cfg: HeadConfig,
        in_dim: int,
        mask_dim: int,
        text_dim: int,
        backbone_channels: dict[str, int] | None = None,
    ):
        super().__init__()
        dim = cfg.hidden_dim
        self.cfg, self.num_levels = cfg, 3
        self.exclude_special = head_cfg.poa_exclude_special_tokens
        self.text_proj = nn.Linear(text_dim, dim, bias=cfg.text_proj_bias)
        self.text_norm = nn.LayerNorm(dim) if cfg.text_norm else nn.Identity()
        self.pe_layer = PositionEmbeddingSine(dim // 2)
        self.level_embed = nn.Embedding(self.num_levels, dim)
        self.input_proj = nn.ModuleList(
            nn.Conv2d(in_dim, dim, 1) if in_dim != dim else nn.Identity()
            for _ in range(self.num_levels)
        )
        self.query_feat = nn.Embedding(cfg.num_queries, dim)
        self.query_embed = nn.Embedding(cfg.num_queries, dim)
        self.layers = nn.ModuleList(POADecoderLayer(cfg) for _ in range(cfg.num_layers))
        self.mask_position = MaskPositionEmbedding(dim) if cfg.mask_position else None
        self.mask_pooling = None
        if cfg.mask_pooling:
            if backbone_channels is None:
                raise ValueError('decoder.mask_pooling needs the backbone channels')
            self.mask_pooling = MaskPooledFeatures(backbone_channels, cfg.mask_pooling, dim)
        self.heads = PredictionHeads(head_cfg, dim, mask_dim, cfg.num_queries)

    def embed_texts(self, text_features: Tensor, attention_mask: Tensor) -> Tensor:
        """One vector per text in the decoder's text space: the mean over its real tokens,
        [CLS] and [SEP] excluded, of the projected (and normalised) tokens.

        Args:
            text_features: (M, L, D_text) encoder output. attention_mask: (M, L).
        Returns:
            (M, C).
        """
        text = self.text_norm(self.text_proj(text_features))
        keep = poa_token_mask(attention_mask, exclude_special=True).to(text.dtype)[..., None]
        return (text * keep).sum(1) / keep.sum(1).clamp_min(1.0)

    def forward(
        self,
        multi_scale: list[Tensor],
        mask_features: Tensor,
        text_features: Tensor,
        attention_mask: Tensor,
        aux: bool = True,
        image_index: Tensor | None = None,
        backbone_features: dict[str, Tensor] | None = None,
    ) -> list[dict[str, Tensor]]:
        """multi_scale: 3 maps (B_img, C_in, h_l, w_l), strides 32, 16, 8; mask_features
        (B_img, D, Hm, Wm); text_features (B, L, D_text) raw encoder output; attention_mask
        (B, L); image_index (B,) int64: the image of each sentence (None: B_img = B, in order;
        the visual projections then run once per image, not once per sentence);
        backbone_features: the backbone's maps 'res2'..'res5', one per image (B_img, C_l,
        H_l, W_l), needed by ``mask_pooling``.

        Returns num_layers + 1 prediction dicts (see ``PredictionHeads.forward``), the one
        before layer 1 first. The earlier (auxiliary) dicts are computed from F_mask resized
        by ``1 / aux_mask_downsample`` (their losses are point-sampled at normalised
        coordinates, so only the resolution changes); with ``aux=False`` (inference) they are
        empty. The mask that guides each layer (masked attention, mask position, mask
        pooling) is the previous prediction computed directly at that layer's feature size
        from bilinearly resized F_mask, in training and inference alike: the mask logits are
        linear in F_mask, so this equals Mask2Former's resize of the full stride-4 logits (up
        to float rounding) at a fraction of the cost.
        """
        b = text_features.shape[0]
        memories, memory_keys, sizes = [], [], []
        for lvl, feat in enumerate(multi_scale):
            sizes.append((feat.shape[-2], feat.shape[-1]))
            x = self.input_proj[lvl](feat) + self.level_embed.weight[lvl][None, :, None, None]
            memories.append(x.flatten(2).transpose(1, 2))
            memory_keys.append(memories[-1] + self.pe_layer(feat).flatten(2).transpose(1, 2))
        text = self.text_norm(self.text_proj(text_features))
        token_mask = poa_token_mask(attention_mask, self.exclude_special)
        text_keep = attention_mask.bool()[:, None, None, :]
        q = self.query_feat.weight[None].expand(b, -1, -1)
        q_pos = self.query_embed.weight[None]

        last = len(self.layers)
        if self.mask_pooling is not None and backbone_features is None:
            raise ValueError('decoder.mask_pooling needs backbone_features')
        # the mask that guides layer j (masked attention, mask position, mask pooling) is the
        # previous prediction computed directly at layer j's level from resized F_mask (mask
        # logits are linear in F_mask), the same in training and inference
        small = []
        if self.cfg.masked_attention or self.mask_position is not None or self.mask_pooling:
            small = [
                F.interpolate(mask_features, size=size, mode='bilinear', align_corners=False)
                for size in sizes
            ]
            if image_index is not None:
                small = [m[image_index] for m in small]

        aux_features = mask_features
        if aux and self.cfg.aux_mask_downsample > 1:
            aux_features = F.interpolate(
                mask_features,
                scale_factor=1.0 / self.cfg.aux_mask_downsample,
                mode='bilinear',
                align_corners=False,
            )
        if image_index is not None:
            mask_features = mask_features[image_index]
            aux_features = aux_features[image_index] if aux else aux_features

        def predict(i: int, q: Tensor, text: Tensor) -> dict[str, Tensor]:
            if i == last:
                return self.heads(q, mask_features, text, token_mask)
            if aux:
                return self.heads(q, aux_features, text, token_mask)
            return {}

        outputs = [predict(0, q, text)]
        for i, layer in enumerate(self.layers):
            lvl = i % self.num_levels
            guide = self.heads.mask_logits(q, small[lvl]) if small else None
            keep = attention_keep_mask(guide, sizes[lvl]) if self.cfg.masked_attention else None
            pos = q_pos
            if self.mask_position is not None:
                pos = q_pos + self.mask_position(mask_geometry(guide))
            if self.mask_pooling is not None:
                q = q + self.mask_pooling(guide, backbone_features, image_index)
            q, text = layer(
                q, pos, memory_keys[lvl], memories[lvl], keep, text, text_keep, image_index
            )
            outputs.append(predict(i + 1, q, text))
        return outputs
