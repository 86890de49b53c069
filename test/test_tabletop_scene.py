"""Tabletop scenes with real PyBullet: determinism, intrinsics, masks, compositional rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poa_gres_ros.tabletop.camera import (
    RESOLUTIONS,
    TABLE_TOP_Z_M,
    CameraPose,
    CameraRanges,
    Lighting,
    LightingRanges,
    black_body_rgb,
    draw_orbit,
    orbit_pose,
    sample_camera_pose,
    sample_lighting,
    vertical_fov_deg,
)
from poa_gres_ros.tabletop.catalog import HELD_OUT_PAIRS
from poa_gres_ros.tabletop.render import min_visible_area_px, sample_view
from poa_gres_ros.tabletop.scene import (
    ObjectSpec,
    SceneSpec,
    TabletopScene,
    build_scene,
    quiet_client,
    sample_scene_spec,
)
from poa_gres_ros.tabletop.sensor import SensorEffects, SensorRanges, sample_sensor
from poa_gres_ros.tabletop.textures import TABLE_TEXTURES, texture_image

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


def _one_sphere_scene(x=0.05, y=-0.04, extra=(), texture='wood'):
    sphere = ObjectSpec(
        'sphere', 'red', (0.9, 0.1, 0.1, 1.0), 'big', 1.3, (x, y, TABLE_TOP_Z_M + 0.05), 0.0
    )
    spec = SceneSpec(0, 'any', (sphere, *extra), (1, 1, 1, 1), (0.5, 0.5, 0.5, 1), texture)
    return TabletopScene(spec)


@pytest.mark.parametrize(
    'az,el,fov,size',
    [
        (0.0, 60.0, 55.0, (640, 480)),
        (135.0, 40.0, 45.0, (640, 480)),
        (60.0, 50.0, 42.0, (848, 480)),
        (200.0, 70.0, 58.0, (424, 240)),
        (300.0, 35.0, 33.0, (1280, 720)),
    ],
)
def test_intrinsics_project_the_sphere_centre_onto_its_mask(az, el, fov, size):
    """The principal point convention (W / 2, H / 2 - 1) holds at every dataset resolution."""
    w, h = size
    with _one_sphere_scene() as scene:
        (sphere,) = scene.objects
        pose = orbit_pose(
            (0.0, 0.0, TABLE_TOP_Z_M),
            0.7,
            az,
            el,
            roll_deg=3.0,
            fov_y_deg=fov,
            width_px=w,
            height_px=h,
        )
        view = scene.render(pose)
        u, v = pose.project([sphere.centre_xyz_m])[0]
        ys, xs = np.nonzero(view.mask(0))
        # OpenCV convention: pixel (x, y) has its centre at integer (x, y). The residual of a
        # sphere's mask centroid is < 0.25 px here; a principal point off by half a pixel
        # (the ideal (W - 1) / 2, (H - 1) / 2) would leave 0.5 px.
        assert abs(xs.mean() - u) < 0.3 and abs(ys.mean() - v) < 0.3
        K = pose.K
        assert K[0, 2] == pose.width_px / 2 and K[0, 0] == K[1, 1]
        assert math.isclose(K[1, 1], h / 2 / math.tan(math.radians(fov) / 2))
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
        w, h = view.pose.width_px, view.pose.height_px
        assert (w, h) in {(a, b) for a, b, _ in RESOLUTIONS}
        assert view.rgb.shape == (h, w, 3) and view.rgb.dtype == np.uint8
        assert len(view.well_visible()) >= 2
        assert set(np.unique(view.instance_map)) - {-1} == set(view.in_view)
        for i, seen in view.in_view.items():
            m = view.mask(i)
            assert seen.area_px == int(m.sum()) > 0
            assert seen.well_visible == (
                seen.area_px >= min_visible_area_px(w, h)
                and min(
                    seen.box_xyxy_px[2] - seen.box_xyxy_px[0],
                    seen.box_xyxy_px[3] - seen.box_xyxy_px[1],
                )
                >= 8
            )
        again = sample_view(scene, np.random.default_rng(4))
        assert again.pose == view.pose and np.array_equal(again.rgb, view.rgb)
        fixed = sample_view(scene, np.random.default_rng(4), width_px=320, height_px=240)
        assert fixed.rgb.shape == (240, 320, 3)
        with pytest.raises(ValueError):
            sample_view(scene, np.random.default_rng(4), width_px=320)
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


def test_camera_draws_stay_within_their_ranges():
    r = CameraRanges()
    sizes = {(w, h) for w, h, _ in RESOLUTIONS}
    look = np.array([0.02, -0.03, TABLE_TOP_Z_M])
    rng = np.random.default_rng(0)
    seen_sizes, hfovs, heights, dists = set(), [], [], []
    for _ in range(1500):
        size = r.draw_resolution(rng)
        assert size in sizes
        seen_sizes.add(size)
        kw = draw_orbit(rng, look, r, *size)
        d, el = kw['distance_m'], kw['elevation_deg']
        assert r.distance_m[0] <= d <= r.distance_m[1]
        assert r.elevation_deg[0] <= el <= r.elevation_deg[1]
        assert r.roll_deg[0] <= kw['roll_deg'] <= r.roll_deg[1]
        assert np.all(np.abs(kw['look_at_xyz_m'][:2] - look[:2]) <= r.look_at_jitter_m)
        # the horizontal field of view behind the vertical one is in range
        hfov = 2 * math.degrees(
            math.atan(math.tan(math.radians(kw['fov_y_deg']) / 2) * size[0] / size[1])
        )
        assert r.hfov_deg[0] - 1e-6 <= hfov <= r.hfov_deg[1] + 1e-6
        pose = sample_camera_pose(np.random.default_rng(1), look, r, *size)
        assert (pose.width_px, pose.height_px) == size
        height = d * math.sin(math.radians(el))
        assert height >= r.min_height_m - 1e-9
        hfovs.append(hfov)
        heights.append(height)
        dists.append(d)
    assert seen_sizes == sizes  # every resolution occurs
    # the draws cover their ranges (not one camera)
    assert min(hfovs) < 58 and max(hfovs) > 87
    assert min(dists) < 0.45 and max(dists) > 1.3
    assert min(heights) < 0.3 and max(heights) > 1.1
    a = draw_orbit(np.random.default_rng(5), look)
    b = draw_orbit(np.random.default_rng(5), look)
    assert a.pop('look_at_xyz_m').tolist() == b.pop('look_at_xyz_m').tolist() and a == b
    assert vertical_fov_deg(90.0, 640, 480) == pytest.approx(73.74, abs=0.01)


def test_lighting_draws_stay_within_their_ranges():
    r = LightingRanges()
    rng = np.random.default_rng(3)
    lights = [sample_lighting(rng) for _ in range(2000)]
    for light in lights:
        assert r.intensity[0] - 1e-9 <= light.ambient + light.diffuse <= r.intensity[1] + 1e-9
        share = light.ambient / (light.ambient + light.diffuse)
        assert r.ambient_share[0] - 1e-9 <= share <= r.ambient_share[1] + 1e-9
        assert r.specular[0] <= light.specular <= r.specular[1]
        assert all(1 - r.white_balance_residual - 1e-9 <= c <= 1.0 for c in light.colour_rgb)
        el = math.degrees(math.asin(light.direction_xyz[2]))
        assert r.elevation_deg[0] - 1e-6 <= el <= r.elevation_deg[1] + 1e-6
    warm = [lt for lt in lights if lt.colour_rgb[2] < 0.8]
    cool = [lt for lt in lights if lt.colour_rgb[0] < 0.97 and lt.colour_rgb[2] == 1.0]
    assert warm and cool
    assert 0.4 < np.mean([lt.shadow for lt in lights]) < 0.6
    assert sample_lighting(np.random.default_rng(9)) == sample_lighting(np.random.default_rng(9))
    r27, g27, b27 = black_body_rgb(2700)
    assert r27 == 1.0 and g27 < 0.75 and b27 < 0.5  # tungsten: orange
    assert min(black_body_rgb(6600)) > 0.95  # about white
    r10, _, b10 = black_body_rgb(10000)
    assert b10 == 1.0 and r10 < 0.85  # blue sky


def test_table_surfaces_vary_and_render():
    specs = [sample_scene_spec(s) for s in range(300)]
    textures = [s.table_texture for s in specs]
    assert set(textures) == set(TABLE_TEXTURES)
    assert len({s.table_rgba for s in specs}) > 100
    for name in ('grain', 'speckle', 'weave'):
        img = texture_image(name)
        assert img.shape == (512, 768, 3) and 100 < img.mean() < 250 and img.std() > 3
        assert np.array_equal(img, texture_image(name))
    pose = orbit_pose((0.0, 0.0, TABLE_TOP_Z_M), 0.8, 30.0, 55.0)
    tables = {}
    for name in TABLE_TEXTURES:
        with _one_sphere_scene(texture=name) as scene:
            view = scene.render(pose, Lighting(shadow=False))
        u, v = np.round(pose.project([(-0.15, 0.1, TABLE_TOP_Z_M)])[0]).astype(int)
        patch = view.rgb[v - 15 : v + 16, u - 15 : u + 16].reshape(-1, 3).astype(float)
        assert (view.instance_map[v - 15 : v + 16, u - 15 : u + 16] < 0).all()
        tables[name] = patch
        assert view.instance_map.max() == 0  # the sphere is still there
    assert tables['plain'].std(axis=0).max() < 1.5  # flat colour
    for name in ('wood', 'grain', 'speckle', 'weave'):
        assert tables[name].std(axis=0).max() > 2 * tables['plain'].std(axis=0).max() + 1, name
    with pytest.raises(ValueError):
        _one_sphere_scene(texture='marble')


def test_sensor_effects_stay_within_their_ranges_and_are_deterministic():
    r = SensorRanges()
    draws = [sample_sensor(np.random.default_rng([7, k])) for k in range(1000)]
    for e in draws:
        assert r.exposure[0] <= e.exposure <= r.exposure[1]
        assert r.gamma[0] <= e.gamma <= r.gamma[1]
        assert r.noise_sigma[0] <= e.noise_sigma <= r.noise_sigma[1]
        assert e.blur_sigma_px == 0 or r.blur_sigma_px[0] <= e.blur_sigma_px <= r.blur_sigma_px[1]
        assert e.jpeg_quality == 0 or r.jpeg_quality[0] <= e.jpeg_quality <= r.jpeg_quality[1]
    assert 0.25 < np.mean([e.blur_sigma_px > 0 for e in draws]) < 0.35
    assert 0.25 < np.mean([e.jpeg_quality > 0 for e in draws]) < 0.35
    with build_scene(3) as scene:
        rgb = scene.render(orbit_pose(scene.centre_xyz_m(), 0.8, 20.0, 50.0)).rgb
    assert np.array_equal(SensorEffects().apply(rgb), rgb)  # no effect: the render itself
    for e in draws[:8]:
        out = e.apply(rgb)
        assert out.shape == rgb.shape and out.dtype == np.uint8
        assert np.array_equal(out, e.apply(rgb))
        assert 0.7 < out.astype(float).mean() / rgb.mean() < 1.3
        # colour words stay true: the dominant channel of coloured pixels does not change
        coloured = rgb.max(2).astype(int) - rgb.min(2) > 60
        same = out[coloured].argmax(1) == rgb[coloured].argmax(1)
        assert coloured.sum() > 1000 and same.mean() > 0.97
    bright = SensorEffects(exposure=1.15).apply(rgb).astype(float).mean()
    dark = SensorEffects(exposure=0.85).apply(rgb).astype(float).mean()
    assert dark < rgb.mean() < bright
    noisy = SensorEffects(noise_sigma=4.0, noise_seed=1).apply(rgb).astype(float) - rgb
    assert 2.5 < noisy[(rgb > 10).all(2) & (rgb < 245).all(2)].std() < 5
    assert SensorEffects(blur_sigma_px=1.0).apply(rgb).astype(float).std() < rgb.std()
    assert not np.array_equal(SensorEffects(jpeg_quality=60).apply(rgb), rgb)
    with pytest.raises(ValueError):
        SensorEffects().apply(rgb[:, :, 0])
