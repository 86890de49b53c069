"""The backend interface behind ``Predictor`` and the backend registry.

A backend runs the model in two stages so that the instruction is encoded once:

* ``encode_text(input_ids (1, L) int64, attention_mask (1, L) int64) -> (1, L, D_text) float32``
* ``run_vision(images (B, 3, h, w) float32 normalised, text_features (B, L, D_text) float32,
  text_mask (B, L) int64) -> dict`` with ``VISION_OUTPUT_NAMES``:
  'mask_logits' (B, N, h/4, w/4) float32, 'relevance' (B, N) in [0, 1], 'token_attention'
  (B, N, L), 'merged_mask' (B, h/4, w/4) in (0, 1), 'no_target_prob' (B,) in [0, 1].

These are the same names and shapes as ``POAModel.vision_outputs`` (the torch reference that
exported graphs must match). Adding a backend (ONNX Runtime, TensorRT) means adding a module
``poa_gres_ros/inference/backends/<name>_backend.py`` listed in ``BACKEND_MODULES`` that defines

    def create(model_dir: Path, config: POAConfig, device: str, **options) -> Backend
    def available(device: str) -> tuple[bool, str]      # (usable here?, reason)

and nothing in the predictor changes.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from poa_gres_ros.core.inference_options import AUTO_ORDER, BACKENDS
from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.export.wrappers import (  # one definition, shared with the ONNX graphs
    TEXT_INPUT_NAMES,
    TEXT_OUTPUT_NAME,
    VISION_INPUT_NAMES,
    VISION_OUTPUT_NAMES,
)

BACKEND_MODULES = {name: f'poa_gres_ros.inference.backends.{name}_backend' for name in BACKENDS}
_log = logging.getLogger(__name__)

__all__ = [
    'Backend',
    'create_backend',
    'VISION_OUTPUT_NAMES',
    'VISION_INPUT_NAMES',
    'TEXT_INPUT_NAMES',
    'TEXT_OUTPUT_NAME',
    'BACKEND_MODULES',
]


class Backend(ABC):
    """Runs the two inference stages; numpy in, numpy out.

    Attributes:
        name: backend name ('torch', 'onnxruntime', 'tensorrt').
        config: the model's POAConfig.
        device: where it runs, e.g. 'cpu', 'cuda:0'.
    """

    name = 'base'

    def __init__(self, config: POAConfig, device: str = 'cpu'):
        self.config = config
        self.device = str(device)

    @abstractmethod
    def encode_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """input_ids, attention_mask: (B, L) int64 -> (B, L, D_text) float32."""

    @abstractmethod
    def run_vision(
        self, images: np.ndarray, text_features: np.ndarray, text_mask: np.ndarray
    ) -> dict[str, np.ndarray]:
        """See the module docstring for shapes; returns every name in VISION_OUTPUT_NAMES."""

    def run_vision_torch(
        self, images: torch.Tensor, text_features: torch.Tensor, text_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Torch twin of ``run_vision`` (tensors on ``images.device``). The default goes through
        numpy; backends that hold device buffers override it."""
        out = self.run_vision(
            images.detach().cpu().numpy().astype(np.float32),
            text_features.detach().cpu().numpy().astype(np.float32),
            text_mask.detach().cpu().numpy().astype(np.int64),
        )
        return {
            k: torch.from_numpy(np.ascontiguousarray(v)).to(images.device) for k, v in out.items()
        }

    def warmup(self, runs: int = 2, should_stop: Callable[[], bool] | None = None) -> list[float]:
        """Run the text and vision stages ``runs`` times on dummy inputs, so the first real
        frame is not slow (allocators, oneDNN primitives, CUDA contexts, TensorRT engine
        execution contexts). The only warm-up of the code base: the predictor and the node
        call it; backends do not warm up on their own.

        Args:
            runs: dummy runs (0 = none).
            should_stop: polled before each run; True ends the warm-up early (Ctrl-C).
        Returns:
            Wall seconds of each run.
        """
        h, w = self.config.input.size_hw
        ids = np.array([[101, 2000, 102]], np.int64)  # [CLS] a-word [SEP] of a BERT vocabulary
        mask = np.ones_like(ids)
        images = np.zeros((1, 3, h, w), np.float32)
        times = []
        for _ in range(runs):
            if should_stop is not None and should_stop():
                break
            t0 = time.perf_counter()
            self.run_vision(images, self.encode_text(ids, mask), mask)
            times.append(time.perf_counter() - t0)
        if times:
            _log.info(
                '%s warm-up: %d runs, first %.1f ms, last %.1f ms',
                self.name, len(times), times[0] * 1e3, times[-1] * 1e3,
            )  # fmt: skip
        return times

    def describe(self) -> str:
        """One line for logs: backend, device and anything that matters (precision, engine)."""
        return f'{self.name} on {self.device}'

    def close(self) -> None:
        """Free resources (sessions, engines, GPU memory). Safe to call twice."""
        self.closed = True


