"""The node's image input as a real process: every encoding, padded rows, byte order and
compressed images give the same result as rgb8; bad frames are logged and the node stays up."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from poa_gres_ros.conversions.image_msgs import SUPPORTED_ENCODINGS, image_to_rgb

from support.gres_process import KEEP_ALL, NS_PER_S, Probe, image_msg, start_gres, tiny_model  # noqa: F401
from support.image_encoders import encode, grey_picture, tile_picture, to_msg
from support.ros_waits import spin_until

pytestmark = pytest.mark.ros

H, W = 48, 64


def _signature(res):
    """What must match between two encodings of the same picture: every output value."""
    return (
        bytes(res.mask.data),
        res.no_target_probability,
        [(i.relevance, i.bbox.x_offset, i.bbox.width, bytes(i.mask.data)) for i in res.instances],
    )


def _cases():
    """(label, fields) per encoding, padded and big-endian variants; the picture is grey for
    mono encodings (what a mono camera can show)."""
    cases = []
    for enc in SUPPORTED_ENCODINGS:
        pic = grey_picture(H, W) if enc in ('mono8', 'mono16', '8UC1', '16UC1') else None
        pic = tile_picture(H, W, block=8) if pic is None else pic
        cases.append((enc, encode(pic, enc)))
        cases.append((f'{enc}+pad', encode(pic, enc, pad=6)))
    for enc in ('mono16', '16UC1', 'rgb16', 'bayer_rggb16'):
        pic = grey_picture(H, W) if enc in ('mono16', '16UC1') else tile_picture(H, W, block=8)
        cases.append((f'{enc}+bigendian', encode(pic, enc, pad=2, big_endian=True)))
    return cases


def test_every_encoding_and_padding_gives_the_rgb8_result(ros_node, spawn, tiny_model):  # noqa: F811
    from sensor_msgs.msg import CompressedImage

    proc = start_gres(spawn, tiny_model, *KEEP_ALL, '-p', 'subscribe_compressed:=true')
    probe = Probe(ros_node)
    try:
        probe.instruct('the red mug')
        stamp = [NS_PER_S]

        def run(msg_or_fields, label):
            stamp[0] += 1
            msg = msg_or_fields
            if isinstance(msg_or_fields, dict):
                msg = to_msg(msg_or_fields, stamp_ns=stamp[0])
            else:
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp[0], NS_PER_S)
            res = probe.request(msg, proc=proc)
            assert res is not None, f'{label}: no result\n{proc.log()[-2000:]}'
            return _signature(res)

        mismatched = []
        for label, fields in _cases():
            # Reference: rgb8 of what the encoding holds (the picture itself for lossless
            # encodings; the converter is checked against the picture in test_image_msgs).
            expected_rgb = np.ascontiguousarray(image_to_rgb(**fields))
            if run(fields, label) != run(encode(expected_rgb, 'rgb8'), f'{label} reference'):
                mismatched.append(label)
        assert mismatched == []

        # Compressed (PNG, lossless) through image/compressed.
        pic = tile_picture(H, W, block=8)
        png = CompressedImage(format='rgb8; png compressed bgr8')
        png.data = cv2.imencode('.png', cv2.cvtColor(pic, cv2.COLOR_RGB2BGR))[1].tobytes()
        assert run(png, 'png') == run(encode(pic, 'rgb8'), 'png reference')

        # The comparison can fail: a channel-swapped picture gives a different result.
        assert run(encode(pic[..., ::-1].copy(), 'rgb8'), 'swapped') != run(
            encode(pic, 'rgb8'), 'plain'
        )
    finally:
        probe.close()


def test_bad_frames_are_logged_and_the_node_stays_up(ros_node, spawn, tiny_model):  # noqa: F811
    proc = start_gres(spawn, tiny_model, *KEEP_ALL)
    probe = Probe(ros_node)
    try:
        probe.instruct('the red mug')
        pic = tile_picture(H, W)
        assert probe.request(image_msg(pic, stamp_ns=NS_PER_S), proc=proc) is not None
        good = encode(pic, 'rgb8')
        bad = [
            dict(good, encoding='32FC1'),  # unsupported (a depth image)
            dict(good, encoding='yuv420_weird'),
            dict(good, height=0, width=0, step=0, data=b''),  # zero size
            dict(good, data=good['data'][:-5]),  # wrong data length
            dict(good, step=W),  # step shorter than a row
        ]

        def rejected():
            status = probe.last_status()
            return -1 if status is None else int(status[2]['rejected'])

        for k, fields in enumerate(bad):  # one at a time: the single slot keeps only the newest
            before = rejected()
            probe.publish(to_msg(fields, stamp_ns=(10 + k) * NS_PER_S))
            assert spin_until(ros_node, lambda b=before: rejected() > b, 20, proc), fields
        log = proc.log()
        for needle in ("'32FC1'", "'yuv420_weird'", 'zero-size', 'len(data)', 'step 64'):
            assert needle in log, needle
        level, message, _ = probe.last_status()
        assert level == b'\x01' and 'rejected' in message  # WARN in /diagnostics
        # Still up and answering.
        res = probe.request(image_msg(pic, stamp_ns=20 * NS_PER_S), proc=proc)
        assert res is not None and proc.alive()
    finally:
        probe.close()
