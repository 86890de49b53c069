"""Time and text through the real node: use_sim_time (/clock) everywhere, instruction expiry,
a clock jumping back (looped bag), over-long and invalid-UTF-8 instructions; live, an
instruction's time is when the node's middleware received it."""

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


class HeldNode:
    """The real GresNode with the real model and Fast DDS, run in the test process on an
    executor that the test spins (``run_until``) or holds (does not spin), as a loaded machine
    holds it: a separate process cannot be held without stopping its middleware threads too.
    Publishes instructions and images to it and collects its results."""

    def __init__(self, ros_node, tiny_model, ns: str, **params):  # noqa: F811
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from poa_gres_ros.msg import GresInstances
        from poa_gres_ros.ros.gres_node import GresNode
        from poa_gres_ros.ros.qos import INSTRUCTION_QOS, RESULT_QOS

        params = dict(model_dir=str(tiny_model), backend='torch', relevance_threshold=0.0,
                      no_target_threshold=1.0, **params)  # fmt: skip
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.ros_node = ros_node
        self.node = GresNode('gres_held', namespace=ns, parameter_overrides=overrides)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.results = []
        self.instr_pub = ros_node.create_publisher(String, f'{ns}/instruction', INSTRUCTION_QOS)
        self.image_pub = ros_node.create_publisher(
            Image, f'{ns}/image', QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        )
        self.sub = ros_node.create_subscription(
            GresInstances, f'{ns}/gres/instances', self.results.append, RESULT_QOS
        )

    def run_until(self, predicate, timeout_s=120.0, between=None):
        import time

        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not predicate():
            self.executor.spin_once(timeout_sec=0.02)
            rclpy_spin_once(self.ros_node)
            if between is not None:
                between()
        return predicate()

    def instruct(self, text: str) -> None:
        from std_msgs.msg import String

        self.instr_pub.publish(String(data=text))

    def first_instruction(self, text: str):
        """Wait until the node hears our publishers, send ``text`` and spin until the node
        holds it; returns its ``Instruction``."""
        assert self.run_until(lambda: self.image_pub.get_subscription_count() >= 1
                              and self.instr_pub.get_subscription_count() >= 1)  # fmt: skip
        self.instruct(text)
        assert self.run_until(lambda: self.node.instructions.current() is not None, 30)
        return self.node.instructions.current()

    def answer(self, stamp_ns: int):
        """Publish an image stamped ``stamp_ns`` and return the node's result for it."""
        self.image_pub.publish(image_msg(PIC, stamp_ns))
        assert self.run_until(lambda: any(_stamp(r) == stamp_ns for r in self.results), 60)
        return next(r for r in self.results if _stamp(r) == stamp_ns)

    def close(self) -> None:
        self.ros_node.destroy_subscription(self.sub)
        self.ros_node.destroy_publisher(self.instr_pub)
        self.ros_node.destroy_publisher(self.image_pub)
        self.node.release()
        self.executor.remove_node(self.node)
        self.node.destroy_node()
        self.executor.shutdown(timeout_sec=1.0)


