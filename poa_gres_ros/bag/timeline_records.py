"""The records of a bag timeline: instructions, frames, their ground truth and depth input.

``timeline.BagTimeline`` builds them while indexing a bag (the rules, numbered, are in the
``timeline`` module docstring): an :class:`Instruction` per /instruction message, a
:class:`Frame` per image with the instruction active at it and its :class:`GroundTruth`
(``gt_record`` of a GresInstances message), and a :class:`DepthInput` per frame lifted to 3D
(``depth_input`` of a depth image and CameraInfo).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poa_gres_ros.conversions import result_msgs as R


@dataclass(frozen=True)
class Instruction:
    """An /instruction message. ``ordinal``: 0, 1, ... over all instruction messages;
    ``seq``: 1, 2, ... over non-empty ones (the id a freshly started node assigns), 0 for a
    clear; ``log_ns``: log time; ``text`` as sent."""

    ordinal: int
    seq: int
    log_ns: int
    text: str


@dataclass
class GroundTruth:
    """Ground truth of one frame, kept compact: the merged mask bit-packed.

    Attributes:
        stamp_ns, order: header stamp and position in bag order.
        shape: (H, W); no_target; num_instances; instruction / instruction_id as in the
        message (for checking the bag's pairing).
    """

    stamp_ns: int
    order: int
    shape: tuple[int, int]
    bits: np.ndarray = field(repr=False)
    no_target: bool
    num_instances: int
    instruction: str
    instruction_id: int
    instance_bits: list = field(default_factory=list, repr=False)
    geometry: list = field(default_factory=list, repr=False)
    depth_ok: bool = False
    object_positions_m: list | None = field(default=None, repr=False)
    phrases: list = field(default_factory=list, repr=False)

    def _unpack(self, bits) -> np.ndarray:
        n = self.shape[0] * self.shape[1]
        return np.unpackbits(bits, count=n).reshape(self.shape).astype(bool)

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool merged ground-truth mask."""
        return self._unpack(self.bits)

    def instance_masks(self) -> list[np.ndarray]:
        """(H, W) bool mask of each true instance, in message order."""
        return [self._unpack(b) for b in self.instance_bits]

    @property
    def expr_type(self) -> str:
        """'no_target' | 'single' | 'multi' from the instance count (metrics.EXPR_TYPES)."""
        if self.no_target:
            return 'no_target'
        return 'multi' if self.num_instances > 1 else 'single'


@dataclass
class Frame:
    """One image of the bag: ``index`` 0, 1, ... in bag order; ``order`` its position among
    all read messages; ``loop`` the number of stamp jumps back before it; the instruction
    active at it (None: none or cleared) and its ground truth (None: none in the bag)."""

    index: int
    order: int
    log_ns: int
    stamp_ns: int
    frame_id: str
    loop: int
    instruction: Instruction | None = None
    gt: GroundTruth | None = None


def gt_record(msg, order: int) -> GroundTruth:
    """GroundTruth of a GresInstances message at position ``order`` in bag order."""
    from poa_gres_ros.conversions.depth3d import geometry_from_msg
    from poa_gres_ros.core.instance_metrics import gt_phrases_of

    pred = R.prediction_from_msg(msg)
    return GroundTruth(
        R.stamp_ns(msg.header.stamp),
        order,
        pred.final_mask.shape,
        np.packbits(pred.final_mask.reshape(-1)),
        bool(msg.no_target),
        len(msg.instances),
        str(msg.instruction),
        int(msg.instruction_id),
        [np.packbits(i.mask.reshape(-1)) for i in pred.instances],
        [geometry_from_msg(i.geometry) for i in msg.instances],
        int(msg.depth_status) == 1,  # DEPTH_OK
        phrases=gt_phrases_of([i.phrase for i in pred.instances]),
    )


@dataclass
class DepthInput:
    """What a frame's 3D lifting gets (``timeline`` rule 5): ``depth_m`` (H, W) float32 metres
    aligned to the colour image (NaN = none) and ``intrinsics``
    (core.geometry3d.PinholeIntrinsics), or both None with ``problem`` saying why;
    ``stamp_ns`` of the depth image used."""

    depth_m: np.ndarray | None
    intrinsics: object | None
    stamp_ns: int | None
    problem: str | None = None


def depth_input(msg, info, rgb) -> DepthInput:
    """DepthInput of one frame from its depth message (None: not found) and the CameraInfo."""
    from poa_gres_ros.conversions.depth3d import depth_inputs

    if msg is None:
        return DepthInput(None, None, None, 'depth image not found in the bag')
    stamp = R.stamp_ns(msg.header.stamp)
    if isinstance(rgb, str):
        return DepthInput(None, None, stamp, 'the colour image was not converted')
    try:
        depth_m, intr = depth_inputs(msg, info, rgb.shape[:2])
    except ValueError as exc:
        return DepthInput(None, None, stamp, str(exc))
    return DepthInput(depth_m, intr, stamp)
