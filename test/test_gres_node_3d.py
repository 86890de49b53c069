"""gres_node with enable_3d as a real process: depth + CameraInfo in, per-instance 3D in the
result equal to core.geometry3d on the published masks, lazy gres/points and gres/markers,
and every bad depth input logged with its reason while the 2D result still goes out."""

from __future__ import annotations

import numpy as np
import pytest

from support.gres_process import KEEP_ALL, NS_PER_S, Probe, image_msg, start_gres, tiny_model  # noqa: F401
from support.image_encoders import tile_picture
from support.ros_waits import spin_until

pytestmark = pytest.mark.ros

H, W = 48, 64
K = [60.0, 0.0, 31.5, 0.0, 60.0, 23.5, 0.0, 0.0, 1.0]


def _depth_msg(depth_m, stamp_ns, encoding='16UC1', frame_id='camera'):
    from sensor_msgs.msg import Image

    h, w = depth_m.shape
    if encoding == '16UC1':
        data = np.nan_to_num(np.rint(depth_m * 1000), nan=0).astype('<u2').tobytes()
    elif encoding == '32FC1':
        data = depth_m.astype('<f4').tobytes()
    else:  # anything else: bytes of a plausible size
        data = bytes(h * w * 3)
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, data=data)
    msg.step = len(data) // h
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, NS_PER_S)
    msg.header.frame_id = frame_id
    return msg


def _info_msg(k=K, w=W, h=H):
    from sensor_msgs.msg import CameraInfo

    return CameraInfo(width=w, height=h, k=list(k), distortion_model='plumb_bob')


def _scene_depth():
    d = np.full((H, W), 1.0, np.float32)
    d[10:38, 14:50] = 0.8  # a box 20 cm in front of the table
    return d


class DepthProbe:
    """Publishers of depth and camera_info (reliable), subscribers of points and markers."""

    def __init__(self, node):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from visualization_msgs.msg import MarkerArray

        from poa_gres_ros.ros.qos import RESULT_QOS

        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.node = node
        self.depth = node.create_publisher(Image, '/camera/depth', qos)
        self.info = node.create_publisher(CameraInfo, '/camera/camera_info', qos)
        self.clouds, self.markers = [], []
        self._subs = []
        self._listen = lambda: [
            node.create_subscription(PointCloud2, '/gres/points', self.clouds.append, RESULT_QOS),
            node.create_subscription(MarkerArray, '/gres/markers', self.markers.append, RESULT_QOS),
        ]

    def listen(self):
        """Subscribe gres/points and gres/markers (as RViz or a planner would)."""
        self._subs = self._listen()

    def ready(self, proc) -> bool:
        return spin_until(
            self.node,
            lambda: (
                self.depth.get_subscription_count() > 0 and self.info.get_subscription_count() > 0
            ),
            90.0,
            proc,
        )

    def send(self, depth_msg, info_msg):
        self.info.publish(info_msg)
        if depth_msg is not None:
            self.depth.publish(depth_msg)
        spin_until(self.node, lambda: False, 0.2)  # let both arrive before the image

    def close(self):
        for p in (self.depth, self.info):
            self.node.destroy_publisher(p)
        for s in self._subs:
            self.node.destroy_subscription(s)


def _start(spawn, model):
    return start_gres(spawn, model, *KEEP_ALL, '-p', 'enable_3d:=true', '-r',
                      'depth:=/camera/depth', '-r', 'camera_info:=/camera/camera_info')  # fmt: skip


def _full_mask(inst):
    b = inst.bbox
    crop = np.frombuffer(bytes(inst.mask.data), np.uint8).reshape(b.height, b.width) > 0
    full = np.zeros((H, W), bool)
    full[b.y_offset : b.y_offset + b.height, b.x_offset : b.x_offset + b.width] = crop
    return full


