"""GRES metrics: gRefCOCO (cIoU, gIoU, N-acc, T-acc, Pr@X) and Ref-ZOM (oIoU, mIoU, Acc).

Pure numpy, no torch. The counting follows the reference evaluators exactly:

* gRefCOCO: ReLA's ``ReferEvaluator`` (henghuiding/ReLA,
  ``gres_model/evaluation/refer_evaluation.py``) **after** its fix in commit 884ef17 (no +1
  in the denominators, T-acc = TN / (TN + FP)); docs/method.md#grefcoco-metrics.
  Per sample n with GT no-target flag z, predicted flag z^, predicted mask P, merged GT G::

      z = 1, z^ = 1  ("TP"):  IoU = 1, I = 0, U = 0
      z = 1, z^ = 0  ("FN"):  IoU = 0, I = 0, U = |P|          (G is empty)
      z = 0, z^ = 1  ("FP"):  I = 0,   U = |P u G|             (P still enters U)
      z = 0, z^ = 0  ("TN"):  I = |P n G|, U = |P u G|
      targeted: IoU = I / U (0 if U = 0)

      cIoU = 100 sum I / sum U;  gIoU = 100 mean IoU (all samples);
      N-acc = 100 TP / (TP + FN);  T-acc = 100 TN / (TN + FP);
      Pr@t = 100 #{targeted, IoU >= t} / #targeted

  Whether P is blanked when no-target is predicted is the caller's choice: ReLA passes the raw
  argmax mask; our Predictor blanks it (docs/method.md#no-target), which only changes FP
  samples' U.
* Ref-ZOM: toggle1995/RIS-DMMI ``test.py``: oIoU = 100 sum I / sum U and
  mIoU = 100 mean IoU over the 'one' and 'many' samples; Acc = 100 * fraction of 'zero'
  samples whose predicted mask is completely empty; Pr@{0.5..0.9} over non-zero samples.

Deviations from the reference code, on undefined values only (never on defined ones): ReLA
sets N-acc = T-acc = 0 for a source without no-target samples and crashes when sum U = 0;
here an undefined ratio (empty denominator) is ``None``. N-acc and T-acc are percentages
here (ReLA returns fractions; papers print percentages).
 Expression types (per sample): 'no_target' when z = 1, 'single' with one referred instance,
'multi' with several (gRefCOCO statistics, docs/method.md#metrics). Metrics are reported for
'all' and per
type; the caller keeps one accumulator per split.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

EXPR_TYPES = ('single', 'multi', 'no_target')
GREF_PR_THRESHOLDS = (0.7, 0.8, 0.9)
REFZOM_PR_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
REFZOM_SOURCES = ('zero', 'one', 'many')
# The gRefCOCO summary keys every report prints, in order, and the rows of its tables.
METRIC_KEYS = ('cIoU', 'gIoU', 'N-acc', 'T-acc', *(f'Pr@{t:.1f}' for t in GREF_PR_THRESHOLDS))
REPORT_TYPES = ('all', *EXPR_TYPES)


def _binary(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'{name} must be a 2-D (H, W) mask, got shape {mask.shape}')
    if mask.dtype != np.bool_:
        if not (np.issubdtype(mask.dtype, np.integer) or np.issubdtype(mask.dtype, np.floating)):
            raise TypeError(f'{name} must be bool or numeric 0/1, got dtype {mask.dtype}')
        mask = mask > 0
    return mask


def intersection_union(pred_mask: np.ndarray, gt_mask: np.ndarray) -> tuple[int, int]:
    """``(|P n G|, |P u G|)`` in pixels, as ReLA's ``computeIoU``.

    Args:
        pred_mask: (H, W) bool, or numeric where > 0 is foreground.
        gt_mask: (H, W), same size as ``pred_mask``.
    Raises:
        ValueError: the shapes differ or are not 2-D. TypeError: a non-numeric dtype.
    """
    p = _binary(pred_mask, 'pred_mask')
    g = _binary(gt_mask, 'gt_mask')
    if p.shape != g.shape:
        raise ValueError(
            f'pred_mask {p.shape} and gt_mask {g.shape} differ: resize the prediction to the '
            'evaluation resolution first (480x480 for gRefCOCO)'
        )
    return int(np.logical_and(p, g).sum()), int(np.logical_or(p, g).sum())


@dataclass(frozen=True)
class GresSampleResult:
    """Counted values of one sample (ReLA's per-reference ``ref_result``).

    Attributes:
        intersection_px: I_n as counted (0 for no-target GT and for "FP" samples).
        union_px: U_n as counted.
        iou: IoU_n in [0, 1] (1 for a correctly predicted no-target sample).
        outcome: 'TP' | 'FN' (no-target GT) or 'FP' | 'TN' (targeted GT), ReLA's names.
        expr_type: 'single' | 'multi' | 'no_target'.
    """

    intersection_px: int
    union_px: int
    iou: float
    outcome: str
    expr_type: str


def count_sample(
    pred_mask: np.ndarray,
    gt_mask: np.ndarray,
    pred_no_target: bool,
    gt_no_target: bool,
    num_gt_instances: int | None = None,
) -> GresSampleResult:
    """Count one sample with ReLA's rules (docs/method.md#grefcoco-metrics).

    Args:
        pred_mask: (H, W) predicted binary mask at the evaluation resolution.
        gt_mask: (H, W) merged GT mask (union of the referred instances), all False for
            no-target samples.
        pred_no_target: the model's no-target decision z^.
        gt_no_target: the GT flag z (ref ``ann_id == [-1]``).
        num_gt_instances: referred instances, for the expression type; None = 'single' for
            targeted samples.
    Raises:
        ValueError: mismatched shapes, or a no-target GT with a non-empty GT mask.
    """
    inter, union = intersection_union(pred_mask, gt_mask)
    if gt_no_target:
        if np.asarray(gt_mask).any():
            raise ValueError('a no-target sample (gt_no_target=True) must have an empty GT mask')
        if pred_no_target:
            return GresSampleResult(0, 0, 1.0, 'TP', 'no_target')
        return GresSampleResult(0, union, 0.0, 'FN', 'no_target')
    expr = 'multi' if (num_gt_instances or 1) > 1 else 'single'
    if pred_no_target:
        outcome, inter = 'FP', 0
    else:
        outcome = 'TN'
    iou = 0.0 if union == 0 else inter / union
    return GresSampleResult(inter, union, float(iou), outcome, expr)


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else 100.0 * num / den


def summarize(results: list[GresSampleResult], pr_thresholds=GREF_PR_THRESHOLDS) -> dict:
    """gRefCOCO metrics over counted samples (percentages; None where undefined).

    Returns:
        dict with 'cIoU', 'gIoU', 'N-acc', 'T-acc', 'Pr@0.7', ... and 'count', 'num_targeted',
        'num_no_target', 'TP', 'FN', 'FP', 'TN'.
    """
    n = len(results)
    outcome = {k: sum(r.outcome == k for r in results) for k in ('TP', 'FN', 'FP', 'TN')}
    targeted = [r.iou for r in results if r.outcome in ('FP', 'TN')]
    out = {
        'cIoU': _ratio(sum(r.intersection_px for r in results), sum(r.union_px for r in results)),
        'gIoU': _ratio(sum(r.iou for r in results), n),
        'N-acc': _ratio(outcome['TP'], outcome['TP'] + outcome['FN']),
        'T-acc': _ratio(outcome['TN'], outcome['TN'] + outcome['FP']),
    }
    for t in pr_thresholds:
        out[f'Pr@{t:.1f}'] = _ratio(sum(iou >= t for iou in targeted), len(targeted))
    out.update(count=n, num_targeted=len(targeted), num_no_target=n - len(targeted), **outcome)
    return out


class GresEvaluator:
    """Accumulates gRefCOCO metrics frame by frame (one instance per split).

    Usable from evaluation loops, bag replay and the ROS replay tool: call :meth:`add` per
    sample, :meth:`summary` at any time. Keeps only per-sample scalars, not masks.

    Args:
        pr_thresholds: IoU thresholds for Pr@X, default (0.7, 0.8, 0.9) as ReLA.
    """

    def __init__(self, pr_thresholds: tuple[float, ...] = GREF_PR_THRESHOLDS):
        self.pr_thresholds = tuple(pr_thresholds)
        self.results: list[GresSampleResult] = []

    def __len__(self) -> int:
        return len(self.results)

    def add(
        self,
        pred_mask: np.ndarray,
        gt_mask: np.ndarray,
        pred_no_target: bool,
        gt_no_target: bool,
        num_gt_instances: int | None = None,
    ) -> GresSampleResult:
        """Count one sample (see :func:`count_sample` for the arguments) and return it."""
        res = count_sample(pred_mask, gt_mask, pred_no_target, gt_no_target, num_gt_instances)
        self.results.append(res)
        return res

    def add_result(self, result: GresSampleResult) -> None:
        """Add an already counted sample (e.g. from another process)."""
        self.results.append(result)

    def summary(self) -> dict:
        """``{'all': metrics, 'single': ..., 'multi': ..., 'no_target': ...}`` (see
        :func:`summarize`); a type without samples maps to its metrics with count 0."""
        out = {'all': summarize(self.results, self.pr_thresholds)}
        for t in EXPR_TYPES:
            out[t] = summarize([r for r in self.results if r.expr_type == t], self.pr_thresholds)
        return out

    def ious(self) -> np.ndarray:
        """(n,) float64 per-sample IoU in insertion order."""
        return np.array([r.iou for r in self.results], dtype=np.float64)

    def to_records(self) -> list[dict]:
        """Per-sample dicts (JSON-serialisable)."""
        return [asdict(r) for r in self.results]


def gres_metrics(
    pred_masks,
    gt_masks,
    pred_no_target,
    gt_no_target,
    num_gt_instances=None,
    pr_thresholds: tuple[float, ...] = GREF_PR_THRESHOLDS,
) -> dict:
    """gRefCOCO metrics over arrays (same counting as :class:`GresEvaluator`).

    Args:
        pred_masks: (n, H, W) bool/0-1 predicted masks (or a list of (H, W) masks).
        gt_masks: (n, H, W) merged GT masks, same sizes.
        pred_no_target: (n,) bool predicted no-target flags.
        gt_no_target: (n,) bool GT no-target flags.
        num_gt_instances: (n,) int referred-instance counts, or None (targeted = 'single').
    Returns:
        :meth:`GresEvaluator.summary`.
    Raises:
        ValueError: the lengths differ.
    """
    n = len(pred_masks)
    lengths = {len(gt_masks), len(pred_no_target), len(gt_no_target)}
    if num_gt_instances is not None:
        lengths.add(len(num_gt_instances))
    if lengths != {n}:
        raise ValueError(f'all inputs need the same number of samples ({n}), got {lengths}')
    ev = GresEvaluator(pr_thresholds)
    for i in range(n):
        k = None if num_gt_instances is None else int(num_gt_instances[i])
        ev.add(pred_masks[i], gt_masks[i], bool(pred_no_target[i]), bool(gt_no_target[i]), k)
    return ev.summary()


class RefZomEvaluator:
    """Ref-ZOM metrics (RIS-DMMI ``test.py``; docs/method.md#ref-zom-metrics), accumulated per
    sample.

    No no-target flag enters: a 'zero' sample counts as correct only when the predicted mask
    is completely empty, so a model must blank its mask when it predicts no-target.
    """

    def __init__(self, pr_thresholds: tuple[float, ...] = REFZOM_PR_THRESHOLDS):
        self.pr_thresholds = tuple(pr_thresholds)
        self.cum_i = 0
        self.cum_u = 0
        self.target_ious: list[float] = []
        self.zero_correct: list[bool] = []

    def add(self, pred_mask: np.ndarray, gt_mask: np.ndarray, source: str) -> float:
        """Count one sample; returns its IoU ('one'/'many') or 1.0/0.0 correctness ('zero').

        Args:
            pred_mask: (H, W) predicted mask at the evaluation resolution (480x480 in DMMI).
            gt_mask: (H, W) merged GT mask.
            source: the ref's ``source``: 'zero', 'one' or 'many'.
        Raises:
            ValueError: an unknown source or mismatched shapes.
        """
        if source not in REFZOM_SOURCES:
            raise ValueError(f'source must be one of {REFZOM_SOURCES}, got {source!r}')
        if source == 'zero':
            ok = not _binary(pred_mask, 'pred_mask').any()
            self.zero_correct.append(ok)
            return float(ok)
        inter, union = intersection_union(pred_mask, gt_mask)
        iou = 0.0 if union == 0 else inter / union
        self.cum_i += inter
        self.cum_u += union
        self.target_ious.append(float(iou))
        return float(iou)

    def summary(self) -> dict:
        """``{'oIoU', 'mIoU', 'Acc', 'Pr@0.5'.., 'num_target', 'num_zero'}`` (percentages;
        None where undefined)."""
        ious = self.target_ious
        out = {
            'oIoU': _ratio(self.cum_i, self.cum_u),
            'mIoU': _ratio(sum(ious), len(ious)),
            'Acc': _ratio(sum(self.zero_correct), len(self.zero_correct)),
        }
        for t in self.pr_thresholds:
            out[f'Pr@{t:.1f}'] = _ratio(sum(iou >= t for iou in ious), len(ious))
        out.update(num_target=len(ious), num_zero=len(self.zero_correct))
        return out
