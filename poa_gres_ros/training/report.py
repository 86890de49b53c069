"""Evaluation reports: ``report.json``, ``report.md`` and matplotlib figures.

Figures per split: the IoU histogram of targeted samples, cIoU / gIoU per expression type,
and a grid of overlays (predicted instances in colour, GT outline red, sentence and IoU in the
title), drawn by ``core.visualize.draw_ground_truth_overlay``.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from poa_gres_ros.core.instance_metrics import markdown_table
from poa_gres_ros.core.metrics import METRIC_KEYS, REPORT_TYPES
from poa_gres_ros.core.visualize import draw_ground_truth_overlay
from poa_gres_ros.training.datasets.records import read_rgb


def _fmt(v) -> str:
    return '–' if v is None else f'{v:.2f}'


def _plots(out_dir: str, split: str, result, dataset) -> dict[str, str]:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    files = {}
    ious = [s['iou'] for s in result.samples if s['expr_type'] != 'no_target']
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.hist(ious, bins=20, range=(0, 1), color='#3572b0')
    ax.set_xlabel('IoU (targeted samples)')
    ax.set_ylabel('samples')
    ax.set_title(f'{split}: IoU histogram (n={len(ious)})')
    fig.tight_layout()
    files['iou_hist'] = f'iou_hist_{split}.png'
    fig.savefig(os.path.join(out_dir, files['iou_hist']), dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    x = np.arange(len(REPORT_TYPES))
    for k, key in enumerate(('cIoU', 'gIoU')):
        vals = [result.summary[t][key] or 0.0 for t in REPORT_TYPES]
        ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label=key)
    ax.set_xticks(x, [f'{t}\n(n={result.summary[t]["count"]})' for t in REPORT_TYPES])
    ax.set_ylim(0, 100)
    ax.legend()
    ax.set_title(f'{split}: metrics per expression type')
    fig.tight_layout()
    files['per_type'] = f'per_type_{split}.png'
    fig.savefig(os.path.join(out_dir, files['per_type']), dpi=110)
    plt.close(fig)

    if result.examples and hasattr(dataset, 'image_path'):
        n = len(result.examples)
        cols = min(4, n)
        rows = int(np.ceil(n / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False)
        by_index = {s['index']: s for s in result.samples}
        for ax, (idx, pred, gt) in zip(axes.flat, result.examples):
            s = by_index[idx]
            ax.imshow(draw_ground_truth_overlay(read_rgb(dataset.image_path(idx)), pred, gt))
            ax.set_title(f'{s["sentence"][:38]}\nIoU {s["iou"]:.2f} {s["outcome"]}', fontsize=8)
        for ax in axes.flat:
            ax.axis('off')
        fig.tight_layout()
        files['overlays'] = f'overlays_{split}.png'
        fig.savefig(os.path.join(out_dir, files['overlays']), dpi=100)
        plt.close(fig)
    return files


def write_report(out_dir: str, results: dict, datasets: dict, meta: dict) -> dict[str, str]:
    """Write ``report.json``, ``report.md``, ``samples_<split>.jsonl`` and figures.

    Args:
        out_dir: output folder (created).
        results: split name -> ``EvalResult``.
        datasets: split name -> the evaluated dataset (for overlay images).
        meta: model, data, thresholds and other run facts, stored as they are.
    Returns:
        ``{'json': path, 'markdown': path}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    report = {
        'meta': {
            **meta,
            'date': time.strftime('%Y-%m-%d %H:%M:%S'),
            'evaluator': 'ReLA ReferEvaluator after its fix in commit 884ef17; '
            'Ref-ZOM as RIS-DMMI test.py',
        },
        'splits': {},
    }
    md = [
        '# GRES evaluation report',
        '',
        f'Model: `{meta.get("model")}`  ',
        f'Data: `{meta.get("data")}`  ',
        f'Evaluation size: {meta.get("eval_size")}; thresholds: {meta.get("thresholds")}  ',
        'Counting: ReLA `ReferEvaluator` after its fix in commit 884ef17 (no-target samples: IoU 1 '
        'when predicted no-target, else 0; targeted samples predicted as no-target keep the '
        'predicted mask in U).',
        '',
    ]
    for split, res in results.items():
        files = _plots(out_dir, split, res, datasets.get(split))
        report['splits'][split] = {
            'summary': res.summary,
            'refzom': res.refzom,
            'eval_size': res.eval_size,
            'figures': files,
        }
        with open(os.path.join(out_dir, f'samples_{split}.jsonl'), 'w', encoding='utf-8') as fh:
            for s in res.samples:
                fh.write(json.dumps(s) + '\n')
        md += [
            f'## {split}',
            '',
            '| type | n | ' + ' | '.join(METRIC_KEYS) + ' |',
            '|---|---|' + '---|' * len(METRIC_KEYS),
        ]
        for t in REPORT_TYPES:
            row = res.summary[t]
            md.append(
                f'| {t} | {row["count"]} | ' + ' | '.join(_fmt(row[k]) for k in METRIC_KEYS) + ' |'
            )
        if 'inst-recall' in res.summary['all']:
            md += ['', 'Instances (docs/metrics.md#instance-level-metrics):', '']
            md += markdown_table(res.summary, REPORT_TYPES)
        if res.refzom:
            md += [
                '',
                'Ref-ZOM: '
                + ', '.join(f'{k} {_fmt(res.refzom[k])}' for k in ('oIoU', 'mIoU', 'Acc')),
            ]
        md.append('')
        for key in ('iou_hist', 'per_type', 'overlays'):
            if key in files:
                md.append(f'![{key}]({files[key]})')
        md.append('')
    jpath = os.path.join(out_dir, 'report.json')
    with open(jpath, 'w', encoding='utf-8') as fh:
        json.dump(report, fh, indent=2)
    mpath = os.path.join(out_dir, 'report.md')
    with open(mpath, 'w', encoding='utf-8') as fh:
        fh.write('\n'.join(md))
    return {'json': jpath, 'markdown': mpath}
