"""QoS profiles of the GRES node and the check that finds silent QoS mismatches.

A subscription whose QoS is incompatible with every publisher of its topic (a reliable
subscriber and a best-effort camera, or stages of an image pipeline that disagree) receives
nothing and ROS says nothing: the most common reason a perception node "runs but publishes
nothing". :func:`mismatch_report` reads the publishers'
QoS from the graph (``get_publishers_info_by_topic``) and checks each against our
subscription profile with ``rclpy.qos.qos_check_compatible``; the node logs the result as a
warning and in /diagnostics.
"""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSCompatibility,
    QoSProfile,
    ReliabilityPolicy,
    qos_check_compatible,
)

_IMAGE_DEPTH = 5  # small: the node's own single slot does the dropping, and counts it


def image_qos(name: str) -> QoSProfile:
    """The image subscription profile for ``image_qos`` = sensor_data | reliable |
    system_default | auto ('auto' starts as sensor_data; see :func:`auto_reliability`).
    Never KEEP_ALL: with a callback slower than the camera, a KEEP_ALL history grows without
    bound. Raises ValueError for other names."""
    reliability = {
        'auto': ReliabilityPolicy.BEST_EFFORT,
        'sensor_data': ReliabilityPolicy.BEST_EFFORT,
        'reliable': ReliabilityPolicy.RELIABLE,
        'system_default': ReliabilityPolicy.SYSTEM_DEFAULT,
    }.get(name)
    if reliability is None:
        raise ValueError(f'image_qos={name!r}: use sensor_data, reliable, system_default or auto')
    durability = (
        DurabilityPolicy.SYSTEM_DEFAULT if name == 'system_default' else DurabilityPolicy.VOLATILE
    )
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=_IMAGE_DEPTH,
        reliability=reliability,
        durability=durability,
    )


# /instruction: reliable + transient local: a node started (or restarted) after the
# instruction was published still gets it from a publisher that is alive, e.g.
# `ros2 topic pub /instruction std_msgs/String "data: the red mug"` (reliable, transient
# local by default). Depth 10, not 1: instructions that arrive while the node's executor is
# busy wait in the queue instead of replacing each other, so frames captured under each one
# are still answered with it (docs/binding.md). A late joiner gets up to the publisher's
# depth of past instructions at once, in order; the last one is current.
INSTRUCTION_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# /instruction/spoken: reliable, volatile, so that it matches volatile and transient-local
# speech publishers alike; an old spoken command is not replayed to a late joiner.
SPOKEN_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
# /clock, under use_sim_time, for the reception times of /clock messages (docs/binding.md):
# best effort like rclpy's own /clock subscription, so any /clock publisher matches; 500 deep
# (12 s of a 40 Hz bag player's /clock, 0.5 s of a 1 kHz simulator's) so that the messages
# around an instruction are still there when a loaded node's callbacks run late.
CLOCK_RECEIPT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=500,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
# Results: reliable, so that planners get every result; volatile (stale results are useless).
RESULT_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
DIAGNOSTICS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10)


def _policy_names(qos: QoSProfile) -> str:
    rel = getattr(qos.reliability, 'short_key', str(qos.reliability))
    dur = getattr(qos.durability, 'short_key', str(qos.durability))
    return f'{rel}/{dur}'


def mismatch_report(node, topic: str, sub_qos: QoSProfile) -> str | None:
    """None when ``topic`` has no publishers or at least one publisher is compatible with
    ``sub_qos``; otherwise a one-line explanation naming each publisher's node and QoS and
    what is incompatible (for a warning)."""
    infos = node.get_publishers_info_by_topic(topic)
    if not infos:
        return None
    reasons = []
    for info in infos:
        compat, reason = qos_check_compatible(info.qos_profile, sub_qos)
        if compat != QoSCompatibility.ERROR:
            return None
        who = f'{info.node_namespace.rstrip("/")}/{info.node_name}'
        if info.node_name == '_NODE_NAME_UNKNOWN_':  # its node is not discovered (yet)
            who = 'a publisher of a node not yet discovered (or not a ROS node)'
        reasons.append(f'{who} ({_policy_names(info.qos_profile)}): {reason.strip()}')
    return (
        f'{topic} has {len(infos)} publisher(s) but none matches this subscription '
        f'({_policy_names(sub_qos)}), so nothing arrives: ' + '; '.join(reasons)
    )


def auto_reliability(node, topic: str) -> ReliabilityPolicy | None:
    """For ``image_qos: auto``: RELIABLE when ``topic`` has publishers and all of them are
    reliable, BEST_EFFORT when any is best effort, None when it has none (keep as is).

    Why: a best-effort subscription matches every camera (a reliable one receives nothing from
    a best-effort camera), but Fast DDS drops large best-effort samples (measured here with
    640x480 rgb8 at 30 Hz over LARGE_DATA shared memory: about half the frames lost in
    transport), while a reliable
    subscription to a reliable camera loses none.
    """
    infos = node.get_publishers_info_by_topic(topic)
    if not infos:
        return None
    if all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos):
        return ReliabilityPolicy.RELIABLE
    return ReliabilityPolicy.BEST_EFFORT


def with_reliability(qos: QoSProfile, reliability: ReliabilityPolicy) -> QoSProfile:
    """A copy of ``qos`` with another reliability."""
    return QoSProfile(
        history=qos.history, depth=qos.depth, reliability=reliability, durability=qos.durability
    )
