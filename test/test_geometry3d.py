"""core.geometry3d: depth decoding, intrinsics, back-projection, robust per-instance geometry,
and the renderer's depth + K against a sphere of known position (real PyBullet)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poa_gres_ros.core.geometry3d import (
    PinholeIntrinsics,
    align_depth,
    backproject,
    centroid_error_mm,
    decode_depth,
    lift_instance,
    visible_surface,
)

INTR = PinholeIntrinsics(500.0, 480.0, 319.5, 239.0, 640, 480)


def _plane_depth(z=1.0, h=480, w=640):
    return np.full((h, w), z, np.float32)


def _rect(x0, y0, x1, y1, h=480, w=640):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_decode_16uc1_millimetres_with_padding_and_byte_order():
    mm = np.array([[0, 1000, 65535], [250, 1, 2]], np.uint16)
    for big in (False, True):
        raw = mm.astype('>u2' if big else '<u2').tobytes()
        rows = [raw[i * 6 : (i + 1) * 6] + b'\xff\xff' for i in range(2)]  # 2 padding bytes
        d = decode_depth(b''.join(rows), '16UC1', 2, 3, 8, is_bigendian=big)
        assert d.dtype == np.float32 and d.shape == (2, 3)
        assert np.isnan(d[0, 0])  # 0 mm = no depth
        assert d[0, 1] == pytest.approx(1.0) and d[0, 2] == pytest.approx(65.535)
        assert d[1, 0] == pytest.approx(0.25) and d[1, 1] == pytest.approx(0.001)


def test_decode_32fc1_metres_invalid_values_become_nan():
    m = np.array([[1.5, np.nan, np.inf, 0.0, -1.0, 0.3]], np.float32)
    d = decode_depth(m.tobytes(), '32FC1', 1, 6, 24)
    assert d[0, 0] == pytest.approx(1.5) and d[0, 5] == pytest.approx(0.3)
    assert np.isnan(d[0, 1:5]).all()


@pytest.mark.parametrize(
    'encoding,size,step,match',
    [('rgb8', 12, 6, 'not supported'), ('16UC1', 10, 6, 'expected'), ('32FC1', 12, 4, 'step')],
)
def test_decode_rejects_unknown_encoding_and_bad_sizes(encoding, size, step, match):
    with pytest.raises(ValueError, match=match):
        decode_depth(bytes(size), encoding, 2, 3 if encoding != '32FC1' else 2, step)


def test_intrinsics_from_k_rejects_uncalibrated_and_scales_pixel_centres():
    with pytest.raises(ValueError, match='all zeros'):
        PinholeIntrinsics.from_k([0.0] * 9, 640, 480)
    with pytest.raises(ValueError, match='focal'):
        PinholeIntrinsics.from_k([0, 0, 320, 0, 500, 240, 0, 0, 1], 640, 480)
    intr = PinholeIntrinsics.from_k([600, 0, 319.5, 0, 600, 239.5, 0, 0, 1], 640, 480)
    half = intr.scaled_to(320, 240)
    # the centre of the image stays the centre: (319.5 + 0.5) / 2 - 0.5 = 159.5
    assert (half.fx, half.cx, half.cy) == (300.0, 159.5, 119.5)
    with pytest.raises(ValueError, match='aspect'):
        intr.scaled_to(640, 400)


def test_align_depth_nearest_neighbour_and_aspect_check():
    small = np.arange(12, dtype=np.float32).reshape(3, 4)
    big = align_depth(small, (6, 8))
    assert big.shape == (6, 8)
    assert np.array_equal(big[::2, ::2], small) and np.array_equal(big[1::2, 1::2], small)
    assert align_depth(small, (3, 4)) is small
    with pytest.raises(ValueError, match='aligned'):
        align_depth(small, (6, 6))


def test_backproject_inverts_the_pinhole_projection():
    rng = np.random.default_rng(0)
    pts = rng.uniform([-0.3, -0.2, 0.4], [0.3, 0.2, 2.0], size=(50, 3))
    u = INTR.fx * pts[:, 0] / pts[:, 2] + INTR.cx
    v = INTR.fy * pts[:, 1] / pts[:, 2] + INTR.cy
    back = backproject(u, v, pts[:, 2], INTR)
    assert np.allclose(back, pts, atol=1e-5)


def test_plane_patch_centroid_box_count_and_missing_fraction():
    depth = _plane_depth(1.2)
    mask = _rect(300, 200, 340, 260)  # 40 x 60 px
    depth[200:210, 300:340] = np.nan  # the top 10 rows have no depth
    inst = lift_instance(mask, depth, INTR, erode_px=0)
    assert inst.valid and inst.num_points == 40 * 50
    assert inst.missing_depth_fraction == pytest.approx(10 / 60)
    # per-axis median of columns 300..339 and rows 210..259
    cx = (319.5 - INTR.cx) * 1.2 / INTR.fx
    cy = (234.5 - INTR.cy) * 1.2 / INTR.fy
    assert np.allclose(inst.centroid_m, [cx, cy, 1.2], atol=1e-4)
    assert inst.box_min_m[0] == pytest.approx((300 - INTR.cx) * 1.2 / INTR.fx, abs=1e-5)
    assert inst.box_max_m[1] == pytest.approx((259 - INTR.cy) * 1.2 / INTR.fy, abs=1e-5)
    assert inst.box_size_m[2] == pytest.approx(0.0, abs=1e-6)
    assert inst.points_m.shape == (2000, 3) and inst.points_m.dtype == np.float32
    eroded = lift_instance(mask, depth, INTR, erode_px=2)
    assert eroded.num_points == (40 - 4) * (60 - 10 - 2)  # the mask erodes, not the holes


def test_mask_bleeding_onto_the_background_barely_moves_the_robust_centroid():
    depth = _plane_depth(1.0)  # the table, 1 m away
    depth[200:280, 280:360] = 0.8  # an 80 x 80 px box face 20 cm in front of it
    truth = visible_surface(_rect(280, 200, 360, 280), depth, INTR)
    sloppy = _rect(272, 192, 368, 288)  # a mask 8 px too wide on every side: 31 % background
    plain = visible_surface(sloppy, depth, INTR)
    robust = lift_instance(sloppy, depth, INTR, erode_px=2)
    assert centroid_error_mm(plain, truth) > 40.0  # the mean is pulled towards the table
    assert centroid_error_mm(robust, truth) < 2.0
    assert robust.box_max_m[2] == pytest.approx(0.8, abs=1e-6)  # table points rejected
    assert robust.num_points == 80 * 80  # the 92 x 92 eroded mask less its table ring


def test_principal_axis_of_a_rod_and_none_for_a_disc():
    depth = np.full((480, 640), np.nan, np.float32)
    rod = np.zeros((480, 640), bool)
    for k in range(-80, 81):  # a 45 degree diagonal bar, 7 px thick
        rod[240 + k, 320 + k - 3 : 320 + k + 4] = True
    depth[rod] = 0.9
    inst = lift_instance(rod, depth, INTR, erode_px=0)
    assert inst.orientation_valid
    major = inst.rotation[:, 0]
    # image diagonal (du, dv) = (1, 1) -> optical-frame direction (1/fx, 1/fy, 0) normalised
    want = np.array([1 / INTR.fx, 1 / INTR.fy, 0.0])
    assert abs(major @ want / np.linalg.norm(want)) > 0.999
    assert major[0] > 0 and inst.rotation[2, 2] < 0  # sign rules: x >= 0, minor axis to camera
    assert np.allclose(inst.rotation.T @ inst.rotation, np.eye(3), atol=1e-9)
    assert np.linalg.det(inst.rotation) == pytest.approx(1.0)
    q = inst.quaternion_xyzw()
    assert np.linalg.norm(q) == pytest.approx(1.0)
    assert inst.principal_extent_m[0] > 5 * inst.principal_extent_m[1]
    yy, xx = np.mgrid[:480, :640]
    disc = (xx - 320) ** 2 + (yy - 240) ** 2 <= 40**2
    d2 = _plane_depth(0.9)
    assert not lift_instance(disc, d2, INTR).orientation_valid


def test_too_few_points_empty_mask_and_size_mismatch():
    depth = np.full((480, 640), np.nan, np.float32)
    depth[10, 10:15] = 1.0
    few = lift_instance(_rect(10, 10, 20, 12), depth, INTR)
    assert not few.valid and few.num_points == 5 and few.missing_depth_fraction == 0.75
    assert math.isnan(few.centroid_m[0]) and few.points_m.shape == (0, 3)
    empty = lift_instance(np.zeros((480, 640), bool), depth, INTR)
    assert not empty.valid and empty.missing_depth_fraction == 1.0
    assert math.isnan(centroid_error_mm(few, empty))
    with pytest.raises(ValueError, match='one size'):
        lift_instance(np.zeros((240, 320), bool), depth, INTR)


def test_renderer_depth_and_k_put_the_visible_surface_on_the_sphere():
    pytest.importorskip('pybullet')
    from poa_gres_ros.tabletop.camera import TABLE_TOP_Z_M, orbit_pose
    from poa_gres_ros.tabletop.scene import ObjectSpec, SceneSpec, TabletopScene

    spec = ObjectSpec('sphere', 'red', (0.9, 0.1, 0.1, 1), 'big', 1.3, (0.05, -0.04, 0.7), 0.0)
    with TabletopScene(SceneSpec(0, 'any', (spec,), (1, 1, 1, 1), (0.5, 0.5, 0.5, 1))) as scene:
        (sphere,) = scene.objects
        pose = orbit_pose((0.0, 0.0, TABLE_TOP_Z_M), 0.7, 30.0, 50.0, roll_deg=2.0)
        view = scene.render(pose)
    intr = PinholeIntrinsics.from_k(pose.K, pose.width_px, pose.height_px)
    surf = visible_surface(view.mask(0), view.depth_m, intr)
    T_cw = np.linalg.inv(pose.T_world_camera)
    centre = T_cw[:3, :3] @ np.asarray(sphere.centre_xyz_m) + T_cw[:3, 3]
    radius = 0.5 * (sphere.aabb_max_m[0] - sphere.aabb_min_m[0])
    dist = np.linalg.norm(surf.points_m.astype(np.float64) - centre, axis=1)
    # every visible point lies on the sphere: depth linearisation, K and the pose agree
    assert np.median(np.abs(dist - radius)) < 0.002
    assert surf.missing_depth_fraction == 0.0
