"""Budget-matched A/B of grounding designs: the proxy that decides what goes to a release run.

Each arm trains the tabletop decoder from scratch on the same cached frozen features, with the
same iterations, batch and seed, one CPU thread each, all arms side by side; then every arm is
evaluated on the val and test splits (network input size, ReLA's protocol) with the product's
post-processing. Printed per arm and split: cIoU, gIoU, N-acc, T-acc, instance recall and
precision (IoU >= 0.5, one to one), the instance-count accuracy, and two "relevance follows
the instruction" figures (docs/method.md#relevance):

* top-query change: over pairs of targeted sentences on the same image that refer to
  different objects, how often the highest-relevance query differs (1.0 = always);
* relevance AUC: how well a query's relevance separates queries whose mask covers a referred
  object (IoU >= 0.5) from the others.

Usage (the proxy data: 600 train images, 6173 sentences; about 40 minutes for 1400
iterations with two arms on 2 cores)::

    poa-gres make-dataset --out data/proxy --scenes 300 --eval-scenes 30 --views-per-scene 2 \\
        --seed 0 --workers 2
    python benchmarks/grounding_proxy.py --data data/proxy --iters 1400 \\
        --arm before=@before --arm current= --out runs/proxy

An arm is ``NAME=SETTINGS``: ``;``-separated ``key=value`` training-config overrides (YAML
values, dotted keys as ``poa-gres train --set``), or ``@before`` for the design before the
grounding changes (post-norm text update, linear relevance, referred-only matching), or empty
for the current defaults. Results go to ``OUT/results.json`` and ``OUT/<arm>/``.

Before evaluating, each arm's relevance and no-target thresholds are calibrated on
``--calibrate-on`` (val by default) as at the end of a release run, so the test numbers are
those the product would give; the calibration split's own numbers are optimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def before_settings() -> str:
    """The design before the grounding changes: the architecture of format-1 model folders
    (core/model_config.py LEGACY_FORMATS), POA gradient into the text, referred-only matching."""
    from poa_gres_ros.core.model_config import LEGACY_FORMATS

    legacy = LEGACY_FORMATS['poa_gres_ros.model_config/1']
    overrides = {f'{sec}.{k}': v for sec, vals in legacy.items() for k, v in vals.items()}
    overrides['heads.poa_stop_grad_text'] = False
    overrides = {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}
    return f'model.overrides={json.dumps(overrides)};criterion.instance_targets=referred'


def base_config(data: str, iters: int, cache_dir: str, out: str, batch: int, lr: float) -> dict:
    return {
        'model': {'preset': 'tabletop'},
        'data': {
            'root': data,
            'format': 'grefcoco',
            'train_splits': ['train'],
            'val_splits': [],
            'num_workers': 0,
        },
        'batch_size': batch,
        'sentences_per_image': 4,
        'cache_dir': cache_dir,
        'output_dir': out,
        'optim': {'lr': lr, 'weight_decay': 0.05, 'clip_grad_norm': 1.0},
        'schedule': {'max_iters': iters, 'warmup_iters': min(200, iters // 10), 'decay': 'poly'},
        'criterion': {'num_points': 2048, 'instance_targets': 'all_objects'},
        'seed': 0,
        'log_every': 20,
        'checkpoint_every': 0,
        'eval_every': 0,
        'num_threads': 1,
        'progress': False,
    }


def parse_arm(text: str) -> tuple[str, list[str]]:
    name, _, settings = text.partition('=')
    if not name:
        raise SystemExit(f'--arm {text!r}: expected NAME=SETTINGS')
    if settings == '@before':
        settings = before_settings()
    return name, [s for s in settings.split(';') if s.strip()]


def build_caches(cfg_path: str) -> None:
    """Build the train cache (and warm the eval caches) once, before the arms start."""
    from poa_gres_ros.training.config import TrainConfig
    from poa_gres_ros.training.data_setup import build_datasets, build_model_for_training

    cfg = TrainConfig.from_file(cfg_path)
    model = build_model_for_training(cfg)
    build_datasets(cfg, model, 'cpu', True, lambda: None)


def eval_sets(data: str, cache_dir: str, splits: list[str], max_samples: int | None):
    from poa_gres_ros.core.model_presets import get_preset
    from poa_gres_ros.modeling.build import build_model
    from poa_gres_ros.training.datasets.feature_cache import (
        CachedFeatureDataset,
        build_feature_cache,
    )
    from poa_gres_ros.training.datasets.grefcoco import load_grefcoco
    from poa_gres_ros.training.datasets.gres_dataset import model_preprocess

    model = build_model(get_preset('tabletop'))
    sets = {}
    for split in splits:
        records, masks = load_grefcoco(data, [split], skip_targeted_without_masks=False)
        records = records[:max_samples] if max_samples else records
        cache = build_feature_cache(
            model,
            records,
            os.path.join(data, 'images'),
            os.path.join(cache_dir, f'eval-{split}'),
            model_preprocess(model.config),
            progress=False,
        )
        sets[split] = CachedFeatureDataset(
            records, masks, cache, tuple(model.config.input.size_hw), with_objects=True
        )
    return sets


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return None
    order = np.argsort(np.concatenate([pos, neg]), kind='stable')
    ranks = np.empty(len(order))
    ranks[order] = np.arange(1, len(order) + 1)
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def grounding_figures(model, dataset) -> dict:
    """Relevance-follows-instruction figures (module docstring) on one split."""
    import torch
    import torch.nn.functional as F

    from poa_gres_ros.training.datasets.gres_dataset import collate_gres
    from poa_gres_ros.training.evaluate import model_inputs

    model.eval()
    top_by_image: dict[int, list[tuple[tuple[int, ...], int]]] = {}
    scores, labels = [], []
    loader = torch.utils.data.DataLoader(dataset, batch_size=8, collate_fn=collate_gres)
    with torch.no_grad():
        for batch in loader:
            out = model(**model_inputs(batch), aux_outputs=False)
            rel = out.relevance.numpy()
            for j, idx in enumerate(batch['index'].tolist()):
                rec = dataset.records[idx]
                objs = batch['object_masks'][j].float()
                referred = batch['object_referred'][j].numpy()
                logits = out.mask_logits[j : j + 1]
                up = F.interpolate(logits, size=objs.shape[-2:], mode='bilinear')[0] > 0
                inter = torch.einsum('nhw,khw->nk', up.float(), objs)
                union = up.float().sum((1, 2))[:, None] + objs.sum((1, 2))[None] - inter
                iou = (inter / union.clamp_min(1)).numpy()
                covers = (iou >= 0.5) & referred[None, :]
                scores.append(rel[j])
                labels.append(covers.any(1))
                if not rec.no_target:
                    top_by_image.setdefault(rec.image_id, []).append(
                        (tuple(sorted(rec.ann_ids)), int(rel[j].argmax()))
                    )
    changed = total = 0
    for items in top_by_image.values():
        for a in range(len(items)):
            for b in range(a + 1, len(items)):
                if items[a][0] != items[b][0]:
                    total += 1
                    changed += items[a][1] != items[b][1]
    return {
        'top_query_change': changed / total if total else None,
        'relevance_auc': _auc(np.concatenate(scores), np.concatenate(labels)),
    }


def templates_of(data: str) -> dict[int, str]:
    """sent_id -> template name of a tabletop dataset (empty for other datasets)."""
    path = os.path.join(data, 'grefs(unc).json')
    with open(path, encoding='utf-8') as fh:
        refs = json.load(fh)
    return {s['sent_id']: r.get('template', '?') for r in refs for s in r['sentences']}


def per_template(res, dataset, templates: dict[int, str]) -> dict[str, float]:
    """Mean IoU (gIoU's per-sample score) per expression template."""
    acc: dict[str, list[float]] = {}
    for s in res.samples:
        t = templates.get(dataset.records[s['index']].sent_id, '?')
        acc.setdefault(t, []).append(s['iou'])
    return {t: round(100 * float(np.mean(v)), 1) for t, v in sorted(acc.items())}


def evaluate_arm(
    model_dir: str, sets: dict, templates: dict[int, str] | None = None, calibrate_on=None
) -> dict:
    """Evaluate one arm's model on every split; with ``calibrate_on`` (a split name) the
    relevance and no-target thresholds are first calibrated on that split and folded into the
    model, as a release run does (docs/method.md#calibration; that split's own numbers are then
    optimistic)."""
    import torch

    from poa_gres_ros.modeling.io import load_model
    from poa_gres_ros.training.calibrate import apply_calibration, calibrate
    from poa_gres_ros.training.evaluate import evaluate_dataset

    torch.set_num_threads(1)
    model = load_model(model_dir)
    out = {}
    if calibrate_on:
        cal = calibrate(model, sets[calibrate_on])
        apply_calibration(model, cal)
        out['calibration'] = {
            'split': calibrate_on,
            'relevance_threshold': cal.relevance_threshold,
            'no_target_threshold': cal.no_target.threshold,
        }
    for split, ds in sets.items():
        res = evaluate_dataset(model, ds, batch_size=8, eval_size='input')
        row = {k: res.summary['all'].get(k) for k in ('cIoU', 'gIoU', 'N-acc', 'T-acc')}
        row.update({k: v for k, v in res.summary['all'].items() if k.startswith('instance')})
        row.update(grounding_figures(model, ds))
        if templates:
            row['gIoU_per_template'] = per_template(res, ds, templates)
        out[split] = row
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--data', required=True, help='tabletop dataset folder (make-dataset)')
    ap.add_argument('--arm', action='append', required=True, help='NAME=SETTINGS (see above)')
    ap.add_argument('--iters', type=int, default=1400)
    ap.add_argument('--batch-size', type=int, default=8)
    ap.add_argument('--lr', type=float, default=3e-4)
    ap.add_argument('--splits', nargs='+', default=['val', 'test'])
    ap.add_argument('--max-eval-samples', type=int, default=None)
    ap.add_argument('--out', default='runs/proxy')
    ap.add_argument('--eval-only', action='store_true', help='evaluate existing arm models')
    ap.add_argument(
        '--calibrate-on',
        default='val',
        help="split to calibrate each arm's thresholds on before evaluating ('' = none)",
    )
    args = ap.parse_args(argv)

    import yaml

    os.makedirs(args.out, exist_ok=True)
    cache_dir = os.path.join(args.out, 'cache')
    arms = [parse_arm(a) for a in args.arm]
    cfg_path = os.path.join(args.out, 'base.yaml')
    base = base_config(args.data, args.iters, cache_dir, args.out, args.batch_size, args.lr)
    with open(cfg_path, 'w') as fh:
        yaml.safe_dump(base, fh)
    t0 = time.time()
    if not args.eval_only:
        build_caches(cfg_path)
        procs = []
        for name, sets in arms:
            cmd = [sys.executable, '-m', 'poa_gres_ros.tools.cli', 'train', '--config', cfg_path]
            cmd += ['--set', f'output_dir={os.path.join(args.out, name)}']
            for s in sets:
                cmd += ['--set', s]
            log = open(os.path.join(args.out, f'{name}.log'), 'w')
            procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
        for name, p in procs:
            if p.wait() != 0:
                print(f'arm {name} failed; see {args.out}/{name}.log', file=sys.stderr)
                return 1
    train_s = time.time() - t0
    sets = eval_sets(args.data, cache_dir, args.splits, args.max_eval_samples)
    results = {'iters': args.iters, 'train_wall_s': train_s, 'arms': {}}
    templates = templates_of(args.data)
    for name, settings in arms:
        model_dir = os.path.join(args.out, name, 'model')
        res = evaluate_arm(model_dir, sets, templates, args.calibrate_on or None)
        results['arms'][name] = {'settings': settings, **res}
    with open(os.path.join(args.out, 'results.json'), 'w') as fh:
        json.dump(results, fh, indent=2)
    keys = ['cIoU', 'gIoU', 'N-acc', 'T-acc', 'top_query_change', 'relevance_auc']
    print(f'{args.iters} iterations per arm, training wall time {train_s / 60:.1f} min')
    print('| arm | split | ' + ' | '.join(keys) + ' |')
    for name, r in results['arms'].items():
        for split in args.splits:
            vals = [r[split].get(k) for k in keys]
            cells = ['-' if v is None else f'{v:.2f}' if abs(v) > 1.5 else f'{v:.3f}' for v in vals]
            print(f'| {name} | {split} | ' + ' | '.join(cells) + ' |')
    for name, r in results['arms'].items():
        if 'calibration' in r:
            print(f'{name} calibration: {r["calibration"]}')
        for split in args.splits:
            print(f'{name} {split} gIoU per template: {r[split].get("gIoU_per_template")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
