"""Build and read the bag's messages as rosbags objects (no rclpy).

Builders mirror what the camera driver and the node publish: rgb8 ``sensor_msgs/Image``,
``sensor_msgs/CameraInfo`` (plumb_bob, no distortion, ``P = [K | 0]``), ``std_msgs/String``
and ``poa_gres_ros/GresInstances`` with the semantics of msg/GresInstances.msg and
msg/GresInstance.msg (header copied from the image, masks mono8 0/255, the merged mask full
frame, each instance mask cropped to its tight box). The same result message type carries the
ground truth (relevance 1, ``model_name`` 'ground_truth'), so one reader serves both.
"""

from __future__ import annotations

import numpy as np

from poa_gres_ros.bag.typestore import (
    CAMERA_INFO,
    GRES_INSTANCES,
    IMAGE,
    POSE_ARRAY,
    STRING,
    msg_class,
)
from poa_gres_ros.core.results import GresPrediction, InstanceResult, PhraseSpan

NS_PER_S = 1_000_000_000


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time (any object with ``sec``, ``nanosec``) -> nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def time_msg(ns: int):
    """Nanoseconds (>= 0) -> builtin_interfaces/Time."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return msg_class('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)


def header(ns: int, frame_id: str):
    """std_msgs/Header with stamp ``ns`` (nanoseconds) and ``frame_id``."""
    return msg_class('std_msgs/msg/Header')(stamp=time_msg(ns), frame_id=frame_id)


def image_rgb8(rgb: np.ndarray, hdr):
    """(H, W, 3) uint8 RGB -> rgb8 sensor_msgs/Image (step = 3 W, no padding)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}')
    h, w = rgb.shape[:2]
    data = np.ascontiguousarray(rgb).reshape(-1)
    return msg_class(IMAGE)(
        header=hdr, height=h, width=w, encoding='rgb8', is_bigendian=0, step=3 * w, data=data
    )


def mono8(mask: np.ndarray, hdr):
    """(H, W) bool mask -> mono8 sensor_msgs/Image (255 on the mask, 0 elsewhere)."""
    h, w = mask.shape
    data = (np.asarray(mask, bool).astype(np.uint8) * np.uint8(255)).reshape(-1)
    return msg_class(IMAGE)(
        header=hdr, height=h, width=w, encoding='mono8', is_bigendian=0, step=w, data=data
    )


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


def _phrase(span: PhraseSpan | None):
    cls = msg_class('poa_gres_ros/msg/GresPhrase')
    if span is None:
        return cls(text='', char_start=0, char_end=0)
    return cls(text=span.text, char_start=span.char_start, char_end=span.char_end)


def gres_instances(
    pred: GresPrediction,
    hdr,
    *,
    instruction_id: int,
    instruction_stamp_ns: int,
    model_name: str,
    backend: str,
    inference_time_ms: float = 0.0,
    geometry=None,
    depth_status: int = 0,
    depth_detail: str = '',
    depth_stamp_ns: int = 0,
):
    """``poa_gres_ros/GresInstances`` for ``pred`` (the same fields as the node's
    ``ros/result_msgs.build_instances_msg``): instances in ``pred``'s order with ids 0, 1, ...,
    ``phrases`` the distinct phrases (first appearance first), each mask cropped to its box.

    ``geometry``: one ``core.geometry3d.Instance3D`` per instance (None: no 3D, the default
    GresInstance3D); ``depth_status`` / ``depth_detail`` / ``depth_stamp_ns``: the result's 3D
    status fields (msg/GresInstances.msg; 0 = DEPTH_DISABLED)."""
    from poa_gres_ros.conversions.depth3d import geometry_msg

    roi_cls = msg_class('sensor_msgs/msg/RegionOfInterest')
    inst_cls = msg_class('poa_gres_ros/msg/GresInstance')
    phrases = pred.phrases
    index = {p: i for i, p in enumerate(phrases)}
    instances = []
    geos = list(geometry) if geometry is not None else [None] * len(pred.instances)
    for k, inst in enumerate(pred.instances):
        x0, y0, x1, y1 = inst.box_xyxy_px
        cx, cy = inst.centroid_xy_px
        instances.append(
            inst_cls(
                id=k,
                relevance=float(inst.relevance),
                phrase=_phrase(inst.phrase),
                phrase_index=index.get(inst.phrase, -1) if inst.phrase is not None else -1,
                bbox=roi_cls(
                    x_offset=x0, y_offset=y0, height=y1 - y0, width=x1 - x0, do_rectify=False
                ),
                mask=mono8(inst.mask[y0:y1, x0:x1], hdr),
                area_px=inst.area_px,
                centroid_x_px=float(cx),
                centroid_y_px=float(cy),
                geometry=geometry_msg(geos[k], msg_class),
            )
        )
    return msg_class(GRES_INSTANCES)(
        header=hdr,
        instruction=pred.instruction,
        instruction_id=int(instruction_id),
        instruction_stamp=time_msg(instruction_stamp_ns),
        truncated=bool(pred.truncated),
        phrases=[_phrase(p) for p in phrases],
        no_target=bool(pred.no_target),
        no_target_probability=float(pred.no_target_prob),
        instances=instances,
        mask=mono8(pred.final_mask, hdr),
        model_name=model_name,
        backend=backend,
        inference_time_ms=float(inference_time_ms),
        depth_status=int(depth_status),
        depth_detail=depth_detail,
        depth_stamp=time_msg(depth_stamp_ns),
    )


