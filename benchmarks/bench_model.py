#!/usr/bin/env python3
"""Per-frame CPU latency of the POA model (torch eager), instruction cached vs uncached.

    python benchmarks/bench_model.py                       # tabletop preset, 2 threads
    python benchmarks/bench_model.py --model models/tabletop --frames 30
    python benchmarks/bench_model.py --set decoder.num_layers=9   # sizing experiments

A frame is a 480x640 uint8 RGB image through ``Predictor.predict`` (resize to the network
input, backbone, pixel decoder, decoder, heads, upsampling to 480x640, grounding).
*cached*: the instruction was set once. *uncached*: every frame clears the text cache and calls
``set_instruction`` first (tokenizer + text encoder). Stages are timed separately too, and the
decoder side is reported relative to the backbone measured in the same run, so a loaded machine
still gives a usable ratio. ``train_step_ms`` is one forward + backward of the trainable part on
cached frozen features (batch 4), i.e. the cost of CPU training per 4 samples.
Targets: cached <= 0.85 x uncached; tabletop cached <= 150 ms per frame.

Every measurement records wall time (min, median, p90) and process CPU time (``cpu_median``,
inflated by OpenMP spin-waiting). On a shared, overloaded machine the wall medians mostly
measure the other processes; the fastest runs and the ratios of stages measured alongside each
other stay closest to what an idle machine gives, so the frame time is also reported scaled to
the brief's reference of 56 ms for EfficientNet-Lite0 at 384x512 (``*_at_56ms_backbone*``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time


def _frame(h: int, w: int):
    import cv2
    import numpy as np

    img = np.full((h, w, 3), 200, np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(8):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        centre = (int(rng.integers(40, w - 40)), int(rng.integers(40, h - 40)))
        cv2.circle(img, centre, int(rng.integers(15, 60)), colour, -1)
    return img


CPU_MS: dict[int, list[float]] = {}  # id(wall list) -> process CPU ms of the same calls


def _timeit(fn, n: int, into: list[float] | None = None) -> list[float]:
    """Run fn n times; append wall ms to ``into`` (returned) and process CPU ms alongside."""
    out = [] if into is None else into
    cpu = CPU_MS.setdefault(id(out), [])
    for _ in range(n):
        c, t = time.process_time(), time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    return out


def _stats(ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(ms, n=10) if len(ms) > 1 else [ms[0]] * 9
    out = {
        'min': round(min(ms), 2),
        'median': round(statistics.median(ms), 2),
        'p90': round(q[8], 2),
    }
    if CPU_MS.get(id(ms)):
        out['cpu_median'] = round(statistics.median(CPU_MS[id(ms)]), 2)
    return out


def _cpu_median(ms: list[float]) -> float:
    return statistics.median(CPU_MS[id(ms)])


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--model', help='model folder or name (default: fresh tabletop preset)')
    ap.add_argument('--preset', default='tabletop')
    ap.add_argument(
        '--set',
        action='append',
        default=[],
        metavar='KEY=VALUE',
        help='config override for a fresh preset, e.g. decoder.num_layers=9',
    )
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--frames', type=int, default=20, help='timed frames per measurement')
    ap.add_argument('--height', type=int, default=480)
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--text', default='pick up the red mug and the small duck on the left')
    ap.add_argument('--no-train-step', action='store_true')
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from poa_gres_ros.inference import Predictor
    from poa_gres_ros.modeling import build_model
    from poa_gres_ros.modeling.preprocess import preprocess_image

    if args.model:
        predictor = Predictor.from_model_dir(args.model)
        model = predictor.backend.model
    else:
        from poa_gres_ros.core.model_presets import get_preset

        overrides = dict(kv.split('=', 1) for kv in args.set)
        cfg = get_preset(args.preset).with_overrides(
            {k: _parse_value(v) for k, v in overrides.items()}
        )
        torch.manual_seed(0)
        model = build_model(cfg)
        predictor = Predictor.from_model(model)
    cfg = model.config
    frame = _frame(args.height, args.width)
    n = args.frames

    predictor.set_instruction(args.text)
    for _ in range(3):
        predictor.predict(frame)  # warm-up (allocator, oneDNN primitives)

    def uncached():
        predictor.clear_cache()
        predictor.set_instruction(args.text)
        predictor.predict(frame)

    cached_ms, uncached_ms = [], []
    for _ in range(n):  # interleaved so load changes hit both alike
        _timeit(lambda: predictor.predict(frame), 1, cached_ms)
        _timeit(uncached, 1, uncached_ms)

    tok = model.tokenizer([args.text], return_tensors='pt')
    x = preprocess_image(frame, cfg)[None]
    stages = {
        'preprocess': [],
        'text_encoder': [],
        'backbone': [],
        'pixel_decoder': [],
        'decoder_heads': [],
    }
    with torch.inference_mode():
        text = model.encode_text(tok['input_ids'], tok['attention_mask'])
        feats = model.extract_features(x)
        mask_features, multi = model.pixel_decoder(feats)

        def decoder_heads():
            layers = model.decoder(multi, mask_features, text, tok['attention_mask'], False)
            last = layers[-1]
            model.no_target_head(
                last['queries'],
                last['relevance_logits'].sigmoid(),
                last['text_features'],
                tok['attention_mask'],
            )

        for _ in range(n):
            _timeit(lambda: preprocess_image(frame, cfg), 1, stages['preprocess'])
            _timeit(
                lambda: model.encode_text(tok['input_ids'], tok['attention_mask']),
                1,
                stages['text_encoder'],
            )
            _timeit(lambda: model.extract_features(x), 1, stages['backbone'])
            _timeit(lambda: model.pixel_decoder(feats), 1, stages['pixel_decoder'])
            _timeit(decoder_heads, 1, stages['decoder_heads'])

    report = {
        'model': args.model or f'fresh {args.preset} preset {args.set or ""}'.strip(),
        'threads': args.threads,
        'frame_hw': [args.height, args.width],
        'input_hw': list(cfg.input.size_hw),
        'frames': n,
        'cached_ms': _stats(cached_ms),
        'uncached_ms': _stats(uncached_ms),
        'cached_over_uncached': round(
            statistics.median(cached_ms) / statistics.median(uncached_ms), 3
        ),
        'stages_ms': {k: _stats(v) for k, v in stages.items()},
    }
    med = {k: statistics.median(v) for k, v in stages.items()}
    cpu = {k: _cpu_median(v) for k, v in stages.items()}
    report['cached_over_uncached_cpu'] = round(_cpu_median(cached_ms) / _cpu_median(uncached_ms), 3)
    report['decoder_side_over_backbone'] = round(
        (med['pixel_decoder'] + med['decoder_heads']) / med['backbone'], 3
    )
    report['decoder_side_over_backbone_cpu'] = round(
        (cpu['pixel_decoder'] + cpu['decoder_heads']) / cpu['backbone'], 3
    )
    # the brief's reference: EfficientNet-Lite0 alone takes about 56 ms at 384x512 on an idle
    # 2-core machine; scale this run's frame cost by the backbone measured alongside it
    report['cached_ms_at_56ms_backbone'] = round(
        statistics.median(cached_ms) * 56.0 / med['backbone'], 1
    )
    report['cached_ms_at_56ms_backbone_min'] = round(
        min(cached_ms) * 56.0 / min(stages['backbone']), 1
    )
    report['cached_ms_at_56ms_backbone_cpu'] = round(
        _cpu_median(cached_ms) * 56.0 / cpu['backbone'], 1
    )
    report['peak_rss_mb_inference'] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    if not args.no_train_step:
        report['train_step_ms_batch4'] = _stats(_train_step(model, x, tok, n=max(3, n // 4)))
    report['load_average_1min'] = round(os.getloadavg()[0], 2)
    report['gflops_per_frame'] = _flops(model, x, tok)
    report['params'] = {
        'total': model.num_parameters(),
        'trainable': model.num_parameters(trainable_only=True),
        'stored': sum(v.numel() for v in model.stored_state_dict().values()),
    }
    report['peak_rss_mb_with_train_step'] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    print(json.dumps(report, indent=2))
    ok_ratio = report['cached_over_uncached_cpu'] <= 0.85
    ok_time = report['cached_ms_at_56ms_backbone_min'] <= 150
    print(
        f'cached/uncached = {report["cached_over_uncached"]} wall, '
        f'{report["cached_over_uncached_cpu"]} CPU time (target <= 0.85: '
        f'{"met" if ok_ratio else "NOT met"}); cached frame {report["cached_ms"]["median"]} ms '
        f'wall here (load {report["load_average_1min"]}); scaled to a 56 ms backbone: '
        f'{report["cached_ms_at_56ms_backbone_min"]} ms (fastest runs), '
        f'{report["cached_ms_at_56ms_backbone"]} ms (medians), '
        f'{report["cached_ms_at_56ms_backbone_cpu"]} ms (CPU time) (target <= 150: '
        f'{"met" if ok_time else "NOT met"})',
        file=sys.stderr,
    )
    return 0


def _flops(model, x, tok) -> dict[str, float]:
    """GFLOPs per stage (torch.utils.flop_counter: matmuls and convs; grid_sample and
    element-wise ops are not counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    ids, mask = tok['input_ids'], tok['attention_mask']
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:  # the counter's module tracker needs autograd-visible tensors
        p.requires_grad_(True)
    try:
        with torch.no_grad():
            text = model.encode_text(ids, mask)
            feats = model.extract_features(x)
            mask_features, multi = model.pixel_decoder(feats)
        stages = {
            'text_encoder': lambda: model.text_encoder(ids, mask),
            'backbone': lambda: model.backbone(x),
            'pixel_decoder': lambda: model.pixel_decoder(feats),
            'decoder_heads': lambda: model.decoder(multi, mask_features, text, mask, False),
        }
        out = {}
        for name, fn in stages.items():
            with FlopCounterMode(display=False) as counter:
                fn()
            out[name] = round(counter.get_total_flops() / 1e9, 3)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
    return out


def _train_step(model, x, tok, n: int) -> list[float]:
    """Forward + backward on cached frozen features, batch 4 (CPU training cost)."""
    import torch

    with torch.no_grad():
        feats = {k: v.repeat(4, 1, 1, 1) for k, v in model.extract_features(x).items()}
        text = model.encode_text(tok['input_ids'], tok['attention_mask']).repeat(4, 1, 1)
    mask = tok['attention_mask'].repeat(4, 1)
    model.train()

    def step():
        out = model(attention_mask=mask, features=feats, text_features=text)
        loss = out.no_target_logits.sum() + sum(
            layer.merged_mask_logits.mean()
            + layer.mask_logits.mean()
            + layer.relevance_logits.sum()
            + layer.phrase_embedding.mean()
            for layer in out.all_layers
        )
        loss.backward()
        model.zero_grad(set_to_none=True)

    step()
    times = _timeit(step, n, [])
    model.eval()
    return times


if __name__ == '__main__':
    sys.exit(main())