def test_3d_fields_points_and_markers_match_the_geometry_module(ros_node, spawn, tiny_model):  # noqa: F811
    from poa_gres_ros.conversions.depth3d import cloud_from_msg, geometry_from_msg
    from poa_gres_ros.core.geometry3d import PinholeIntrinsics, lift_instance
    from poa_gres_ros.msg import GresInstances

    proc = _start(spawn, tiny_model)
    probe, dprobe = Probe(ros_node), DepthProbe(ros_node)
    try:
        probe.instruct('the red mug')
        assert dprobe.ready(proc), proc.log()[-2000:]
        stamp = 5 * NS_PER_S
        depth = _scene_depth()
        dprobe.send(_depth_msg(depth, stamp), _info_msg())
        res = probe.request(image_msg(tile_picture(H, W, block=8), stamp), proc=proc)
        assert res is not None, proc.log()[-3000:]
        assert res.depth_status == GresInstances.DEPTH_OK, res.depth_detail
        assert (res.depth_stamp.sec, res.depth_stamp.nanosec) == (5, 0)
        assert res.instances  # KEEP_ALL: every query is an instance
        intr = PinholeIntrinsics.from_k(K, W, H)
        quantised = np.rint(depth * 1000) / 1000  # what 16UC1 carries
        for inst in res.instances:
            got = geometry_from_msg(inst.geometry)
            want = lift_instance(_full_mask(inst), quantised.astype(np.float32), intr)
            assert got['valid'] == want.valid
            assert got['num_points'] == want.num_points
            assert got['missing_depth_fraction'] == pytest.approx(want.missing_depth_fraction)
            if want.valid:
                assert np.allclose(got['centroid_m'], want.centroid_m, atol=1e-6)
                assert np.allclose(got['box_size_m'], want.box_size_m, atol=1e-6)
                assert 0.79 < got['centroid_m'][2] < 1.01  # between box and table, metres

        # the cloud and the markers, for a subscriber (built only while someone subscribes)
        dprobe.listen()
        spin_until(ros_node, lambda: False, 1.0)  # discovery of the new subscriptions
        stamp2 = 6 * NS_PER_S
        dprobe.send(_depth_msg(depth, stamp2), _info_msg())
        res2 = probe.request(image_msg(tile_picture(H, W, block=8), stamp2), proc=proc)

        def of_res2(msgs):
            return [m for m in msgs if getattr(m, 'header', None) == res2.header] or [
                m for m in msgs if m.markers and m.markers[0].header == res2.header
            ]  # fmt: skip

        got = spin_until(ros_node, lambda: of_res2(dprobe.clouds) and of_res2(dprobe.markers),
                         20.0, proc)  # fmt: skip
        assert got, proc.log()[-2000:]
        cloud, marks = of_res2(dprobe.clouds)[0], of_res2(dprobe.markers)[0]
        assert cloud.header.frame_id == 'camera'
        pts = cloud_from_msg(cloud)
        valid = {i.id: i.geometry.num_points for i in res2.instances if i.geometry.valid}
        ids, counts = np.unique(pts['instance_id'], return_counts=True)
        assert dict(zip(ids.tolist(), counts.tolist())) == valid
        assert marks.markers[0].action == 3  # DELETEALL first
        assert len(marks.markers) == 1 + 2 * len(valid)
        assert {m.ns for m in marks.markers[1:]} == {'gres_boxes', 'gres_labels'}
    finally:
        probe.close()
        dprobe.close()


BAD = [
    ('no depth yet', None, None, 2, 'no depth image received yet'),
    ('encoding', 'rgb8', None, 3, "depth encoding 'rgb8' is not supported"),
    ('all zero', 'zero', None, 3, 'no valid pixel'),
    ('all NaN', 'nan', None, 3, 'no valid pixel'),
    ('sizes', 'narrow', None, 3, 'different aspect ratios'),
    ('K zeros', 'ok', [0.0] * 9, 3, 'K is all zeros'),
    ('old depth', 'old', None, 2, 's older than the colour image'),
]


def test_bad_depth_inputs_are_logged_and_the_2d_result_goes_out(ros_node, spawn, tiny_model):  # noqa: F811
    from poa_gres_ros.msg import GresInstances

    proc = _start(spawn, tiny_model)
    probe, dprobe = Probe(ros_node), DepthProbe(ros_node)
    try:
        probe.instruct('the red mug')
        assert dprobe.ready(proc), proc.log()[-2000:]
        for n, (label, kind, k, status, needle) in enumerate(BAD):
            stamp = (10 + n) * NS_PER_S
            depth = _scene_depth()
            msg = {
                None: None,
                'rgb8': _depth_msg(depth, stamp, 'rgb8'),
                'zero': _depth_msg(np.zeros((H, W), np.float32), stamp),
                'nan': _depth_msg(np.full((H, W), np.nan, np.float32), stamp, '32FC1'),
                'narrow': _depth_msg(depth[:, :40], stamp),
                'ok': _depth_msg(depth, stamp),
                'old': _depth_msg(depth, stamp - 3 * NS_PER_S),
            }[kind]
            dprobe.send(msg, _info_msg(k) if k is not None else _info_msg())
            res = probe.request(image_msg(tile_picture(H, W, block=8), stamp), proc=proc)
            assert res is not None, f'{label}: no 2D result\n{proc.log()[-3000:]}'
            assert res.instances and len(res.mask.data) == H * W  # the 2D result is whole
            assert (res.depth_status, needle in res.depth_detail) == (status, True), (
                label, res.depth_detail)  # fmt: skip
            assert all(not i.geometry.valid for i in res.instances)
            assert needle in proc.log(), f'{label}: reason not logged'
        # and the node still lifts a good frame afterwards
        stamp = 30 * NS_PER_S
        dprobe.send(_depth_msg(_scene_depth(), stamp), _info_msg())
        res = probe.request(image_msg(tile_picture(H, W, block=8), stamp), proc=proc)
        assert res is not None and res.depth_status == GresInstances.DEPTH_OK, res.depth_detail
        assert proc.alive()  # never crashed
    finally:
        probe.close()
        dprobe.close()
