"""The one post-processing path: model outputs to ``GresPrediction`` at the source resolution.

The predictor (every backend, every frame of the node and of bag replay) and the evaluation of
training and ``poa-gres eval`` call :func:`postprocess`; the rules are written once, here, and
described in docs/postprocessing.md.

Rules, per image (thresholds from ``core.thresholds.Thresholds``):

1. Query selection, before any resize: query i is a candidate when its relevance
   ``p_i > thresholds.relevance``; candidates are ordered by relevance, highest first, ties by
   query index (a stable order). Duplicates go (mask non-maximum suppression): in that order,
   a candidate whose stride-4 mask ``S_i > logit(thresholds.mask)`` has IoU >
   ``thresholds.duplicate_iou`` with an already kept candidate's is dropped. The first
   ``thresholds.max_instances`` left are kept.
2. Instance masks: the kept queries' stride-4 mask logits S_i are resized bilinearly
   (pixel-centre aligned, the inverse of the input resize, which does not keep the aspect
   ratio) to the output (H, W); the mask is ``sigmoid(S_i) > thresholds.mask`` (compared as
   ``S_i > logit(thresholds.mask)``). An instance whose mask is empty at (H, W) is dropped.
3. Merged mask: the model's merged mask M (relevance-weighted aggregation, a probability)
   resized the same way, ``M > thresholds.mask``, restricted to the union of the kept
   instance masks. Every merged-mask pixel belongs to a reported instance.
4. No-target: ``no_target_prob > thresholds.no_target``, or no instance is left after 2. A
   no-target answer has no instance and an empty merged mask; ``no_target_prob`` is reported
   as the model gave it.

Resizing: outputs that are numpy arrays or CPU tensors are resized with OpenCV
(``cv2.resize(INTER_LINEAR)``), outputs on a GPU with ``torch.nn.functional.interpolate(
'bilinear', align_corners=False)`` on that GPU (only the kept maps are copied back). Both
sample the same pixel centres; they differ by float rounding only (parity test at 480 x 640;
benchmarks/bench_postprocess.py measures both on a CPU).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from poa_gres_ros.core.grounding import GroundingRule, ground_phrase
from poa_gres_ros.core.results import GresPrediction, InstanceResult
from poa_gres_ros.core.thresholds import Thresholds

OUTPUT_NAMES = ('mask_logits', 'relevance', 'token_attention', 'merged_mask', 'no_target_prob')
RESIZERS = ('auto', 'cv2', 'torch')


@dataclass(frozen=True)
class InstructionTokens:
    """The tokenized instruction of one image, for phrase spans.

    Attributes:
        text: the instruction.
        offsets: L' (char_start, char_end) per token, (0, 0) for [CLS]/[SEP]/padding; L' <= the
            L of ``token_attention`` (the model may see extra padding).
        word_ids: L' word indices of the fast tokenizer (None for special tokens), or None.
    """

    text: str
    offsets: Sequence[tuple[int, int]]
    word_ids: Sequence[int | None] | None = None


def select_queries(relevance: np.ndarray, thresholds: Thresholds, cap: bool = True) -> np.ndarray:
    """Candidate query indices, rule 1: ``p > thresholds.relevance``, relevance descending,
    ties by query index; with ``cap``, at most ``thresholds.max_instances``.

    Args:
        relevance: (N,) float relevance scores p in [0, 1].
    Returns:
        (K,) int64 query indices (K <= max_instances with ``cap``).
    """
    rel = np.asarray(relevance, np.float64).reshape(-1)
    order = np.argsort(-rel, kind='stable')
    order = order[rel[order] > thresholds.relevance]
    return (order[: thresholds.max_instances] if cap else order).astype(np.int64)


def suppress_duplicates(masks: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Mask non-maximum suppression, rule 1: positions of the masks to keep, in order, each
    with IoU <= ``iou_threshold`` against every earlier kept one.

    Args:
        masks: (K, h, w) bool, highest relevance first.
        iou_threshold: in [0, 1]; two empty masks have IoU 0.
    Returns:
        (K',) int64 positions into ``masks``, ascending (the first is always kept).
    """
    flat = np.asarray(masks, bool).reshape(len(masks), -1)
    area = flat.sum(1)
    kept: list[int] = []
    for k in range(len(flat)):
        if kept:
            inter = (flat[kept] & flat[k]).sum(1)
            union = area[kept] + area[k] - inter
            iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
            if (iou > iou_threshold).any():
                continue
        kept.append(k)
    return np.asarray(kept, np.int64)


