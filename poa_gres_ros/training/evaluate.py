"""Batched evaluation of a POAModel on a dataset with ReLA's / DMMI's metrics
(docs/method.md#metrics).

Post-processing equals the Predictor's (docs/method.md#inference-output): the merged mask M
(stride 4) is upsampled bilinearly (``align_corners=False``) to the evaluation size and
thresholded at ``thresholds.mask``; no-target is ``no_target_prob > thresholds.no_target``; the
mask is blanked when no-target is predicted and ``heads.blank_mask_on_no_target`` (needed for
Ref-ZOM Acc).

Evaluation size (docs/method.md#evaluation-resolution): 'input' = the network input size with
the GT rasterised there (ReLA's protocol: 480 x 480 for gRefCOCO, comparable numbers need a 480
x 480 model); 'source' = each image's own size (what the robot sees); or an explicit (H, W).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from poa_gres_ros.core.metrics import GresEvaluator, RefZomEvaluator
from poa_gres_ros.core.results import GresPrediction, InstanceResult
from poa_gres_ros.core.thresholds import Thresholds
from poa_gres_ros.training.datasets.gres_dataset import collate_gres


@dataclass
class EvalResult:
    """Metrics and per-sample outcomes of one split.

    Attributes:
        summary: gRefCOCO metrics ('all' and per expression type) from GresEvaluator.summary.
        refzom: Ref-ZOM metrics (oIoU, mIoU, Acc, Pr@X) when the records carry Ref-ZOM
            sources, else None.
        samples: per sample: index, sentence, expr_type, outcome, iou, no_target_prob.
        examples: up to ``keep_examples`` (index, GresPrediction, gt_mask (H, W) bool) for
            overlays, at the evaluation size.
        eval_size: description of the evaluation resolution.
    """

    summary: dict
    refzom: dict | None
    samples: list[dict]
    examples: list[tuple[int, GresPrediction, np.ndarray]] = field(default_factory=list)
    eval_size: str = 'input'


def to_device(batch: dict, device) -> dict:
    """Move the tensors of a batch dict (see ``collate_gres``) to ``device``."""
    out = dict(batch)
    for key in ('images', 'input_ids', 'attention_mask', 'text_features', 'image_index'):
        if key in out:
            out[key] = out[key].to(device, non_blocking=True)
    if 'features' in out:
        out['features'] = {k: v.to(device, non_blocking=True) for k, v in out['features'].items()}
    return out


def model_inputs(batch: dict, dtype=torch.float32) -> dict:
    """Keyword arguments of ``POAModel.forward`` from a batch (cached features cast to
    ``dtype``: they are stored in float16)."""
    kw = {'input_ids': batch['input_ids'], 'attention_mask': batch['attention_mask']}
    if 'features' in batch:
        kw['features'] = {k: v.to(dtype) for k, v in batch['features'].items()}
    else:
        kw['images'] = batch['images']
    if 'text_features' in batch:
        kw['text_features'] = batch['text_features'].to(dtype)
    if 'image_index' in batch:
        kw['image_index'] = batch['image_index']
    return kw


@torch.no_grad()
def postprocess(
    merged_mask_logits: torch.Tensor,
    no_target_logits: torch.Tensor,
    size_hw: tuple[int, int],
    thresholds: Thresholds,
    blank_on_no_target: bool = True,
):
    """Final masks and no-target decisions (``Predictor.predict_batch`` rules).

    Args:
        merged_mask_logits: (B, Hm, Wm) pre-sigmoid merged mask M.
        no_target_logits: (B, 2), column 1 = no-target.
        size_hw: output (H, W).
    Returns:
        ``(masks, no_target, no_target_prob)``: (B, H, W) bool, (B,) bool, (B,) float32 numpy.
    """
    prob = merged_mask_logits.float().sigmoid()[:, None]
    prob = F.interpolate(prob, size=tuple(size_hw), mode='bilinear', align_corners=False)[:, 0]
    masks = (prob > thresholds.mask).cpu().numpy()
    nt_prob = no_target_logits.float().softmax(-1)[:, 1].cpu().numpy()
    nt = nt_prob > thresholds.no_target
    if blank_on_no_target:
        masks[nt] = False
    return masks, nt, nt_prob.astype(np.float32)


@torch.no_grad()
def prediction_of(out, j: int, size_hw, thresholds: Thresholds, blank: bool, text: str):
    """``GresPrediction`` of sample ``j`` of a POAOutput, for overlays (no phrase spans).

    Instances: queries with relevance > ``thresholds.relevance`` (highest first, at most
    ``max_instances``), mask ``sigmoid(upsample(S_i)) > thresholds.mask``, non-empty; none
    when no-target is predicted and ``blank``.
    """
    masks, nt, nt_prob = postprocess(
        out.merged_mask_logits[j : j + 1],
        out.no_target_logits[j : j + 1],
        size_hw,
        thresholds,
        blank,
    )
    rel = out.relevance_logits[j].float().sigmoid()
    inst = []
    if not (blank and nt[0]):
        order = [int(q) for q in rel.argsort(descending=True) if rel[q] > thresholds.relevance]
        order = order[: thresholds.max_instances]
        if order:
            logits = out.mask_logits[j, order].float()[None]
            up = F.interpolate(logits, size=tuple(size_hw), mode='bilinear', align_corners=False)
            bins = (up[0].sigmoid() > thresholds.mask).cpu().numpy()
            inst = [
                InstanceResult(bins[k], float(rel[q]), None, q)
                for k, q in enumerate(order)
                if bins[k].any()
            ]
    return GresPrediction(inst, masks[0], bool(nt[0]), float(nt_prob[0]), text)


def _gt_at(dataset, index: int, eval_size, batch_gt: torch.Tensor) -> np.ndarray:
    if eval_size == 'input':
        g = batch_gt.numpy()
    elif eval_size == 'source':
        g = dataset.masks.masks(dataset.records[index], None)
    else:
        g = dataset.masks.masks(dataset.records[index], tuple(eval_size))
    return g.any(axis=0) if g.shape[0] else np.zeros(g.shape[1:], bool)


@torch.no_grad()
def evaluate_dataset(
    model,
    dataset,
    thresholds: Thresholds | None = None,
    batch_size: int = 8,
    device: str | torch.device = 'cpu',
    eval_size: str | tuple[int, int] = 'input',
    keep_examples: int = 0,
    progress: bool = False,
    num_workers: int = 0,
) -> EvalResult:
    """Run the model over a ``GresDataset`` / ``CachedFeatureDataset`` and count metrics.

    Args:
        model: POAModel (put in eval mode here; its previous mode is restored).
        dataset: dataset with ``records`` and ``masks``.
        thresholds: mask / no-target thresholds (default ``Thresholds()``).
        eval_size: 'input', 'source' or (H, W) (module docstring).
        keep_examples: keep this many (evenly spaced) masks for overlays.
    Raises:
        ValueError: an unknown ``eval_size``.
    """
    if not (
        eval_size in ('input', 'source')
        or (isinstance(eval_size, tuple | list) and len(eval_size) == 2)
    ):
        raise ValueError(f"eval_size must be 'input', 'source' or (H, W), got {eval_size!r}")
    thresholds = thresholds or Thresholds()
    blank = bool(getattr(model.config.heads, 'blank_mask_on_no_target', True))
    was_training = model.training
    model.eval()
    n = len(dataset)
    keep = (
        set(np.linspace(0, n - 1, keep_examples).round().astype(int).tolist())
        if (keep_examples and n)
        else set()
    )
    is_refzom = any(r.source in ('zero', 'one', 'many') for r in dataset.records)
    gres, zom = GresEvaluator(), RefZomEvaluator()
    samples, examples = [], []
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_gres,
        num_workers=num_workers,
    )
    for batch in tqdm(loader, desc='evaluating', disable=not progress):
        b = to_device(batch, device)
        out = model(**model_inputs(b), aux_outputs=False)
        for j, idx in enumerate(batch['index'].tolist()):
            rec = dataset.records[idx]
            size = {'input': dataset.size_hw, 'source': (rec.height, rec.width)}.get(
                eval_size if isinstance(eval_size, str) else '', tuple(eval_size)
            )
            masks, nt, nt_prob = postprocess(
                out.merged_mask_logits[j : j + 1],
                out.no_target_logits[j : j + 1],
                size,
                thresholds,
                blank,
            )
            gt = _gt_at(dataset, idx, eval_size, batch['gt_masks'][j])
            k = 2 if rec.expr_type == 'multi' else 1  # the record's type (crowd-independent)
            res = gres.add(masks[0], gt, bool(nt[0]), rec.no_target, k)
            if is_refzom:
                zom.add(masks[0], gt, rec.source)
            samples.append(
                {
                    'index': idx,
                    'sentence': rec.sentence,
                    'expr_type': rec.expr_type,
                    'outcome': res.outcome,
                    'iou': res.iou,
                    'no_target_prob': float(nt_prob[0]),
                }
            )
            if idx in keep:
                examples.append(
                    (idx, prediction_of(out, j, size, thresholds, blank, rec.sentence), gt)
                )
    model.train(was_training)
    desc = eval_size if isinstance(eval_size, str) else f'{eval_size[0]}x{eval_size[1]}'
    return EvalResult(gres.summary(), zom.summary() if is_refzom else None, samples, examples, desc)
