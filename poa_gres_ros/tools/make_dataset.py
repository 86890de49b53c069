"""Render a tabletop GRES dataset (gRefCOCO format) with PyBullet on the CPU.

Examples:
  poa-gres make-dataset --out data/tabletop --scenes 3000 --seed 0 --workers 2
      3000 train scenes and 300 each of val / test / test_comp (disjoint seed ranges)
  poa-gres make-dataset --out data/tabletop_test --scenes 0 --eval-scenes 300 --split test
  poa-gres make-dataset --out data/eval_small --preset small-eval
      the small evaluation set the tests use (test + test_comp, deterministic)

The output folder gets instances.json (COCO, RLE masks), grefs(unc).json, images/*.png and
summary.json (counts per split and expression type, timings). The same arguments give
byte-identical json files and identical images, whatever --workers is.
"""

from __future__ import annotations

import os

VERB = 'make-dataset'
HELP = 'render tabletop scenes with referring expressions into a gRefCOCO-format dataset'

_OWN_FILES = ('instances.json', 'grefs(unc).json', 'summary.json')


def add_arguments(parser):
    from poa_gres_ros.tabletop.dataset import SPLITS

    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--scenes', type=int, default=100, help='train scenes (default 100)')
    parser.add_argument(
        '--eval-scenes',
        type=int,
        default=None,
        help='scenes for each of val / test / test_comp (default max(1, scenes // 10))',
    )
    parser.add_argument('--seed', type=int, default=0, help='base seed >= 0 (default 0)')
    parser.add_argument(
        '--split',
        nargs='+',
        choices=SPLITS,
        default=list(SPLITS),
        help='splits to generate (default: all four)',
    )
    parser.add_argument(
        '--views-per-scene',
        type=int,
        default=1,
        help='camera views (images) rendered per scene (default 1)',
    )
    parser.add_argument(
        '--workers',
        type=int,
        default=1,
        help='rendering processes (default 1; the machine has few cores)',
    )
    parser.add_argument(
        '--preset',
        choices=['small-eval'],
        default=None,
        help='small-eval: the small evaluation set of the tests '
        '(ignores --scenes/--eval-scenes/--seed/--split/--views-per-scene)',
    )
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='allow an output folder that already holds a dataset',
    )
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def _check_out(out: str, overwrite: bool) -> None:
    if not os.path.isdir(out):
        return
    own = [f for f in _OWN_FILES if os.path.exists(os.path.join(out, f))]
    other = [f for f in os.listdir(out) if f not in _OWN_FILES and f != 'images']
    if other:
        raise ValueError(
            f'{out} holds other files ({", ".join(sorted(other)[:5])}); '
            'choose an empty or new folder'
        )
    if own and not overwrite:
        raise ValueError(f'{out} already holds a dataset; pass --overwrite to replace it')
    images = os.path.join(out, 'images')
    if os.path.isdir(images):
        for f in os.listdir(images):
            if not (f.startswith('tabletop_') and f.endswith('.png')):
                raise ValueError(f'{images} holds foreign files ({f}); choose another folder')
            if overwrite:
                os.remove(os.path.join(images, f))


def run(args) -> int:
    from poa_gres_ros.tabletop.dataset import (
        SMALL_EVAL_SET,
        SUMMARY_FILE,
        format_summary,
        make_dataset,
    )

    _check_out(args.out, args.overwrite)
    if args.preset == 'small-eval':
        scenes, seed, views = (
            dict(SMALL_EVAL_SET['scenes']),
            SMALL_EVAL_SET['seed'],
            SMALL_EVAL_SET['views_per_scene'],
        )
    else:
        if args.scenes < 0 or (args.eval_scenes is not None and args.eval_scenes < 0):
            raise ValueError('--scenes and --eval-scenes must be >= 0')
        n_eval = max(1, args.scenes // 10) if args.eval_scenes is None else args.eval_scenes
        scenes = {s: (args.scenes if s == 'train' else n_eval) for s in args.split}
        seed, views = args.seed, args.views_per_scene
    summary = make_dataset(
        args.out,
        scenes,
        seed=seed,
        views_per_scene=views,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(format_summary(summary))
    print(f'wrote {args.out} (summary: {os.path.join(args.out, SUMMARY_FILE)})')
    return 0
