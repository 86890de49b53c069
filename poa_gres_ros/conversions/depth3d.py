"""Depth images, CameraInfo and 3D instance geometry <-> messages, without rclpy.

Works on any object with the message's fields (rclpy messages in the node, rosbags messages
in bag replay and make-bag). Builders take ``cls``, a function from a ROS type name
('geometry_msgs/msg/Point') to its message class, so the same code fills rclpy and rosbags
messages. The geometry itself is ``core.geometry3d`` (docs/geometry3d.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from poa_gres_ros.core.geometry3d import Instance3D, PinholeIntrinsics, decode_depth

POINT_FIELDS = (('x', 7, 0), ('y', 7, 4), ('z', 7, 8), ('instance_id', 6, 12))
"""PointCloud2 fields (name, sensor_msgs/PointField datatype, byte offset): float32 x, y, z
in metres (datatype 7 = FLOAT32) and uint32 instance_id (6 = UINT32) = GresInstance.id."""
POINT_DTYPE = np.dtype(
    {'names': ['x', 'y', 'z', 'instance_id'], 'formats': ['<f4', '<f4', '<f4', '<u4']}
)
POINT_STEP = POINT_DTYPE.itemsize  # 16 bytes


def depth_msg_to_metres(msg) -> np.ndarray:
    """A depth ``sensor_msgs/Image`` (16UC1 mm or 32FC1 m) -> (H, W) float32 metres, NaN where
    there is no depth (``core.geometry3d.decode_depth``).

    Raises:
        ValueError: an unsupported encoding or inconsistent sizes (the message says which).
    """
    return decode_depth(
        msg.data, str(msg.encoding), int(msg.height), int(msg.width), int(msg.step),
        bool(msg.is_bigendian),
    )  # fmt: skip


def intrinsics_from_camera_info(msg) -> PinholeIntrinsics:
    """``sensor_msgs/CameraInfo`` -> PinholeIntrinsics (K and the image size).

    Raises:
        ValueError: K all zeros, non-finite or with focal lengths <= 0, or a zero size.
    """
    return PinholeIntrinsics.from_k(list(msg.k), int(msg.width), int(msg.height))


def geometry_msg(inst: Instance3D | None, cls: Callable[[str], type]):
    """A ``poa_gres_ros/GresInstance3D`` for ``inst`` (None: the all-default, invalid one).

    Args:
        inst: the instance's geometry (camera optical frame, metres).
        cls: ROS type name -> message class (rclpy or rosbags).
    """
    point, vec, quat = (cls(f'geometry_msgs/msg/{n}') for n in ('Point', 'Vector3', 'Quaternion'))
    if inst is None:
        inst = _NONE
    c, bc, bs, ext = (
        [float(v) for v in a]
        for a in (inst.centroid_m, inst.box_center_m, inst.box_size_m, inst.principal_extent_m)
    )
    q = [float(v) for v in inst.quaternion_xyzw()]
    return cls('poa_gres_ros/msg/GresInstance3D')(
        valid=bool(inst.valid),
        centroid=point(x=c[0], y=c[1], z=c[2]),
        box_center=point(x=bc[0], y=bc[1], z=bc[2]),
        box_size=vec(x=bs[0], y=bs[1], z=bs[2]),
        orientation=quat(x=q[0], y=q[1], z=q[2], w=q[3]),
        orientation_valid=bool(inst.orientation_valid),
        principal_extent=vec(x=ext[0], y=ext[1], z=ext[2]),
        num_points=int(inst.num_points),
        missing_depth_fraction=float(inst.missing_depth_fraction),
    )


def _zero_instance() -> Instance3D:
    z = np.zeros(3)
    return Instance3D(False, z, z, z, np.eye(3), False, z, 0, 0.0, np.empty((3, 0), np.float32))


_NONE = _zero_instance()


def geometry_from_msg(g) -> dict:
    """A ``GresInstance3D`` message -> plain values: ``valid``, ``centroid_m`` (3,),
    ``box_center_m`` (3,), ``box_size_m`` (3,), ``quaternion_xyzw`` (4,),
    ``orientation_valid``, ``principal_extent_m`` (3,), ``num_points``,
    ``missing_depth_fraction`` (arrays float64)."""

    def xyz(p):
        return np.array([p.x, p.y, p.z], np.float64)

    o = g.orientation
    return {
        'valid': bool(g.valid),
        'centroid_m': xyz(g.centroid),
        'box_center_m': xyz(g.box_center),
        'box_size_m': xyz(g.box_size),
        'quaternion_xyzw': np.array([o.x, o.y, o.z, o.w], np.float64),
        'orientation_valid': bool(g.orientation_valid),
        'principal_extent_m': xyz(g.principal_extent),
        'num_points': int(g.num_points),
        'missing_depth_fraction': float(g.missing_depth_fraction),
    }


def cloud_points(instances: list[Instance3D], ids=None) -> np.ndarray:
    """The points of every valid instance as one (N,) structured array of
    :data:`POINT_DTYPE` (x, y, z float32 metres, instance_id uint32), instance after instance.

    Args:
        instances: the geometries; ids: their GresInstance ids (default 0, 1, ...).
    """
    ids = list(range(len(instances))) if ids is None else list(ids)
    parts = [(g.xyz_m, i) for g, i in zip(instances, ids) if g.valid and g.xyz_m.shape[1]]
    n = sum(p.shape[1] for p, _ in parts)
    out = np.empty(n, POINT_DTYPE)
    k = 0
    for xyz, i in parts:
        m = xyz.shape[1]
        out['x'][k : k + m], out['y'][k : k + m], out['z'][k : k + m] = xyz
        out['instance_id'][k : k + m] = i
        k += m
    return out


def cloud_from_msg(msg) -> np.ndarray:
    """A ``sensor_msgs/PointCloud2`` written by :func:`cloud_points` (the node's
    ``gres/points``) -> (N,) structured array of :data:`POINT_DTYPE`.

    Raises:
        ValueError: other fields, point step or sizes.
    """
    fields = tuple((f.name, int(f.datatype), int(f.offset)) for f in msg.fields)
    if fields != POINT_FIELDS or int(msg.point_step) != POINT_STEP:
        raise ValueError(f'not a gres/points cloud: fields {fields}, step {msg.point_step}')
    n = int(msg.width) * int(msg.height)
    data = np.frombuffer(memoryview(msg.data).cast('B'), np.uint8)
    if data.size != n * POINT_STEP:
        raise ValueError(f'cloud of {n} points has {data.size} bytes')
    return data.view(POINT_DTYPE).copy()


def depth_inputs(depth_msg, info_msg, size_hw: tuple[int, int]):
    """Depth image + CameraInfo -> what the lifting needs for a colour image of ``size_hw``.

    Returns:
        ``(depth_m, intrinsics)``: (H, W) float32 metres aligned to the colour image (NaN =
        none; rescaled by nearest neighbour when only the resolution differs) and
        PinholeIntrinsics for (H, W) (scaled when the CameraInfo is for another resolution).
    Raises:
        ValueError: with the reason in words: no CameraInfo, K unusable, unknown encoding,
            inconsistent or mismatched sizes, or no valid depth at all (all zero / NaN).
    """
    from poa_gres_ros.core.geometry3d import align_depth

    if info_msg is None:
        raise ValueError('no CameraInfo received yet (camera_info topic)')
    intr = intrinsics_from_camera_info(info_msg).scaled_to(size_hw[1], size_hw[0])
    depth = depth_msg_to_metres(depth_msg)
    if not np.isfinite(depth).any():
        raise ValueError(
            f'depth image {depth_msg.width}x{depth_msg.height} {depth_msg.encoding} has no valid '
            'pixel (all zero or NaN)'
        )
    return align_depth(depth, size_hw), intr
