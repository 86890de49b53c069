"""Relevance and no-target calibration on a validation split, folded into the model.

The no-target head is trained with a plain cross-entropy, so its 0.5 point depends on the
no-target share of the training data and on how well the rest of the model separates the cases.
``calibrate_no_target`` evaluates the model once on a validation split with the no-target head
switched off (threshold 1.0, so every sample is answered from its instances), then picks the
threshold t on the head's probability that maximises gIoU on that split under the product's
post-processing rule (docs/postprocessing.md: no-target when ``q_nt > t`` or when no instance
is kept). ``shift_no_target_bias`` then moves the head's no-target logit by ``-logit(t)``, so
``softmax > 0.5`` after the shift is exactly ``softmax > t`` before it: every consumer (the
node's ``no_target_threshold`` default 0.5, ONNX Runtime, TensorRT, evaluation) gets the
calibrated decision with no extra parameter. Never calibrate on a test split.

The relevance head is trained with a binary cross-entropy against "this query's object is
referred", and early in training its probabilities rarely reach 0.5, so the product's 0.5
relevance threshold keeps no instance and every answer becomes no-target. ``calibrate``
therefore also chooses the relevance threshold r: for every r in ``RELEVANCE_CANDIDATES`` it
runs the no-target calibration above with that r (one pass of the network serves all of
them) and keeps the pair with the highest gIoU (ties: r closest to 0.5).
``apply_calibration`` stores ``-logit(r)`` in ``heads.relevance_offset`` (added to the
reported relevance logit only, see ``HeadConfig`` in core/model_sections.py) and shifts the
no-target bias. Both compose: calibrating a calibrated model again moves nothing when the
optimum stays where it is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from poa_gres_ros.core.thresholds import Thresholds

CANDIDATES = tuple(float(t) for t in np.round(np.linspace(0.05, 0.95, 91), 3))
# denser at the low end: early in training the relevance of referred objects is often 0.02-0.1
RELEVANCE_CANDIDATES = (0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


@dataclass(frozen=True)
class NoTargetCalibration:
    """Result of :func:`calibrate_no_target` (gIoU and accuracies in percent on the split).

    Attributes:
        threshold: chosen t on the head's probability (before the shift).
        bias_shift: ``-logit(t)``, added to the no-target logit by ``shift_no_target_bias``.
        samples: number of calibration samples.
        giou_at_half / giou: gIoU with t = 0.5 and with the chosen t.
        n_acc / t_acc: N-acc and T-acc with the chosen t.
    """

    threshold: float
    bias_shift: float
    samples: int
    giou_at_half: float
    giou: float
    n_acc: float | None
    t_acc: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def _scores(nt_prob, gt_nt, iou_targeted, has_instance, t: float):
    pred_nt = (nt_prob > t) | ~has_instance
    per = np.where(gt_nt, pred_nt.astype(float), np.where(pred_nt, 0.0, iou_targeted))
    n_acc = 100 * float(pred_nt[gt_nt].mean()) if gt_nt.any() else None
    t_acc = 100 * float((~pred_nt[~gt_nt]).mean()) if (~gt_nt).any() else None
    return 100 * float(per.mean()), n_acc, t_acc


def choose_threshold(nt_prob, gt_no_target, iou_targeted, has_instance) -> tuple[float, float]:
    """The gIoU-maximising threshold (ties: the one closest to 0.5) and its gIoU.

    Args:
        nt_prob: (n,) head probabilities. gt_no_target: (n,) bool ground truth.
        iou_targeted: (n,) IoU of each sample's answer when it is answered as targeted.
        has_instance: (n,) bool, whether any instance passes the relevance threshold.
    Raises:
        ValueError: empty input or arrays of different lengths.
    """
    arrays = [np.asarray(a) for a in (nt_prob, gt_no_target, iou_targeted, has_instance)]
    if len({a.shape[0] for a in arrays}) != 1 or arrays[0].shape[0] == 0:
        raise ValueError('calibration needs equally long, non-empty arrays')
    p, z, iou, inst = arrays[0], arrays[1].astype(bool), arrays[2], arrays[3].astype(bool)
    best = max(CANDIDATES, key=lambda t: (round(_scores(p, z, iou, inst, t)[0], 9), -abs(t - 0.5)))
    return best, _scores(p, z, iou, inst, best)[0]


@torch.no_grad()
def calibrate_no_target(
    model, dataset, thresholds: Thresholds | None = None, batch_size: int = 8, device='cpu'
) -> NoTargetCalibration:
    """Choose the no-target threshold on ``dataset`` (a validation split; see module doc).

    Args:
        model: POAModel. dataset: ``GresDataset`` / ``CachedFeatureDataset`` of a val split.
        thresholds: the other post-processing thresholds (relevance, mask); default
            ``Thresholds()``.
    Returns:
        :class:`NoTargetCalibration` (the model is not changed; see ``shift_no_target_bias``).
    """
    from poa_gres_ros.training.evaluate import evaluate_dataset

    base = thresholds or Thresholds()
    res = evaluate_dataset(
        model, dataset, replace(base, no_target=1.0), batch_size=batch_size, device=device,
        eval_size='input',
    )  # fmt: skip
    return _no_target_calibration(res, dataset)


def _no_target_calibration(res, dataset) -> NoTargetCalibration:
    """The no-target calibration from an evaluation with the no-target head switched off."""
    recs = dataset.records
    nt_prob = np.array([s['no_target_prob'] for s in res.samples])
    gt_nt = np.array([recs[s['index']].no_target for s in res.samples])
    has_inst = np.array([s['num_pred'] > 0 for s in res.samples])
    iou = np.array([s['iou'] if not s['pred_no_target'] else 0.0 for s in res.samples])
    t, giou = choose_threshold(nt_prob, gt_nt, iou, has_inst)
    half, _, _ = _scores(nt_prob, gt_nt, iou, has_inst, 0.5)
    _, n_acc, t_acc = _scores(nt_prob, gt_nt, iou, has_inst, t)
    return NoTargetCalibration(t, -math.log(t / (1 - t)), len(nt_prob), half, giou, n_acc, t_acc)


@torch.no_grad()
def shift_no_target_bias(model, bias_shift: float) -> None:
    """Add ``bias_shift`` to the no-target logit of the head's last layer (in place), so
    ``softmax(logits)[1] > 0.5`` afterwards equals ``> sigmoid(-bias_shift)`` before."""
    last = model.no_target_head.mlp.layers[-1]
    last.bias[1] += float(bias_shift)


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate`: the chosen relevance threshold and, for it, the no-target
    calibration.

    Attributes:
        relevance_threshold: chosen r on the reported relevance (before the offset).
        relevance_offset: ``-logit(r)``, added to ``heads.relevance_offset``.
        no_target: the no-target calibration at r.
        giou_per_relevance: {r: gIoU} of every candidate (percent).
    """

    relevance_threshold: float
    relevance_offset: float
    no_target: NoTargetCalibration
    giou_per_relevance: dict[float, float]

    def to_dict(self) -> dict:
        return asdict(self)


