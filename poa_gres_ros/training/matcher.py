"""Hungarian matching of decoder queries to referred GT instances (docs/method.md#matching).

Per image and per supervised decoder layer, the cost between query i and GT instance j is::

    C(i, j) = w_score * L_score(p_i) + w_bce * BCE_pts(S_i, s_j) + w_dice * Dice_pts(S_i, s_j)
              + w_phrase * (1 - cos(Q_i, P_i))

with ``L_score = -p_i`` (Mask2Former style, default) or ``-log p_i``, the mask terms on K points
drawn uniformly and shared by predictions and GT (Mask2Former
``HungarianMatcher.memory_efficient_forward``), and the POA term
(docs/method.md#phrase-object-alignment; it depends on the query only, so it shifts a whole row:
it changes *which* queries get matched). Solved with ``scipy.optimize.linear_sum_assignment``.
No-target images have no GT instances and get an empty assignment.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from poa_gres_ros.training.losses import batch_dice_cost, batch_sigmoid_ce_cost, poa_loss
from poa_gres_ros.training.point_sampling import point_sample, uniform_point_coords

SCORE_COSTS = ('neg_prob', 'neg_log_prob')


def hungarian(cost: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of rows (queries) to columns (GT instances).

    Args:
        cost: (N, K) float, N >= K; NaN or inf entries are rejected.
    Returns:
        ``(rows, cols)``, int64 arrays of length K, ``cols`` a permutation of range(K) and
        rows sorted ascending.
    Raises:
        ValueError: non-finite costs or fewer queries than GT instances.
    """
    c = cost.detach().cpu().numpy() if isinstance(cost, Tensor) else np.asarray(cost)
    if c.ndim != 2:
        raise ValueError(f'cost must be (N, K), got shape {c.shape}')
    if c.shape[1] > c.shape[0]:
        raise ValueError(
            f'{c.shape[1]} GT instances but only {c.shape[0]} queries: raise num_queries or '
            'drop references with more instances than queries'
        )
    if c.size and not np.isfinite(c).all():
        raise ValueError('matching cost has NaN/inf entries (diverged training? lower the LR)')
    rows, cols = linear_sum_assignment(c)
    return rows.astype(np.int64), cols.astype(np.int64)


class HungarianMatcher(torch.nn.Module):
    """Matches queries to GT instances per image (no gradient).

    Args:
        cost_score: weight of the relevance term (2.0).
        cost_bce: weight of the point-sampled mask BCE (5.0).
        cost_dice: weight of the point-sampled dice (5.0).
        cost_phrase: weight of the POA term (2.0; 0 = matching without POA).
        num_points: K uniform points per image (12544 in Mask2Former).
        score_cost: 'neg_prob' (-p) or 'neg_log_prob' (-log p).
    """

    def __init__(
        self,
        cost_score: float = 2.0,
        cost_bce: float = 5.0,
        cost_dice: float = 5.0,
        cost_phrase: float = 2.0,
        num_points: int = 12544,
        score_cost: str = 'neg_prob',
    ):
        super().__init__()
        if score_cost not in SCORE_COSTS:
            raise ValueError(f'score_cost must be one of {SCORE_COSTS}, got {score_cost!r}')
        if num_points < 1:
            raise ValueError(f'num_points must be >= 1, got {num_points}')
        self.cost_score = cost_score
        self.cost_bce = cost_bce
        self.cost_dice = cost_dice
        self.cost_phrase = cost_phrase
        self.num_points = num_points
        self.score_cost = score_cost

    @torch.no_grad()
    def cost_matrices(
        self, layer, gt_masks: list[Tensor], generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """Cost matrices per image.

        Args:
            layer: a ``POALayerOutput`` (fields ``mask_logits`` (B, N, Hm, Wm),
                ``relevance_logits`` (B, N), ``queries`` (B, N, C), ``phrase_embedding``
                (B, N, C)).
            gt_masks: B tensors (K_b, H, W) with values in [0, 1] (any resolution; K_b = 0
                for no-target).
            generator: optional RNG for the uniform points.
        Returns:
            B float32 CPU tensors (N, K_b).
        """
        if len(gt_masks) != layer.mask_logits.shape[0]:
            raise ValueError(f'{len(gt_masks)} GT entries for batch {layer.mask_logits.shape[0]}')
        out = []
        for b, tgt in enumerate(gt_masks):
            logits = layer.mask_logits[b].float()
            n = logits.shape[0]
            if tgt.shape[0] == 0:
                out.append(torch.zeros(n, 0))
                continue
            p = layer.relevance_logits[b].float().sigmoid()
            if self.score_cost == 'neg_prob':
                score = -p
            else:
                score = -torch.log(p.clamp_min(1e-8))
            cost = self.cost_score * score[:, None].expand(n, tgt.shape[0])
            if self.cost_bce or self.cost_dice:
                coords = uniform_point_coords(self.num_points, logits.device, generator)
                pred_pts = point_sample(logits[:, None], coords.expand(n, -1, -1))[:, 0]
                tgt_pts = point_sample(
                    tgt[:, None].to(logits), coords.expand(tgt.shape[0], -1, -1)
                )[:, 0]
                cost = cost + self.cost_bce * batch_sigmoid_ce_cost(pred_pts, tgt_pts)
                cost = cost + self.cost_dice * batch_dice_cost(pred_pts, tgt_pts)
            if self.cost_phrase:
                poa = poa_loss(layer.queries[b].float(), layer.phrase_embedding[b].float())
                cost = cost + self.cost_phrase * poa[:, None]
            out.append(cost.cpu())
        return out

    @torch.no_grad()
    def forward(
        self, layer, gt_masks: list[Tensor], generator: torch.Generator | None = None
    ) -> list[tuple[Tensor, Tensor]]:
        """Assignments per image: B pairs ``(query_idx, gt_idx)`` of int64 tensors (K_b,)."""
        result = []
        for cost in self.cost_matrices(layer, gt_masks, generator):
            rows, cols = hungarian(cost)
            result.append((torch.from_numpy(rows), torch.from_numpy(cols)))
        return result
