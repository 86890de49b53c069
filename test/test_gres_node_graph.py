"""The node in a ROS graph: lifecycle driven from another process, missing and corrupt models,
two namespaced nodes, a late joiner and the QoS mismatch warning."""

from __future__ import annotations

import shutil

import pytest
from lifecycle_msgs.msg import Transition

from support.gres_process import (
    KEEP_ALL,
    NS_PER_S,
    Lifecycle,
    Probe,
    image_msg,
    start_gres,
    tiny_model,  # noqa: F401  (fixture)
)
from support.image_encoders import tile_picture
from support.ros_waits import spin_until

pytestmark = pytest.mark.ros

PIC = tile_picture(48, 64)


def test_lifecycle_transitions_from_another_process(ros_node, spawn, tiny_model):  # noqa: F811
    proc = start_gres(spawn, tiny_model, *KEEP_ALL, '-p', 'autostart:=false', node_name='gres_lc')
    lc = Lifecycle(ros_node, '/gres_lc', proc=proc)
    probe = Probe(ros_node)
    try:
        assert lc.state() == 'unconfigured'
        probe.instruct('the bowl')
        assert lc.change(Transition.TRANSITION_CONFIGURE) and lc.state() == 'inactive'
        # Inactive: the instruction is kept, images are not subscribed yet.
        assert spin_until(ros_node, lambda: 'instruction 1' in proc.log(), 10, proc)
        assert ros_node.count_subscribers('/camera/image_raw') == 0
        assert lc.change(Transition.TRANSITION_ACTIVATE) and lc.state() == 'active'
        res = probe.request(image_msg(PIC, NS_PER_S), proc=proc)
        assert res is not None and res.instruction == 'the bowl'
        assert lc.change(Transition.TRANSITION_DEACTIVATE) and lc.state() == 'inactive'
        assert spin_until(ros_node, lambda: ros_node.count_subscribers('/camera/image_raw') == 0,
                          10, proc)  # fmt: skip
        assert lc.change(Transition.TRANSITION_CLEANUP) and lc.state() == 'unconfigured'
        # ... and up again: configure + activate reload the model.
        assert lc.change(Transition.TRANSITION_CONFIGURE)
        assert lc.change(Transition.TRANSITION_ACTIVATE) and lc.state() == 'active'
        assert probe.request(image_msg(PIC, 2 * NS_PER_S), proc=proc) is not None
    finally:
        probe.close()
        lc.close()


def test_missing_model_fails_configure_with_the_reason(ros_node, spawn, tmp_path):
    missing = tmp_path / 'no_such_model'
    proc = start_gres(spawn, missing, '-p', 'autostart:=false', node_name='gres_missing')
    lc = Lifecycle(ros_node, '/gres_missing', proc=proc)
    try:
        assert lc.change(Transition.TRANSITION_CONFIGURE) is False
        assert lc.state() == 'unconfigured'
        log = proc.log()
        assert 'configure failed' in log and str(missing) in log and 'not found' in log
    finally:
        lc.close()


def test_corrupt_model_fails_activate_and_autostart_says_so(ros_node, spawn, tmp_path, tiny_model):  # noqa: F811
    bad = tmp_path / 'corrupt'
    shutil.copytree(tiny_model, bad)
    weights = bad / 'model.safetensors'
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated download
    proc = start_gres(spawn, bad, node_name='gres_corrupt')  # autostart: activate fails
    lc = Lifecycle(ros_node, '/gres_corrupt', proc=proc)
    try:
        assert spin_until(ros_node, lambda: 'autostart: activate failed' in proc.log(), 60, proc)
        assert lc.state() == 'inactive' and proc.alive()
        log = proc.log()
        assert 'activate failed: cannot load model' in log and str(bad) in log
        assert lc.change(Transition.TRANSITION_ACTIVATE) is False  # still failing, still up
    finally:
        lc.close()


def test_two_namespaced_nodes_side_by_side(ros_node, spawn, tiny_model):  # noqa: F811
    procs = {
        ns: start_gres(spawn, tiny_model, *KEEP_ALL, namespace=ns, name=f'gres_{ns}')
        for ns in ('left_arm', 'right_arm')
    }
    probes = {ns: Probe(ros_node, namespace=ns) for ns in procs}
    from diagnostic_msgs.msg import DiagnosticStatus

    WARN = DiagnosticStatus.WARN  # noqa: N806
    root = Probe(ros_node)  # the README's /instruction: outside both namespaces
    try:
        # An instruction on /instruction reaches neither node: both skip the frames and say
        # so, naming the topics they do subscribe, in the log and in /diagnostics (WARN).
        root.instruct('the blue cup')
        left = procs['left_arm']

        def warned():
            root.publish(image_msg(PIC, 5 * NS_PER_S))
            status = root.last_status('/left_arm/gres_node: inference')
            return 'are skipped' in left.log() and status is not None and status[0] == WARN

        assert spin_until(ros_node, warned, 120, left), left.log()[-3000:]
        line = next(ln for ln in left.log().splitlines() if 'are skipped' in ln)
        assert '[WARN]' in line and 'no instruction was received' in line
        assert 'publish one on /left_arm/instruction and /left_arm/instruction/spoken' in line
        assert '/instruction has publishers, but this node is in namespace /left_arm' in line
        level, message, _ = root.last_status('/left_arm/gres_node: inference')
        assert 'skipped' in message and '/left_arm/instruction' in message
        probes['left_arm'].instruct('the red mug')
        probes['right_arm'].instruct('the duck')
        for ns, text in (('left_arm', 'the red mug'), ('right_arm', 'the duck')):
            res = probes[ns].request(image_msg(PIC, 7 * NS_PER_S), timeout_s=120, proc=procs[ns])
            assert res is not None and res.instruction == text, ns
        for ns in procs:  # each node's results only on its own topic
            assert {r.instruction for r in probes[ns].results} == {
                'the red mug' if ns == 'left_arm' else 'the duck'
            }
            assert ros_node.count_publishers(f'/{ns}/gres/instances') == 1
    finally:
        root.close()
        for p in probes.values():
            p.close()