def _module(name: str):
    if name not in BACKEND_MODULES:
        raise ValueError(f'unknown backend {name!r}; use one of {sorted(BACKEND_MODULES)} or auto')
    try:
        return importlib.import_module(BACKEND_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name == BACKEND_MODULES[name]:
            return None
        raise


def backend_available(name: str, device: str) -> tuple[bool, str]:
    """(usable, reason) for one backend on ``device``."""
    mod = _module(name)
    if mod is None:
        return False, f'backend {name!r} is not part of this installation'
    return mod.available(device)


def _option_names(create) -> set[str]:
    """Keyword options a backend module's ``create`` takes (besides model_dir/config/device)."""
    params = inspect.signature(create).parameters
    names = {n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    return names - {'model_dir', 'config', 'device'}


def create_backend(
    name: str, model_dir: str | Path, config: POAConfig, device: str = 'cpu', **options
) -> Backend:
    """Create a backend by name and log one line saying what was chosen and why.

    'auto' tries AUTO_ORDER (TensorRT if it imports and a CUDA GPU is there, else ONNX Runtime,
    else torch): a backend that is not usable, or whose creation fails (e.g. an engine build
    that runs out of GPU memory), is skipped with its reason, and the log line lists every
    reason. In 'auto' mode each candidate gets only the options its ``create`` accepts (so
    ``precision`` for TensorRT does not break the torch fallback); a named backend gets all of
    them and rejects unknown ones.

    Raises:
        ValueError: unknown name or option. RuntimeError: the named backend is not usable here
            (reason), or no backend is usable in 'auto' mode (every reason).
    """
    if name == 'auto':
        reasons = []
        for cand in AUTO_ORDER:
            ok, why = backend_available(cand, device)
            if not ok:
                reasons.append(f'{cand}: not usable ({why})')
                continue
            mod = _module(cand)
            names = _option_names(mod.create)
            opts = {k: v for k, v in options.items() if k in names}
            dropped = sorted(set(options) - names)
            try:
                backend = mod.create(Path(model_dir), config, device, **opts)
            except (RuntimeError, OSError) as exc:
                _log.warning('backend auto: %s failed to start: %s', cand, exc)
                reasons.append(f'{cand}: failed to start ({exc})')
                continue
            ignored = f'; options not used by {cand}: {dropped}' if dropped else ''
            reasons.append(f'{cand}: {why}')
            _log.info(
                'backend auto -> %s: %s [%s%s]',
                cand,
                backend.describe(),
                '; '.join(reasons),
                ignored,
            )
            return backend
        raise RuntimeError('no usable backend: ' + '; '.join(reasons))
    ok, why = backend_available(name, device)
    if not ok:
        raise RuntimeError(f'backend {name!r} is not usable on {device}: {why}')
    mod = _module(name)
    names = _option_names(mod.create)
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f'unknown {name} backend options {unknown}; it takes {sorted(names)}')
    backend = mod.create(Path(model_dir), config, device, **options)
    _log.info('backend %s (requested): %s [%s]', name, backend.describe(), why)
    return backend