def mask_logit_cut(mask_threshold: float) -> float:
    """``logit(mask_threshold)`` (-inf at 0, +inf at 1): ``sigmoid(s) > t`` iff ``s > cut``."""
    if mask_threshold <= 0.0:
        return -math.inf
    if mask_threshold >= 1.0:
        return math.inf
    return math.log(mask_threshold) - math.log1p(-mask_threshold)


def resize_maps_cv2(maps: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (K, h, w) float maps to (K, H, W) float32 with OpenCV
    (``INTER_LINEAR``: pixel-centre aligned, no anti-aliasing), one map at a time: single-channel
    calls are the fast ones and keep every output map contiguous."""
    import cv2

    h, w = size_hw
    maps = np.asarray(maps, np.float32)
    if maps.shape[1:] == (h, w):
        return maps
    out = np.empty((maps.shape[0], h, w), np.float32)
    for k in range(maps.shape[0]):
        cv2.resize(np.ascontiguousarray(maps[k]), (w, h), out[k], interpolation=cv2.INTER_LINEAR)
    return out


def resize_maps_torch(maps, size_hw: tuple[int, int]):
    """Bilinear resize of a (K, h, w) tensor to (K, H, W) float32 on its own device
    (``F.interpolate(mode='bilinear', align_corners=False)``)."""
    import torch.nn.functional as F

    maps = maps.float()
    if maps.shape[0] == 0:
        return maps.new_zeros((0, *size_hw))
    if tuple(maps.shape[1:]) == tuple(size_hw):
        return maps
    return F.interpolate(maps[None], size=tuple(size_hw), mode='bilinear', align_corners=False)[0]


def _field(outputs, name: str):
    if isinstance(outputs, Mapping):
        if name not in outputs:
            raise KeyError(f'model outputs lack {name!r}; expected {OUTPUT_NAMES}')
        return outputs[name]
    try:
        return getattr(outputs, name)  # POAOutput: relevance, merged_mask, ... are properties
    except AttributeError:
        raise KeyError(f'model outputs lack {name!r}; expected {OUTPUT_NAMES}') from None


def _is_torch(x) -> bool:
    return type(x).__module__.startswith('torch')


def _rows(x, index: np.ndarray) -> np.ndarray:
    """``x[index]`` as float32 numpy (only these rows leave the device)."""
    if _is_torch(x):
        import torch

        return _numpy(x.index_select(0, torch.as_tensor(index, device=x.device)))
    return np.asarray(x, np.float32)[index]


def _numpy(x) -> np.ndarray:
    if _is_torch(x):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, np.float32)


def _resize_binary(maps, size_hw, cuts: np.ndarray, use_torch: bool) -> np.ndarray:
    """(K, h, w) maps -> (K, H, W) bool: resized map k > cuts[k]."""
    if use_torch:
        import torch

        up = resize_maps_torch(maps, size_hw)
        cut = torch.as_tensor(cuts, dtype=up.dtype, device=up.device)
        return (up > cut[:, None, None]).cpu().numpy()
    up = resize_maps_cv2(_numpy(maps), size_hw)
    return up > cuts.astype(np.float32)[:, None, None]


def _sizes(sizes_hw, batch: int) -> list[tuple[int, int]]:
    if len(sizes_hw) == 2 and all(isinstance(v, int | np.integer) for v in sizes_hw):
        sizes = [tuple(int(v) for v in sizes_hw)] * batch
    else:
        sizes = [tuple(int(v) for v in s) for s in sizes_hw]
    if len(sizes) != batch:
        raise ValueError(f'{len(sizes)} output sizes for a batch of {batch}')
    for s in sizes:
        if len(s) != 2 or min(s) < 1:
            raise ValueError(f'output size must be (H, W) with H, W >= 1, got {s}')
    return sizes


def postprocess(
    outputs,
    sizes_hw,
    thresholds: Thresholds,
    tokens: Sequence[InstructionTokens | None] | None = None,
    rule: GroundingRule = GroundingRule(),
    resize: str = 'auto',
) -> list[GresPrediction]:
    """Turn a batch of model outputs into one ``GresPrediction`` per image (module docstring).

    Args:
        outputs: a mapping with ``OUTPUT_NAMES`` (a backend's ``run_vision`` /
            ``run_vision_torch``, ``POAModel.vision_outputs``) or an object with those
            attributes (``POAOutput``): 'mask_logits' (B, N, h, w) pre-sigmoid,
            'relevance' (B, N) in [0, 1], 'token_attention' (B, N, L), 'merged_mask'
            (B, h, w) in (0, 1), 'no_target_prob' (B,) in [0, 1]; numpy arrays or torch
            tensors (any float dtype, any device).
        sizes_hw: the output (H, W) in pixels, one for every image or a sequence of B.
        thresholds: the Thresholds.
        tokens: per image the tokenized instruction (phrase spans), or None (no phrases).
        rule: the phrase-span rule (core/grounding.py).
        resize: 'auto' (OpenCV on the CPU, torch on a GPU), 'cv2' or 'torch'.
    Returns:
        B GresPredictions: instances highest relevance first, masks (H, W) bool,
        ``instruction`` = ``tokens[b].text`` (empty without tokens).
    Raises:
        KeyError: an output is missing. ValueError: inconsistent batch sizes, a bad size or
        an unknown ``resize``. TypeError: thresholds is not a Thresholds.
    """
    if not isinstance(thresholds, Thresholds):
        raise TypeError(f'thresholds must be a Thresholds, got {type(thresholds).__name__}')
    if resize not in RESIZERS:
        raise ValueError(f'resize must be one of {RESIZERS}, got {resize!r}')
    logits = _field(outputs, 'mask_logits')
    merged = _field(outputs, 'merged_mask')
    attention = _field(outputs, 'token_attention')
    relevance = _numpy(_field(outputs, 'relevance'))
    nt_prob = _numpy(_field(outputs, 'no_target_prob')).reshape(-1)
    b = relevance.shape[0]
    if not (logits.shape[0] == merged.shape[0] == attention.shape[0] == nt_prob.shape[0] == b):
        raise ValueError('model outputs disagree on the batch size')
    if tokens is not None and len(tokens) != b:
        raise ValueError(f'{len(tokens)} tokenized instructions for a batch of {b}')
    sizes = _sizes(sizes_hw, b)
    on_gpu = _is_torch(logits) and logits.device.type != 'cpu'
    use_torch = resize == 'torch' or (resize == 'auto' and on_gpu)
    if use_torch and not _is_torch(logits):
        import torch

        logits, merged = torch.from_numpy(np.asarray(logits)), torch.from_numpy(np.asarray(merged))
    cut = mask_logit_cut(thresholds.mask)
    preds = []
    for i in range(b):
        tok = tokens[i] if tokens is not None else None
        args = (logits[i], merged[i], attention[i], relevance[i], float(nt_prob[i]), sizes[i])
        preds.append(_one(*args, thresholds, cut, tok, rule, use_torch))
    return preds


def _one(logits, merged, attention, relevance, nt_prob, size_hw, thr, cut, tok, rule, use_torch):
    text = tok.text if tok is not None else ''
    h, w = size_hw
    empty = GresPrediction([], np.zeros((h, w), bool), True, nt_prob, text)
    if nt_prob > thr.no_target:
        return empty
    keep = select_queries(relevance, thr, cap=False)
    if thr.duplicate_iou < 1.0 and keep.size > 1:
        small = _rows(logits, keep) > np.float32(cut)  # (K, h, w) stride-4 masks
        keep = keep[suppress_duplicates(small, thr.duplicate_iou)]
    keep = keep[: thr.max_instances]
    if keep.size == 0:
        return empty
    if use_torch:
        import torch

        idx = torch.as_tensor(keep, device=logits.device)
        maps = torch.cat([logits.index_select(0, idx).float(), merged[None].float()])
    else:
        maps = np.concatenate([_rows(logits, keep), _numpy(merged)[None]])
    cuts = np.array([cut] * keep.size + [thr.mask], np.float64)
    binary = _resize_binary(maps, size_hw, cuts, use_torch)
    att = _rows(attention, keep) if tok is not None else None
    instances = []
    for k, q in enumerate(keep.tolist()):
        mask = binary[k]
        if not mask.any():
            continue
        phrase = None
        if tok is not None:
            n = len(tok.offsets)
            phrase = ground_phrase(tok.text, tok.offsets, att[k, :n], tok.word_ids, rule)
        instances.append(InstanceResult(mask, float(relevance[q]), phrase, int(q)))
    if not instances:
        return empty
    union = np.logical_or.reduce([inst.mask for inst in instances])
    final = binary[-1] & union
    return GresPrediction(instances, final, False, nt_prob, text)
