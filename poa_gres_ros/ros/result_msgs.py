"""GresPrediction -> the node's rclpy messages: /gres/instances, /gres/mask, debug image.

The messages are built by ``conversions.result_msgs`` (the same path make-bag and replay use
with rosbags classes) with the rclpy classes of :data:`RCLPY`. The debug overlay itself is
``core.visualize.draw_overlay`` (the same picture as ``poa-gres segment``); :func:`rgb8_image`
wraps it in a message.
"""

from __future__ import annotations

import importlib
from functools import cache

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image
from std_msgs.msg import Bool, Header

from poa_gres_ros.conversions import result_msgs as R
from poa_gres_ros.core.results import GresPrediction
from poa_gres_ros.msg import GresInstances
from poa_gres_ros.ros.instruction_state import Instruction


@cache
def rclpy_message_class(msgtype: str) -> type:
    """The rclpy class of a ROS type name, e.g. 'sensor_msgs/msg/Image'.

    Raises:
        ModuleNotFoundError / AttributeError: the package or type is not installed.
    """
    pkg, kind, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{pkg}.{kind}'), name)


RCLPY = R.MessageKit(cls=rclpy_message_class, uint8_data=lambda data: data.tobytes())
"""rclpy message classes; uint8[] fields take bytes."""


def time_from_ns(stamp_ns: int) -> Time:
    """builtin_interfaces/Time from nanoseconds (>= 0)."""
    return R.time_msg(stamp_ns, RCLPY)


def mono8_image(mask: np.ndarray, header: Header) -> Image:
    """(H, W) bool or uint8 mask -> mono8 sensor_msgs/Image (255 where set, 0 elsewhere)."""
    return R.mono8_image(mask, header, RCLPY)


def rgb8_image(image_rgb: np.ndarray, header: Header) -> Image:
    """(H, W, 3) uint8 RGB -> rgb8 sensor_msgs/Image with the given header."""
    return R.rgb8_image(image_rgb, header, RCLPY)


def build_instances_msg(
    pred: GresPrediction, header: Header, instruction: Instruction, **fields
) -> GresInstances:
    """The /gres/instances message for one prediction (``conversions.result_msgs.instances_msg``).

    Args:
        pred: the predictor's output at the source resolution (masks (H, W) bool).
        header: the source image header (copied to the result and to every mask).
        instruction: the instruction the image was bound to (text, id, receive stamp).
        fields: the other keyword arguments of ``instances_msg`` (model_name, backend,
            inference_time_ms, and the 3D fields).
    """
    return R.instances_msg(
        pred,
        header,
        RCLPY,
        instruction=instruction.text,
        instruction_id=instruction.id,
        instruction_stamp_ns=instruction.stamp_ns,
        **fields,
    )


def no_target_msg(pred: GresPrediction) -> Bool:
    """/gres/no_target: std_msgs/Bool with the no-target decision."""
    return Bool(data=bool(pred.no_target))
