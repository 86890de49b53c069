"""Topic roles of a camera bag: what each role is, its default topic and the types it takes.

Roles: ``image`` (sensor_msgs/Image or CompressedImage) and ``instruction`` (std_msgs/String)
are required by a replay; ``ground_truth`` (poa_gres_ros/GresInstances) enables metrics;
``depth`` (aligned depth image) with ``camera_info`` enables the 3D errors; ``gt_objects``
(geometry_msgs/PoseArray) adds the distance to the simulator's object positions. A bag from
another robot maps its own names (``--topic image=/zed/left/image_rect_color``); how a bag is
read is in ``timeline``.
"""

from __future__ import annotations

from poa_gres_ros.bag.typestore import (
    CAMERA_INFO,
    COMPRESSED_IMAGE,
    GRES_INSTANCES,
    IMAGE,
    POSE_ARRAY,
    STRING,
)

ROLES = ('image', 'camera_info', 'depth', 'instruction', 'ground_truth', 'gt_objects')
DEFAULT_TOPICS = {
    'image': '/camera/image_raw',
    'camera_info': '/camera/camera_info',
    'depth': '/camera/aligned_depth_to_color/image_raw',
    'instruction': '/instruction',
    'ground_truth': '/gres/ground_truth',
    'gt_objects': '/gres/ground_truth/objects',
}
ROLE_TYPES = {
    'image': (IMAGE, COMPRESSED_IMAGE),
    'camera_info': (CAMERA_INFO,),
    'depth': (IMAGE,),
    'instruction': (STRING,),
    'ground_truth': (GRES_INSTANCES,),
    'gt_objects': (POSE_ARRAY,),
}


def parse_topic_map(items: list[str] | None) -> dict[str, str]:
    """``['image=/zed/left/image_rect_color', ...]`` -> ``{'image': '/zed/...'}``.

    Raises:
        ValueError: an item without '=', an unknown role or a topic not starting with '/'.
    """
    out = {}
    for item in items or []:
        role, sep, topic = item.partition('=')
        role, topic = role.strip(), topic.strip()
        if not sep or role not in ROLES:
            raise ValueError(f'--topic {item!r}: use ROLE=/topic with ROLE one of {ROLES}')
        if not topic.startswith('/'):
            raise ValueError(f'--topic {item!r}: the topic must be absolute (start with /)')
        out[role] = topic
    return out
