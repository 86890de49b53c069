"""Swin-B (window 12) backbone through transformers ``SwinModel`` / ``SwinConfig``
(docs/method.md#visual-backbone), with the optional language-aware fusion of ReLA/LAVT
(``MultiModalSwinTransformer``: a PWAM block and a tanh-gated residual after every stage, on by
default).

Weights come from a local path the user gives (``backbone.weights``): a Hugging Face folder
(e.g. a download of microsoft/swin-base-patch4-window12-384-in22k) or a ``.safetensors`` file
with SwinModel keys. Nothing is downloaded. Outputs are the pre-downsampling stage maps after a
LayerNorm per stage (Mask2Former's D2SwinTransformer ``out_indices`` norms): 128, 256, 512,
1024 channels at strides 4, 8, 16, 32 for Swin-B.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from poa_gres_ros.core.model_config import BackboneConfig


class SpatialImageLanguageAttention(nn.Module):
    """Pixel-to-word attention of LAVT (``SpatialImageLanguageAttention``, one head)."""

    def __init__(self, v_dim: int, l_dim: int, num_heads: int = 1):
        super().__init__()
        self.num_heads = num_heads
        self.f_query = nn.Sequential(nn.Conv1d(v_dim, v_dim, 1), nn.InstanceNorm1d(v_dim))
        self.f_key = nn.Conv1d(l_dim, v_dim, 1)
        self.f_value = nn.Conv1d(l_dim, v_dim, 1)
        self.W = nn.Sequential(nn.Conv1d(v_dim, v_dim, 1), nn.InstanceNorm1d(v_dim))

    def forward(self, x: Tensor, text: Tensor, text_mask: Tensor) -> Tensor:
        """x (B, HW, Cv); text (B, L, Cl); text_mask (B, L) 1 = real token; -> (B, HW, Cv)."""
        b, hw, c = x.shape
        h = self.num_heads
        m = text_mask.to(x.dtype)[:, None, :]  # (B, 1, L)
        query = self.f_query(x.transpose(1, 2)).transpose(1, 2)  # (B, HW, Cv)
        key = self.f_key(text.transpose(1, 2)) * m  # (B, Cv, L)
        value = self.f_value(text.transpose(1, 2)) * m
        query = query.reshape(b, hw, h, c // h).transpose(1, 2)  # (B, h, HW, d)
        key = key.reshape(b, h, c // h, -1)  # (B, h, d, L)
        value = value.reshape(b, h, c // h, -1)
        sim = torch.matmul(query, key) * (c // h) ** -0.5 + (1e4 * m[:, None] - 1e4)
        out = torch.matmul(sim.softmax(-1), value.transpose(2, 3))  # (B, h, HW, d)
        out = out.transpose(1, 2).reshape(b, hw, c).transpose(1, 2)
        return self.W(out).transpose(1, 2)


class PWAM(nn.Module):
    """Pixel-Word Attention Module (LAVT): ``proj(proj(x) * attend(x, text))``."""

    def __init__(self, dim: int, text_dim: int, num_heads: int = 1):
        super().__init__()
        self.vis_project = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.GELU())
        self.image_lang_att = SpatialImageLanguageAttention(dim, text_dim, num_heads)
        self.project_mm = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.GELU())

    def forward(self, x: Tensor, text: Tensor, text_mask: Tensor) -> Tensor:
        """x (B, HW, C); text (B, L, D_text); text_mask (B, L); -> (B, HW, C)."""
        vis = self.vis_project(x.transpose(1, 2))
        lang = self.image_lang_att(x, text, text_mask).transpose(1, 2)
        return self.project_mm(vis * lang).transpose(1, 2)


class LanguageGate(nn.Module):
    """tanh-gated residual of LAVT's MMBasicLayer: ``x + gate(r) * r``."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(dim, dim, bias=False), nn.ReLU(), nn.Linear(dim, dim, bias=False), nn.Tanh()
        )

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return x + self.gate(residual) * residual


def swin_config(cfg: BackboneConfig, image_size_hw: tuple[int, int]):
    """transformers SwinConfig for the configured Swin variant."""
    from transformers import SwinConfig

    return SwinConfig(
        image_size=max(image_size_hw),
        patch_size=4,
        num_channels=3,
        embed_dim=cfg.swin_embed_dim,
        depths=list(cfg.swin_depths),
        num_heads=list(cfg.swin_num_heads),
        window_size=cfg.swin_window_size,
        drop_path_rate=cfg.swin_drop_path_rate,
        use_absolute_embeddings=False,
    )


