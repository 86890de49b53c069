"""Torch-in, torch-out batch results of ``Predictor.predict_batch`` (same rules as
inference/postprocess.py, computed with torch on the images' device)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from poa_gres_ros.core.results import PhraseSpan
from poa_gres_ros.core.thresholds import Thresholds
from poa_gres_ros.modeling.grounding import GroundingRule, ground_phrase


@dataclass
class BatchPrediction:
    """Results for B images at their input resolution (H, W).

    Attributes:
        relevance: (B, N) float in [0, 1].
        keep: (B, N) bool, kept instances (relevance > threshold, top max_instances, not
            no-target-blanked).
        instance_masks: (B, N, H, W) bool for every query (use ``keep`` to select).
        final_mask: (B, H, W) bool merged mask (blank on no-target).
        no_target: (B,) bool. no_target_prob: (B,) float in [0, 1].
        token_attention: (B, N, L) float R of the final layer.
        phrases: per image, {query index: PhraseSpan or None} for the kept queries.
    """

    relevance: torch.Tensor
    keep: torch.Tensor
    instance_masks: torch.Tensor
    final_mask: torch.Tensor
    no_target: torch.Tensor
    no_target_prob: torch.Tensor
    token_attention: torch.Tensor
    phrases: list[dict[int, PhraseSpan | None]]


def postprocess_batch(
    out: dict[str, torch.Tensor],
    size_hw: tuple[int, int],
    thresholds: Thresholds,
    encodings,
    blank_on_no_target: bool,
    rule: GroundingRule = GroundingRule(),
) -> BatchPrediction:
    """Backend torch outputs (see backends/base.py) to a BatchPrediction at ``size_hw``.

    ``encodings``: per image an object with ``info.text``, ``offsets`` and ``word_ids``.
    """
    relevance = out['relevance'].float()
    nt_prob = out['no_target_prob'].float()
    no_target = nt_prob > thresholds.no_target
    b, n = relevance.shape
    order = relevance.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=order.device).expand(b, n))
    keep = (relevance > thresholds.relevance) & (rank < thresholds.max_instances)
    masks = (
        F.interpolate(
            out['mask_logits'].float(), size=size_hw, mode='bilinear', align_corners=False
        ).sigmoid()
        > thresholds.mask
    )
    merged = (
        F.interpolate(
            out['merged_mask'].float()[:, None], size=size_hw, mode='bilinear', align_corners=False
        )[:, 0]
        > thresholds.mask
    )
    keep = keep & masks.flatten(2).any(-1)
    if blank_on_no_target:
        keep = keep & ~no_target[:, None]
        merged = merged & ~no_target[:, None, None]
    attn = out['token_attention'].float()
    phrases = []
    attn_cpu, keep_cpu = attn.cpu().numpy(), keep.cpu()
    for i, enc in enumerate(encodings):
        length = len(enc.offsets)
        phrases.append(
            {
                int(q): ground_phrase(
                    enc.info.text, enc.offsets, attn_cpu[i, q, :length], enc.word_ids, rule
                )
                for q in torch.nonzero(keep_cpu[i]).flatten().tolist()
            }
        )
    return BatchPrediction(
        relevance=relevance,
        keep=keep,
        instance_masks=masks,
        final_mask=merged,
        no_target=no_target,
        no_target_prob=nt_prob,
        token_attention=attn,
        phrases=phrases,
    )
