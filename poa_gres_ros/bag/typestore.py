"""A rosbags type store with ROS 2 Kilted's types plus this package's messages (no rclpy).

The poa_gres_ros messages are registered from their ``msg/*.msg`` text with
``rosbags.typesys.get_types_from_msg``, exactly what rosidl generates from, so the bag's
connection definitions and RIHS01 hashes equal those of the colcon-built interfaces (checked:
``GresInstances`` hashes to the same ``RIHS01_968d...`` as ``share/poa_gres_ros/msg/
GresInstances.json``), and rclpy decodes rosbags' CDR and vice versa (tested).
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = 'poa_gres_ros'
GRES_INSTANCES = f'{PACKAGE}/msg/GresInstances'
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED_IMAGE = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
STRING = 'std_msgs/msg/String'
POSE_ARRAY = 'geometry_msgs/msg/PoseArray'


def msg_dir_candidates() -> list[Path]:
    """Where ``msg/*.msg`` of this package is looked for, in order: every
    ``<AMENT_PREFIX_PATH entry>/share/poa_gres_ros/msg``, ``<sys.prefix>/share/poa_gres_ros/msg``,
    then the source checkout's ``msg/``."""
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    out = [Path(p) / 'share' / PACKAGE / 'msg' for p in prefixes]
    out.append(Path(sys.prefix) / 'share' / PACKAGE / 'msg')
    out.append(Path(__file__).resolve().parents[2] / 'msg')
    return out


def find_msg_dir() -> Path:
    """The first folder of :func:`msg_dir_candidates` holding ``GresInstances.msg``.

    Raises:
        FileNotFoundError: none does; the message lists the places searched.
    """
    tried = msg_dir_candidates()
    for d in tried:
        if (d / 'GresInstances.msg').is_file():
            return d
    places = ', '.join(str(d) for d in tried)
    raise FileNotFoundError(
        f'GresInstances.msg not found (looked in {places}); build the package with colcon '
        '(make setup) or run from the source checkout'
    )


@lru_cache(maxsize=1)
def gres_typestore():
    """The rosbags ``Typestore`` for ROS 2 Kilted plus every ``poa_gres_ros/msg/*.msg``.

    Cached: the same object is returned on every call (treat it as read-only).
    Raises:
        FileNotFoundError: the .msg files are not found (:func:`find_msg_dir`).
    """
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(find_msg_dir().glob('*.msg')):
        types.update(
            get_types_from_msg(path.read_text(encoding='utf-8'), f'{PACKAGE}/msg/{path.stem}')
        )
    store.register(types)
    return store


def msg_class(msgtype: str):
    """The rosbags message class of ``msgtype`` (e.g. 'sensor_msgs/msg/Image')."""
    return gres_typestore().types[msgtype]
