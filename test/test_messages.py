"""The custom interfaces: build, import, cross-process round trip, rosbags and C++ use."""

from __future__ import annotations

import pytest

from support import msg_samples
from support.ros_waits import spin_until

pytestmark = pytest.mark.ros


def test_samples_fill_every_field():
    for name, msg in msg_samples.build_all().items():
        assert msg_samples.unset_fields(msg) == [], f'{name} sample leaves fields at default'


def test_every_field_is_documented():
    """Every field in msg/*.msg sits in a block (no blank line) that opens with a comment."""
    from pathlib import Path

    msg_files = sorted(Path(__file__).resolve().parents[1].glob('msg/*.msg'))
    assert len(msg_files) >= 4
    for path in msg_files:
        for block in path.read_text().split('\n\n'):
            lines = [ln.strip() for ln in block.strip().splitlines()]
            if any(ln and not ln.startswith('#') for ln in lines):
                assert lines[0].startswith('#'), f'{path.name}: undocumented field(s): {block!r}'


def test_round_trip_between_processes(ros_node, spawn):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    qos = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    expected = msg_samples.build_all()
    got: dict = {}
    subs = [
        ros_node.create_subscription(
            type(msg), msg_samples.SAMPLE_TOPICS[name], lambda m, n=name: got.setdefault(n, m), qos
        )
        for name, msg in expected.items()
    ]
    proc = spawn(['python', 'test/support/publish_samples.py'], name='publish_samples')
    try:
        assert spin_until(ros_node, lambda: len(got) == len(expected), 20.0, proc), (
            f'received only {sorted(got)}'
        )
    finally:
        for s in subs:
            ros_node.destroy_subscription(s)
    for name, msg in expected.items():
        assert got[name] == msg, f'{name} changed in transit:\n{got[name]}\n!=\n{msg}'
    assert got['GresInstances'].instruction == msg_samples.INSTRUCTION  # UTF-8 intact
    assert bytes(got['GresInstances'].instances[1].mask.data) == bytes(
        expected['GresInstances'].instances[1].mask.data
    )


def test_rosbags_reads_rclpy_serialisation(tmp_path):
    """Bags written with rosbags (replay tools) carry the same content rclpy publishes."""
    from pathlib import Path

    from rclpy.serialization import deserialize_message, serialize_message
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from poa_gres_ros.msg import GresInstances

    store = get_typestore(Stores.ROS2_KILTED)
    msg_dir = Path(__file__).resolve().parents[1] / 'msg'
    types = {}
    for name in ('GresPhrase', 'GresInstance3D', 'GresInstance', 'GresInstances'):
        types.update(
            get_types_from_msg((msg_dir / f'{name}.msg').read_text(), f'poa_gres_ros/msg/{name}')
        )
    store.register(types)
    sample = msg_samples.instances()
    raw = serialize_message(sample)
    decoded = store.deserialize_cdr(raw, 'poa_gres_ros/msg/GresInstances')
    assert decoded.instruction == sample.instruction
    assert decoded.instances[1].bbox.width == 6
    assert decoded.instances[1].geometry.centroid.x == 1.125
    assert decoded.depth_status == GresInstances.DEPTH_INVALID
    assert bytes(decoded.mask.data) == bytes(sample.mask.data)
    again = deserialize_message(
        bytes(store.serialize_cdr(decoded, 'poa_gres_ros/msg/GresInstances')), GresInstances
    )
    assert again == sample
