"""Instance-level metrics: what a grasp planner needs beyond cIoU / gIoU.

No GRES paper reports these; the definitions are this project's, written out with their
formulas in docs/metrics.md ("Instance-level metrics"). Pure numpy plus scipy's Hungarian
solver, no torch. Per sample (one image and one sentence) with P predicted instances (the
post-processed output: a no-target answer has none) and G referred ground-truth objects:

* Matching: a one-to-one assignment between predicted and GT instances in which a pair is
  allowed only when its mask IoU >= 0.5; it has as many pairs as possible, and among those the
  largest sum of IoU (``scipy.optimize.linear_sum_assignment`` on the weights
  ``min(P, G) + 1 + IoU`` for allowed pairs, 0 otherwise). M = number of pairs.
* Instance recall = 100 sum M / sum G; instance precision = 100 sum M / sum P, over all
  samples (instances predicted for a no-target sentence count against precision).
* Count accuracy = 100 #{targeted samples with P = G} / #targeted samples.
* Phrase-grounding accuracy, over the matched pairs of samples whose sentence has two or more
  GT phrases: a pair is correct when the GT phrase that the predicted span overlaps most (in
  characters, strictly more than any other GT phrase) is a phrase that names the matched GT
  object. A predicted instance without a phrase, or whose span touches no GT phrase or two
  equally, is wrong.

Undefined ratios (empty denominators) are None, as in ``core.metrics``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from poa_gres_ros.core.metrics import EXPR_TYPES
from poa_gres_ros.core.results import PhraseSpan

IOU_MATCH = 0.5
INSTANCE_METRIC_KEYS = ('inst-recall', 'inst-precision', 'count-acc', 'phrase-acc')


@dataclass(frozen=True)
class GtPhrase:
    """A phrase of the sentence and the GT objects it names.

    Attributes:
        char_start, char_end: the span in the sentence (Python ``str`` indices, end exclusive).
        gt_indices: indices into the sample's GT instance masks of the objects it names.
    """

    char_start: int
    char_end: int
    gt_indices: tuple[int, ...]


def gt_phrases_of(spans: Sequence[PhraseSpan | None]) -> list[GtPhrase]:
    """GT phrases from the phrase of each GT instance (bag ground truth: every true instance
    carries the span that names it): instances with the same span form one phrase, in order of
    first appearance; instances without a span name no phrase."""
    groups: dict[tuple[int, int], list[int]] = {}
    for k, span in enumerate(spans):
        if span is not None:
            groups.setdefault((span.char_start, span.char_end), []).append(k)
    return [GtPhrase(s, e, tuple(idx)) for (s, e), idx in groups.items()]


def _stack(masks, name: str, shape=None) -> np.ndarray:
    if isinstance(masks, np.ndarray) and masks.ndim == 3:
        arr = masks
    else:
        masks = list(masks)
        if not masks:
            return np.zeros((0, *(shape or (0, 0))), bool)
        arr = np.stack([np.asarray(m) for m in masks])
    if arr.ndim != 3:
        raise ValueError(f'{name} must be (K, H, W) masks, got shape {arr.shape}')
    return arr > 0 if arr.dtype != np.bool_ else arr


def iou_matrix(pred_masks, gt_masks) -> np.ndarray:
    """(P, G) float64 mask IoU (0 where the union is empty).

    Args:
        pred_masks: (P, H, W) bool (or a list of (H, W) masks); gt_masks: (G, H, W).
    Raises:
        ValueError: the mask sizes differ or the arrays are not 3-D.
    """
    p = _stack(pred_masks, 'pred_masks')
    g = _stack(gt_masks, 'gt_masks')
    if p.shape[0] and g.shape[0] and p.shape[1:] != g.shape[1:]:
        raise ValueError(f'predicted masks {p.shape[1:]} and GT masks {g.shape[1:]} differ')
    if not (p.shape[0] and g.shape[0]):
        return np.zeros((p.shape[0], g.shape[0]))
    pf = p.reshape(p.shape[0], -1).astype(np.float64)
    gf = g.reshape(g.shape[0], -1).astype(np.float64)
    inter = pf @ gf.T
    union = pf.sum(1)[:, None] + gf.sum(1)[None, :] - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def match_instances(pred_masks, gt_masks, iou_threshold: float = IOU_MATCH):
    """One-to-one matches with IoU >= ``iou_threshold`` (module docstring).

    Returns:
        list of ``(pred_index, gt_index, iou)``, sorted by pred_index.
    """
    from scipy.optimize import linear_sum_assignment

    iou = iou_matrix(pred_masks, gt_masks)
    if iou.size == 0:
        return []
    allowed = iou >= iou_threshold
    weight = np.where(allowed, min(iou.shape) + 1.0 + iou, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols) if allowed[r, c]]


def phrase_index(span: PhraseSpan | None, phrases: Sequence[GtPhrase]) -> int | None:
    """Index of the GT phrase the span overlaps most in characters (strictly), else None."""
    if span is None:
        return None
    overlaps = [
        max(0, min(span.char_end, p.char_end) - max(span.char_start, p.char_start)) for p in phrases
    ]
    if not overlaps or max(overlaps) == 0:
        return None
    best = max(overlaps)
    return overlaps.index(best) if overlaps.count(best) == 1 else None


@dataclass(frozen=True)
class InstanceSampleResult:
    """Counted values of one sample.

    Attributes:
        num_pred: P. num_gt: G (0 for no-target). num_matched: M.
        expr_type: 'single' | 'multi' | 'no_target'.
        phrases_checked: matched pairs scored for phrase grounding (0 unless the sentence has
            two or more GT phrases). phrases_correct: of those, the correct ones.
    """

    num_pred: int
    num_gt: int
    num_matched: int
    expr_type: str
    phrases_checked: int = 0
    phrases_correct: int = 0


def count_instances(
    pred_masks,
    gt_masks,
    expr_type: str,
    pred_phrases: Sequence[PhraseSpan | None] | None = None,
    gt_phrases: Sequence[GtPhrase] | None = None,
    iou_threshold: float = IOU_MATCH,
) -> InstanceSampleResult:
    """Count one sample (module docstring).

    Args:
        pred_masks: (P, H, W) predicted instance masks (a list of (H, W) works).
        gt_masks: (G, H, W) GT masks of the referred objects (G = 0 for no-target).
        expr_type: the sample's expression type, one of ``EXPR_TYPES``.
        pred_phrases: P spans (or None entries), aligned with ``pred_masks``.
        gt_phrases: the sentence's GT phrases (phrase accuracy needs two or more).
    Raises:
        ValueError: an unknown expr_type, lengths that disagree, or mismatched mask sizes.
    """
    if expr_type not in EXPR_TYPES:
        raise ValueError(f'expr_type must be one of {EXPR_TYPES}, got {expr_type!r}')
    pred = _stack(pred_masks, 'pred_masks')
    gt = _stack(gt_masks, 'gt_masks')
    if pred_phrases is not None and len(pred_phrases) != pred.shape[0]:
        raise ValueError(f'{len(pred_phrases)} phrases for {pred.shape[0]} predicted instances')
    matches = match_instances(pred, gt, iou_threshold)
    checked = correct = 0
    if gt_phrases is not None and len(gt_phrases) >= 2:
        for p, g, _ in matches:
            checked += 1
            span = pred_phrases[p] if pred_phrases is not None else None
            k = phrase_index(span, gt_phrases)
            correct += int(k is not None and g in gt_phrases[k].gt_indices)
    return InstanceSampleResult(
        pred.shape[0], gt.shape[0], len(matches), expr_type, checked, correct
    )


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else 100.0 * num / den


def summarize_instances(results: Sequence[InstanceSampleResult]) -> dict:
    """Instance metrics over counted samples (percentages; None where undefined).

    Returns:
        dict with ``INSTANCE_METRIC_KEYS`` and the counts 'num_pred', 'num_gt',
        'num_matched', 'num_targeted', 'count_correct', 'phrases_checked', 'phrases_correct'.
    """
    matched = sum(r.num_matched for r in results)
    num_pred = sum(r.num_pred for r in results)
    num_gt = sum(r.num_gt for r in results)
    targeted = [r for r in results if r.expr_type != 'no_target']
    count_ok = sum(r.num_pred == r.num_gt for r in targeted)
    checked = sum(r.phrases_checked for r in results)
    correct = sum(r.phrases_correct for r in results)
    return {
        'inst-recall': _ratio(matched, num_gt),
        'inst-precision': _ratio(matched, num_pred),
        'count-acc': _ratio(count_ok, len(targeted)),
        'phrase-acc': _ratio(correct, checked),
        'num_pred': num_pred,
        'num_gt': num_gt,
        'num_matched': matched,
        'num_targeted': len(targeted),
        'count_correct': count_ok,
        'phrases_checked': checked,
        'phrases_correct': correct,
    }


def merge_summaries(gres_summary: dict, instance_summary: dict) -> dict:
    """Per expression type, the gRefCOCO metrics and the instance metrics in one dict."""
    return {t: {**row, **instance_summary.get(t, {})} for t, row in gres_summary.items()}


def _pct(v) -> str:
    return '–' if v is None else f'{v:.2f}'


def markdown_table(summary: dict, types: Sequence[str]) -> list[str]:
    """Markdown lines of the instance-metrics table, one row per expression type.

    Args:
        summary: per type a dict with ``INSTANCE_METRIC_KEYS`` and the counts (e.g.
            ``merge_summaries`` output). types: the rows, e.g. ``core.metrics.REPORT_TYPES``.
    """
    md = [
        '| type | ' + ' | '.join(INSTANCE_METRIC_KEYS)
        + ' | matched | true | predicted | phrases checked |',
        '|---|' + '---|' * (len(INSTANCE_METRIC_KEYS) + 4),
    ]  # fmt: skip
    for t in types:
        r = summary[t]
        md.append(
            f'| {t} | ' + ' | '.join(_pct(r[k]) for k in INSTANCE_METRIC_KEYS)
            + f' | {r["num_matched"]} | {r["num_gt"]} | {r["num_pred"]} | {r["phrases_checked"]} |'
        )  # fmt: skip
    return md


def summary_line(row: dict) -> str:
    """One line for a terminal: the instance metrics of one summary row."""
    return (
        f'instances: recall {_pct(row["inst-recall"])} precision {_pct(row["inst-precision"])} '
        f'({row["num_matched"]} matched of {row["num_gt"]} true, {row["num_pred"]} predicted); '
        f'count right {_pct(row["count-acc"])}; phrase {_pct(row["phrase-acc"])} '
        f'(n={row["phrases_checked"]})'
    )


class InstanceEvaluator:
    """Accumulates instance metrics sample by sample (one per split), like ``GresEvaluator``."""

    def __init__(self, iou_threshold: float = IOU_MATCH):
        self.iou_threshold = float(iou_threshold)
        self.results: list[InstanceSampleResult] = []

    def __len__(self) -> int:
        return len(self.results)

    def add(
        self,
        pred_masks,
        gt_masks,
        expr_type: str,
        pred_phrases: Sequence[PhraseSpan | None] | None = None,
        gt_phrases: Sequence[GtPhrase] | None = None,
    ) -> InstanceSampleResult:
        """Count one sample (see :func:`count_instances`) and return it."""
        res = count_instances(
            pred_masks, gt_masks, expr_type, pred_phrases, gt_phrases, self.iou_threshold
        )
        self.results.append(res)
        return res

    def add_result(self, result: InstanceSampleResult) -> None:
        """Add an already counted sample."""
        self.results.append(result)

    def summary(self) -> dict:
        """``{'all': metrics, 'single': ..., 'multi': ..., 'no_target': ...}``."""
        out = {'all': summarize_instances(self.results)}
        for t in EXPR_TYPES:
            out[t] = summarize_instances([r for r in self.results if r.expr_type == t])
        return out

    def to_records(self) -> list[dict]:
        """Per-sample dicts (JSON-serialisable)."""
        return [asdict(r) for r in self.results]