def test_live_instruction_time_is_when_the_middleware_received_it(ros_node, tiny_model):  # noqa: F811
    """Live (system time, header-stamp rule): the node's executor is held for 3 s after an
    instruction reached its middleware, as a loaded machine holds it. A frame captured 1.5 s
    after that reception (and bound after the callback finally ran) is answered with the new
    instruction; a frame captured before it was sent keeps the previous one."""
    import time

    held = HeldNode(ros_node, tiny_model, '/rx_time', stamp_tolerance_s=10.0)
    node = held.node
    try:
        mug = held.first_instruction('the red mug')
        sent_ns = time.time_ns()
        held.instruct('the blue cup')
        time.sleep(3.0)  # the executor is held: the callback runs about 3 s late
        assert held.run_until(lambda: node.instructions.current().text == 'the blue cup', 30)
        before = held.answer((mug.stamp_ns + sent_ns) // 2)  # captured before it was sent
        assert (before.instruction, before.instruction_id) == ('the red mug', mug.id)
        after = held.answer(sent_ns + 1_500_000_000)  # captured after it reached the middleware
        assert (after.instruction, after.instruction_id) == ('the blue cup', mug.id + 1)
        assert _stamp(after, 'instruction_stamp') <= sent_ns + 1_500_000_000
        assert node.stats.snapshot()['bound_by_stamp'] == 2
    finally:
        held.close()


def test_instructions_sent_while_the_executor_is_held_are_all_kept(ros_node, tiny_model):  # noqa: F811
    """Two instructions reach the middleware while the node's executor is held (a loaded
    machine): both are taken in order when it runs again, and a frame captured between them
    is answered with the first, not with a neighbour (a depth-1 queue keeps only the last)."""
    import time

    held = HeldNode(ros_node, tiny_model, '/rx_queue', stamp_tolerance_s=10.0)
    node = held.node
    try:
        mug = held.first_instruction('the red mug')
        cup_sent = time.time_ns()
        held.instruct('the blue cup')
        time.sleep(1.0)  # held: neither callback runs
        bowl_sent = time.time_ns()
        held.instruct('the green bowl')
        time.sleep(1.0)
        assert held.run_until(lambda: node.instructions.current().text == 'the green bowl', 30)
        assert node.instructions.current().id == mug.id + 2  # the cup was taken, not replaced
        between = held.answer((cup_sent + bowl_sent) // 2)
        assert (between.instruction, between.instruction_id) == ('the blue cup', mug.id + 1)
        last = held.answer(bowl_sent + 500_000_000)
        assert (last.instruction, last.instruction_id) == ('the green bowl', mug.id + 2)
    finally:
        held.close()


def test_sim_instruction_time_is_the_clock_when_the_middleware_received_it(ros_node, tiny_model):  # noqa: F811
    """Under use_sim_time (a bag played with /clock): the node's executor is held while /clock
    runs on from 20.0 s to 23.0 s after an instruction that was published at /clock 20.0 s,
    as a loaded machine holds it. Its time is 20.0 s, not 23.0 s (when its callback ran): a
    frame stamped 21.5 s is answered with it, one stamped 19.5 s with the previous one."""
    import time

    from builtin_interfaces.msg import Time
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock

    clock_pub = ros_node.create_publisher(Clock, '/clock', QoSProfile(depth=1))

    def tick(t_ns: int) -> None:
        clock_pub.publish(Clock(clock=Time(sec=t_ns // NS_PER_S, nanosec=t_ns % NS_PER_S)))

    base = 1_700_000_000 * NS_PER_S
    held = HeldNode(ros_node, tiny_model, '/sim_rx', use_sim_time=True)
    node = held.node
    try:
        assert held.run_until(lambda: held.image_pub.get_subscription_count() >= 1
                              and held.instr_pub.get_subscription_count() >= 1
                              and clock_pub.get_subscription_count() >= 2)  # fmt: skip
        tick(base + 10 * NS_PER_S)
        held.instruct('the red mug')
        assert held.run_until(
            lambda: node.instructions.current() is not None, 30,
            between=lambda: tick(base + 10 * NS_PER_S),
        )  # fmt: skip
        mug = node.instructions.current()
        tick(base + 20 * NS_PER_S)
        held.instruct('the blue cup')
        for k in range(1, 121):  # the executor is held for 3 s while /clock goes on
            time.sleep(0.025)
            tick(base + 20 * NS_PER_S + k * 25_000_000)
        assert held.run_until(lambda: node.instructions.current().text == 'the blue cup', 30)
        cup = node.instructions.current()
        assert node.get_clock().now().nanoseconds >= base + 22 * NS_PER_S  # the callback: late
        assert base + 20 * NS_PER_S <= cup.stamp_ns <= base + 20 * NS_PER_S + 200_000_000
        before = held.answer(base + 19_500_000_000)  # frames in stamp order, as from a bag
        assert (before.instruction, before.instruction_id) == ('the red mug', mug.id)
        after = held.answer(base + 21_500_000_000)
        assert (after.instruction, after.instruction_id) == ('the blue cup', mug.id + 1)
    finally:
        ros_node.destroy_publisher(clock_pub)
        held.close()


def rclpy_spin_once(node) -> None:
    import rclpy

    rclpy.spin_once(node, timeout_sec=0.0)


def _stamp(msg, field='header') -> int:
    t = msg.header.stamp if field == 'header' else getattr(msg, field)
    return t.sec * NS_PER_S + t.nanosec
