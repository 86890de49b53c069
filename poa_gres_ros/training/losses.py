"""Elementary loss terms shared by the matcher and the criterion.

Sources: Mask2Former ``mask2former/modeling/criterion.py`` (``dice_loss``,
``sigmoid_ce_loss``) and ``matcher.py`` (``batch_dice_loss``, ``batch_sigmoid_ce_loss``);
the POA term is docs/method.md#phrase-object-alignment: ``l_POA = 1 - cos(Q_i, P_i)``.
All inputs are logits (pre-sigmoid); targets are in [0, 1] (soft targets allowed).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def dice_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-row soft dice loss ``1 - (2 sum(p t) + 1) / (sum p + sum t + 1)``.

    Args:
        logits: (R, P) float logits (points or flattened pixels).
        targets: (R, P) float in [0, 1].
    Returns:
        (R,) float, in [0, 1).
    """
    p = logits.sigmoid()
    num = 2 * (p * targets).sum(-1)
    den = p.sum(-1) + targets.sum(-1)
    return 1 - (num + 1) / (den + 1)


def sigmoid_ce_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Per-row mean binary cross-entropy with logits.

    Args:
        logits: (R, P) float. targets: (R, P) float in [0, 1].
    Returns:
        (R,) float >= 0.
    """
    return F.binary_cross_entropy_with_logits(logits, targets, reduction='none').mean(-1)


def batch_dice_cost(logits: Tensor, targets: Tensor) -> Tensor:
    """Pairwise dice cost between every prediction and every target.

    Args:
        logits: (N, P) prediction logits at P points. targets: (K, P) in [0, 1].
    Returns:
        (N, K) float; entry (i, j) equals ``dice_loss(logits[i], targets[j])``.
    """
    p = logits.sigmoid()
    num = 2 * p @ targets.T
    den = p.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (num + 1) / (den + 1)


def batch_sigmoid_ce_cost(logits: Tensor, targets: Tensor) -> Tensor:
    """Pairwise mean BCE between every prediction and every target.

    Args:
        logits: (N, P). targets: (K, P) in [0, 1].
    Returns:
        (N, K) float; entry (i, j) equals ``sigmoid_ce_loss(logits[i], targets[j])``.
    """
    npts = logits.shape[1]
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction='none')
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction='none')
    return (pos @ targets.T + neg @ (1 - targets).T) / npts


def poa_loss(queries: Tensor, phrase_embedding: Tensor, eps: float = 1e-8) -> Tensor:
    """Phrase-Object Alignment term per query: ``1 - cos(Q_i, P_i)``.

    Method: docs/method.md#phrase-object-alignment.

    Args:
        queries: (..., C) query features Q_k (after the decoder norm).
        phrase_embedding: (..., C) soft phrase embeddings P_k = R_k T_k.
    Returns:
        (...) float in [0, 2].
    """
    return 1 - F.cosine_similarity(queries, phrase_embedding, dim=-1, eps=eps)
