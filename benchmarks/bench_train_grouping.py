#!/usr/bin/env python3
"""CPU training step with image-grouped batches vs one image per sentence (tabletop preset).

    python benchmarks/bench_train_grouping.py                 # batch 8, k = 1, 2, 4, 8
    python benchmarks/bench_train_grouping.py --batch 8 --k 1 4 --steps 10 --threads 2

One step = forward on cached-shape frozen features (random, the tabletop input size), the POA
criterion with random ground truth, backward, AdamW step: what ``poa-gres train`` does per
iteration with ``cache_dir``. With ``sentences_per_image`` = k the batch holds batch/k images and
the pixel decoder runs once per image (``POAModel.forward(image_index=...)``). The settings are
measured interleaved, round by round, so a loaded machine slows them alike; the script prints
the median step time per k and its ratio to k = 1 measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--batch', type=int, default=8, help='sentences per step')
    ap.add_argument('--k', type=int, nargs='+', default=[1, 2, 4, 8], help='sentences per image')
    ap.add_argument('--steps', type=int, default=6, help='timed rounds')
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    from poa_gres_ros.core.model_presets import get_preset
    from poa_gres_ros.modeling.build import build_model
    from poa_gres_ros.training.criterion import CriterionConfig, POACriterion

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = get_preset('tabletop')
    cfg.backbone.pretrained = False  # shapes only: no need to load ImageNet weights
    cfg.text.pretrained = False
    model = build_model(cfg)
    h, w = cfg.input.size_hw
    with torch.no_grad():
        feats1 = model.extract_features(torch.randn(1, 3, h, w))
    b, L = args.batch, cfg.text.max_tokens
    text = torch.randn(b, L, model.text_hidden_size)
    mask = torch.ones(b, L, dtype=torch.int64)
    gt = [(torch.rand(2, h, w) > 0.9).to(torch.uint8) for _ in range(b)]
    no_target = torch.zeros(b, dtype=torch.bool)
    crit = POACriterion(CriterionConfig(num_points=4096))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()

    def step(k: int) -> float:
        n_img = max(1, b // k)
        feats = {key: v.expand(n_img, -1, -1, -1).contiguous() for key, v in feats1.items()}
        index = torch.arange(b) // k if k > 1 else None
        t = time.perf_counter()
        out = model(
            attention_mask=mask,
            features=feats,
            text_features=text,
            image_index=index,
        )
        loss, _ = crit(out, gt, no_target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return (time.perf_counter() - t) * 1e3

    for k in args.k:  # warm-up
        step(k)
    times: dict[int, list[float]] = {k: [] for k in args.k}
    for _ in range(args.steps):
        for k in args.k:
            times[k].append(step(k))
    base = statistics.median(times[args.k[0]])
    print(
        f'batch {b} sentences, {args.threads} thread(s), {args.steps} rounds; '
        'step = fwd+loss+bwd+AdamW'
    )
    for k in args.k:
        med = statistics.median(times[k])
        print(
            f'k={k}: {max(1, b // k)} images/step  median {med:7.0f} ms  '
            f'ratio to k={args.k[0]}: {med / base:.2f}'
        )
    return 0


if __name__ == '__main__':
    sys.exit(main())