def serialize(msg) -> bytes:
    """CDR bytes of a rosbags message (what a rosbag2 bag stores and rclpy publishes)."""
    from poa_gres_ros.bag.typestore import gres_typestore

    return bytes(gres_typestore().serialize_cdr(msg, msg.__msgtype__))


def deserialize(raw: bytes, msgtype: str):
    """rosbags message from CDR bytes (``msgtype`` e.g. 'poa_gres_ros/msg/GresInstances')."""
    from poa_gres_ros.bag.typestore import gres_typestore

    return gres_typestore().deserialize_cdr(raw, msgtype)


def mono8_to_mask(img) -> np.ndarray:
    """A mono8 (or 8UC1) image message -> (H, W) bool, True where the value is > 0.

    Raises:
        ValueError: another encoding, or ``len(data) != height * step``.
    """
    if img.encoding not in ('mono8', '8UC1'):
        raise ValueError(f'mask image must be mono8, got {img.encoding!r}')
    h, w, step = int(img.height), int(img.width), int(img.step)
    data = np.asarray(img.data, np.uint8).reshape(-1)
    if data.size != h * step or step < w:
        raise ValueError(f'mask {w}x{h}: len(data) = {data.size} != height * step = {h * step}')
    if h == 0 or w == 0:
        return np.zeros((h, w), bool)
    return data.reshape(h, step)[:, :w] > 0


def prediction_from_msg(msg, size_hw: tuple[int, int] | None = None) -> GresPrediction:
    """A decoded ``GresInstances`` (node result or ground truth) -> GresPrediction.

    Args:
        msg: the rosbags message.
        size_hw: image size (H, W); default the merged mask's size.
    Returns:
        GresPrediction at (H, W): instance masks pasted from their crops at the box offsets,
        ``final_mask`` = the message's merged mask (the union of the instances when the
        message has no merged mask), ``timings_ms = {'total': inference_time_ms}``.
    Raises:
        ValueError: a mask that is not mono8 or does not fit its box / the image.
    """
    final = mono8_to_mask(msg.mask)
    h, w = size_hw if size_hw is not None else final.shape
    instances = []
    for inst in msg.instances:
        crop = mono8_to_mask(inst.mask)
        x0, y0 = int(inst.bbox.x_offset), int(inst.bbox.y_offset)
        ch, cw = crop.shape
        if y0 + ch > h or x0 + cw > w:
            raise ValueError(
                f'instance {inst.id}: box at ({x0}, {y0}) size {cw}x{ch} leaves the {w}x{h} image'
            )
        full = np.zeros((h, w), bool)
        full[y0 : y0 + ch, x0 : x0 + cw] = crop
        p = inst.phrase
        span = PhraseSpan(p.text, int(p.char_start), int(p.char_end)) if p.text else None
        instances.append(InstanceResult(full, float(inst.relevance), span, int(inst.id)))
    if final.shape != (h, w):
        if final.size:
            raise ValueError(f'merged mask is {final.shape}, image is {(h, w)}')
        final = np.zeros((h, w), bool)
        for inst in instances:
            final |= inst.mask
    return GresPrediction(
        instances,
        final,
        bool(msg.no_target),
        float(msg.no_target_probability),
        msg.instruction,
        bool(msg.truncated),
        {'total': float(msg.inference_time_ms)},
    )
