"""Post-processing threshold options shared by ``poa-gres segment`` and ``poa-gres eval``.

The options are spelled like the node's parameters (``--relevance-threshold`` for
``relevance_threshold``, ...; docs/postprocessing.md) and default to ``Thresholds()``, the
node's defaults. ``segment``'s earlier short spellings (``--relevance``, ``--mask``,
``--no-target``, ``--duplicate-iou``) are kept as aliases.
"""

from __future__ import annotations

from poa_gres_ros.core.thresholds import Thresholds


def add_threshold_arguments(parser) -> None:
    """Add ``--relevance-threshold``, ``--mask-threshold``, ``--no-target-threshold``,
    ``--max-instances`` and ``--duplicate-iou-threshold`` to an argparse parser."""
    d = Thresholds()
    g = parser.add_argument_group('post-processing (the node parameters of the same names)')
    g.add_argument(
        '--relevance-threshold',
        '--relevance',
        dest='relevance_threshold',
        type=float,
        default=d.relevance,
        help=f'keep a query whose relevance score > this (default {d.relevance})',
    )
    g.add_argument(
        '--mask-threshold',
        '--mask',
        dest='mask_threshold',
        type=float,
        default=d.mask,
        help=f'mask probability threshold (default {d.mask})',
    )
    g.add_argument(
        '--no-target-threshold',
        '--no-target',
        dest='no_target_threshold',
        type=float,
        default=d.no_target,
        help=f'no-target probability threshold (default {d.no_target})',
    )
    g.add_argument(
        '--max-instances',
        type=int,
        default=d.max_instances,
        help=f'at most this many instances (default {d.max_instances})',
    )
    g.add_argument('--duplicate-iou-threshold', '--duplicate-iou',
                   dest='duplicate_iou_threshold', type=float, default=d.duplicate_iou,
                   help='drop an instance whose mask overlaps a more relevant one with IoU > '
                        f'this; 1 keeps duplicates (default {d.duplicate_iou})')  # fmt: skip


def thresholds_from_args(args) -> Thresholds:
    """The ``Thresholds`` of parsed arguments (ValueError for a value out of range)."""
    return Thresholds(
        relevance=args.relevance_threshold,
        mask=args.mask_threshold,
        no_target=args.no_target_threshold,
        max_instances=args.max_instances,
        duplicate_iou=args.duplicate_iou_threshold,
    )
