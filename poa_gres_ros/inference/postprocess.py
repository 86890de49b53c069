"""From backend outputs to result types at the source resolution.

Rules (docs/method.md#inference-output and core/thresholds.Thresholds):
* instance i is kept when p_i > thresholds.relevance, highest p first, at most
  thresholds.max_instances; its mask is ``sigmoid(upsample(S_i)) > thresholds.mask`` at the
  source (H, W) (bilinear upsampling of the stride-4 logits over the whole image, the inverse of
  the non-aspect-preserving resize); instances whose mask is empty at the source resolution are
  dropped;
* final mask = ``upsample(M) > thresholds.mask``;
* no-target = q_nt > thresholds.no_target; with ``heads.blank_mask_on_no_target`` the final
  mask is blanked and no instance is returned (docs/method.md#no-target).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from poa_gres_ros.core.results import InstanceResult, PhraseSpan
from poa_gres_ros.core.thresholds import Thresholds
from poa_gres_ros.modeling.grounding import GroundingRule, ground_phrase


def _logit(p: float) -> float:
    with np.errstate(divide='ignore'):
        return float(np.log(p) - np.log1p(-p))


def resize_maps(maps: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (K, h, w) float maps to (K, H, W) (cv2, pixel-centre aligned)."""
    import cv2

    k = maps.shape[0]
    h, w = size_hw
    if k == 0:
        return np.zeros((0, h, w), np.float32)
    out = []
    for start in range(0, k, 256):  # cv2 handles up to 512 channels per call
        chunk = np.ascontiguousarray(maps[start : start + 256].transpose(1, 2, 0), np.float32)
        res = cv2.resize(chunk, (w, h), interpolation=cv2.INTER_LINEAR)
        out.append(res.reshape(h, w, -1).transpose(2, 0, 1))
    return np.concatenate(out, 0)


def select_instances(relevance: np.ndarray, thresholds: Thresholds) -> np.ndarray:
    """Indices of kept queries, highest relevance first. relevance: (N,) in [0, 1]."""
    order = np.argsort(-relevance, kind='stable')
    order = order[relevance[order] > thresholds.relevance]
    return order[: thresholds.max_instances]


def postprocess_single(
    outputs: dict[str, np.ndarray],
    size_hw: tuple[int, int],
    thresholds: Thresholds,
    text: str,
    offsets: Sequence[tuple[int, int]],
    word_ids: Sequence[int | None] | None,
    blank_on_no_target: bool = True,
    rule: GroundingRule = GroundingRule(),
) -> tuple[list[InstanceResult], np.ndarray, bool, float]:
    """One image's outputs (batch index already removed) to results.

    Args:
        outputs: 'mask_logits' (N, h, w), 'relevance' (N,), 'token_attention' (N, L),
            'merged_mask' (h, w), 'no_target_prob' () from a backend.
        size_hw: source image (H, W). text/offsets/word_ids: the tokenized instruction.
    Returns:
        (instances, final_mask (H, W) bool, no_target, no_target_prob).
    """
    nt_prob = float(outputs['no_target_prob'])
    no_target = nt_prob > thresholds.no_target
    h, w = size_hw
    if no_target and blank_on_no_target:
        return [], np.zeros((h, w), bool), True, nt_prob
    cut = _logit(thresholds.mask)
    relevance = np.asarray(outputs['relevance'], np.float32)
    keep = select_instances(relevance, thresholds)
    masks = resize_maps(np.asarray(outputs['mask_logits'])[keep], size_hw) > cut
    instances = []
    for q, mask in zip(keep.tolist(), masks):
        if not mask.any():
            continue
        phrase: PhraseSpan | None = ground_phrase(
            text, offsets, outputs['token_attention'][q], word_ids, rule
        )
        instances.append(
            InstanceResult(
                mask=mask, relevance=float(relevance[q]), phrase=phrase, query_index=int(q)
            )
        )
    merged = np.asarray(outputs['merged_mask'], np.float32)[None]
    final = resize_maps(merged, size_hw)[0] > thresholds.mask
    return instances, final, no_target, nt_prob
