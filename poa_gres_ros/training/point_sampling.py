"""Point sampling for mask losses and matching costs (Mask2Former / PointRend).

Mask2Former computes its mask BCE and dice on K sampled points instead of every pixel
(docs/method.md#matching, docs/method.md#losses): uniform points for the Hungarian cost, and
uncertainty-based importance sampling for the loss (oversample 3.0, importance 0.75).
Source: facebookresearch/Mask2Former ``mask2former/modeling/criterion.py`` and
``detectron2/projects/PointRend/point_features.py`` (``point_sample``,
``get_uncertain_point_coords_with_randomness``, ``calculate_uncertainty``).

Coordinates are normalised to [0, 1] x [0, 1] as ``(x, y)``; ``grid_sample`` with
``align_corners=False`` maps them onto pixel centres the same way for every resolution, so a
prediction at stride 4 and a GT mask at the input size are sampled at the same places.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def point_sample(features: Tensor, point_coords: Tensor, align_corners: bool = False) -> Tensor:
    """Bilinearly sample ``features`` at normalised points (PointRend ``point_sample``).

    Args:
        features: (B, C, H, W) float.
        point_coords: (B, P, 2) float (x, y) in [0, 1] (or (B, Hp, Wp, 2) for a grid).
        align_corners: passed to ``F.grid_sample``; False as in Mask2Former.
    Returns:
        (B, C, P) (or (B, C, Hp, Wp)), same dtype as ``features``.
    """
    add_dim = point_coords.dim() == 3
    grid = point_coords.unsqueeze(2) if add_dim else point_coords
    grid = (2.0 * grid - 1.0).to(features.dtype)
    out = F.grid_sample(features, grid, mode='bilinear', align_corners=align_corners)
    return out.squeeze(3) if add_dim else out


def uncertainty(logits: Tensor) -> Tensor:
    """Mask2Former ``calculate_uncertainty``: ``-|logit|`` (highest at the decision boundary).

    Args:
        logits: (R, 1, P) mask logits at points.
    Returns:
        (R, 1, P), larger = more uncertain.
    """
    return -logits.abs()


def uncertain_point_coords(
    coarse_logits: Tensor,
    num_points: int,
    oversample_ratio: float = 3.0,
    importance_sample_ratio: float = 0.75,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Importance-sampled points (PointRend ``get_uncertain_point_coords_with_randomness``).

    Draws ``int(num_points * oversample_ratio)`` uniform points, keeps the
    ``int(importance_sample_ratio * num_points)`` most uncertain of them (by
    :func:`uncertainty` of ``coarse_logits``) and fills up with fresh uniform points.

    Args:
        coarse_logits: (R, 1, H, W) mask logits, one row per matched prediction.
        num_points: K points per row, >= 1.
        oversample_ratio: >= 1.
        importance_sample_ratio: in [0, 1].
        generator: optional torch RNG for reproducible draws (on the logits' device).
    Returns:
        (R, K, 2) float (x, y) in [0, 1], no gradient.
    Raises:
        ValueError: ratios or ``num_points`` out of range.
    """
    if num_points < 1 or oversample_ratio < 1 or not 0.0 <= importance_sample_ratio <= 1.0:
        raise ValueError(
            f'need num_points >= 1, oversample_ratio >= 1 and importance_sample_ratio in '
            f'[0, 1]; got {num_points}, {oversample_ratio}, {importance_sample_ratio}'
        )
    r = coarse_logits.shape[0]
    dev = coarse_logits.device
    num_sampled = int(num_points * oversample_ratio)
    num_uncertain = int(importance_sample_ratio * num_points)
    coords = torch.rand(r, num_sampled, 2, device=dev, generator=generator)
    with torch.no_grad():
        unc = uncertainty(point_sample(coarse_logits.detach().float(), coords))[:, 0, :]
        idx = torch.topk(unc, k=num_uncertain, dim=1).indices
    picked = torch.gather(coords, 1, idx.unsqueeze(-1).expand(-1, -1, 2))
    rest = num_points - num_uncertain
    if rest > 0:
        fresh = torch.rand(r, rest, 2, device=dev, generator=generator)
        picked = torch.cat([picked, fresh], dim=1)
    return picked


def uniform_point_coords(
    num_points: int, device: torch.device | str = 'cpu', generator: torch.Generator | None = None
) -> Tensor:
    """(1, K, 2) uniform points in [0, 1], shared by predictions and GT in the matcher."""
    return torch.rand(1, num_points, 2, device=device, generator=generator)
