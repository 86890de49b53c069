"""GresPrediction <-> ``poa_gres_ros/GresInstances``, one path for rclpy and rosbags messages.

The node publishes its results with rclpy message classes; make-bag writes the ground truth and
replay reads node results with rosbags message classes. Both build and read the message here,
so the two can never disagree. A :class:`MessageKit` says how one library makes messages.

Message semantics (msg/GresInstances.msg, msg/GresInstance.msg): the image header is copied to
the result and to every mask; masks are mono8 (0 / 255); the merged mask is full frame; each
instance mask is cropped to its tight box (x1, y1 exclusive, ``core.mask_geometry``), so an
instance with an empty mask has a 0 x 0 box and mask and a NaN centroid; instances keep the
prediction's order (highest relevance first) with ids 0, 1, ...; ``phrases`` are the distinct
phrases of the instances (first appearance first) and ``phrase_index`` points into them (-1 for
an instance without a phrase).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from poa_gres_ros.core.mask_geometry import mask_geometry
from poa_gres_ros.core.results import GresPrediction, InstanceResult, PhraseSpan

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class MessageKit:
    """How one ROS Python message library builds messages.

    Attributes:
        cls: ROS type name (e.g. 'sensor_msgs/msg/Image') -> message class.
        uint8_data: a contiguous 1-D uint8 array -> the value of a ``uint8[]`` field (bytes for
            rclpy, whose setter checks every element of anything else; the array itself for
            rosbags).
    """

    cls: Callable[[str], type]
    uint8_data: Callable[[np.ndarray], Any]


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time (any object with ``sec``, ``nanosec``) -> nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def time_msg(ns: int, kit: MessageKit):
    """Nanoseconds (>= 0) -> builtin_interfaces/Time."""
    sec, nanosec = divmod(int(ns), NS_PER_S)
    return kit.cls('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)


def mono8_image(mask: np.ndarray, header, kit: MessageKit):
    """(H, W) bool or numeric mask -> mono8 sensor_msgs/Image (255 where set, 0 elsewhere).

    A 0 x 0 mask gives an image with height = width = step = 0 and no data.

    Raises:
        ValueError: ``mask`` is not two-dimensional.
    """
    if mask.ndim != 2:
        raise ValueError(f'mask must be (H, W), got shape {mask.shape}')
    h, w = mask.shape
    binary = mask if mask.dtype == np.bool_ else mask.astype(bool)
    data = binary.view(np.uint8) * np.uint8(255)  # bool is one byte 0/1: no comparison pass
    return kit.cls('sensor_msgs/msg/Image')(
        header=header, height=h, width=w, encoding='mono8', is_bigendian=0, step=w,
        data=kit.uint8_data(data.reshape(-1)),
    )  # fmt: skip


def rgb8_image(image_rgb: np.ndarray, header, kit: MessageKit):
    """(H, W, 3) uint8 RGB -> rgb8 sensor_msgs/Image (step = 3 W, no padding).

    Raises:
        ValueError: not an (H, W, 3) uint8 array.
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f'expected (H, W, 3) uint8 RGB, got {image_rgb.shape} {image_rgb.dtype}')
    h, w = image_rgb.shape[:2]
    return kit.cls('sensor_msgs/msg/Image')(
        header=header, height=h, width=w, encoding='rgb8', is_bigendian=0, step=3 * w,
        data=kit.uint8_data(np.ascontiguousarray(image_rgb).reshape(-1)),
    )  # fmt: skip


def phrase_msg(span: PhraseSpan | None, kit: MessageKit):
    """``poa_gres_ros/GresPhrase`` of a span (None: empty text, span [0, 0))."""
    cls = kit.cls('poa_gres_ros/msg/GresPhrase')
    if span is None:
        return cls(text='', char_start=0, char_end=0)
    return cls(text=span.text, char_start=span.char_start, char_end=span.char_end)


