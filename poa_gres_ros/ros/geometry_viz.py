"""The 3D outputs for planners and RViz: ``gres/points`` (sensor_msgs/PointCloud2 with an
instance_id field) and ``gres/markers`` (visualization_msgs/MarkerArray: one box and one
label per instance). Both carry the result's header (camera optical frame); the node builds
them only while someone subscribes.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from poa_gres_ros.conversions.depth3d import POINT_FIELDS, POINT_STEP, cloud_points
from poa_gres_ros.core.visualize import PALETTE_RGB

MIN_MARKER_SIZE_M = 0.005
LABEL_HEIGHT_M = 0.025


def point_cloud(header, geos, ids) -> PointCloud2:
    """Unorganised cloud (height 1) of every valid instance's points: float32 x, y, z in
    metres (optical frame) and uint32 instance_id = GresInstance.id (PCL users can cut an
    object out with a pass-through filter on instance_id). Dense: no NaN points."""
    pts = cloud_points(geos, ids)
    fields = [
        PointField(name=n, offset=o, datatype=t, count=1) for n, t, o in POINT_FIELDS
    ]  # fmt: skip
    return PointCloud2(
        header=header, height=1, width=len(pts), fields=fields, is_bigendian=False,
        point_step=POINT_STEP, row_step=POINT_STEP * len(pts), data=pts.tobytes(),
        is_dense=True,
    )  # fmt: skip


def markers(header, result, geos) -> MarkerArray:
    """DELETEALL, then per valid instance a translucent CUBE (its axis-aligned box) in
    namespace ``gres_boxes`` and a TEXT_VIEW_FACING label ``"<id> <phrase> <relevance>"`` above
    it in ``gres_labels``, marker id = instance id, colours as in the debug image."""
    out = [Marker(header=header, action=Marker.DELETEALL)]
    for inst, geo in zip(result.instances, geos):
        if geo is None or not geo.valid:
            continue
        r, g, b = (c / 255.0 for c in PALETTE_RGB[inst.id % len(PALETTE_RGB)])
        c = geo.box_center_m
        size = np.maximum(geo.box_size_m, MIN_MARKER_SIZE_M)
        box = Marker(header=header, ns='gres_boxes', id=int(inst.id), type=Marker.CUBE,
                     action=Marker.ADD, color=ColorRGBA(r=r, g=g, b=b, a=0.45))  # fmt: skip
        box.pose = Pose(position=Point(x=c[0], y=c[1], z=c[2]), orientation=Quaternion(w=1.0))
        box.scale = Vector3(x=float(size[0]), y=float(size[1]), z=float(size[2]))
        label = Marker(header=header, ns='gres_labels', id=int(inst.id),
                       type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                       color=ColorRGBA(r=r, g=g, b=b, a=1.0))  # fmt: skip
        top = float(geo.box_min_m[1]) - LABEL_HEIGHT_M  # optical y points down: above the box
        label.pose = Pose(position=Point(x=c[0], y=top, z=c[2]), orientation=Quaternion(w=1.0))
        label.scale = Vector3(z=LABEL_HEIGHT_M)
        label.text = f'{inst.id} {inst.phrase.text or "?"} {inst.relevance:.2f}'
        out += [box, label]
    return MarkerArray(markers=out)
