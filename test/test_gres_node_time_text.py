"""Time and text through the real node: use_sim_time (/clock) everywhere, instruction expiry,
a clock jumping back (looped bag), over-long and invalid-UTF-8 instructions."""

from __future__ import annotations

import struct

import pytest

from support.gres_process import (
    KEEP_ALL,
    NS_PER_S,
    Probe,
    image_msg,
    set_params,
    start_gres,
    tiny_model,  # noqa: F401  (fixture)
)
from support.image_encoders import tile_picture
from support.ros_waits import spin_until

pytestmark = pytest.mark.ros

PIC = tile_picture(48, 64)


def test_sim_time_expiry_clock_jumps_and_text(ros_node, spawn, tiny_model):  # noqa: F811
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import String

    clock_pub = ros_node.create_publisher(
        Clock, '/clock', QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    )
    raw_instr = None
    probe = Probe(ros_node)

    def set_clock(sec, timeout_s=90.0):
        """Publish /clock = sec (repeatedly, as a bag player does) until the node's clock,
        seen in the header of its /diagnostics, is there."""
        msg = Clock()
        msg.clock.sec = sec

        def there():
            clock_pub.publish(msg)
            return any(a.header.stamp.sec == sec for a in probe.diagnostics[-3:])

        assert spin_until(ros_node, there, timeout_s, proc), f'node clock never reached {sec}'

    proc = start_gres(
        spawn, tiny_model, *KEEP_ALL, '-p', 'use_sim_time:=true', node_name='gres_simtime'
    )
    try:
        assert spin_until(ros_node, lambda: clock_pub.get_subscription_count() >= 1, 60, proc)
        set_clock(1000)
        probe.instruct('the red mug')
        assert spin_until(ros_node, lambda: 'instruction 1 from' in proc.log(), 30, proc)
        set_clock(1001)
        res = probe.request(image_msg(PIC, 1000 * NS_PER_S + 500_000_000), timeout_s=60, proc=proc)
        assert res is not None, proc.log()[-3000:]
        assert res.instruction_stamp.sec == 1000  # receive stamp from the node clock = /clock

        def reported():
            status = probe.last_status()
            return status is not None and 'latency_stamp_ms_max' in status[2]

        assert spin_until(ros_node, reported, 10, proc)
        values = probe.last_status()[2]
        assert float(values['latency_stamp_ms_max']) == pytest.approx(500.0)  # 1001 - 1000.5 s
        assert values['binding_rule'] == 'header stamp (use_sim_time)'
        assert 'binding images to instructions by header stamp (use_sim_time)' in proc.log()

        # Binding by header stamp: a frame captured at 1002 s that arrives after the
        # instruction of 1003 s is answered with the instruction it was captured under.
        set_clock(1003)
        probe.instruct('the blue cup')
        assert spin_until(ros_node, lambda: 'instruction 2 from' in proc.log(), 30, proc)
        late = probe.request(image_msg(PIC, 1002 * NS_PER_S), proc=proc)
        assert late.instruction == 'the red mug' and late.instruction_id == 1
        new = probe.request(image_msg(PIC, 1003 * NS_PER_S + 1), proc=proc)
        assert new.instruction == 'the blue cup' and new.instruction_id == 2

        # Expiry on the node clock: 5 s timeout, sim time advances 10 s -> nothing.
        (ok,) = set_params(ros_node, '/gres_simtime', proc, instruction_timeout_s=5.0)
        assert ok.successful
        set_clock(1010)
        before = int(probe.last_status()[2]['no_instruction'])
        probe.publish(image_msg(PIC, 1010 * NS_PER_S))

        def skipped():
            return int(probe.last_status()[2]['no_instruction']) > before

        assert spin_until(ros_node, skipped, 20, proc)
        assert probe.result_for(1010 * NS_PER_S) is None

        # A looped bag: the clock jumps back to 1 s; a new instruction binds and the age counts
        # from the jump, so the instruction stays valid for images after it.
        set_clock(1)
        assert spin_until(
            ros_node, lambda: 'node clock jumped back 1009.000 s' in proc.log(), 20, proc
        )
        probe.instruct('the duck')
        res = probe.request(image_msg(PIC, 1 * NS_PER_S), proc=proc)
        assert res.instruction == 'the duck' and res.instruction_stamp.sec == 1

        # Over-long instruction (tiny model: 16 tokens): truncated flag and one warning.
        long_text = ' and '.join(f'the {c} mug' for c in ('red', 'blue', 'green', 'white', 'big'))
        probe.instruct(long_text)
        res = probe.request(image_msg(PIC, 2 * NS_PER_S), proc=proc)
        assert res.instruction == long_text and res.truncated
        assert proc.log().count("longer than the model's 16 tokens") == 1
        # A 4800-character instruction travels whole in the result but is cut in the log.
        huge = 'the red mug ' * 400
        probe.instruct(huge)
        res = probe.request(image_msg(PIC, 2 * NS_PER_S + 1), proc=proc)
        assert res.instruction == huge and res.truncated
        assert proc.log().count('... (4800 characters)') == 2  # received, and truncated
        assert max(len(line) for line in proc.log().splitlines()) < 600

        # Invalid UTF-8 bytes in a String (raw CDR): kept with U+FFFD, flagged in the log.
        raw_instr = ros_node.create_publisher(String, '/instruction', probe.instruction_qos)
        body = b'the \xff\xfe mug\x00'
        raw_instr.publish(b'\x00\x01\x00\x00' + struct.pack('<I', len(body)) + body)
        assert spin_until(ros_node, lambda: 'not valid UTF-8' in proc.log(), 10, proc)
        res = probe.request(image_msg(PIC, 3 * NS_PER_S), proc=proc)
        assert '\ufffd' in res.instruction and res.instruction.startswith('the ')
    finally:
        if raw_instr is not None:
            ros_node.destroy_publisher(raw_instr)
        ros_node.destroy_publisher(clock_pub)
        probe.close()
