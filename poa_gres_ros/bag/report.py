"""Replay reports: ``report.json``, ``report.md``, ``frames.jsonl`` and matplotlib figures.

Figures: the per-frame latency histogram (offline: predictor wall time; live: end to end),
cIoU / gIoU per instruction, and one overlay thumbnail per instruction (the middle frame that
got a result, drawn by ``bag.replay.thumbnail`` with ``core.visualize.draw_ground_truth_overlay``:
the node's ``draw_overlay`` of the prediction with the ground-truth outline in red). Metric
tables use the evaluation report's keys and rows (``core.metrics.METRIC_KEYS``,
``REPORT_TYPES``).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np

from poa_gres_ros.bag.replay import ReplayResult
from poa_gres_ros.core.instance_metrics import markdown_table, summary_line
from poa_gres_ros.core.metrics import METRIC_KEYS, REPORT_TYPES


def _fmt(v, digits: int = 2) -> str:
    return '–' if v is None else f'{v:.{digits}f}'


def _figures(out_dir: str, result: ReplayResult, rows: list[dict]) -> dict[str, str]:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    files = {}
    key = 'e2e_ms' if result.mode == 'live' else 'latency_ms'
    lat = [r[key] for r in result.records if r.get(key) is not None]
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.hist(lat, bins=30, color='#3572b0')
    what = 'end-to-end latency (publish -> result)' if key == 'e2e_ms' else 'predictor latency'
    ax.set_xlabel(f'{what}, ms')
    ax.set_ylabel('frames')
    ax.set_title(f'{result.mode}: {what} (n={len(lat)})', fontsize=9)
    fig.tight_layout()
    files['latency'] = 'latency_hist.png'
    fig.savefig(os.path.join(out_dir, files['latency']), dpi=110)
    plt.close(fig)

    if rows:
        fig, ax = plt.subplots(figsize=(max(5.5, 0.9 * len(rows) + 2), 3.6))
        x = np.arange(len(rows))
        for k, name in enumerate(('cIoU', 'gIoU')):
            vals = [r['metrics'][name] or 0.0 for r in rows]
            ax.bar(x + (k - 0.5) * 0.38, vals, 0.38, label=name)
        labels = [f'#{r["ordinal"]} {r["expr_type"]}\n(n={r["frames_scored"]})' for r in rows]
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_ylim(0, 100)
        ax.legend(fontsize=8)
        ax.set_title('metrics per instruction', fontsize=9)
        fig.tight_layout()
        files['per_instruction'] = 'per_instruction.png'
        fig.savefig(os.path.join(out_dir, files['per_instruction']), dpi=110)
        plt.close(fig)

    if result.examples:
        items = sorted(result.examples.items())
        cols = min(3, len(items))
        rows_n = int(np.ceil(len(items) / cols))
        fig, axes = plt.subplots(rows_n, cols, figsize=(3.6 * cols, 3.1 * rows_n), squeeze=False)
        by_index = {r['index']: r for r in result.records}
        for ax, (ordinal, (idx, thumb)) in zip(axes.flat, items):
            r = by_index.get(idx, {})
            ax.imshow(thumb)
            iou = r.get('iou')
            ax.set_title(
                f'#{ordinal} {(r.get("instruction") or "")[:40]}\nframe {idx} '
                f'{r.get("outcome") or ""} IoU {_fmt(iou)}',
                fontsize=7,
            )
        for ax in axes.flat:
            ax.axis('off')
        fig.tight_layout()
        files['overlays'] = 'overlays.png'
        fig.savefig(os.path.join(out_dir, files['overlays']), dpi=100)
        plt.close(fig)
    return files


def build_report(result: ReplayResult, instructions, meta: dict) -> dict:
    """The JSON-ready report dict (what ``report.json`` holds)."""
    rows = result.per_instruction(instructions)
    rep = {
        'meta': {
            **meta,
            'mode': result.mode,
            'date': time.strftime('%Y-%m-%d %H:%M:%S'),
            'evaluator': 'core.metrics.GresEvaluator (ReLA ReferEvaluator after the '
            'fix in commit 884ef17) at the source resolution',
        },
        'bag': result.bag,
        'frames_run': len(result.records),
        'frames_scored': len(result.evaluator),
        'frames_rejected': result.rejected,
        'metrics': result.summary(),
        'per_instruction': rows,
        'latency_ms': result.latency_ms(),
        'inference_ms': result.latency_ms('inference_ms'),
    }
    if result.live is not None:
        rep['live'] = result.live
    depth = [r['depth'] for r in result.records if 'depth' in r]
    if depth:
        from collections import Counter

        from poa_gres_ros.bag.eval3d import MATCH_IOU, summarize

        rep['geometry_3d'] = {
            **summarize(result.records),
            'match_iou': MATCH_IOU,
            'frames_with_depth': sum(d == 'ok' for d in depth),
            'frames_without_depth': dict(Counter(d for d in depth if d != 'ok')),
            'lift_ms': result.latency_ms('lift_ms'),
        }
    return rep


def write_report(out_dir: str, result: ReplayResult, instructions, meta: dict) -> dict:
    """Write ``report.json``, ``report.md``, ``frames.jsonl`` and the figures to ``out_dir``.

    Args:
        result: the replay result; instructions: the bag's ``Instruction`` list.
        meta: run facts stored as they are (model, thresholds, command, ...).
    Returns:
        ``{'json': path, 'markdown': path, 'report': the report dict}``.
    """
    os.makedirs(out_dir, exist_ok=True)
    rep = build_report(result, instructions, meta)
    rep['figures'] = _figures(out_dir, result, rep['per_instruction'])
    with open(os.path.join(out_dir, 'frames.jsonl'), 'w', encoding='utf-8') as fh:
        for r in result.records:
            fh.write(json.dumps(r) + '\n')
    jpath = os.path.join(out_dir, 'report.json')
    with open(jpath, 'w', encoding='utf-8') as fh:
        json.dump(rep, fh, indent=2)
    mpath = os.path.join(out_dir, 'report.md')
    with open(mpath, 'w', encoding='utf-8') as fh:
        fh.write(markdown(rep))
    return {'json': jpath, 'markdown': mpath, 'report': rep}


def markdown(rep: dict) -> str:
    """The Markdown page of a report dict."""
    meta, bag = rep['meta'], rep['bag']
    md = [
        f'# GRES bag replay report ({meta["mode"]})',
        '',
        f'Bag: `{bag["path"]}`: {bag["frames"]} frames over {bag["duration_s"]:.1f} s, '
        f'{bag["instructions"]} instructions, {bag["frames_with_gt"]} frames with ground truth, '
        f'{bag["stamp_jumps_back"]} header-stamp jumps back.  ',
        f'Topics: {", ".join(f"{k}=`{v}`" for k, v in bag["topics"].items())}  ',
        f'Model: `{meta.get("model")}` ({meta.get("backend")}); thresholds: '
        f'{meta.get("thresholds")}  ',
        f'Frames run: {rep["frames_run"]}; scored: {rep["frames_scored"]}; rejected (image not '
        f'convertible): {len(rep["frames_rejected"])}. '
        f'Evaluator: {meta["evaluator"]}.',
        '',
        '## Metrics',
        '',
        '| type | n | ' + ' | '.join(METRIC_KEYS) + ' |',
        '|---|---|' + '---|' * len(METRIC_KEYS),
    ]
    for t in REPORT_TYPES:
        row = rep['metrics'][t]
        md.append(
            f'| {t} | {row["count"]} | ' + ' | '.join(_fmt(row[k]) for k in METRIC_KEYS) + ' |'
        )
    md += [
        '',
        '### Instances (docs/metrics.md#instance-level-metrics)',
        '',
        *markdown_table(rep['metrics'], REPORT_TYPES),
        '',
        '## Per instruction',
        '',
        '| # | instruction | type | run | scored | cIoU | gIoU | N-acc | T-acc | inst-recall '
        '| inst-precision |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    for r in rep['per_instruction']:
        m = r['metrics']
        md.append(
            f'| {r["ordinal"]} | {r["text"]} | {r["expr_type"]} | {r["frames_run"]} | '
            f'{r["frames_scored"]} | {_fmt(m["cIoU"])} | {_fmt(m["gIoU"])} | '
            f'{_fmt(m["N-acc"])} | {_fmt(m["T-acc"])} | {_fmt(m["inst-recall"])} | '
            f'{_fmt(m["inst-precision"])} |'
        )
    lat, inf = rep['latency_ms'], rep['inference_ms']
    md += [
        '',
        '## Latency (ms)',
        '',
        '| measure | n | p50 | p90 | p99 | max |',
        '|---|---|---|---|---|---|',
    ]
    name = 'end to end (publish -> result)' if meta['mode'] == 'live' else 'predictor wall time'
    for label, s in ((name, lat), ('model (inference_ms)', inf)):
        md.append(
            f'| {label} | {s["count"]} | {_fmt(s["p50"], 1)} | {_fmt(s["p90"], 1)} | '
            f'{_fmt(s["p99"], 1)} | {_fmt(s["max"], 1)} |'
        )
    md += markdown_3d(rep.get('geometry_3d'), meta['mode'])
    live = rep.get('live')
    if live:
        md += ['', '## Live: drops and instruction binding', '']
        md += [f'- {k.replace("_", " ")}: {v}' for k, v in live['drops'].items()]
        md += [
            f'- results that matched no published frame: {live["unmatched_results"]}',
            f'- results bound to the wrong instruction: {live["wrong_instruction"]} '
            f'{live["wrong_instruction_by_cause"] or ""}',
            f'- settings: {live["settings"]}',
            f'- node: {live["node"]}',
        ]
    md.append('')
    for key in ('latency', 'per_instruction', 'overlays'):
        if key in rep.get('figures', {}):
            md.append(f'![{key}]({rep["figures"][key]})')
    md.append('')
    return '\n'.join(md)


def markdown_3d(g: dict | None, mode: str) -> list[str]:
    """The report's 3D section (docs/geometry3d.md#ground-truth), [] without depth in the bag."""
    if not g:
        return []

    def row(label, st, digits=1):
        return (
            f'| {label} | {st["count"]} | {_fmt(st["median"], digits)} | '
            f'{_fmt(st["p90"], digits)} | {_fmt(st["mean"], digits)} |'
        )

    iou = g['match_iou']
    md = [
        '',
        '## 3D (camera optical frame)',
        '',
        f'Frames with depth: {g["frames_with_depth"]}; without: '
        f'{g["frames_without_depth"] or 0}. True instances: {g["true_instances"]}, matched '
        f'by a predicted instance with mask IoU >= {iou}: {g["matched_iou50"]}. Errors against '
        "the true visible surface (exact mask + the renderer's depth, mean point); see "
        'docs/geometry3d.md.',
        '',
        '| measure | n | median | p90 | mean |',
        '|---|---|---|---|---|',
        row(f'centroid error, mm (node, IoU >= {iou})', g['centroid_error_mm']),
    ]
    if mode == 'offline':
        md.append(row('centroid error, mm (lifting only: true masks)', g['gt_mask_lift_error_mm']))
    md += [
        row("distance to the simulator's object position, mm (information)", g['sim_distance_mm']),
        row('depth coverage of matched instances, fraction', g['coverage'], 3),
    ]
    lift = g.get('lift_ms') or {}
    if lift.get('count'):
        md.append(
            f'\nLifting time per frame (all instances): p50 {_fmt(lift["p50"], 2)} ms, p99 '
            f'{_fmt(lift["p99"], 2)} ms.'
        )
    return md


