"""GresPrediction -> GresInstances / mask / no_target / debug overlay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poa_gres_ros.core.results import GresPrediction, InstanceResult, PhraseSpan

pytestmark = pytest.mark.ros

TEXT = 'the red mug and the duck ü on the left'


def _prediction():
    h, w = 40, 60
    mug = np.zeros((h, w), bool)
    mug[5:15, 10:30] = True  # box x 10..30, y 5..15
    duck = np.zeros((h, w), bool)
    duck[20:38, 40:43] = True
    duck[37, 50] = True  # box x 40..51
    p_mug = PhraseSpan('the red mug', 0, 11)
    p_duck = PhraseSpan('the duck ü', 16, 26)
    insts = [
        InstanceResult(mug, 0.9, p_mug, 3),
        InstanceResult(duck, 0.8, p_duck, 7),
        InstanceResult(np.zeros((h, w), bool), 0.6, None, 1),
        InstanceResult(mug.copy(), 0.55, p_mug, 9),
    ]
    final = mug | duck
    return GresPrediction(insts, final, False, 0.1, TEXT, True, {'total': 12.0})


def _header():
    from std_msgs.msg import Header

    h = Header(frame_id='cam')
    h.stamp.sec, h.stamp.nanosec = 17, 5
    return h


def test_instances_message_fields():
    from poa_gres_ros.ros.instruction_state import Instruction
    from poa_gres_ros.ros.result_msgs import build_instances_msg

    instr = Instruction(id=4, text=TEXT, stamp_ns=3_000_000_007)
    msg = build_instances_msg(
        _prediction(), _header(), instr, model_name='tiny', backend='torch', inference_time_ms=12.5
    )
    assert msg.header == _header() and msg.mask.header == _header()
    assert (msg.instruction, msg.instruction_id, msg.truncated) == (TEXT, 4, True)
    assert (msg.instruction_stamp.sec, msg.instruction_stamp.nanosec) == (3, 7)
    assert [p.text for p in msg.phrases] == ['the red mug', 'the duck ü']
    assert TEXT[msg.phrases[1].char_start : msg.phrases[1].char_end] == 'the duck ü'
    assert [i.phrase_index for i in msg.instances] == [0, 1, -1, 0]
    assert [i.id for i in msg.instances] == [0, 1, 2, 3]
    mug, duck, empty = msg.instances[:3]
    assert (mug.bbox.x_offset, mug.bbox.y_offset, mug.bbox.width, mug.bbox.height) == (
        10, 5, 20, 10
    )  # fmt: skip
    assert (mug.mask.width, mug.mask.height, mug.mask.encoding) == (20, 10, 'mono8')
    assert set(bytes(mug.mask.data)) == {255} and mug.area_px == 200
    assert math.isclose(mug.centroid_x_px, 20.0) and math.isclose(mug.centroid_y_px, 10.0)
    crop = np.frombuffer(bytes(duck.mask.data), np.uint8).reshape(duck.mask.height, -1)
    assert crop.shape == (18, 11) and crop[17, 10] == 255 and crop[0, 5] == 0
    assert duck.area_px == 18 * 3 + 1 and math.isclose(duck.relevance, 0.8, rel_tol=1e-6)
    assert empty.bbox.width == 0 and empty.mask.height == 0 and math.isnan(empty.centroid_x_px)
    full = np.frombuffer(bytes(msg.mask.data), np.uint8).reshape(40, 60)
    assert (full == 255).sum() == 200 + 55 and msg.mask.step == 60
    assert not msg.no_target and msg.model_name == 'tiny' and msg.backend == 'torch'


def test_no_target_message_and_empty_mask():
    from poa_gres_ros.ros.instruction_state import Instruction
    from poa_gres_ros.ros.result_msgs import build_instances_msg, no_target_msg

    pred = GresPrediction([], np.zeros((4, 6), bool), True, 0.97, 'the giraffe')
    msg = build_instances_msg(
        pred, _header(), Instruction(1, 'the giraffe', 0), model_name='m', backend='b',
        inference_time_ms=1.0,
    )  # fmt: skip
    assert msg.no_target and msg.instances == [] and msg.phrases == []
    assert set(bytes(msg.mask.data)) == {0} and len(msg.mask.data) == 24
    assert math.isclose(msg.no_target_probability, 0.97, rel_tol=1e-6)
    assert no_target_msg(pred).data is True


def test_debug_overlay_marks_instances():
    from poa_gres_ros.core.visualize import draw_overlay
    from poa_gres_ros.ros.result_msgs import rgb8_image

    pred = _prediction()
    img = np.full((40, 60, 3), 100, np.uint8)
    out = draw_overlay(img, pred, show_instruction=False)
    assert out.shape == img.shape and out.dtype == np.uint8
    change = np.abs(out.astype(int) - img).sum(-1)
    union = pred.instances[0].mask | pred.instances[1].mask
    assert (change[union] > 0).all()  # every instance pixel is tinted
    assert change[union].mean() > change[~union].mean()  # the background much less (labels)
    msg = rgb8_image(out, _header())
    assert (msg.encoding, msg.step, len(msg.data)) == ('rgb8', 180, 40 * 60 * 3)


def test_mono8_rejects_wrong_shape():
    from poa_gres_ros.ros.result_msgs import mono8_image

    with pytest.raises(ValueError, match=r'\(H, W\)'):
        mono8_image(np.zeros((2, 2, 3), bool), _header())


def test_node_and_bag_build_byte_identical_results():
    """One path: the node's rclpy message, read back with rosbags, serialises to the same CDR
    bytes as a bag's rosbags message, 3D geometry included (read back first because rclpy
    leaves CDR padding bytes unset)."""
    from rclpy.serialization import serialize_message

    from poa_gres_ros.bag import messages as M
    from poa_gres_ros.bag.typestore import GRES_INSTANCES
    from poa_gres_ros.core.geometry3d import Instance3D
    from poa_gres_ros.ros.instruction_state import Instruction
    from poa_gres_ros.ros.result_msgs import build_instances_msg

    pred = _prediction()
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    mug = Instance3D(
        True, np.array([0.1, -0.05, 0.8]), np.array([0.05, -0.1, 0.75]),
        np.array([0.15, 0.0, 0.85]), rot, True, np.array([0.1, 0.05, 0.02]), 180, 0.1,
        np.zeros((0, 3), np.float32),
    )  # fmt: skip
    geometry = [mug, None, None, None]
    common = dict(
        model_name='tiny', backend='torch', inference_time_ms=12.5, geometry=geometry,
        depth_status=1, depth_detail='ok', depth_stamp_ns=17_000_000_004,
    )  # fmt: skip
    node = build_instances_msg(
        pred, _header(), Instruction(id=4, text=TEXT, stamp_ns=3_000_000_007), **common
    )
    bag = M.gres_instances(
        pred, M.header(17_000_000_005, 'cam'), instruction_id=4,
        instruction_stamp_ns=3_000_000_007, **common,
    )  # fmt: skip
    assert node.instances[0].geometry.valid and not node.instances[1].geometry.valid
    assert math.isclose(node.instances[0].geometry.orientation.w, math.sqrt(0.5), rel_tol=1e-6)
    node_cdr = M.serialize(M.deserialize(serialize_message(node), GRES_INSTANCES))
    assert node_cdr == M.serialize(bag)