def test_late_joining_node_gets_the_transient_local_instruction(ros_node, spawn, tiny_model):  # noqa: F811
    probe = Probe(ros_node)
    try:
        probe.instruct('die rote Tasse, bitte')  # published before the node exists
        proc = start_gres(spawn, tiny_model, *KEEP_ALL)
        res = probe.request(image_msg(PIC, NS_PER_S), timeout_s=120, proc=proc)
        assert res is not None and res.instruction == 'die rote Tasse, bitte'
        assert res.instruction_id == 1
    finally:
        probe.close()


def test_qos_mismatch_is_reported(ros_node, spawn, tiny_model):  # noqa: F811
    from rclpy.qos import qos_profile_sensor_data

    # A best-effort camera and a node that insists on reliable images: nothing can arrive.
    proc = start_gres(spawn, tiny_model, '-p', 'image_qos:=reliable')
    probe = Probe(ros_node, image_qos=qos_profile_sensor_data)
    try:
        assert spin_until(ros_node, lambda: 'QoS mismatch' in proc.log(), 120, proc)
        # the publisher's node may be discovered after its endpoint: the report that names it
        # follows at the next check
        assert spin_until(ros_node, lambda: 'pytest_probe' in proc.log(), 30, proc)
        log = proc.log()
        assert '/camera/image_raw has 1 publisher(s) but none matches' in log
        assert 'best_effort' in log

        def warned():  # a report made after the image subscription exists
            status = probe.last_status()
            return status is not None and status[0] == b'\x01'

        assert spin_until(ros_node, warned, 30, proc)
        assert 'none matches' in probe.last_status()[1]
    finally:
        probe.close()


def test_poa_gres_node_verb_starts_the_node_like_the_launch_file(ros_node, spawn, tiny_model):  # noqa: F811
    """`poa-gres node` (the launch stand-in) with a namespace and an image topic: the node
    answers in that namespace, and Ctrl-C on the verb stops it cleanly (status 0)."""
    # backend torch, as start_gres: with 'auto' the first run on a machine exports the model
    # to ONNX inside the answer timeout (1-3 min on 2 loaded cores)
    proc = spawn(
        ['python', 'scripts/poa-gres', 'node', '--namespace', 'cell3',
         '--image-topic', '/camera/image_raw', '--model-dir', str(tiny_model),
         '--backend', 'torch'],
        name='poa-gres-node',
    )  # fmt: skip
    probe = Probe(ros_node, namespace='cell3')
    try:
        probe.instruct('the bowl')
        res = probe.request(image_msg(PIC, 9 * NS_PER_S), timeout_s=120, proc=proc)
        assert res is not None and res.instruction == 'the bowl', proc.log()[-3000:]
        assert ros_node.count_publishers('/cell3/gres/instances') == 1
    finally:
        probe.close()


def test_image_qos_auto_follows_the_publishers(ros_node, spawn, tiny_model):  # noqa: F811
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    proc = start_gres(spawn, tiny_model, *KEEP_ALL, '-p', 'image_qos:=auto')
    probe = Probe(ros_node, image_qos=QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    best_effort = None
    try:
        probe.instruct('the bowl')
        assert spin_until(ros_node, lambda: 'publishers are RELIABLE' in proc.log(), 120, proc)
        assert probe.request(image_msg(PIC, NS_PER_S), proc=proc) is not None
        # A best-effort camera joins: back to best effort so that it matches too.
        best_effort = ros_node.create_publisher(Image, '/camera/image_raw', qos_profile_sensor_data)
        assert spin_until(ros_node, lambda: 'publishers are BEST_EFFORT' in proc.log(), 30, proc)
        assert probe.request(image_msg(PIC, 2 * NS_PER_S), proc=proc) is not None
        assert 'QoS mismatch' not in proc.log()
    finally:
        if best_effort is not None:
            ros_node.destroy_publisher(best_effort)
        probe.close()
