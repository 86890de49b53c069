"""Result types shared by the predictor, the ROS node, evaluation and bag replay.

Plain dataclasses with numpy arrays at the source image resolution; no torch, no ROS.
Pixel conventions: x to the right, y down, integer pixel (x, y) covers [x, x+1) x [y, y+1);
boxes are ``(x0, y0, x1, y1)`` with x1, y1 exclusive, so width = x1 - x0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poa_gres_ros.core.mask_geometry import mask_geometry


@dataclass(frozen=True)
class PhraseSpan:
    """A span of the instruction that an instance grounds to.

    Attributes:
        text: ``instruction[char_start:char_end]``.
        char_start: first character, in Python ``str`` indices (Unicode code points).
        char_end: one past the last character.
    """

    text: str
    char_start: int
    char_end: int

    def __post_init__(self):
        if not 0 <= self.char_start <= self.char_end:
            raise ValueError(f'invalid phrase span [{self.char_start}, {self.char_end})')


@dataclass
class InstanceResult:
    """One referred instance at the source resolution.

    Attributes:
        mask: (H, W) bool, True on the instance, H x W = source image size.
        relevance: relevance score p_i in [0, 1] (InstAlign relevance head).
        phrase: the instruction span the instance grounds to, or None.
        query_index: index of the decoder query that produced it, in [0, N).
    """

    mask: np.ndarray
    relevance: float
    phrase: PhraseSpan | None = None
    query_index: int = -1

    def __post_init__(self):
        if self.mask.ndim != 2 or self.mask.dtype != np.bool_:
            raise TypeError(f'mask must be (H, W) bool, got {self.mask.shape} {self.mask.dtype}')

    @property
    def area_px(self) -> int:
        """Mask area in pixels."""
        return mask_geometry(self.mask)[1]

    @property
    def box_xyxy_px(self) -> tuple[int, int, int, int]:
        """Tight box ``(x0, y0, x1, y1)`` in pixels, x1/y1 exclusive; (0, 0, 0, 0) if empty."""
        return mask_geometry(self.mask)[0]

    @property
    def centroid_xy_px(self) -> tuple[float, float]:
        """Mean pixel centre ``(x, y)`` in pixels (pixel (x, y) has centre x + 0.5, y + 0.5);
        (nan, nan) if the mask is empty."""
        return mask_geometry(self.mask)[2]


@dataclass
class GresPrediction:
    """The model's answer for one image and one instruction.

    Attributes:
        instances: referred instances, highest relevance first.
        final_mask: (H, W) bool merged mask (relevance-weighted aggregation, thresholded);
            all False when ``no_target``.
        no_target: True when nothing in the image is referred to.
        no_target_prob: no-target probability in [0, 1].
        instruction: the instruction text used.
        truncated: True if the instruction exceeded the token limit and was cut.
        timings_ms: wall-clock milliseconds per stage, e.g. ``{'preprocess': 2.1,
            'vision': 80.3, 'postprocess': 4.0, 'total': 86.4}``.
    """

    instances: list[InstanceResult]
    final_mask: np.ndarray
    no_target: bool
    no_target_prob: float
    instruction: str = ''
    truncated: bool = False
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def phrases(self) -> list[PhraseSpan]:
        """Distinct phrases of the kept instances, in order of first appearance."""
        seen: dict[PhraseSpan, None] = {}
        for inst in self.instances:
            if inst.phrase is not None:
                seen.setdefault(inst.phrase, None)
        return list(seen)
