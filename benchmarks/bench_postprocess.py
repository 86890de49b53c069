#!/usr/bin/env python3
"""Post-processing on a CPU: the OpenCV resize kernel vs the torch one (core/postprocess.py).

    python benchmarks/bench_postprocess.py                      # 480x640, 1 / 3 / 10 kept
    python benchmarks/bench_postprocess.py --size 720 1280 --kept 1 5 --threads 2

One call = ``postprocess`` of one image's outputs as a backend returns them (numpy; tabletop
shapes: 24 queries, 96 x 128 stride-4 maps, 16 tokens) to the source size: query selection,
resize of the kept maps and the merged mask, thresholds, phrase spans. Only the resize kernel
differs between the two settings ('cv2' = ``cv2.resize(INTER_LINEAR)``, 'torch' =
``F.interpolate(bilinear)``). They are measured interleaved, round by round, so a loaded
machine slows both alike; the script prints the median time per call and the ratio
torch / cv2 measured in the same run. The predictor uses 'cv2' for CPU outputs ('auto').
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def _outputs(kept: int, n: int = 24, hw=(96, 128), tokens: int = 16):
    import numpy as np

    rng = np.random.default_rng(kept)
    h, w = hw
    yy, xx = np.mgrid[:h, :w]
    logits = np.full((1, n, h, w), -6.0, np.float32)
    for q in range(n):  # one blob per query, so masks are object-like, not noise
        cy, cx, r = rng.uniform(10, h - 10), rng.uniform(10, w - 10), rng.uniform(5, 15)
        logits[0, q] = 6.0 * (1 - np.hypot(yy - cy, xx - cx) / r)
    rel = np.full((1, n), 0.1, np.float32)
    rel[0, :kept] = np.linspace(0.95, 0.6, kept)
    att = rng.uniform(0, 1, (1, n, tokens)).astype(np.float32)
    merged = 1 / (1 + np.exp(-np.clip(logits[:, :kept].max(1), -30, 30)))
    return {
        'mask_logits': logits,
        'relevance': rel,
        'token_attention': att / att.sum(-1, keepdims=True),
        'merged_mask': merged.astype(np.float32),
        'no_target_prob': np.array([0.1], np.float32),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--size', type=int, nargs=2, default=[480, 640], metavar=('H', 'W'))
    ap.add_argument('--kept', type=int, nargs='+', default=[1, 3, 10], help='kept instances')
    ap.add_argument('--rounds', type=int, default=30, help='timed rounds per setting')
    ap.add_argument('--threads', type=int, default=1, help='torch and OpenCV threads')
    args = ap.parse_args(argv)

    import cv2
    import torch

    from poa_gres_ros.core.postprocess import InstructionTokens, postprocess
    from poa_gres_ros.core.thresholds import Thresholds

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    size = tuple(args.size)
    text = 'the red mug and the small yellow duck left of the tray'
    words = text.split()
    offsets, pos = [(0, 0)], 0
    for word in words:
        start = text.index(word, pos)
        offsets.append((start, start + len(word)))
        pos = start + len(word)
    offsets += [(0, 0)] * (16 - len(offsets))
    tok = [InstructionTokens(text, offsets[:16], None)]
    thr = Thresholds()
    print(f'post-processing to {size[0]}x{size[1]}, {args.threads} thread(s), median of '
          f'{args.rounds} rounds (ms per image)')  # fmt: skip
    print(f'{"kept":>5} {"cv2":>8} {"torch":>8} {"torch/cv2":>10}')
    for kept in args.kept:
        out = _outputs(kept)
        (check,) = postprocess(out, size, thr, tok, resize='cv2')
        if len(check.instances) != kept:
            print(f'setup error: {len(check.instances)} instances kept, expected {kept}')
            return 1
        times = {'cv2': [], 'torch': []}
        for _ in range(args.rounds + 2):
            for kernel in times:
                t = time.perf_counter()
                postprocess(out, size, thr, tok, resize=kernel)
                times[kernel].append((time.perf_counter() - t) * 1e3)
        med = {k: statistics.median(v[2:]) for k, v in times.items()}
        print(
            f'{kept:>5} {med["cv2"]:>8.2f} {med["torch"]:>8.2f} {med["torch"] / med["cv2"]:>10.2f}'
        )
    return 0


if __name__ == '__main__':
    sys.exit(main())
