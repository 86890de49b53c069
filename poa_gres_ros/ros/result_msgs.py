"""GresPrediction -> ROS messages: /gres/instances, /gres/mask, /gres/no_target, debug image.

The debug overlay itself is ``poa_gres_ros.core.visualize.draw_overlay`` (the same picture as
``poa-gres segment``); :func:`rgb8_image` wraps it in a message.

Message semantics are those documented in msg/GresInstances.msg and msg/GresInstance.msg: the
source image header is copied to every output (vision_msgs convention), masks are mono8
(0 / 255), the merged mask is full frame, per-instance masks are cropped to their tight box.
"""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image, RegionOfInterest
from std_msgs.msg import Bool, Header

from poa_gres_ros.core.results import GresPrediction, PhraseSpan
from poa_gres_ros.msg import GresInstance, GresInstances, GresPhrase
from poa_gres_ros.ros.instruction_state import NS_PER_S, Instruction


def time_from_ns(stamp_ns: int) -> Time:
    """builtin_interfaces/Time from nanoseconds (>= 0)."""
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def mono8_image(mask: np.ndarray, header: Header) -> Image:
    """(H, W) bool or uint8 mask -> mono8 sensor_msgs/Image (255 where set, 0 elsewhere).

    A 0 x 0 mask gives an image with height = width = step = 0 and no data.
    """
    if mask.ndim != 2:
        raise ValueError(f'mask must be (H, W), got shape {mask.shape}')
    h, w = mask.shape
    binary = mask if mask.dtype == np.bool_ else mask.astype(bool)
    data = binary.view(np.uint8) * np.uint8(255)  # bool is one byte 0/1: no comparison pass
    return Image(
        header=header, height=h, width=w, encoding='mono8', is_bigendian=0, step=w,
        data=data.tobytes(),
    )  # fmt: skip


def mask_geometry(mask: np.ndarray):
    """Tight box, area and centroid of an (H, W) bool mask in one pass over its projections.

    Returns ``((x0, y0, x1, y1), area_px, (cx, cy))`` with the conventions of
    ``core.results.InstanceResult`` (x1/y1 exclusive, pixel centres at +0.5, NaN centroid and
    a zero box for an empty mask), about 10x faster than its properties at 640x480 because
    nonzero() is never called on the full frame.
    """
    rows, cols = mask.any(axis=1), mask.any(axis=0)
    ys, xs = np.flatnonzero(rows), np.flatnonzero(cols)
    if ys.size == 0:
        return (0, 0, 0, 0), 0, (float('nan'), float('nan'))
    x0, y0, x1, y1 = int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1
    crop = mask[y0:y1, x0:x1]
    row_counts, col_counts = crop.sum(axis=1), crop.sum(axis=0)
    area = int(row_counts.sum())
    cy = float(row_counts @ np.arange(y0, y1)) / area + 0.5
    cx = float(col_counts @ np.arange(x0, x1)) / area + 0.5
    return (x0, y0, x1, y1), area, (cx, cy)


def rgb8_image(image_rgb: np.ndarray, header: Header) -> Image:
    """(H, W, 3) uint8 RGB -> rgb8 sensor_msgs/Image with the given header."""
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f'expected (H, W, 3) uint8, got {image_rgb.shape} {image_rgb.dtype}')
    h, w = image_rgb.shape[:2]
    return Image(
        header=header,
        height=h,
        width=w,
        encoding='rgb8',
        is_bigendian=0,
        step=3 * w,
        data=np.ascontiguousarray(image_rgb).tobytes(),
    )


def _phrase_msg(span: PhraseSpan | None) -> GresPhrase:
    if span is None:
        return GresPhrase(text='', char_start=0, char_end=0)
    return GresPhrase(text=span.text, char_start=span.char_start, char_end=span.char_end)


def build_instances_msg(
    pred: GresPrediction,
    header: Header,
    instruction: Instruction,
    *,
    model_name: str,
    backend: str,
    inference_time_ms: float,
) -> GresInstances:
    """The /gres/instances message for one prediction.

    Args:
        pred: the predictor's output at the source resolution (masks (H, W) bool).
        header: the source image header (copied to the result and to every mask).
        instruction: the instruction the image was bound to (text, id, receive stamp).
        model_name, backend: reported as is.
        inference_time_ms: wall-clock milliseconds spent in the predictor for this image.

    Instances keep the predictor's order (highest relevance first); ``phrase_index`` points
    into ``phrases`` (the distinct phrases of the kept instances, first appearance first), -1
    for an instance without a phrase. An instance with an empty mask gets a 0 x 0 box and
    mask and a NaN centroid.
    """
    phrases = pred.phrases
    index = {p: i for i, p in enumerate(phrases)}
    instances = []
    for k, inst in enumerate(pred.instances):
        (x0, y0, x1, y1), area_px, (cx, cy) = mask_geometry(inst.mask)
        instances.append(
            GresInstance(
                id=k,
                relevance=float(inst.relevance),
                phrase=_phrase_msg(inst.phrase),
                phrase_index=index.get(inst.phrase, -1) if inst.phrase is not None else -1,
                bbox=RegionOfInterest(
                    x_offset=x0, y_offset=y0, width=x1 - x0, height=y1 - y0, do_rectify=False
                ),
                mask=mono8_image(inst.mask[y0:y1, x0:x1], header),
                area_px=area_px,
                centroid_x_px=cx,
                centroid_y_px=cy,
            )
        )
    return GresInstances(
        header=header,
        instruction=instruction.text,
        instruction_id=instruction.id,
        instruction_stamp=time_from_ns(instruction.stamp_ns),
        truncated=bool(pred.truncated),
        phrases=[_phrase_msg(p) for p in phrases],
        no_target=bool(pred.no_target),
        no_target_probability=float(pred.no_target_prob),
        instances=instances,
        mask=mono8_image(pred.final_mask, header),
        model_name=model_name,
        backend=backend,
        inference_time_ms=float(inference_time_ms),
    )


def no_target_msg(pred: GresPrediction) -> Bool:
    """/gres/no_target: std_msgs/Bool with the no-target decision."""
    return Bool(data=bool(pred.no_target))