def calibrate(
    model,
    dataset,
    thresholds: Thresholds | None = None,
    batch_size: int = 8,
    device='cpu',
    relevance_candidates: tuple[float, ...] = RELEVANCE_CANDIDATES,
) -> Calibration:
    """Choose the relevance and no-target thresholds on ``dataset`` (a validation split).

    One pass of the network over the split; its outputs are post-processed once per
    relevance candidate (``evaluate_thresholds``), so the result equals
    :func:`calibrate_no_target` run once per candidate. The model is not changed; see
    :func:`apply_calibration`.

    Raises:
        ValueError: no relevance candidates, or a candidate outside (0, 1).
    """
    from poa_gres_ros.training.evaluate import evaluate_thresholds

    if not relevance_candidates or not all(0 < r < 1 for r in relevance_candidates):
        raise ValueError(f'relevance candidates must lie in (0, 1): {relevance_candidates}')
    base = thresholds or Thresholds()
    evaluations = evaluate_thresholds(
        model, dataset, [replace(base, relevance=r, no_target=1.0) for r in relevance_candidates],
        batch_size=batch_size, device=device, eval_size='input',
    )  # fmt: skip
    results = {
        r: _no_target_calibration(res, dataset) for r, res in zip(relevance_candidates, evaluations)
    }
    best = max(results, key=lambda r: (round(results[r].giou, 9), -abs(r - 0.5)))
    return Calibration(
        best,
        -math.log(best / (1 - best)),
        results[best],
        {r: c.giou for r, c in results.items()},
    )


@torch.no_grad()
def apply_calibration(model, calibration: Calibration) -> None:
    """Fold ``calibration`` into ``model`` in place: ``heads.relevance_offset`` grows by the
    relevance offset (the model's config, so saving the model keeps it) and the no-target
    logit by the no-target shift."""
    heads = model.config.heads
    heads.relevance_offset = float(heads.relevance_offset) + calibration.relevance_offset
    shift_no_target_bias(model, calibration.no_target.bias_shift)
