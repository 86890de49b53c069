"""Architecture configuration of the InstAlign / POA model (``POAConfig``), saved as
``config.json`` in each model folder: its sections, validation and serialisation.

The sections (``InputConfig``, ``BackboneConfig``, ``TextConfig``, ``PixelDecoderConfig``,
``DecoderConfig``, ``HeadConfig``) and ``LAYER_STEPS`` / ``BACKBONES`` are defined in
core/model_sections.py, with the options the published method leaves open and their defaults
(docs/method.md#defaults-where-the-paper-is-silent); they are importable from here too.

The text encoder's hidden size is never stored here: it is read from the encoder's own config
when the model is built (``POAModel.text_hidden_size``).

The presets ``paper``, ``tabletop`` and ``tiny`` live in core/model_presets.py (with the
tabletop sizing rationale).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from poa_gres_ros.core.json_files import read_json
from poa_gres_ros.core.model_sections import (
    BACKBONES,
    LAYER_STEPS,
    BackboneConfig,
    DecoderConfig,
    HeadConfig,
    InputConfig,
    PixelDecoderConfig,
    TextConfig,
)

__all__ = [
    'BACKBONES',
    'CONFIG_FORMAT',
    'LAYER_STEPS',
    'LEGACY_FORMATS',
    'BackboneConfig',
    'DecoderConfig',
    'HeadConfig',
    'InputConfig',
    'PixelDecoderConfig',
    'POAConfig',
    'TextConfig',
]

CONFIG_FORMAT = 'poa_gres_ros.model_config/2'
LEGACY_FORMATS = {
    'poa_gres_ros.model_config/1': {
        'decoder': {
            'text_norm': False,
            'text_update_gate': False,
            'mask_position': False,
            'mask_pooling': (),
            'aux_mask_downsample': 1,
        },
        'heads': {'relevance': 'linear', 'no_target_stats': False, 'name_alignment': False},
    },
}
"""Older ``config.json`` formats: the values of fields added since, which give the
architecture those files were written for (missing fields otherwise take today's defaults)."""


_SECTIONS = {
    'input': InputConfig,
    'backbone': BackboneConfig,
    'text': TextConfig,
    'pixel_decoder': PixelDecoderConfig,
    'decoder': DecoderConfig,
    'heads': HeadConfig,
}


@dataclass
class POAConfig:
    """The whole architecture; ``config.json`` of a model folder is ``to_dict()`` as JSON.

    Attributes:
        name: preset or user name of the variant (free text, shown in logs).
        input, backbone, text, pixel_decoder, decoder, heads: the sections
            (core/model_sections.py).
    """

    name: str = 'paper'
    input: InputConfig = field(default_factory=InputConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    text: TextConfig = field(default_factory=TextConfig)
    pixel_decoder: PixelDecoderConfig = field(default_factory=PixelDecoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    heads: HeadConfig = field(default_factory=HeadConfig)

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Check value ranges and cross-field consistency.

        Raises:
            ValueError: naming the field and what to change.
        """
        h, w = self.input.size_hw
        if h <= 0 or w <= 0 or h % 32 or w % 32:
            raise ValueError(
                f'input.size_hw={self.input.size_hw}: both must be positive multiples '
                'of 32 (the backbone stride)'
            )
        if any(s <= 0 for s in self.input.pixel_std):
            raise ValueError(f'input.pixel_std={self.input.pixel_std} must be positive')
        if self.backbone.name not in BACKBONES:
            raise ValueError(f'backbone.name={self.backbone.name!r}; use one of {BACKBONES}')
        if self.backbone.language_fusion and self.backbone.name != 'swin':
            raise ValueError('backbone.language_fusion=true needs backbone.name="swin"')
        if self.text.max_tokens < 3:
            raise ValueError(
                f'text.max_tokens={self.text.max_tokens} must be >= 3 ([CLS], one word, [SEP])'
            )
        pd, dec, hd = self.pixel_decoder, self.decoder, self.heads
        if pd.conv_dim % pd.num_heads or pd.conv_dim % pd.norm_groups:
            raise ValueError(
                f'pixel_decoder.conv_dim={pd.conv_dim} must be divisible by '
                f'num_heads={pd.num_heads} and norm_groups={pd.norm_groups}'
            )
        if dec.hidden_dim % dec.num_heads:
            raise ValueError(
                f'decoder.hidden_dim={dec.hidden_dim} must be divisible by '
                f'decoder.num_heads={dec.num_heads}'
            )
        bad_levels = [
            lvl for lvl in dec.mask_pooling if lvl not in ('res2', 'res3', 'res4', 'res5')
        ]
        if bad_levels or len(set(dec.mask_pooling)) != len(dec.mask_pooling):
            raise ValueError(
                f'decoder.mask_pooling={tuple(dec.mask_pooling)}: distinct levels from '
                "'res2', 'res3', 'res4', 'res5'"
            )
        if dec.aux_mask_downsample not in (1, 2, 4):
            raise ValueError(
                f'decoder.aux_mask_downsample={dec.aux_mask_downsample}: use 1, 2 or 4'
            )
        if min(dec.num_queries, dec.num_layers, pd.num_encoder_layers) < 1:
            raise ValueError(
                'decoder.num_queries, decoder.num_layers and '
                'pixel_decoder.num_encoder_layers must be >= 1'
            )
        order = tuple(dec.layer_order)
        bad = [s for s in order if s not in LAYER_STEPS]
        missing = [s for s in ('masked_cross_attn', 'self_attn', 'ffn') if s not in order]
        if bad or missing or len(set(order)) != len(order):
            raise ValueError(
                f'decoder.layer_order={order}: steps must be distinct, from '
                f'{LAYER_STEPS}, and include masked_cross_attn, self_attn, ffn'
            )
        if pd.conv_dim % 2 or dec.hidden_dim % 2:
            raise ValueError(
                'pixel_decoder.conv_dim and decoder.hidden_dim must be even (sine '
                'position embeddings)'
            )
        tif = tuple(pd.transformer_in_features)
        if tif not in (('res3', 'res4', 'res5'), ('res4', 'res5'), ('res5',)):
            raise ValueError(
                f'pixel_decoder.transformer_in_features={tif}: use the coarsest levels in '
                "order: ['res3', 'res4', 'res5'], ['res4', 'res5'] or ['res5']"
            )
        if pd.fpn_conv not in ('dense', 'separable'):
            raise ValueError(f'pixel_decoder.fpn_conv={pd.fpn_conv!r}; use dense or separable')
        choices = {
            'aggregation': ('soft', 'hard'),
            'prelu': ('shared', 'per_query', 'none'),
            'q_global': ('sum', 'mean'),
            'relevance': ('linear', 'agreement'),
        }
        for key, allowed in choices.items():
            if getattr(hd, key) not in allowed:
                raise ValueError(f'heads.{key}={getattr(hd, key)!r}; use one of {allowed}')
        if not 0.0 <= hd.hard_threshold <= 1.0:
            raise ValueError(f'heads.hard_threshold={hd.hard_threshold} must be in [0, 1]')

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists), with a ``format`` tag."""
        out = {'format': CONFIG_FORMAT}
        out.update(json.loads(json.dumps(dataclasses.asdict(self))))
        return out

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """Return the JSON text; also write it to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, sort_keys=False) + '\n'
        if path is not None:
            with open(path, 'w', encoding='utf-8') as fh:
                fh.write(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> POAConfig:
        """Inverse of ``to_dict``. Missing fields take their defaults.

        Raises:
            ValueError: unknown section or field names (named), a wrong ``format`` tag, or a
                value that fails ``validate``.
            TypeError: ``data`` is not a dict.
        """
        if not isinstance(data, dict):
            raise TypeError(f'model config must be a JSON object, got {type(data).__name__}')
        data = dict(data)
        fmt = data.pop('format', CONFIG_FORMAT)
        if fmt != CONFIG_FORMAT and fmt not in LEGACY_FORMATS:
            known = [CONFIG_FORMAT, *LEGACY_FORMATS]
            raise ValueError(f'model config format {fmt!r} is not one of {known}')
        for section, legacy in LEGACY_FORMATS.get(fmt, {}).items():
            values = dict(data.get(section) or {})
            for key, value in legacy.items():
                values.setdefault(key, value)
            data[section] = values
        unknown = sorted(set(data) - set(_SECTIONS) - {'name'})
        if unknown:
            raise ValueError(f'unknown model config keys: {unknown}')
        kwargs: dict[str, Any] = {'name': str(data.get('name', 'custom'))}
        for key, section_cls in _SECTIONS.items():
            kwargs[key] = _section_from_dict(section_cls, data.get(key, {}), key)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> POAConfig:
        """Read a ``config.json``.

        Raises:
            FileNotFoundError: no such file. ValueError: invalid JSON or content.
        """
        data = read_json(path)
        try:
            return cls.from_dict(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f'{path}: {exc}') from exc

    def with_overrides(self, overrides: dict[str, Any]) -> POAConfig:
        """Return a copy with dotted keys replaced, e.g. ``{'backbone.weights': '/swin'}``.

        Raises:
            ValueError: an unknown key (named) or a value that fails ``validate``.
        """
        data = self.to_dict()
        for key, value in overrides.items():
            parts = key.split('.')
            node = data
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise ValueError(f'unknown model config key {key!r}')
                node = node[part]
            if parts[-1] not in node:
                raise ValueError(f'unknown model config key {key!r}')
            node[parts[-1]] = value
        return POAConfig.from_dict(data)

    def copy(self) -> POAConfig:
        return copy.deepcopy(self)


def _section_from_dict(section_cls, values: dict, section: str):
    if not isinstance(values, dict):
        raise TypeError(f'model config section {section!r} must be an object')
    defaults = section_cls()
    names = {f.name for f in dataclasses.fields(section_cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f'unknown keys in model config section {section!r}: {unknown}')
    kwargs = {}
    for name, value in values.items():
        if isinstance(getattr(defaults, name), tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return section_cls(**kwargs)