def format_summary(rep: dict, paths: dict | None = None) -> str:
    """A few lines for the terminal: metrics, latency, drops, where the report is."""
    m = rep['metrics']['all']
    lines = [
        f'{rep["meta"]["mode"]} replay of {rep["bag"]["path"]}: {rep["frames_run"]} frames run, '
        f'{rep["frames_scored"]} scored',
        f'  cIoU {_fmt(m["cIoU"])}  gIoU {_fmt(m["gIoU"])}  N-acc {_fmt(m["N-acc"])}  '
        f'T-acc {_fmt(m["T-acc"])}',
        f'  {summary_line(m)}',
    ]
    live = rep.get('live')
    if live:
        e2e, inf, d = live['e2e_latency_ms'], live['inference_ms'], live['drops']
        lines.append(
            f'  end-to-end latency p50 {_fmt(e2e["p50"], 0)} ms, p99 '
            f'{_fmt(e2e["p99"], 0)} ms (model p50 {_fmt(inf["p50"], 0)} ms)'
        )
        extra = ', '.join(
            f'{k.replace("_", " ")} {d[k]}'
            for k in ('dropped_single_slot', 'not_received_by_node', 'no_instruction')
            if k in d
        )
        lines.append(
            f'  frames: {d["published"]} published, {d["answered"]} answered, '
            f'{d["dropped"]} dropped ({extra or "no node counters"})'
        )
        lines.append(f'  results bound to the wrong instruction: {live["wrong_instruction"]}')
    else:
        lat = rep['latency_ms']
        lines.append(
            f'  predictor latency p50 {_fmt(lat["p50"], 0)} ms, p99 {_fmt(lat["p99"], 0)} ms'
        )
    g = rep.get('geometry_3d')
    if g:
        c, lift = g['centroid_error_mm'], g['gt_mask_lift_error_mm']
        text = (
            f'  3D centroid error (IoU >= {g["match_iou"]}, n={c["count"]}): median '
            f'{_fmt(c["median"], 1)} mm, p90 {_fmt(c["p90"], 1)} mm'
        )
        if lift['count']:
            text += f'; with true masks median {_fmt(lift["median"], 1)} mm'
        lines.append(text)
    if paths:
        lines.append(f'  report: {paths["markdown"]} (+ report.json, figures)')
    return '\n'.join(lines)
