"""core.mask_geometry against a direct computation from the mask's pixel coordinates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poa_gres_ros.core.mask_geometry import mask_geometry
from poa_gres_ros.core.results import InstanceResult


def _reference(mask: np.ndarray):
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return box, int(ys.size), (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5)


def test_box_area_centroid_match_the_pixel_coordinates():
    rng = np.random.default_rng(3)
    for _ in range(30):
        mask = np.zeros((37, 53), bool)
        y0, x0 = rng.integers(0, 30), rng.integers(0, 45)
        mask[y0 : y0 + rng.integers(1, 8), x0 : x0 + rng.integers(1, 9)] = rng.random() < 0.9
        mask |= rng.random(mask.shape) < 0.01
        if not mask.any():
            continue
        box, area, centroid = mask_geometry(mask)
        ref_box, ref_area, ref_centroid = _reference(mask)
        assert (box, area) == (ref_box, ref_area)
        assert np.allclose(centroid, ref_centroid)
        inst = InstanceResult(mask, 0.5)
        assert (inst.box_xyxy_px, inst.area_px) == (box, area)


def test_single_pixel_and_empty_mask():
    mask = np.zeros((5, 7), bool)
    mask[2, 6] = True
    assert mask_geometry(mask) == ((6, 2, 7, 3), 1, (6.5, 2.5))
    box, area, (cx, cy) = mask_geometry(np.zeros((4, 4), bool))
    assert box == (0, 0, 0, 0) and area == 0 and math.isnan(cx) and math.isnan(cy)
    with pytest.raises(ValueError, match=r'\(H, W\)'):
        mask_geometry(np.zeros((2, 2, 3), bool))
