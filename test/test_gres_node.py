"""The GRES node as a real process: instruction and image in, instances out.

One node per test (scripts/gres_node + config/gres.yaml + a tiny model folder); the test
process publishes instructions and images and reads the outputs over Fast DDS.
"""

from __future__ import annotations

import numpy as np
import pytest

from support.gres_process import (
    KEEP_ALL,
    NS_PER_S,
    Lifecycle,
    Probe,
    image_msg,
    mask_array,
    no_target_model,  # noqa: F401  (fixture)
    set_params,
    start_gres,
    tiny_model,  # noqa: F401  (fixture)
)
from support.image_encoders import tile_picture
from support.ros_waits import spin_until

pytestmark = pytest.mark.ros

INSTRUCTION = 'the red mug and the duck ü on the left'


def _counter(probe, key):
    status = probe.last_status()
    return -1 if status is None else int(status[2].get(key, -1))


def test_instruction_then_image_gives_instances_and_thresholds_are_dynamic(
    ros_node,
    spawn,
    no_target_model,  # noqa: F811
):
    """With no_target_threshold 1.0 nothing can be no-target; the model folder's no-target
    head is certain (p = sigmoid(20)), so back at the default 0.5 it answers no-target."""
    proc = start_gres(spawn, no_target_model, *KEEP_ALL, node_name='gres_flow', stop_timeout_s=2.0)
    lc = Lifecycle(ros_node, '/gres_flow', proc=proc)
    probe = Probe(ros_node)
    try:
        assert lc.wait_for('active'), proc.log()[-3000:]
        pic = tile_picture(120, 160, block=16)

        # An image before any instruction gives nothing (but is received and counted).
        probe.publish(image_msg(pic, stamp_ns=1 * NS_PER_S))
        assert spin_until(ros_node, lambda: _counter(probe, 'no_instruction') >= 1, 20, proc)
        assert probe.results == []

        # Instruction, then image: instances with the image's header and the instruction.
        probe.instruct(INSTRUCTION)
        res = probe.request(image_msg(pic, stamp_ns=2 * NS_PER_S + 7), proc=proc)
        assert res is not None, proc.log()[-3000:]
        assert (res.header.stamp.sec, res.header.stamp.nanosec) == (2, 7)
        assert res.header.frame_id == 'camera'
        assert (res.instruction, res.instruction_id) == (INSTRUCTION, 1)
        assert not res.no_target and len(res.instances) > 0
        assert sum(inst.area_px for inst in res.instances) > 0
        for inst in res.instances:
            crop = mask_array(inst.mask)
            assert crop.shape == (inst.bbox.height, inst.bbox.width)
            assert int((crop == 255).sum()) == inst.area_px
            text = inst.phrase.text
            assert text == INSTRUCTION[inst.phrase.char_start : inst.phrase.char_end]
        assert any(p.text for p in res.phrases), 'no phrase text in the result'
        assert (res.mask.height, res.mask.width) == pic.shape[:2]
        assert spin_until(ros_node, lambda: probe.masks and probe.no_target, 5, proc)
        assert probe.masks[-1].header == res.header and probe.no_target[-1].data is False

        # Dynamic threshold: no_target_threshold 1.0 -> 0.5 (the default) makes the next
        # frame no-target, because this model is certain that nothing is referred to.
        assert res.no_target_probability > 0.99  # certain, yet not no-target at threshold 1
        bad = set_params(ros_node, '/gres_flow', proc, relevance_threshold=1.5)
        assert not bad[0].successful and 'relevance_threshold' in bad[0].reason
        ro = set_params(ros_node, '/gres_flow', proc, model_dir='/elsewhere')
        assert not ro[0].successful  # read-only while running
        (ok,) = set_params(ros_node, '/gres_flow', proc, no_target_threshold=0.5)
        assert ok.successful, ok.reason
        res = probe.request(image_msg(pic, stamp_ns=3 * NS_PER_S), proc=proc)
        assert res.no_target and res.instances == [] and res.phrases == []
        assert not mask_array(res.mask).any()
        assert spin_until(ros_node, lambda: probe.no_target[-1].data is True, 5, proc)

        # An empty instruction clears: the next image gives nothing.
        n_results = len(probe.results)
        skipped = _counter(probe, 'no_instruction')
        probe.instruct('   ')
        assert spin_until(ros_node, lambda: 'instruction cleared' in proc.log(), 10, proc)
        probe.publish(image_msg(pic, stamp_ns=4 * NS_PER_S))
        assert spin_until(ros_node, lambda: _counter(probe, 'no_instruction') > skipped, 20, proc)
        assert len(probe.results) == n_results

        # A new (non-ASCII) instruction gets the next id; frames in flight at Ctrl-C are fine.
        probe.instruct('赤いマグカップ')
        res = probe.request(image_msg(pic, stamp_ns=5 * NS_PER_S), proc=proc)
        assert (res.instruction, res.instruction_id) == ('赤いマグカップ', 2)
        for k in range(5):
            probe.publish(image_msg(pic, stamp_ns=(6 + k) * NS_PER_S))
    finally:
        probe.close()
        lc.close()


def test_diagnostics_and_debug_image_only_while_subscribed(
    ros_node,
    spawn,
    tiny_model,  # noqa: F811
):
    from sensor_msgs.msg import Image

    proc = start_gres(spawn, tiny_model, *KEEP_ALL)
    probe = Probe(ros_node)
    got = []
    sub = None
    try:
        probe.instruct('the bowl')
        pic = tile_picture(48, 64)
        for k in range(3):
            assert probe.request(image_msg(pic, stamp_ns=(k + 1) * NS_PER_S), proc=proc)
        assert spin_until(ros_node, lambda: _counter(probe, 'processed') >= 3, 10, proc)
        level, message, values = probe.last_status()
        assert values['lifecycle_state'] == 'active' and level == b'\x00', message
        for key in ('latency_receipt_ms_p50', 'latency_inference_ms_max', 'input_rate_hz',
                    'output_rate_hz', 'dropped_stale', 'rejected'):  # fmt: skip
            assert key in values, key
        assert float(values['latency_receipt_ms_max']) >= float(values['latency_inference_ms_p50'])
        assert 'latency_stamp_ms_p50' not in values  # stamps 1 s, 2 s, ...: far from the clock
        assert 'one time base' in proc.log()  # ... and the user is told why
        assert values['debug_published'] == '0'  # nobody subscribed: no overlay computed

        sub = ros_node.create_subscription(Image, '/gres/debug_image', got.append, 10)
        res = probe.request(image_msg(pic, stamp_ns=10 * NS_PER_S), proc=proc)
        assert spin_until(ros_node, lambda: got, 10, proc)
        assert got[-1].header == res.header and got[-1].encoding == 'rgb8'
        overlay = np.frombuffer(bytes(got[-1].data), np.uint8).reshape(48, 64, 3)
        assert not np.array_equal(overlay, pic)  # instances drawn
        assert spin_until(ros_node, lambda: _counter(probe, 'debug_published') >= 1, 10, proc)
    finally:
        if sub is not None:
            ros_node.destroy_subscription(sub)
        probe.close()
