#!/usr/bin/env python3
"""Per-frame latency of each inference backend, instruction cached and uncached.

    python benchmarks/bench_backends.py                          # tabletop preset, 2 threads
    python benchmarks/bench_backends.py --model models/tabletop --rounds 8 --compile
    python benchmarks/bench_backends.py --device cuda:0          # adds TensorRT where usable

A frame is a 480x640 uint8 RGB image through ``Predictor.predict`` (resize to the network input,
backbone, pixel decoder, decoder, heads, upsampling to 480x640, grounding). *cached*: the
instruction was set once. *uncached*: every frame sets a new instruction first (tokenizer + text
encoder). Backends run interleaved in rounds (each round runs every backend on the same frames)
so that load changes on a shared machine hit all of them alike; the ratios to torch eager are
of medians measured in this one run. ``cpu`` is process CPU time per frame (less sensitive to
other processes; inflated by worker threads spin-waiting). FLOPs per frame are counted with
``torch.utils.flop_counter.FlopCounterMode`` on the torch model (matmul/conv/SDPA FLOPs;
elementwise ops are not counted). Without ``--model`` the preset is built with its frozen
pretrained parts and a seeded random decoder (latency does not depend on the weights' values).

Targets, 2 CPU cores: ONNX Runtime <= 0.75 x torch eager and <= 100 ms per frame
(tabletop preset, instruction cached).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

TEXTS = [
    'the red mug and the duck on the left',
    'all the blocks',
    'the green cup next to the bowl',
    'pick up the small yellow toy behind the box',
    'the two apples',
    'nothing here is blue',
]


def _frames(n: int, h: int = 480, w: int = 640):
    import cv2
    import numpy as np

    out = []
    for i in range(n):
        rng = np.random.default_rng(i)
        img = np.full((h, w, 3), 200, np.uint8)
        for _ in range(8):
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            centre = (int(rng.integers(40, w - 40)), int(rng.integers(40, h - 40)))
            cv2.circle(img, centre, int(rng.integers(15, 60)), colour, -1)
        out.append(img)
    return out


def _pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def count_flops(model_dir: str) -> tuple[float, float]:
    """(vision GFLOPs per frame, text GFLOPs per instruction of 10 tokens) at the input size."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from poa_gres_ros.modeling.io import load_model

    model = load_model(model_dir)
    h, w = model.config.input.size_hw
    ids = torch.randint(1000, 2000, (1, 10))
    mask = torch.ones(1, 10, dtype=torch.long)
    model.requires_grad_(False)  # FlopCounterMode's module tracker fails under no_grad/inference
    with FlopCounterMode(display=False) as text_fc:
        feats = model.encode_text(ids, mask)
    with FlopCounterMode(display=False) as vis_fc:
        model.vision_outputs(torch.zeros(1, 3, h, w), feats, mask)
    return vis_fc.get_total_flops() / 1e9, text_fc.get_total_flops() / 1e9


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', default=None, help='model folder (default: build --preset)')
    ap.add_argument('--preset', default='tabletop')
    ap.add_argument('--threads', type=int, default=2, help='torch / ORT intra-op threads')
    ap.add_argument('--rounds', type=int, default=6)
    ap.add_argument('--frames', type=int, default=5, help='frames per backend per round')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--compile', action='store_true', help='add torch.compile (slow start)')
    ap.add_argument('--cache-dir', default=None, help='ONNX/engine cache (default: a temp dir)')
    ap.add_argument('--backends', default=None, help='comma list (default: all usable)')
    ap.add_argument('--ort-spin', action='store_true', help='ONNX Runtime threads busy-wait')
    args = ap.parse_args(argv)

    import logging

    import torch

    from poa_gres_ros.inference import Predictor
    from poa_gres_ros.inference.backends import backend_available

    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory(prefix='bench_backends_')
    model_dir = args.model
    if model_dir is None:
        from poa_gres_ros.modeling import build_model, save_model

        torch.manual_seed(0)
        model_dir = str(save_model(build_model(args.preset), os.path.join(tmp.name, args.preset)))
    cache_dir = args.cache_dir or os.path.join(tmp.name, 'cache')
    vis_gflops, text_gflops = count_flops(model_dir)

    wanted = args.backends.split(',') if args.backends else ['torch', 'onnxruntime', 'tensorrt']
    if args.compile and 'torch-compile' not in wanted:
        wanted.insert(1, 'torch-compile')
    predictors, setup_s = {}, {}
    for name in wanted:
        base = 'torch' if name == 'torch-compile' else name
        ok, why = backend_available(base, args.device)
        if not ok:
            print(f'{name}: skipped ({why})')
            continue
        opts = {'compile': True} if name == 'torch-compile' else {}
        if base in ('onnxruntime', 'tensorrt'):
            opts['cache_dir'] = cache_dir
        if base == 'onnxruntime':
            opts['intra_op_threads'] = args.threads
            opts['spin_wait'] = args.ort_spin
        t0 = time.perf_counter()
        predictors[name] = Predictor.from_model_dir(
            model_dir, backend=base, device=args.device, **opts
        )
        setup_s[name] = time.perf_counter() - t0
    frames = _frames(args.frames)
    res = {n: {'cached': [], 'uncached': [], 'vision': [], 'cpu': []} for n in predictors}
    for p in predictors.values():  # warm-up (torch.compile compiles here)
        p.set_instruction(TEXTS[0])
        for f in frames[:2]:
            p.predict(f)
    load_before = os.getloadavg()
    counter = 0
    for _ in range(args.rounds):
        for name, p in predictors.items():
            r = res[name]
            p.set_instruction(TEXTS[0])
            for f in frames:
                c0, t0 = time.process_time(), time.perf_counter()
                pred = p.predict(f)
                r['cached'].append((time.perf_counter() - t0) * 1e3)
                r['cpu'].append((time.process_time() - c0) * 1e3)
                r['vision'].append(pred.timings_ms['vision'])
            for f in frames:
                counter += 1  # a text never seen before: the LRU cannot hit
                text = f'{TEXTS[counter % len(TEXTS)]} number {counter}'
                t0 = time.perf_counter()
                p.set_instruction(text)
                p.predict(f)
                r['uncached'].append((time.perf_counter() - t0) * 1e3)
    load_after = os.getloadavg()

    ref = res.get('torch')
    print(
        f'\nmodel {model_dir} ({predictors[next(iter(predictors))].config.name}), input '
        f'{predictors[next(iter(predictors))].input_size_hw} from 480x640 frames, '
        f'{args.threads} threads, {args.rounds} rounds x {args.frames} frames per backend'
    )
    print(
        f'FLOPs: vision {vis_gflops:.2f} GFLOP per frame, text encoder {text_gflops:.3f} '
        f'GFLOP per instruction (10 tokens)'
    )
    print(
        f'load average before {load_before[0]:.2f}/{load_before[1]:.2f}, after '
        f'{load_after[0]:.2f}/{load_after[1]:.2f} on {os.cpu_count()} CPUs'
    )
    head = (
        f'{"backend":<14} {"cached p50":>10} {"p90":>7} {"min":>7} {"x torch":>8} '
        f'{"uncached p50":>12} {"p90":>7} {"x torch":>8} {"vision p50":>10} {"cpu p50":>8}'
        f' {"setup s":>8}'
    )
    print(head)
    for name, r in res.items():
        c50, u50 = statistics.median(r['cached']), statistics.median(r['uncached'])
        rc = c50 / statistics.median(ref['cached']) if ref else float('nan')
        ru = u50 / statistics.median(ref['uncached']) if ref else float('nan')
        print(
            f'{name:<14} {c50:10.1f} {_pct(r["cached"], 0.9):7.1f} {min(r["cached"]):7.1f} '
            f'{rc:8.2f} {u50:12.1f} {_pct(r["uncached"], 0.9):7.1f} {ru:8.2f} '
            f'{statistics.median(r["vision"]):10.1f} {statistics.median(r["cpu"]):8.1f} '
            f'{setup_s[name]:8.1f}'
        )
    if ref and 'onnxruntime' in res:
        o50 = statistics.median(res['onnxruntime']['cached'])
        ratio = o50 / statistics.median(ref['cached'])
        print(
            f'target onnxruntime <= 0.75 x torch: {ratio:.2f} '
            f'({"met" if ratio <= 0.75 else "MISSED"}); <= 100 ms: {o50:.1f} ms '
            f'({"met" if o50 <= 100 else "MISSED"})'
        )
    for p in predictors.values():
        p.close()
    tmp.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
