#!/usr/bin/env python3
"""A minimal grasp-planner front end: gres_node results in, one grasp target out.

The integration pattern for a robot: run gres_node with ``enable_3d: true`` (aligned depth on
``depth``, the colour CameraInfo on ``camera_info``), subscribe to its results, and take the
referred object's 3D geometry from the message; no image processing on the planner's side.

Subscribes ``gres/instances`` (poa_gres_ros/GresInstances) and publishes ``grasp_target``
(geometry_msgs/PoseStamped), one per result, with the result's header stamp:

- a target: the highest-relevance instance that has valid 3D. ``header.frame_id`` is the
  camera optical frame of the image; ``pose.position`` is the instance centroid (metres);
  ``pose.orientation`` its principal axes (x = the object's major axis, z = towards the
  camera; docs/geometry3d.md#instance-geometry), or the identity (the camera frame's axes)
  when the major axis is not defined (a round object). Transform it into the planning frame
  with tf2.
- an empty answer: no target (the instruction refers to nothing, no instance has depth, or the
  result has no 3D). ``header.frame_id`` is '' and the pose is all zeros (quaternion 0, 0, 0, 0,
  which no consumer can mistake for an orientation): check ``msg.header.frame_id`` first.

Run it next to the node (topics are relative, so a namespace or a remap moves both):

    python examples/grasp_target.py --ros-args -r gres/instances:=/gres/instances
"""

from __future__ import annotations

import rclpy
from geometry_msgs.msg import Pose, PoseStamped, Quaternion
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from poa_gres_ros.msg import GresInstances

QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)  # gres_node's result QoS


def choose_target(result: GresInstances):
    """The instance to grasp: the highest relevance among those with valid 3D, or None.

    Returns:
        (instance or None, reason in words when None).
    """
    if result.no_target:
        return None, 'no target: the instruction refers to nothing in the image'
    if result.depth_status != GresInstances.DEPTH_OK:
        return None, f'no 3D for this image ({result.depth_detail or "enable_3d is off"})'
    usable = [i for i in result.instances if i.geometry.valid]
    if not usable:
        return None, 'no instance has enough depth points'
    return max(usable, key=lambda i: i.relevance), ''


def grasp_pose(result: GresInstances) -> tuple[PoseStamped, str]:
    """The PoseStamped answer for one result (module docstring) and a reason when empty."""
    out = PoseStamped()
    out.header.stamp = result.header.stamp
    inst, reason = choose_target(result)
    if inst is None:
        out.pose = Pose(orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=0.0))
        return out, reason
    g = inst.geometry
    out.header.frame_id = result.header.frame_id
    out.pose.position.x, out.pose.position.y, out.pose.position.z = (
        g.centroid.x, g.centroid.y, g.centroid.z
    )  # fmt: skip
    out.pose.orientation = g.orientation if g.orientation_valid else Quaternion(w=1.0)
    return out, ''


class GraspTarget(Node):
    """Node ``grasp_target``: gres/instances -> grasp_target (module docstring)."""

    def __init__(self):
        super().__init__('grasp_target')
        self._pub = self.create_publisher(PoseStamped, 'grasp_target', QOS)
        self.create_subscription(GresInstances, 'gres/instances', self._on_result, QOS)

    def _on_result(self, result: GresInstances) -> None:
        pose, reason = grasp_pose(result)
        self._pub.publish(pose)
        if reason:
            self.get_logger().info(f'empty grasp target: {reason}', throttle_duration_sec=5.0)


def main(args=None) -> int:
    rclpy.init(args=args)
    node = GraspTarget()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
