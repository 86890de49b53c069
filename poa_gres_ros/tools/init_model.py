"""Write a fresh model folder for a preset: pretrained parts from their sources, random decoder.

    poa-gres init-model --preset tiny --out /tmp/tiny
    poa-gres init-model --preset tabletop --out models/tabletop_scratch
    poa-gres init-model --preset paper --out paper_init \\
        --set backbone.weights=/data/swin_base_384_22k --set text.source=/data/bert-base-uncased

The folder is what ``poa-gres train`` starts from and what tests load. Its decoder is
untrained: predictions are meaningless until it is trained.
"""

from __future__ import annotations

import json
from pathlib import Path

VERB = 'init-model'
HELP = 'write a fresh (untrained decoder) model folder for a preset'


def add_arguments(parser):
    parser.add_argument('--preset', default='tabletop', help='paper | tabletop | tiny')
    parser.add_argument('--out', required=True, help='model folder to write')
    parser.add_argument(
        '--set',
        action='append',
        default=[],
        metavar='KEY=VALUE',
        help='config override with a dotted key, value as JSON or text, e.g. '
        'decoder.num_queries=30 (repeatable)',
    )
    parser.add_argument('--seed', type=int, default=0, help='seed of the random init')
    parser.add_argument('--force', action='store_true', help='write into a non-empty folder')


def parse_overrides(items: list[str]) -> dict:
    """['a.b=1', 'c.d=x'] -> {'a.b': 1, 'c.d': 'x'} (values parsed as JSON when possible).

    Raises:
        ValueError: an item without '='.
    """
    out = {}
    for item in items:
        if '=' not in item:
            raise ValueError(f'--set {item!r}: use KEY=VALUE')
        key, value = item.split('=', 1)
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def run(args) -> int:
    import torch

    from poa_gres_ros.core.model_presets import get_preset
    from poa_gres_ros.modeling import build_model, save_model

    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise ValueError(f'{out} is not empty; pass --force to overwrite its model files')
    cfg = get_preset(args.preset)
    if args.set:
        cfg = cfg.with_overrides(parse_overrides(args.set))
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    save_model(model, out)
    size_mb = sum(p.stat().st_size for p in out.rglob('*') if p.is_file()) / 2**20
    print(
        f'wrote {out} ({cfg.name}): {model.num_parameters() / 1e6:.2f} M parameters, '
        f'{model.num_parameters(trainable_only=True) / 1e6:.2f} M trainable, folder '
        f'{size_mb:.1f} MB; external (not stored): {list(model.external_prefixes) or "none"}'
    )
    return 0
