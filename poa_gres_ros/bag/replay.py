"""Offline bag replay: every image through the Predictor, scored against the bag's ground truth.

Pairing of images with instructions and ground truth: ``bag.timeline`` (rules 1-3). Metrics:
``core.metrics.GresEvaluator`` (ReLA's counting, docs/method.md#grefcoco-metrics), the same
accumulator training evaluation uses, fed per frame with the predicted merged mask and no-target
flag at the source resolution against the merged ground-truth mask, the ground-truth no-target
flag and the number of true instances; and ``core.instance_metrics.InstanceEvaluator``
(docs/metrics.md#instance-level-metrics), fed with the predicted instances and their phrases
against the true instances and theirs. Frames without an instruction are not run; frames without
ground truth are run (latency) but not scored; frames whose image cannot be converted are listed
as rejected with the reason and skipped. Latency: wall-clock milliseconds of
``Predictor.predict`` per frame (conversion, preprocessing, model, postprocessing); the
instruction is encoded once when it changes, outside the timing, as the node does.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from poa_gres_ros.bag.timeline import BagTimeline, Frame
from poa_gres_ros.core.instance_metrics import (
    InstanceEvaluator,
    InstanceSampleResult,
    merge_summaries,
)
from poa_gres_ros.core.metrics import GresEvaluator, GresSampleResult
from poa_gres_ros.core.results import GresPrediction

THUMB_WIDTH_PX = 320


@dataclass
class ReplayResult:
    """Outcome of a replay (offline or live).

    Attributes:
        mode: 'offline' or 'live'.
        bag: ``BagTimeline.summary()``.
        records: one dict per frame that produced a prediction (index, stamp_ns, loop,
            instruction ordinal/text, latency_ms, inference_ms, pred_no_target,
            no_target_prob, num_instances, and when scored: outcome, iou, expr_type,
            intersection_px, union_px, num_pred, num_gt, num_matched, phrases_checked,
            phrases_correct).
        evaluator: GresEvaluator over the scored frames (in frame order).
        instances: InstanceEvaluator over the same frames (docs/metrics.md).
        examples: instruction ordinal -> (frame index, overlay thumbnail (h, w, 3) uint8).
        live: live-only facts (drops, end-to-end latency, binding), else None.
        rejected: frames whose image could not be converted: {'index', 'reason'}.
    """

    mode: str
    bag: dict
    records: list[dict] = field(default_factory=list)
    evaluator: GresEvaluator = field(default_factory=GresEvaluator)
    instances: InstanceEvaluator = field(default_factory=InstanceEvaluator)
    examples: dict = field(default_factory=dict)
    live: dict | None = None
    rejected: list[dict] = field(default_factory=list)

    def summary(self) -> dict:
        """Per expression type, the gRefCOCO and the instance metrics over every scored frame
        (``merge_summaries`` of the two evaluators' summaries)."""
        return merge_summaries(self.evaluator.summary(), self.instances.summary())

    def per_instruction(self, instructions) -> list[dict]:
        """Per instruction of the bag: text, frames run, frames scored, the expression type
        of its ground truth and the gRefCOCO and instance metrics over its scored frames."""
        rows = []
        for ins in instructions:
            if not ins.text.strip():
                continue
            recs = [r for r in self.records if r['instruction_ordinal'] == ins.ordinal]
            ev = GresEvaluator(self.evaluator.pr_thresholds)
            inst = InstanceEvaluator(self.instances.iou_threshold)
            for r in recs:
                if r.get('outcome') is not None:
                    ev.add_result(
                        GresSampleResult(
                            r['intersection_px'],
                            r['union_px'],
                            r['iou'],
                            r['outcome'],
                            r['expr_type'],
                        )
                    )
                    inst.add_result(
                        InstanceSampleResult(
                            r['num_pred'],
                            r['num_gt'],
                            r['num_matched'],
                            r['expr_type'],
                            r['phrases_checked'],
                            r['phrases_correct'],
                        )
                    )
            types = sorted({r['expr_type'] for r in recs if r.get('expr_type')})
            rows.append(
                {
                    'ordinal': ins.ordinal,
                    'seq': ins.seq,
                    'text': ins.text,
                    'expr_type': '/'.join(types) or '-',
                    'frames_run': len(recs),
                    'frames_scored': len(ev),
                    'metrics': merge_summaries(ev.summary(), inst.summary())['all'],
                }
            )
        return rows

    def latency_ms(self, key: str = 'latency_ms') -> dict:
        """p50 / p90 / p99 / max / mean of a per-frame timing (ms), None values skipped."""
        return latency_stats([r[key] for r in self.records if r.get(key) is not None])


def latency_stats(values) -> dict:
    """``{'count', 'p50', 'p90', 'p99', 'max', 'mean'}`` in ms (None entries when empty)."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        return {'count': 0, 'p50': None, 'p90': None, 'p99': None, 'max': None, 'mean': None}
    q = np.percentile(v, [50, 90, 99])
    return {
        'count': int(v.size),
        'p50': float(q[0]),
        'p90': float(q[1]),
        'p99': float(q[2]),
        'max': float(v.max()),
        'mean': float(v.mean()),
    }


def score_frame(result: ReplayResult, frame: Frame, pred: GresPrediction) -> dict:
    """Count one frame (if it has ground truth) into ``result.evaluator`` (merged mask and
    no-target decision against the merged truth) and ``result.instances`` (the predicted
    instances and their phrases against the true instances and theirs); returns the record
    fields."""
    if frame.gt is None:
        return {}
    gt = frame.gt
    res = result.evaluator.add(
        pred.final_mask, gt.mask, bool(pred.no_target), gt.no_target, gt.num_instances
    )
    inst = result.instances.add(
        [i.mask for i in pred.instances],
        np.asarray(gt.instance_masks(), bool).reshape(-1, *gt.shape),
        res.expr_type,
        [i.phrase for i in pred.instances],
        gt.phrases,
    )
    return {**asdict(res), **asdict(inst)}


def base_record(frame: Frame, pred: GresPrediction) -> dict:
    """Record fields shared by offline and live replay."""
    ins = frame.instruction
    return {
        'index': frame.index,
        'stamp_ns': frame.stamp_ns,
        'loop': frame.loop,
        'instruction_ordinal': ins.ordinal if ins else None,
        'instruction': ins.text if ins else None,
        'pred_no_target': bool(pred.no_target),
        'no_target_prob': float(pred.no_target_prob),
        'num_instances': len(pred.instances),
    }


def thumbnail(rgb: np.ndarray, pred: GresPrediction, gt: np.ndarray | None) -> np.ndarray:
    """The overlay of ``pred`` and the ground-truth outline (``draw_ground_truth_overlay``)
    drawn at full resolution, then shrunk to ``THUMB_WIDTH_PX`` wide: (h, w, 3) uint8 RGB."""
    import cv2

    from poa_gres_ros.core.visualize import draw_ground_truth_overlay

    g = gt if gt is not None else np.zeros(pred.final_mask.shape, bool)
    img = draw_ground_truth_overlay(np.ascontiguousarray(rgb), pred, g)
    h, w = img.shape[:2]
    s = min(1.0, THUMB_WIDTH_PX / w)
    return cv2.resize(
        img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA
    )


def lift_and_score(frame: Frame, pred: GresPrediction, depth) -> dict:
    """The 3D part of an offline record: ``depth`` ('ok' or why not), ``lift_ms`` (the
    lifting's wall time), ``errors_3d`` (``bag.eval3d.frame_errors``, with the lifting error
    of the ground-truth masks) when the frame has ground truth with 3D."""
    from poa_gres_ros.bag.eval3d import frame_errors
    from poa_gres_ros.core.geometry3d import lift_instances

    if depth is None:
        return {}
    if depth.depth_m is None:
        return {'depth': depth.problem}
    masks = [i.mask for i in pred.instances]
    t0 = time.perf_counter()
    geo = lift_instances(masks, depth.depth_m, depth.intrinsics)
    out = {'depth': 'ok', 'lift_ms': (time.perf_counter() - t0) * 1e3}
    gt = frame.gt
    if gt is not None and gt.geometry:
        lifted = lift_instances(gt.instance_masks(), depth.depth_m, depth.intrinsics)
        out['errors_3d'] = frame_errors(masks, geo, gt, lifted)
    return out


def example_frames(frames: list[Frame]) -> dict[int, int]:
    """Instruction ordinal -> index of the middle frame among ``frames`` bound to it."""
    by: dict[int, list[int]] = {}
    for f in frames:
        if f.instruction is not None:
            by.setdefault(f.instruction.ordinal, []).append(f.index)
    return {k: v[len(v) // 2] for k, v in by.items()}


def replay_offline(
    timeline: BagTimeline,
    predictor,
    thresholds=None,
    *,
    every: int = 1,
    max_frames: int | None = None,
    progress: bool = False,
) -> ReplayResult:
    """Run ``predictor`` over the bag's frames (module docstring).

    Args:
        timeline: the opened bag.
        predictor: a ``poa_gres_ros.inference.Predictor``.
        thresholds: Thresholds for every frame (default: the predictor's).
        every: run every n-th frame (frame index % every == 0), >= 1.
        max_frames: stop after this many run frames (None: all).
    Returns:
        ReplayResult with mode 'offline'.
    Raises:
        ValueError: every < 1; image conversion errors of a bad frame.
    """
    from tqdm import tqdm

    if every < 1:
        raise ValueError(f'every must be >= 1, got {every}')
    chosen = [f for f in timeline.frames if f.instruction is not None and f.index % every == 0]
    if max_frames is not None:
        chosen = chosen[: max(0, max_frames)]
    examples = example_frames(chosen)
    keep = set(examples.values())
    result = ReplayResult('offline', timeline.summary())
    current = None
    bar = tqdm(total=len(chosen), desc='frames', unit='frame', disable=not progress)
    indices = [f.index for f in chosen]
    if 'depth' in timeline.topics:
        frames = timeline.images_with_depth(indices)
    else:
        frames = ((f, rgb, None) for f, rgb in timeline.images(indices))
    for frame, rgb, depth in frames:
        bar.update(1)
        if isinstance(rgb, str):
            result.rejected.append({'index': frame.index, 'reason': rgb})
            continue
        if frame.instruction.text != current:
            predictor.set_instruction(frame.instruction.text)
            current = frame.instruction.text
        t0 = time.perf_counter()
        pred = predictor.predict(rgb, thresholds=thresholds)
        latency_ms = (time.perf_counter() - t0) * 1e3
        rec = base_record(frame, pred)
        rec.update(latency_ms=latency_ms, inference_ms=pred.timings_ms.get('total'))
        rec.update(score_frame(result, frame, pred))
        rec.update(lift_and_score(frame, pred, depth))
        result.records.append(rec)
        if frame.index in keep:
            gt = frame.gt.mask if frame.gt is not None else None
            result.examples[frame.instruction.ordinal] = (frame.index, thumbnail(rgb, pred, gt))
    bar.close()
    return result
