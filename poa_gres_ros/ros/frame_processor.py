"""One frame through the model: convert, bind the instruction's text features, predict,
build the result message. Used by the node's inference callback (one thread at a time)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CompressedImage, Image

from poa_gres_ros.conversions.image_msgs import compressed_msg_to_rgb, image_msg_to_rgb
from poa_gres_ros.core.results import GresPrediction
from poa_gres_ros.core.thresholds import Thresholds
from poa_gres_ros.msg import GresInstances
from poa_gres_ros.ros.instruction_state import Binding, Instruction, InstructionState
from poa_gres_ros.ros.log_text import short_text
from poa_gres_ros.ros.result_msgs import build_instances_msg


@dataclass(frozen=True)
class Frame:
    """An image waiting in the node's slot, bound at receipt to its instruction
    (``binding``: how, for :meth:`InstructionState.rebind` before inference)."""

    msg: Image | CompressedImage
    instruction: Instruction
    receipt_mono_s: float  # time.monotonic() at receipt
    topic: str
    binding: Binding | None = None


@dataclass
class Processed:
    """What one frame produced: the /gres/instances message, the prediction, the RGB input
    ((H, W, 3) uint8, for the debug overlay) and the model's wall time in ms."""

    result: GresInstances
    prediction: GresPrediction
    rgb: np.ndarray
    inference_ms: float


class FrameProcessor:
    """Runs frames through a predictor. Not thread-safe: one caller at a time.

    Args:
        predictor: a ``poa_gres_ros.inference.Predictor`` (or anything with its methods).
        instructions: the node's InstructionState (records truncation once per instruction).
        warn: called with a message when an instruction had to be truncated.
    """

    def __init__(self, predictor, instructions: InstructionState, warn: Callable[[str], None]):
        self.predictor = predictor
        self._instructions = instructions
        self._warn = warn
        self._encoded_id = 0

    def ensure_encoded(self, instr: Instruction) -> None:
        """Make ``instr`` the predictor's instruction; its text features are computed once
        (the predictor caches them by text), so switching back is free."""
        if self._encoded_id == instr.id:
            return
        info = self.predictor.set_instruction(instr.text)
        self._encoded_id = instr.id
        first = self._instructions.record_encoding(instr.id, info.truncated, info.num_tokens)
        if first and info.truncated:
            self._warn(
                f"instruction {instr.id} is longer than the model's {self.predictor.max_tokens} "
                f'tokens: only its start is used ({short_text(instr.text)})'
            )

    def run(self, frame: Frame, thresholds: Thresholds) -> Processed:
        """Process one frame with ``thresholds``.

        Raises:
            ImageConversionError: the image cannot be converted (the caller drops it).
            whatever the predictor raises (RuntimeError, ValueError, TypeError).
        """
        msg = frame.msg
        if isinstance(msg, CompressedImage):
            rgb = compressed_msg_to_rgb(msg)
        else:
            rgb = image_msg_to_rgb(msg)
        self.ensure_encoded(frame.instruction)
        t0 = time.perf_counter()
        pred = self.predictor.predict(rgb, thresholds=thresholds)
        inference_ms = (time.perf_counter() - t0) * 1e3
        result = build_instances_msg(
            pred,
            msg.header,
            frame.instruction,
            model_name=self.predictor.model_name,
            backend=self.predictor.backend_name,
            inference_time_ms=inference_ms,
        )
        return Processed(result, pred, rgb, inference_ms)
