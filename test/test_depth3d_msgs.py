"""conversions.depth3d: depth / CameraInfo messages in, GresInstance3D and the instance point
cloud out, with rosbags and rclpy message classes alike."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from poa_gres_ros.bag import messages as M
from poa_gres_ros.bag.typestore import msg_class
from poa_gres_ros.conversions.depth3d import (
    POINT_FIELDS,
    POINT_STEP,
    cloud_from_msg,
    cloud_points,
    depth_msg_to_metres,
    geometry_from_msg,
    geometry_msg,
    intrinsics_from_camera_info,
)
from poa_gres_ros.core.geometry3d import PinholeIntrinsics, lift_instance

INTR = PinholeIntrinsics(400.0, 400.0, 80.0, 60.0, 160, 120)


def _scene():
    depth = np.full((120, 160), 1.0, np.float32)
    depth[40:80, 50:110] = 0.7  # a 60 x 40 px box face 30 cm in front of the table
    mask = np.zeros((120, 160), bool)
    mask[40:80, 50:110] = True
    return mask, depth


def test_depth_and_camera_info_messages_in():
    hdr = M.header(5, 'cam')
    mm = np.array([[0, 700, 1000]], np.uint16)
    img = msg_class('sensor_msgs/msg/Image')(
        header=hdr, height=1, width=3, encoding='16UC1', is_bigendian=0, step=6,
        data=np.frombuffer(mm.tobytes(), np.uint8),
    )  # fmt: skip
    d = depth_msg_to_metres(img)
    assert np.isnan(d[0, 0]) and d[0, 1] == pytest.approx(0.7)
    info = M.camera_info(np.array([[400, 0, 80], [0, 400, 60], [0, 0, 1]]), 160, 120, hdr)
    assert intrinsics_from_camera_info(info) == INTR
    info.k = np.zeros(9)
    with pytest.raises(ValueError, match='all zeros'):
        intrinsics_from_camera_info(info)


@pytest.mark.parametrize('flavour', ['rosbags', 'rclpy'])
def test_geometry_message_round_trip(flavour):
    if flavour == 'rosbags':
        cls = msg_class
    else:
        pytest.importorskip('rclpy')

        def cls(name):
            pkg, kind, typ = name.split('/')
            return getattr(importlib.import_module(f'{pkg}.{kind}'), typ)

    mask, depth = _scene()
    inst = lift_instance(mask, depth, INTR)
    g = geometry_from_msg(geometry_msg(inst, cls))
    assert g['valid'] and g['num_points'] == inst.num_points == (60 - 4) * (40 - 4)
    assert np.allclose(g['centroid_m'], inst.centroid_m)
    assert g['centroid_m'][2] == pytest.approx(0.7, abs=1e-6)
    assert np.allclose(g['box_center_m'] + g['box_size_m'] / 2, inst.box_max_m)
    assert np.allclose(g['quaternion_xyzw'], inst.quaternion_xyzw())
    assert g['orientation_valid'] == inst.orientation_valid  # 56 x 36 px: 1.55 aspect
    none = geometry_from_msg(geometry_msg(None, cls))
    assert not none['valid'] and none['num_points'] == 0
    assert np.array_equal(none['quaternion_xyzw'], [0, 0, 0, 1])


def test_point_cloud_packs_valid_instances_with_their_ids():
    mask, depth = _scene()
    a = lift_instance(mask, depth, INTR)
    b = lift_instance(np.zeros_like(mask), depth, INTR)  # invalid: no points
    c = lift_instance(~mask, depth, INTR)
    pts = cloud_points([a, b, c], ids=[0, 1, 2])
    assert len(pts) == a.num_points + c.num_points
    assert set(np.unique(pts['instance_id'])) == {0, 2}
    assert np.allclose(pts['z'][pts['instance_id'] == 0], 0.7)
    assert np.allclose(pts['z'][pts['instance_id'] == 2], 1.0)
    fields = [
        msg_class('sensor_msgs/msg/PointField')(name=n, offset=o, datatype=t, count=1)
        for n, t, o in POINT_FIELDS
    ]
    cloud = msg_class('sensor_msgs/msg/PointCloud2')(
        header=M.header(0, 'cam'), height=1, width=len(pts), fields=fields, is_bigendian=False,
        point_step=POINT_STEP, row_step=POINT_STEP * len(pts),
        data=np.frombuffer(pts.tobytes(), np.uint8), is_dense=True,
    )  # fmt: skip
    back = cloud_from_msg(cloud)
    assert np.array_equal(back, pts)
    cloud.point_step = 12
    with pytest.raises(ValueError, match='not a gres/points cloud'):
        cloud_from_msg(cloud)


def test_depth_inputs_reasons_and_rescaling():
    from poa_gres_ros.conversions.depth3d import depth_inputs

    hdr = M.header(5, 'cam')
    info = M.camera_info(np.array([[400, 0, 79.5], [0, 400, 59.5], [0, 0, 1]]), 160, 120, hdr)
    half = M.depth_image(np.full((60, 80), 0.75, np.float32), '16UC1', hdr)
    depth, intr = depth_inputs(half, info, (120, 160))  # depth at half resolution: rescaled
    assert (
        depth.shape == (120, 160)
        and np.allclose(depth, 0.75)
        and intr == INTR.__class__(400.0, 400.0, 79.5, 59.5, 160, 120)
    )
    _, small = depth_inputs(M.depth_image(np.ones((60, 80), np.float32), '32FC1', hdr),
                            M.camera_info(np.diag([200.0, 200.0, 1.0]), 80, 60, hdr),
                            (120, 160))  # fmt: skip
    assert (small.fx, small.cx) == (400.0, 0.5)  # CameraInfo of the half-size stream, scaled
    with pytest.raises(ValueError, match='no CameraInfo'):
        depth_inputs(half, None, (120, 160))
    with pytest.raises(ValueError, match='no valid pixel'):
        depth_inputs(M.depth_image(np.full((60, 80), np.nan, np.float32), '16UC1', hdr), info,
                     (120, 160))  # fmt: skip
    with pytest.raises(ValueError, match='aspect'):
        depth_inputs(M.depth_image(np.ones((60, 60), np.float32), '32FC1', hdr), info, (120, 160))


def test_stamp_ring_nearest_within_tolerance_and_bounded():
    from poa_gres_ros.core.stamp_pairing import StampRing

    ring = StampRing(capacity=3)
    assert ring.nearest(0, 10)[2] == 'no depth image received yet'
    for k in range(10):
        ring.put(1000 * k, f'd{k}')
    assert len(ring) == 3  # only the newest three are kept
    assert ring.nearest(8_004, 10) == (8000, 'd8', None)
    assert ring.nearest(9_100, 200) == (9000, 'd9', None)
    stamp, item, reason = ring.nearest(2_000_000_000, 10_000_000)
    assert stamp is None and item is None
    assert 'nearest depth image is 2.000 s older than the colour image' in reason
    assert 'newer' in ring.nearest(5_000, 10)[2]  # the frames' depth fell out of the ring
