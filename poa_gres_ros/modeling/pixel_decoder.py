"""Multi-scale deformable-attention pixel decoder (docs/method.md#pixel-decoder; Mask2Former
``MSDeformAttnPixelDecoder``, Deformable DETR's ``MSDeformAttn``) in pure PyTorch.

The deformable sampling uses ``F.grid_sample`` per level (Mask2Former's CPU fallback
``ms_deform_attn_core_pytorch``), not the CUDA extension, so it runs everywhere and exports with
the dynamo ONNX exporter (opset 18, GridSample). Padding masks are not needed: inputs are
resized, never padded, so every valid ratio is 1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from poa_gres_ros.core.model_config import PixelDecoderConfig
from poa_gres_ros.modeling.common import PositionEmbeddingSine

FEATURE_ORDER_LOW_TO_HIGH = ('res5', 'res4', 'res3', 'res2')  # strides 32, 16, 8, 4


def ms_deform_attn_core(
    value: Tensor,
    spatial_shapes: list[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Multi-scale deformable attention sampling (Deformable DETR, eq. 3), grid_sample version.

    Args:
        value: (B, S, heads, Dh) values of all levels, S = sum(h * w).
        spatial_shapes: (h, w) per level, in the order of ``value``.
        sampling_locations: (B, Lq, heads, levels, points, 2), normalised (x, y) in [0, 1].
        attention_weights: (B, Lq, heads, levels, points), softmax over levels * points.
    Returns:
        (B, Lq, heads * Dh).
    """
    b, _, heads, dh = value.shape
    _, lq, _, levels, points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1
    weights = attention_weights.transpose(1, 2).reshape(b * heads, 1, lq, levels, points)
    out = None
    for lid, (h, w) in enumerate(spatial_shapes):  # accumulate per level: no stacked copy
        v = values[lid].flatten(2).transpose(1, 2).reshape(b * heads, dh, h, w)
        g = grids[:, :, :, lid].transpose(1, 2).flatten(0, 1)  # (B*heads, Lq, points, 2)
        sampled = F.grid_sample(
            v, g, mode='bilinear', padding_mode='zeros', align_corners=False
        )  # (B*heads, Dh, Lq, points)
        level = (sampled * weights[..., lid, :]).sum(-1)
        out = level if out is None else out + level
    return out.view(b, heads * dh, lq).transpose(1, 2)


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention module (Deformable DETR ``MSDeformAttn``)."""

    def __init__(self, dim: int, num_levels: int, num_heads: int, num_points: int):
        super().__init__()
        self.num_levels, self.num_heads, self.num_points = num_levels, num_heads, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self._reset_parameters()

    def _reset_parameters(self):
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (
            2.0 * math.pi / self.num_heads
        )
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        for i in range(self.num_points):
            grid[:, :, i, :] *= i + 1
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.view(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for lin in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        value_in: Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> Tensor:
        """query (B, Lq, C); reference_points (B, Lq, levels, 2) normalised (x, y);
        value_in (B, S, C); returns (B, Lq, C)."""
        b, lq, c = query.shape
        h, lv, p = self.num_heads, self.num_levels, self.num_points
        value = self.value_proj(value_in).view(b, value_in.shape[1], h, c // h)
        offsets = self.sampling_offsets(query).view(b, lq, h, lv, p, 2)
        weights = self.attention_weights(query).view(b, lq, h, lv * p).softmax(-1)
        weights = weights.view(b, lq, h, lv, p)
        normalizer = torch.tensor(
            [[w, hh] for hh, w in spatial_shapes], dtype=query.dtype, device=query.device
        )  # (levels, 2) as (w, h)
        locations = (
            reference_points[:, :, None, :, None, :]
            + offsets / normalizer[None, None, None, :, None, :]
        )
        return self.output_proj(ms_deform_attn_core(value, spatial_shapes, locations, weights))


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: deformable self-attention then FFN (Mask2Former)."""

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        num_levels: int,
        num_heads: int,
        num_points: int,
        dropout: float,
    ):
        super().__init__()
        self.self_attn = MSDeformAttn(dim, num_levels, num_heads, num_points)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        src: Tensor,
        pos: Tensor,
        reference_points: Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> Tensor:
        src = self.norm1(
            src + self.dropout(self.self_attn(src + pos, reference_points, src, spatial_shapes))
        )
        return self.norm2(src + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(src))))))


def _reference_points(
    spatial_shapes: list[tuple[int, int]], batch: int, num_levels: int, device, dtype
) -> Tensor:
    """Pixel-centre reference points of all levels: (B, S, levels, 2) normalised (x, y)."""
    refs = []
    for h, w in spatial_shapes:
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / w
        ref = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], -1).reshape(-1, 2)
        refs.append(ref)
    ref = torch.cat(refs, 0)
    return ref[None, :, None, :].expand(batch, -1, num_levels, 2)


