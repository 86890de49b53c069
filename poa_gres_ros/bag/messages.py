"""Build the bag's messages as rosbags objects (no rclpy).

Builders mirror what the camera driver and the node publish: rgb8 ``sensor_msgs/Image``,
``sensor_msgs/CameraInfo`` (plumb_bob, no distortion, ``P = [K | 0]``), depth images,
``std_msgs/String`` and ``poa_gres_ros/GresInstances``. Result messages are built and read by
``conversions.result_msgs`` (the node's own path) with the rosbags classes of
:data:`ROSBAGS`. The same result message type carries the ground truth (relevance 1,
``model_name`` 'ground_truth'), so one reader serves both.
"""

from __future__ import annotations

import numpy as np

from poa_gres_ros.bag.typestore import (
    CAMERA_INFO,
    IMAGE,
    POSE_ARRAY,
    STRING,
    msg_class,
)
from poa_gres_ros.conversions import result_msgs as R
from poa_gres_ros.core.results import GresPrediction

ROSBAGS = R.MessageKit(cls=msg_class, uint8_data=lambda data: data)
"""rosbags message classes of this package's typestore; uint8[] fields take numpy arrays."""


def time_msg(ns: int):
    """Nanoseconds (>= 0) -> builtin_interfaces/Time."""
    return R.time_msg(ns, ROSBAGS)


def header(ns: int, frame_id: str):
    """std_msgs/Header with stamp ``ns`` (nanoseconds) and ``frame_id``."""
    return msg_class('std_msgs/msg/Header')(stamp=time_msg(ns), frame_id=frame_id)


def image_rgb8(rgb: np.ndarray, hdr):
    """(H, W, 3) uint8 RGB -> rgb8 sensor_msgs/Image (step = 3 W, no padding)."""
    return R.rgb8_image(rgb, hdr, ROSBAGS)


def camera_info(K: np.ndarray, width_px: int, height_px: int, hdr):  # noqa: N803 - symbol
    """sensor_msgs/CameraInfo of an ideal pinhole camera with intrinsics ``K`` (3, 3).

    ``d`` is five zeros (plumb_bob), ``r`` the identity, ``p = [K | 0]`` (monocular).
    """
    K = np.asarray(K, np.float64).reshape(3, 3)  # noqa: N806
    P = np.zeros((3, 4))  # noqa: N806
    P[:, :3] = K
    roi = msg_class('sensor_msgs/msg/RegionOfInterest')(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return msg_class(CAMERA_INFO)(
        header=hdr,
        height=int(height_px),
        width=int(width_px),
        distortion_model='plumb_bob',
        d=np.zeros(5),
        k=K.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=P.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def depth_image(depth_m: np.ndarray, encoding: str, hdr):
    """(H, W) float32 depth in metres (NaN = none) -> depth ``sensor_msgs/Image``: '16UC1'
    (uint16 millimetres, rounded, 0 = none, clipped to 65.535 m) or '32FC1' (float32 metres,
    NaN = none), little endian, no row padding."""
    h, w = depth_m.shape
    if encoding == '16UC1':
        mm = np.nan_to_num(np.rint(depth_m * 1000.0), nan=0.0)
        data, step = np.clip(mm, 0, 65535).astype('<u2'), 2 * w
    elif encoding == '32FC1':
        data, step = depth_m.astype('<f4'), 4 * w
    else:
        raise ValueError(f"depth encoding must be '16UC1' or '32FC1', got {encoding!r}")
    return msg_class(IMAGE)(
        header=hdr, height=h, width=w, encoding=encoding, is_bigendian=0, step=step,
        data=np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8),
    )  # fmt: skip


def pose_array(poses, hdr):
    """``geometry_msgs/PoseArray`` from (position (3,), quaternion xyzw (4,)) pairs."""
    point = msg_class('geometry_msgs/msg/Point')
    quat = msg_class('geometry_msgs/msg/Quaternion')
    pose = msg_class('geometry_msgs/msg/Pose')
    out = [
        pose(
            position=point(x=float(p[0]), y=float(p[1]), z=float(p[2])),
            orientation=quat(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])),
        )
        for p, q in poses
    ]
    return msg_class(POSE_ARRAY)(header=hdr, poses=out)


def string(text: str):
    """std_msgs/String."""
    return msg_class(STRING)(data=text)


def gres_instances(pred: GresPrediction, hdr, **fields):
    """``poa_gres_ros/GresInstances`` for ``pred`` with ``pred.instruction`` as the instruction:
    ``conversions.result_msgs.instances_msg`` (the node's path, with its keyword ``fields``:
    instruction_id, instruction_stamp_ns, model_name, backend, ...) with rosbags classes."""
    return R.instances_msg(pred, hdr, ROSBAGS, instruction=pred.instruction, **fields)


def serialize(msg) -> bytes:
    """CDR bytes of a rosbags message (what a rosbag2 bag stores and rclpy publishes)."""
    from poa_gres_ros.bag.typestore import gres_typestore

    return bytes(gres_typestore().serialize_cdr(msg, msg.__msgtype__))


def deserialize(raw: bytes, msgtype: str):
    """rosbags message from CDR bytes (``msgtype`` e.g. 'poa_gres_ros/msg/GresInstances')."""
    from poa_gres_ros.bag.typestore import gres_typestore

    return gres_typestore().deserialize_cdr(raw, msgtype)
