"""Tabletop scenes with real PyBullet: determinism, intrinsics, masks, compositional rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poa_gres_ros.tabletop.camera import TABLE_TOP_Z_M, CameraPose, Lighting, orbit_pose
from poa_gres_ros.tabletop.catalog import HELD_OUT_PAIRS
from poa_gres_ros.tabletop.render import MIN_VISIBLE_AREA_PX, sample_view
from poa_gres_ros.tabletop.scene import (
    ObjectSpec,
    SceneSpec,
    TabletopScene,
    build_scene,
    quiet_client,
    sample_scene_spec,
)

pytest.importorskip('pybullet')


def test_scene_spec_is_a_function_of_the_seed():
    assert sample_scene_spec(11) == sample_scene_spec(11)
    assert sample_scene_spec(11) != sample_scene_spec(12)
    specs = [sample_scene_spec(s) for s in range(200)]
    assert {len(s.objects) for s in specs} == set(range(2, 11))
    with pytest.raises(ValueError):
        sample_scene_spec(-1)
    with pytest.raises(ValueError):
        sample_scene_spec(1, composition='mixed')
    with pytest.raises(ValueError):
        sample_scene_spec(1, n_objects=11)


def test_held_out_pairs_only_in_compositional_scenes():
    for seed in range(1500):
        pairs = {(o.colour, o.type_key) for o in sample_scene_spec(seed, 'exclude').objects}
        assert not pairs & HELD_OUT_PAIRS, seed
    for seed in range(300):
        pairs = {(o.colour, o.type_key) for o in sample_scene_spec(seed, 'require').objects}
        assert pairs & HELD_OUT_PAIRS, seed


def test_same_seed_same_pixels_in_any_client_state():
    pose = orbit_pose((0.0, 0.0, TABLE_TOP_Z_M), 0.8, 30.0, 55.0)
    light = Lighting(shadow=True)
    with build_scene(5) as a:
        va = a.render(pose, light)
        centres = [o.centre_xyz_m for o in a.objects]
    client = quiet_client()
    try:
        TabletopScene(sample_scene_spec(9), client)  # a different scene first
        b = TabletopScene(sample_scene_spec(5), client)
        vb = b.render(pose, light)
        assert [o.centre_xyz_m for o in b.objects] == centres
        assert np.array_equal(va.rgb, vb.rgb)
        assert np.array_equal(va.instance_map, vb.instance_map)
    finally:
        client.disconnect()


def _one_sphere_scene(x=0.05, y=-0.04, extra=()):
    sphere = ObjectSpec(
        'sphere', 'red', (0.9, 0.1, 0.1, 1.0), 'big', 1.3, (x, y, TABLE_TOP_Z_M + 0.05), 0.0
    )
    return TabletopScene(SceneSpec(0, 'any', (sphere, *extra), (1, 1, 1, 1), (0.5, 0.5, 0.5, 1)))


@pytest.mark.parametrize('az,el,fov', [(0.0, 60.0, 55.0), (135.0, 40.0, 45.0)])
def test_intrinsics_project_the_sphere_centre_onto_its_mask(az, el, fov):
    with _one_sphere_scene() as scene:
        (sphere,) = scene.objects
        pose = orbit_pose((0.0, 0.0, TABLE_TOP_Z_M), 0.7, az, el, roll_deg=3.0, fov_y_deg=fov)
        view = scene.render(pose)
        u, v = pose.project([sphere.centre_xyz_m])[0]
        ys, xs = np.nonzero(view.mask(0))
        # OpenCV convention: pixel (x, y) has its centre at integer (x, y). The residual of a
        # sphere's mask centroid is < 0.25 px here; a principal point off by half a pixel
        # (the ideal (W - 1) / 2, (H - 1) / 2) would leave 0.5 px.
        assert abs(xs.mean() - u) < 0.3 and abs(ys.mean() - v) < 0.3
        K = pose.K
        assert K[0, 2] == pose.width_px / 2 and K[0, 0] == K[1, 1]
        assert math.isclose(K[1, 1], 240 / math.tan(math.radians(fov) / 2))
        T = pose.T_world_camera  # the optical axis points at the look-at point
        assert np.allclose(T[:3, 3], pose.eye_xyz_m)
        assert np.allclose(pose.project([pose.target_xyz_m])[0], K[:2, 2])


def test_objects_that_fall_off_the_table_are_dropped():
    far = ObjectSpec('cube', 'blue', (0.1, 0.2, 0.9, 1.0), 'small', 0.8, (2.0, 0.0, 0.9), 0.0)
    with _one_sphere_scene(extra=(far,)) as scene:
        assert [o.type_key for o in scene.objects] == ['sphere']
        assert [o.type_key for o in scene.dropped] == ['cube']
        assert scene.objects[0].centre_xyz_m[2] > TABLE_TOP_Z_M


def test_masks_visibility_and_view_sampling():
    with build_scene(21) as scene:
        view = sample_view(scene, np.random.default_rng(4))
        assert view.rgb.shape == (480, 640, 3) and view.rgb.dtype == np.uint8
        assert len(view.well_visible()) >= 2
        assert set(np.unique(view.instance_map)) - {-1} == set(view.in_view)
        for i, seen in view.in_view.items():
            m = view.mask(i)
            assert seen.area_px == int(m.sum()) > 0
            assert seen.well_visible == (
                seen.area_px >= MIN_VISIBLE_AREA_PX
                and min(
                    seen.box_xyxy_px[2] - seen.box_xyxy_px[0],
                    seen.box_xyxy_px[3] - seen.box_xyxy_px[1],
                )
                >= 8
            )
        again = sample_view(scene, np.random.default_rng(4))
        assert again.pose == view.pose and np.array_equal(again.rgb, view.rgb)
        assert np.all(view.depth_m > 0.05) and np.all(view.depth_m <= view.pose.far_m + 1e-3)


def test_camera_pose_checks_and_interpolation():
    with pytest.raises(ValueError):
        CameraPose((0, 0, 1), (0, 0, 0), fov_y_deg=0.0)
    with pytest.raises(ValueError):
        CameraPose((0, 0, 1), (0, 0, 0), up_xyz=(0, 0, 1))  # looking along up
    with pytest.raises(ValueError):
        orbit_pose((0, 0, 0), 0.5, 0.0, 90.0)
    a = orbit_pose((0, 0, 0.6), 0.8, 0.0, 50.0)
    b = orbit_pose((0.1, 0, 0.6), 0.6, 40.0, 45.0, fov_y_deg=50.0)
    assert a.lerp(b, 0.0) == a
    assert np.allclose(a.lerp(b, 1.0).eye_xyz_m, b.eye_xyz_m)
    assert a.lerp(b, 0.5).fov_y_deg == pytest.approx(52.5)
