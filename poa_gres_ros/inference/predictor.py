"""Predictor facade (segment-anything's SamPredictor pattern): set the instruction once, then
predict frame after frame; numpy in, result dataclasses out, at the source resolution.
``predict`` is ``predict_batch`` with a batch of one; both post-process with
``core.postprocess.postprocess``, as evaluation does.

Thread safety: ``set_instruction``/``clear_instruction`` may be called from another thread
than ``predict`` (e.g. two ROS callback groups). ``predict`` reads the current instruction once
at its start, so a frame is always processed with one consistent instruction; backend calls are
serialised by a lock.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from poa_gres_ros.core.grounding import GroundingRule
from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.core.postprocess import InstructionTokens, postprocess
from poa_gres_ros.core.results import GresPrediction
from poa_gres_ros.core.thresholds import Thresholds
from poa_gres_ros.inference.backends.base import Backend, create_backend
from poa_gres_ros.inference.model_dirs import resolve_model_dir
from poa_gres_ros.modeling.preprocess import check_image, preprocess_batch, preprocess_image
from poa_gres_ros.modeling.text_encoder import load_tokenizer, tokenize


@dataclass(frozen=True)
class InstructionInfo:
    """What ``set_instruction`` made of a text.

    Attributes:
        text: the instruction (as given). num_tokens: real tokens incl. [CLS]/[SEP].
        truncated: True when the text was cut to ``max_tokens``.
    """

    text: str
    num_tokens: int
    truncated: bool


@dataclass
class _Encoded:
    info: InstructionInfo
    input_ids: np.ndarray  # (1, L) int64
    attention_mask: np.ndarray  # (1, L) int64
    features: np.ndarray  # (1, L, D_text) float32
    tokens: InstructionTokens  # text, offsets, word_ids for phrase spans


def _stack_text(encs: list[_Encoded]) -> tuple[np.ndarray, np.ndarray]:
    """(B, L, D) float32 text features and (B, L) int64 mask, right-padded to the longest."""
    length = max(e.features.shape[1] for e in encs)
    feats = np.zeros((len(encs), length, encs[0].features.shape[2]), np.float32)
    mask = np.zeros((len(encs), length), np.int64)
    for i, e in enumerate(encs):
        n = e.features.shape[1]
        feats[i, :n], mask[i, :n] = e.features[0], e.attention_mask[0]
    return feats, mask


class Predictor:
    """GRES inference on single frames (``predict``) and batches (``predict_batch``).

    Args:
        backend: a Backend (see inference/backends/base.py).
        tokenizer: the model's fast tokenizer. model_name: shown in logs and diagnostics.
        thresholds: initial Thresholds (default Thresholds()).
        cache_size: instructions kept in the LRU text-feature cache (>= 1).
        grounding_rule: phrase-span rule (core/grounding.py).
    """

    def __init__(
        self,
        backend: Backend,
        tokenizer,
        model_name: str,
        thresholds: Thresholds | None = None,
        cache_size: int = 8,
        grounding_rule: GroundingRule = GroundingRule(),
    ):
        if cache_size < 1:
            raise ValueError(f'cache_size={cache_size} must be >= 1')
        self._backend = backend
        self._config: POAConfig = backend.config
        self._tokenizer = tokenizer
        self._model_name = model_name
        self._cache: OrderedDict[str, _Encoded] = OrderedDict()
        self._cache_size = cache_size
        self._current: _Encoded | None = None
        self._state_lock = threading.Lock()
        self._run_lock = threading.Lock()
        self.grounding_rule = grounding_rule
        self.thresholds = thresholds if thresholds is not None else Thresholds()

    # --- construction --------------------------------------------------------------------
    @classmethod
    def from_model_dir(
        cls,
        model_dir_or_name: str | Path,
        backend: str = 'torch',
        device: str = 'cpu',
        thresholds: Thresholds | None = None,
        **backend_options,
    ) -> Predictor:
        """Load a model folder (path or bare name, see ``resolve_model_dir``).

        Args:
            backend: 'torch', 'onnxruntime', 'tensorrt' or 'auto'. device: e.g. 'cpu', 'cuda:0'.
            backend_options: passed to the backend's ``create``.
        Raises:
            FileNotFoundError: no such model. ValueError: invalid config / unknown backend.
            RuntimeError: corrupt weights or the backend is not usable here.
        """
        from poa_gres_ros.modeling.io import load_config

        model_dir = resolve_model_dir(model_dir_or_name)
        config = load_config(model_dir)
        tokenizer = load_tokenizer(config.text, model_dir)
        be = create_backend(backend, model_dir, config, device, **backend_options)
        return cls(be, tokenizer, model_name=model_dir.name, thresholds=thresholds)

    @classmethod
    def from_model(
        cls,
        model,
        device: str = 'cpu',
        thresholds: Thresholds | None = None,
        model_name: str | None = None,
    ) -> Predictor:
        """Wrap an in-memory POAModel with the torch backend (evaluation during training)."""
        from poa_gres_ros.inference.backends.torch_backend import TorchBackend

        if model.tokenizer is None:
            raise ValueError('the model has no tokenizer; build it with modeling.build_model')
        return cls(
            TorchBackend(model, device),
            model.tokenizer,
            model_name or model.config.name,
            thresholds,
        )

    # --- properties ----------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def backend_name(self) -> str:
        return self._backend.name

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def config(self) -> POAConfig:
        return self._config

    @property
    def max_tokens(self) -> int:
        return self._config.text.max_tokens

    @property
    def input_size_hw(self) -> tuple[int, int]:
        return tuple(self._config.input.size_hw)

    @property
    def thresholds(self) -> Thresholds:
        return self._thresholds

    @thresholds.setter
    def thresholds(self, value: Thresholds) -> None:
        if not isinstance(value, Thresholds):
            raise TypeError(f'thresholds must be a Thresholds, got {type(value).__name__}')
        self._thresholds = value

    @property
    def instruction(self) -> InstructionInfo | None:
        """The current instruction, or None."""
        cur = self._current
        return cur.info if cur is not None else None

    # --- instruction -------------------------------------------------------------------
    def _encode(self, text: str) -> _Encoded:
        if not isinstance(text, str):
            raise TypeError(f'instruction must be a str, got {type(text).__name__}')
        if not text.strip():
            raise ValueError('instruction is empty or whitespace only')
        with self._state_lock:
            hit = self._cache.get(text)
            if hit is not None:
                self._cache.move_to_end(text)
                return hit
        # the fast tokenizer mutates its padding/truncation state per call ("Already borrowed"
        # from two threads), so it runs under the same lock as the backend
        with self._run_lock:
            tok = tokenize(self._tokenizer, [text], self.max_tokens, padding='longest')
            ids = tok.input_ids.numpy().astype(np.int64)
            mask = tok.attention_mask.numpy().astype(np.int64)
            feats = np.asarray(self._backend.encode_text(ids, mask), np.float32)
        enc = _Encoded(
            InstructionInfo(text, tok.num_tokens[0], tok.truncated[0]),
            ids,
            mask,
            feats,
            InstructionTokens(text, tok.offsets[0], tok.word_ids[0]),
        )
        with self._state_lock:
            self._cache[text] = enc
            self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return enc

    def set_instruction(self, text: str) -> InstructionInfo:
        """Encode (or fetch from the LRU cache) and make ``text`` the current instruction.

        Raises:
            TypeError: not a str. ValueError: empty or whitespace only.
        """
        enc = self._encode(text)
        self._current = enc
        return enc.info

    def clear_instruction(self) -> None:
        """Forget the current instruction (cached features stay in the LRU)."""
        self._current = None

    def clear_cache(self) -> None:
        """Empty the LRU text-feature cache (the current instruction stays set)."""
        with self._state_lock:
            self._cache.clear()

    # --- prediction ----------------------------------------------------------------------
    def predict(
        self, image_rgb: np.ndarray, thresholds: Thresholds | None = None
    ) -> GresPrediction:
        """Segment what the current instruction refers to in one image: ``predict_batch`` with
        a batch of one.

        Args:
            image_rgb: (H, W, 3) uint8 RGB, any size.
            thresholds: overrides ``self.thresholds`` for this call.
        Returns:
            GresPrediction at (H, W) with ``timings_ms`` keys 'preprocess', 'vision',
            'postprocess', 'total'.
        Raises:
            RuntimeError: no instruction set. TypeError/ValueError: wrong image type/shape.
        """
        check_image(image_rgb)
        return self.predict_batch([image_rgb], thresholds=thresholds)[0]

    def predict_batch(
        self,
        images: torch.Tensor | Sequence[np.ndarray],
        texts: Sequence[str] | None = None,
        thresholds: Thresholds | None = None,
    ) -> list[GresPrediction]:
        """Segment B images, each with its own instruction or all with the current one.

        Post-processing is ``core.postprocess.postprocess`` (docs/postprocessing.md), the
        function evaluation calls too.

        Args:
            images: a (B, 3, H, W) RGB tensor, uint8 or float in 0-255, on any device (the
                backend's torch path keeps it there), or a sequence of B (H, W, 3) uint8 RGB
                numpy images of any sizes.
            texts: B instructions, or None for the current instruction on every image (read
                once, so every image of the call gets the same one).
            thresholds: overrides ``self.thresholds`` for this call.
        Returns:
            B GresPredictions, each at its image's (H, W); ``timings_ms`` are those of the
            whole call ('preprocess', 'vision', 'postprocess', 'total').
        Raises:
            RuntimeError: texts is None and no instruction is set. ValueError: len(texts) != B,
            an empty batch or a bad image shape. TypeError: a bad image or thresholds type.
        """
        t0 = time.perf_counter()
        thr = thresholds if thresholds is not None else self._thresholds
        if not isinstance(thr, Thresholds):
            raise TypeError(f'thresholds must be a Thresholds, got {type(thr).__name__}')
        current = self._current
        if isinstance(images, torch.Tensor):
            x = preprocess_batch(images, self._config)
            sizes = [tuple(int(v) for v in images.shape[-2:])] * x.shape[0]
        else:
            if isinstance(images, np.ndarray) and images.ndim == 3:
                raise TypeError('predict_batch takes a sequence of images; use predict()')
            sizes = [check_image(im) for im in images]
            x = None
        b = len(sizes)
        if b == 0:
            raise ValueError('empty batch of images')
        if texts is None:
            if current is None:
                raise RuntimeError('no instruction set; call set_instruction(text) first')
            encs = [current] * b
        else:
            if isinstance(texts, str) or len(texts) != b:
                n = 1 if isinstance(texts, str) else len(texts)
                raise ValueError(f'{n} texts for {b} images')
            encs = [self._encode(t) for t in texts]
        feats, mask = _stack_text(encs)
        if x is None:
            x = np.stack([preprocess_image(im, self._config).numpy() for im in images])
        t1 = time.perf_counter()
        with self._run_lock:
            if isinstance(x, torch.Tensor):
                out = self._backend.run_vision_torch(
                    x, torch.from_numpy(feats).to(x.device), torch.from_numpy(mask).to(x.device)
                )
            else:
                out = self._backend.run_vision(x, feats, mask)
        t2 = time.perf_counter()
        preds = postprocess(out, sizes, thr, [e.tokens for e in encs], self.grounding_rule)
        t3 = time.perf_counter()
        timings = {
            'preprocess': (t1 - t0) * 1e3,
            'vision': (t2 - t1) * 1e3,
            'postprocess': (t3 - t2) * 1e3,
            'total': (t3 - t0) * 1e3,
        }
        for pred, enc in zip(preds, encs):
            pred.truncated = enc.info.truncated
            pred.timings_ms = dict(timings)
        return preds

    def warmup(self, runs: int = 2, should_stop=None) -> float:
        """Warm the backend up (``Backend.warmup``) so the first real frame is not slow. Leaves
        the current instruction and the cache untouched.

        Args:
            runs: dummy runs. should_stop: polled before each run; True ends early.
        Returns:
            Milliseconds of the last run (0 when none ran).
        """
        with self._run_lock:
            times = self._backend.warmup(runs, should_stop)
        return times[-1] * 1e3 if times else 0.0

    def close(self) -> None:
        """Release the backend."""
        self._backend.close()