def _load_swin(cfg: BackboneConfig, image_size_hw: tuple[int, int]):
    from transformers import SwinModel

    if not cfg.pretrained:
        return SwinModel(swin_config(cfg, image_size_hw), add_pooling_layer=False)
    path = cfg.weights
    if not path:
        raise ValueError(
            'backbone.pretrained=true with name="swin" needs backbone.weights: a '
            'local folder or .safetensors file of swin_base_patch4_window12_384_22k '
            '(or set backbone.pretrained=false to start from random weights)'
        )
    if os.path.isdir(path):
        model = SwinModel.from_pretrained(
            path,
            add_pooling_layer=False,
            local_files_only=True,
            drop_path_rate=cfg.swin_drop_path_rate,
        )
        got = (model.config.embed_dim, tuple(model.config.depths), model.config.window_size)
        want = (cfg.swin_embed_dim, tuple(cfg.swin_depths), cfg.swin_window_size)
        if got != want:
            raise ValueError(
                f'Swin weights in {path} have (embed_dim, depths, window) {got}, '
                f'the config says {want}; fix backbone.swin_* or the path'
            )
        return model
    if not os.path.isfile(path):
        raise FileNotFoundError(f'backbone.weights={path!r} does not exist')
    from safetensors.torch import load_file

    model = SwinModel(swin_config(cfg, image_size_hw), add_pooling_layer=False)
    state = {k.removeprefix('swin.'): v for k, v in load_file(path).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [k for k in unexpected if not k.startswith(('classifier.', 'layernorm.'))]
    if missing or unexpected:
        raise ValueError(
            f'Swin weights {path} do not match SwinModel: missing {missing[:10]}, '
            f'unexpected {unexpected[:10]}'
        )
    return model


class SwinBackbone(nn.Module):
    """Swin transformer feature extractor, optionally language-aware.

    Args:
        cfg: BackboneConfig (swin_* fields, pretrained, weights, language_fusion).
        image_size_hw: network input size.
        text_dim: D_text of the text encoder (needed when ``language_fusion``).
    """

    def __init__(self, cfg: BackboneConfig, image_size_hw: tuple[int, int], text_dim: int = 0):
        super().__init__()
        self.body = _load_swin(cfg, image_size_hw)
        dims = [cfg.swin_embed_dim * 2**i for i in range(len(cfg.swin_depths))]
        self.out_norms = nn.ModuleList(nn.LayerNorm(d) for d in dims)
        self.uses_text = bool(cfg.language_fusion)
        if self.uses_text:
            if text_dim <= 0:
                raise ValueError('language_fusion needs the text encoder hidden size')
            self.fusion = nn.ModuleList(PWAM(d, text_dim) for d in dims)
            # the gated residual feeds the next stage, so the last stage has none (in LAVT its
            # result is computed and never used)
            self.gates = nn.ModuleList(LanguageGate(d) for d in dims[:-1])
        self.out_channels = {f'res{i + 2}': d for i, d in enumerate(dims)}

    def forward(
        self, images: Tensor, text: Tensor | None = None, text_mask: Tensor | None = None
    ) -> dict[str, Tensor]:
        """images (B, 3, H, W) normalised; text (B, L, D_text) raw encoder features and
        text_mask (B, L) when ``uses_text``. Returns 'res2'..'res5' (B, C_k, H/s, W/s).

        Raises:
            ValueError: language fusion is on and no text is given.
        """
        if self.uses_text and (text is None or text_mask is None):
            raise ValueError('the language-aware Swin backbone needs text features and mask')
        hidden, dims = self.body.embeddings(images)
        out = {}
        for i, stage in enumerate(self.body.encoder.layers):
            for block in stage.blocks:
                hidden = block(hidden, dims, always_partition=True)[0]
            stage_out = hidden
            if self.uses_text:
                stage_out = self.fusion[i](hidden, text, text_mask)
                if i < len(self.gates):
                    hidden = self.gates[i](hidden, stage_out)
            h, w = dims
            normed = self.out_norms[i](stage_out)
            out[f'res{i + 2}'] = normed.transpose(1, 2).reshape(normed.shape[0], -1, h, w)
            if stage.downsample is not None:
                hidden = stage.downsample(hidden, dims)
                dims = ((h + 1) // 2, (w + 1) // 2)
        return out
