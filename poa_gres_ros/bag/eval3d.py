"""Per-instance 3D errors of a replay against the bag's ground truth.

Method: docs/geometry3d.md#ground-truth.

Per frame with ground truth and depth, predicted instances are matched to true instances by
mask IoU (Hungarian assignment, ``scipy.optimize.linear_sum_assignment``). For every true
instance the record holds the IoU of its match and, when IoU >= :data:`MATCH_IOU` and both
have valid 3D, the centroid error (mm) against the true visible surface, the distance to the
simulator's object position (mm, for information) and the predicted instance's depth
coverage. Offline replay adds the lifting error with the ground-truth mask: the node's lifting
(``core.geometry3d.lift_instance``) applied to the exact mask and the bag's depth.
"""

from __future__ import annotations

import numpy as np

MATCH_IOU = 0.5
"""Predicted and true instance count as the same object from this mask IoU on."""


def match_instances(pred_masks, gt_masks) -> list[tuple[int, int, float]]:
    """Hungarian matching of (N, H, W) predicted to (M, H, W) true masks by IoU:
    ``core.instance_metrics.match_instances`` with no IoU floor.

    Returns:
        (pred index, true index, IoU) for each assigned pair (min(N, M) pairs; IoU may be 0).
    """
    from poa_gres_ros.core.instance_metrics import match_instances as match

    return match(pred_masks, gt_masks, iou_threshold=0.0)


def _as_dict(geo) -> dict:
    """Instance3D or a ``conversions.depth3d.geometry_from_msg`` dict -> the fields used."""
    if isinstance(geo, dict):
        return geo
    return {
        'valid': geo.valid,
        'centroid_m': geo.centroid_m,
        'missing_depth_fraction': geo.missing_depth_fraction,
    }


def _dist_mm(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)) * 1e3)


def frame_errors(pred_masks, pred_geometry, gt, gt_lifted=None) -> list[dict]:
    """3D error records of one frame, one per true instance (module docstring).

    Args:
        pred_masks: (H, W) bool masks of the predicted instances.
        pred_geometry: their geometry (Instance3D or geometry dicts), None when the frame got
            no 3D (then only IoU is recorded).
        gt: the frame's ``timeline.GroundTruth`` (with instance masks and geometry).
        gt_lifted: optional Instance3D per true instance lifted from its exact mask.
    Returns:
        dicts with ``gt_index``, ``iou``, ``centroid_error_mm``, ``sim_distance_mm``,
        ``coverage``, ``gt_mask_lift_error_mm`` (None where not defined).
    """
    gt_masks = gt.instance_masks()
    pairs = {j: (i, iou) for i, j, iou in match_instances(pred_masks, gt_masks)}
    out = []
    for j, gt_geo in enumerate(gt.geometry):
        rec = {
            'gt_index': j,
            'iou': None,
            'centroid_error_mm': None,
            'sim_distance_mm': None,
            'coverage': None,
            'gt_mask_lift_error_mm': None,
        }
        truth_ok = gt.depth_ok and gt_geo['valid']
        if gt_lifted is not None and truth_ok and gt_lifted[j].valid:
            rec['gt_mask_lift_error_mm'] = _dist_mm(gt_lifted[j].centroid_m, gt_geo['centroid_m'])
        if j in pairs:
            i, iou = pairs[j]
            rec['iou'] = iou
            geo = _as_dict(pred_geometry[i]) if pred_geometry is not None else None
            if iou >= MATCH_IOU and geo is not None and geo['valid'] and truth_ok:
                rec['centroid_error_mm'] = _dist_mm(geo['centroid_m'], gt_geo['centroid_m'])
                rec['coverage'] = 1.0 - float(geo['missing_depth_fraction'])
                if gt.object_positions_m is not None and j < len(gt.object_positions_m):
                    rec['sim_distance_mm'] = _dist_mm(geo['centroid_m'], gt.object_positions_m[j])
        out.append(rec)
    return out


def _stats(values) -> dict:
    v = np.asarray([x for x in values if x is not None], np.float64)
    if v.size == 0:
        return {'count': 0, 'median': None, 'p90': None, 'mean': None}
    return {
        'count': int(v.size),
        'median': float(np.median(v)),
        'p90': float(np.percentile(v, 90)),
        'mean': float(v.mean()),
    }


def summarize(records) -> dict:
    """Aggregate the ``errors_3d`` lists of replay records (one list per frame).

    Returns:
        ``{'true_instances', 'matched_iou50', 'centroid_error_mm', 'sim_distance_mm',
        'coverage', 'gt_mask_lift_error_mm'}``; each error entry holds count / median / p90 /
        mean (None when empty).
    """
    recs = [e for r in records for e in (r.get('errors_3d') or [])]
    return {
        'true_instances': len(recs),
        'matched_iou50': sum(1 for e in recs if (e['iou'] or 0.0) >= MATCH_IOU),
        'centroid_error_mm': _stats(e['centroid_error_mm'] for e in recs),
        'sim_distance_mm': _stats(e['sim_distance_mm'] for e in recs),
        'coverage': _stats(e['coverage'] for e in recs),
        'gt_mask_lift_error_mm': _stats(e['gt_mask_lift_error_mm'] for e in recs),
    }