def _conv_gn(in_ch: int, out_ch: int, k: int, groups: int, relu: bool) -> nn.Sequential:
    layers = [nn.Conv2d(in_ch, out_ch, k, padding=k // 2, bias=False), nn.GroupNorm(groups, out_ch)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class MSDeformAttnPixelDecoder(nn.Module):
    """Deformable encoder over res3..res5 plus an FPN lateral on res2 for the mask features.

    Args:
        cfg: PixelDecoderConfig.
        in_channels: channels of 'res2'..'res5' of the backbone, e.g.
            ``{'res2': 24, 'res3': 40, 'res4': 112, 'res5': 320}``.
    """

    def __init__(self, cfg: PixelDecoderConfig, in_channels: dict[str, int]):
        super().__init__()
        dim, groups = cfg.conv_dim, cfg.norm_groups
        # encoder levels low resolution first (Mask2Former order), e.g. res5, res4, res3
        self.encoder_features = tuple(
            k for k in FEATURE_ORDER_LOW_TO_HIGH if k in cfg.transformer_in_features
        )
        # every higher-resolution level gets an FPN lateral, down to res2 (stride 4)
        self.fpn_features = tuple(
            k for k in FEATURE_ORDER_LOW_TO_HIGH[len(self.encoder_features) :]
        )
        self.num_levels = len(self.encoder_features)
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels[k], dim, 1), nn.GroupNorm(groups, dim))
            for k in self.encoder_features
        )
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)
        self.pe_layer = PositionEmbeddingSine(dim // 2)
        self.level_embed = nn.Parameter(torch.empty(self.num_levels, dim).normal_())
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(
                dim,
                cfg.dim_feedforward,
                self.num_levels,
                cfg.num_heads,
                cfg.num_points,
                cfg.dropout,
            )
            for _ in range(cfg.num_encoder_layers)
        )
        self.lateral_convs = nn.ModuleList(
            _conv_gn(in_channels[k], dim, 1, groups, relu=False) for k in self.fpn_features
        )
        self.output_convs = nn.ModuleList(
            _fpn_output_conv(dim, groups, cfg.fpn_conv) for _ in self.fpn_features
        )
        self.mask_features = nn.Conv2d(dim, cfg.mask_dim, 1)
        for mod in (*self.lateral_convs, *self.output_convs, self.mask_features):
            for conv in mod.modules():
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_uniform_(conv.weight, a=1)
        nn.init.zeros_(self.mask_features.bias)

    def forward(self, features: dict[str, Tensor]) -> tuple[Tensor, list[Tensor]]:
        """features: 'res2'..'res5' (B, C_k, H/s, W/s) for s = 4, 8, 16, 32.

        Returns:
            mask_features: (B, mask_dim, H/4, W/4) (F_mask, docs/method.md#pixel-decoder).
            multi_scale: [(B, conv_dim, H/32, W/32), (.., H/16, W/16), (.., H/8, W/8)]: the
                encoder outputs followed by FPN outputs, the first three (Mask2Former).
        """
        srcs, pos, shapes = [], [], []
        for lvl, key in enumerate(self.encoder_features):
            x = self.input_proj[lvl](features[key])
            h, w = x.shape[-2:]
            shapes.append((h, w))
            pos.append(
                (self.pe_layer(x) + self.level_embed[lvl][None, :, None, None])
                .flatten(2)
                .transpose(1, 2)
            )
            srcs.append(x.flatten(2).transpose(1, 2))
        src = torch.cat(srcs, 1)
        pos_all = torch.cat(pos, 1).expand(src.shape[0], -1, -1)
        ref = _reference_points(shapes, src.shape[0], self.num_levels, src.device, src.dtype)
        for layer in self.layers:
            src = layer(src, pos_all, ref, shapes)
        b, c = src.shape[0], src.shape[2]
        outs = [
            o.transpose(1, 2).reshape(b, c, h, w)
            for o, (h, w) in zip(src.split([h * w for h, w in shapes], 1), shapes)
        ]
        y = outs[-1]
        for key, lateral, output in zip(self.fpn_features, self.lateral_convs, self.output_convs):
            x = features[key]
            y = output(
                lateral(x)
                + F.interpolate(y, size=x.shape[-2:], mode='bilinear', align_corners=False)
            )
            outs.append(y)
        return self.mask_features(y), outs[:3]


def _fpn_output_conv(dim: int, groups: int, kind: str) -> nn.Sequential:
    if kind == 'separable':
        return nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=False),
            *_conv_gn(dim, dim, 1, groups, relu=True),
        )
    return _conv_gn(dim, dim, 3, groups, relu=True)