def instances_msg(
    pred: GresPrediction,
    header,
    kit: MessageKit,
    *,
    instruction: str,
    instruction_id: int,
    instruction_stamp_ns: int,
    model_name: str,
    backend: str,
    inference_time_ms: float = 0.0,
    geometry: Sequence | None = None,
    depth_status: int = 0,
    depth_detail: str = '',
    depth_stamp_ns: int = 0,
):
    """The ``poa_gres_ros/GresInstances`` message of one prediction.

    Args:
        pred: the prediction at the source resolution (masks (H, W) bool).
        header: the source image's std_msgs/Header (copied to the result and every mask).
        kit: the message library.
        instruction, instruction_id, instruction_stamp_ns: the instruction the image was bound
            to (text, id, receive time in nanoseconds).
        model_name, backend: reported as they are.
        inference_time_ms: wall-clock milliseconds in the predictor for this image.
        geometry: one ``core.geometry3d.Instance3D`` (or None) per instance; None: no 3D, every
            instance gets the default, invalid ``GresInstance3D``.
        depth_status, depth_detail, depth_stamp_ns: the result's depth status fields
            (msg/GresInstances.msg; 0 = depth disabled).
    Raises:
        ValueError: ``geometry`` does not have one entry per instance.
    """
    from poa_gres_ros.conversions.depth3d import geometry_msg

    geos = list(geometry) if geometry is not None else [None] * len(pred.instances)
    if len(geos) != len(pred.instances):
        raise ValueError(f'{len(geos)} geometries for {len(pred.instances)} instances')
    roi_cls = kit.cls('sensor_msgs/msg/RegionOfInterest')
    inst_cls = kit.cls('poa_gres_ros/msg/GresInstance')
    phrases = pred.phrases
    index = {p: i for i, p in enumerate(phrases)}
    instances = []
    for k, inst in enumerate(pred.instances):
        (x0, y0, x1, y1), area_px, (cx, cy) = mask_geometry(inst.mask)
        instances.append(
            inst_cls(
                id=k,
                relevance=float(inst.relevance),
                phrase=phrase_msg(inst.phrase, kit),
                phrase_index=index.get(inst.phrase, -1) if inst.phrase is not None else -1,
                bbox=roi_cls(
                    x_offset=x0, y_offset=y0, width=x1 - x0, height=y1 - y0, do_rectify=False
                ),
                mask=mono8_image(inst.mask[y0:y1, x0:x1], header, kit),
                area_px=area_px,
                centroid_x_px=cx,
                centroid_y_px=cy,
                geometry=geometry_msg(geos[k], kit.cls),
            )
        )
    return kit.cls('poa_gres_ros/msg/GresInstances')(
        header=header,
        instruction=instruction,
        instruction_id=int(instruction_id),
        instruction_stamp=time_msg(instruction_stamp_ns, kit),
        truncated=bool(pred.truncated),
        phrases=[phrase_msg(p, kit) for p in phrases],
        no_target=bool(pred.no_target),
        no_target_probability=float(pred.no_target_prob),
        instances=instances,
        mask=mono8_image(pred.final_mask, header, kit),
        model_name=model_name,
        backend=backend,
        inference_time_ms=float(inference_time_ms),
        depth_status=int(depth_status),
        depth_detail=depth_detail,
        depth_stamp=time_msg(depth_stamp_ns, kit),
    )


def mono8_to_mask(img) -> np.ndarray:
    """A mono8 (or 8UC1) image message -> (H, W) bool, True where the value is > 0.

    Raises:
        ValueError: another encoding, or ``len(data) != height * step``.
    """
    if img.encoding not in ('mono8', '8UC1'):
        raise ValueError(f'mask image must be mono8, got {img.encoding!r}')
    h, w, step = int(img.height), int(img.width), int(img.step)
    data = np.asarray(img.data, np.uint8).reshape(-1)
    if data.size != h * step or step < w:
        raise ValueError(f'mask {w}x{h}: len(data) = {data.size} != height * step = {h * step}')
    if h == 0 or w == 0:
        return np.zeros((h, w), bool)
    return data.reshape(h, step)[:, :w] > 0


def prediction_from_msg(msg, size_hw: tuple[int, int] | None = None) -> GresPrediction:
    """A ``GresInstances`` message (node result or ground truth) -> GresPrediction.

    Args:
        msg: the message (rclpy or rosbags).
        size_hw: image size (H, W); default the merged mask's size.
    Returns:
        GresPrediction at (H, W): instance masks pasted from their crops at the box offsets,
        ``final_mask`` = the message's merged mask (the union of the instances when the
        message has no merged mask), ``timings_ms = {'total': inference_time_ms}``.
    Raises:
        ValueError: a mask that is not mono8 or does not fit its box / the image.
    """
    final = mono8_to_mask(msg.mask)
    h, w = size_hw if size_hw is not None else final.shape
    instances = []
    for inst in msg.instances:
        crop = mono8_to_mask(inst.mask)
        x0, y0 = int(inst.bbox.x_offset), int(inst.bbox.y_offset)
        ch, cw = crop.shape
        if y0 + ch > h or x0 + cw > w:
            raise ValueError(
                f'instance {inst.id}: box at ({x0}, {y0}) size {cw}x{ch} leaves the {w}x{h} image'
            )
        full = np.zeros((h, w), bool)
        full[y0 : y0 + ch, x0 : x0 + cw] = crop
        p = inst.phrase
        span = PhraseSpan(p.text, int(p.char_start), int(p.char_end)) if p.text else None
        instances.append(InstanceResult(full, float(inst.relevance), span, int(inst.id)))
    if final.shape != (h, w):
        if final.size:
            raise ValueError(f'merged mask is {final.shape}, image is {(h, w)}')
        final = np.zeros((h, w), bool)
        for inst in instances:
            final |= inst.mask
    return GresPrediction(
        instances,
        final,
        bool(msg.no_target),
        float(msg.no_target_probability),
        msg.instruction,
        bool(msg.truncated),
        {'total': float(msg.inference_time_ms)},
    )
