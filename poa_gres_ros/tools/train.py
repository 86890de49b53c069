"""Train a POA model from a YAML/JSON config (see ``poa_gres_ros.training.config``).

Examples:
    poa-gres train --config config/train_tabletop.yaml
    poa-gres train --config cfg.yaml --resume auto            # continue the newest checkpoint
    poa-gres train --config cfg.yaml --set ablation=no_poa --set output_dir=runs/no_poa
    torchrun --nproc_per_node 4 -m poa_gres_ros.tools.cli train --config cfg.yaml   # 4 GPUs

Writes to ``output_dir``: ``metrics.csv``, ``tb/`` (TensorBoard), ``checkpoints/``,
``train_config.json``, ``train_summary.json`` and the final model folder ``model/``.
"""

from __future__ import annotations

VERB = 'train'
HELP = 'train a POA model (losses, matching, AdamW, DDP via torchrun) from a config file'


def add_arguments(parser):
    parser.add_argument('--config', required=True, help='YAML or JSON training config')
    parser.add_argument(
        '--resume',
        default=None,
        help="'auto' (newest checkpoint of output_dir) or a checkpoint folder",
    )
    parser.add_argument(
        '--set',
        action='append',
        default=[],
        metavar='KEY=VALUE',
        help='override a config value, dotted keys, YAML value syntax '
        '(e.g. --set schedule.max_iters=500 --set data.root=data/tt)',
    )


def apply_overrides(data: dict, items: list[str]) -> dict:
    """Apply ``KEY=VALUE`` overrides (dotted keys, values parsed as YAML) to a config dict.

    Raises:
        ValueError: an item without '='.
    """
    import yaml

    for item in items:
        if '=' not in item:
            raise ValueError(f'--set {item!r}: expected KEY=VALUE')
        key, value = item.split('=', 1)
        node = data
        parts = key.strip().split('.')
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f'--set {key}: {p} is not a section')
        node[parts[-1]] = yaml.safe_load(value)
    return data


def run(args) -> int:
    import logging

    from poa_gres_ros.training.config import TrainConfig
    from poa_gres_ros.training.trainer import Trainer

    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    cfg = TrainConfig.from_file(args.config)
    if args.set:
        cfg = TrainConfig.from_dict(apply_overrides(cfg.to_dict(), args.set))
    trainer = Trainer(cfg, resume=args.resume)
    out = trainer.train()
    if out:
        print(f'model folder: {out}')
    return 0
