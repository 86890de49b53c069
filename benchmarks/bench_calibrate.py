#!/usr/bin/env python3
"""Calibration time: one network pass for all relevance candidates vs one pass per candidate.

    python benchmarks/bench_calibrate.py                       # shipped model, 48 val sentences
    python benchmarks/bench_calibrate.py --model models/tabletop --data data/tabletop \
        --samples 96 --threads 2

``calibrate`` (training/calibrate.py) evaluates the split once and post-processes the outputs
for each of the 13 relevance candidates (``evaluate_thresholds``); before, it ran
``calibrate_no_target`` (a full evaluation) once per candidate, which the script runs as the
reference. It checks that both choose the same thresholds and prints both wall times and
their ratio, measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', default='models/tabletop')
    ap.add_argument('--data', default='data/tabletop', help='dataset folder with a val split')
    ap.add_argument('--split', default='val')
    ap.add_argument('--samples', type=int, default=48, help='first N sentences of the split')
    ap.add_argument('--threads', type=int, default=2)
    args = ap.parse_args(argv)

    import torch

    from poa_gres_ros.core.thresholds import Thresholds
    from poa_gres_ros.tools.eval import _load_model, split_dataset
    from poa_gres_ros.training.calibrate import (
        RELEVANCE_CANDIDATES,
        calibrate,
        calibrate_no_target,
    )
    from poa_gres_ros.training.config import DataConfig

    torch.set_num_threads(args.threads)
    model, _ = _load_model(args.model, 'cpu')
    ds = split_dataset(model, DataConfig(root=args.data), args.split,
                       os.path.join(args.data, 'images'), args.samples)  # fmt: skip
    t = time.perf_counter()
    one_pass = calibrate(model, ds)
    t_one = time.perf_counter() - t
    t = time.perf_counter()
    per = {r: calibrate_no_target(model, ds, replace(Thresholds(), relevance=r))
           for r in RELEVANCE_CANDIDATES}  # fmt: skip
    t_per = time.perf_counter() - t
    same = all(one_pass.giou_per_relevance[r] == c.giou for r, c in per.items())
    print(f'{len(ds)} sentences of {args.data}:{args.split}, {len(RELEVANCE_CANDIDATES)} '
          f'relevance candidates, {args.threads} thread(s)')  # fmt: skip
    print(f'one pass for all candidates: {t_one:7.1f} s')
    print(f'one pass per candidate:      {t_per:7.1f} s   ratio {t_per / t_one:.1f}x')
    print(f'same gIoU per candidate: {same}; chosen relevance {one_pass.relevance_threshold}, '
          f'no-target {one_pass.no_target.threshold}')  # fmt: skip
    return 0 if same else 1


if __name__ == '__main__':
    sys.exit(main())
