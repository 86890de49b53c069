"""Voice activity detection with Silero VAD (ONNX, offline) and a streaming utterance cutter.

The model is the ``silero_vad.onnx`` that the ``silero-vad`` wheel ships in
``silero_vad/data/`` (MIT). It is run here with onnxruntime directly: the package's own
wrapper (``silero_vad.utils_vad.OnnxWrapper``) needs torch for its tensors, which a speech node
should not have to load. The I/O follows that wrapper (silero-vad 5.x/6.x): input
``(1, 64 + 512)`` float32 = 64 context samples of the previous frame + one 32 ms frame at
16 kHz, recurrent ``state`` ``(2, 1, 128)``, ``sr`` int64; output the speech probability
``(1, 1)`` in [0, 1].

:class:`UtteranceSegmenter` turns the per-frame probabilities into utterances with hysteresis
as in silero's ``get_speech_timestamps`` (start at ``p >= threshold``, silence counted while
``p < threshold - 0.15``), plus the limits a command interface needs: minimum speech, minimum
trailing silence that ends an utterance, padding and a maximum utterance length.
"""

from __future__ import annotations

import importlib.util
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poa_gres_ros.speech.audio import TARGET_RATE_HZ

FRAME_SAMPLES = 512
"""Samples per VAD frame at 16 kHz (32 ms), fixed by the Silero model."""
CONTEXT_SAMPLES = 64
FRAME_MS = 1000.0 * FRAME_SAMPLES / TARGET_RATE_HZ


def default_model_path() -> Path:
    """``silero_vad/data/silero_vad.onnx`` of the installed silero-vad wheel.

    Found with importlib.util.find_spec, so silero_vad (which imports torch) is not imported.
    Raises FileNotFoundError if the package or the file is missing.
    """
    spec = importlib.util.find_spec('silero_vad')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError('silero-vad is not installed; `pip install silero-vad==6.2.3`')
    path = Path(list(spec.submodule_search_locations)[0]) / 'data' / 'silero_vad.onnx'
    if not path.is_file():
        raise FileNotFoundError(f'Silero VAD model missing: {path} (reinstall silero-vad)')
    return path


class SileroVad:
    """Streaming Silero VAD: one 512-sample frame (16 kHz) in, one speech probability out.

    ``model_path``: an ONNX file with silero's I/O (default :func:`default_model_path`).
    ``num_threads``: onnxruntime intra-op threads (1 is plenty: ~0.1 ms per frame).
    """

    def __init__(self, model_path: str | Path | None = None, num_threads: int = 1):
        import onnxruntime as ort

        path = Path(model_path) if model_path else default_model_path()
        if not path.is_file():
            raise FileNotFoundError(f'VAD model not found: {path}')
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(num_threads))
        opts.inter_op_num_threads = 1
        self.model_path = path
        self._session = ort.InferenceSession(
            str(path), sess_options=opts, providers=['CPUExecutionProvider']
        )
        self._sr = np.array(TARGET_RATE_HZ, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Clear the recurrent state and the context (start of a new stream)."""
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, CONTEXT_SAMPLES), np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        """Speech probability in [0, 1] of one ``(512,)`` float32 frame at 16 kHz.

        Raises ValueError for another frame length.
        """
        x = np.asarray(frame, dtype=np.float32).reshape(1, -1)
        if x.shape[1] != FRAME_SAMPLES:
            raise ValueError(f'VAD frames are {FRAME_SAMPLES} samples at 16 kHz, got {x.shape[1]}')
        inp = np.concatenate([self._context, x], axis=1)
        prob, self._state = self._session.run(
            None, {'input': inp, 'state': self._state, 'sr': self._sr}
        )
        self._context = inp[:, -CONTEXT_SAMPLES:]
        return float(prob.reshape(-1)[0])

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Speech probability per whole frame of ``(N,)`` float32 16 kHz audio -> ``(N // 512,)``.

        Resets the state first (offline use); a trailing partial frame is ignored.
        """
        self.reset()
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        n = len(x) // FRAME_SAMPLES
        return np.array([self(x[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(n)])


@dataclass
class VadConfig:
    """Utterance cutting settings (all durations in the stream's audio time).

    threshold: speech starts at a frame probability >= this, in (0, 1).
    min_speech_ms: utterances with less speech than this are discarded (clicks, coughs).
    min_silence_ms: this much trailing silence (p < threshold - 0.15) ends an utterance.
    speech_pad_ms: audio kept before the first and after the last speech frame.
    max_utterance_s: an utterance is cut (and emitted with ``cut=True``) at this length.
    """

    threshold: float = 0.5
    min_speech_ms: float = 250.0
    min_silence_ms: float = 500.0
    speech_pad_ms: float = 200.0
    max_utterance_s: float = 10.0

    def validate(self) -> None:
        """Raise ValueError naming the first out-of-range field."""
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f'VAD threshold must be in (0, 1), got {self.threshold}')
        for name in ('min_speech_ms', 'min_silence_ms', 'speech_pad_ms'):
            if getattr(self, name) < 0:
                raise ValueError(f'VAD {name} must be >= 0, got {getattr(self, name)}')
        if self.max_utterance_s * 1000.0 <= self.min_speech_ms:
            raise ValueError(
                f'max_utterance_s ({self.max_utterance_s}) must exceed min_speech_ms '
                f'({self.min_speech_ms} ms)'
            )


@dataclass
class Utterance:
    """One cut utterance: ``audio`` ``(N,)`` float32 at 16 kHz, times in seconds of stream audio.

    start_s / end_s: position of the (padded) audio in the stream since the last reset.
    speech_s: frames judged speech. cut: True if ended by max_utterance_s, not by silence.
    """

    audio: np.ndarray
    start_s: float
    end_s: float
    speech_s: float
    cut: bool = False

    @property
    def duration_s(self) -> float:
        return len(self.audio) / TARGET_RATE_HZ


class UtteranceSegmenter:
    """Feed 16 kHz mono audio in any chunk size; get finished :class:`Utterance` objects back.

    Hysteresis after silero's get_speech_timestamps: a frame with ``p >= threshold`` starts or
    continues speech, ``p < threshold - 0.15`` counts as silence, values between keep the
    current state. Padding after silero (``speech_pad_ms`` before and after).
    """

    def __init__(self, vad: SileroVad, config: VadConfig | None = None):
        self.vad = vad
        self.config = config or VadConfig()
        self.config.validate()
        self.reset()

    def reset(self) -> None:
        """Drop any partial utterance and the VAD state (new stream)."""
        self.vad.reset()
        self._pending = np.zeros(0, np.float32)
        self._frames_seen = 0
        pad_frames = int(np.ceil(self.config.speech_pad_ms / FRAME_MS))
        self._preroll: deque[np.ndarray] = deque(maxlen=max(pad_frames, 1))
        self._pad_frames = pad_frames
        self._active = False
        self._frames: list[np.ndarray] = []
        self._start_frame = 0
        self._speech_frames = 0
        self._silence_frames = 0

    @property
    def in_speech(self) -> bool:
        """True while an utterance is open."""
        return self._active

    def feed(self, audio: np.ndarray) -> list[Utterance]:
        """Add ``(N,)`` float32 16 kHz samples; return the utterances finished by them."""
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        buf = np.concatenate([self._pending, x]) if len(self._pending) else x
        n = len(buf) // FRAME_SAMPLES
        done: list[Utterance] = []
        for i in range(n):
            frame = buf[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            utt = self._step(frame, self.vad(frame))
            if utt is not None:
                done.append(utt)
        self._pending = buf[n * FRAME_SAMPLES :].copy()
        return done

    def flush(self) -> list[Utterance]:
        """End of stream: return the open utterance if it has enough speech, then reset."""
        out = []
        if self._active:
            utt = self._close(trailing_silence=self._silence_frames, cut=False)
            if utt is not None:
                out.append(utt)
        self.reset()
        return out

    def _step(self, frame: np.ndarray, prob: float) -> Utterance | None:
        cfg = self.config
        idx = self._frames_seen
        self._frames_seen += 1
        if not self._active:
            if prob >= cfg.threshold:
                self._active = True
                pre = list(self._preroll) if self._pad_frames else []
                self._frames = [*pre, frame]
                self._start_frame = idx - len(pre)
                self._speech_frames, self._silence_frames = 1, 0
            self._preroll.append(frame)
            return None
        self._frames.append(frame)
        if prob >= cfg.threshold:
            self._speech_frames += 1
            self._silence_frames = 0
        elif prob < cfg.threshold - 0.15:
            self._silence_frames += 1
        else:
            self._silence_frames = 0
        if self._silence_frames * FRAME_MS >= cfg.min_silence_ms:
            return self._close(self._silence_frames, cut=False)
        if len(self._frames) * FRAME_MS >= cfg.max_utterance_s * 1000.0:
            return self._close(0, cut=True)
        return None

    def _close(self, trailing_silence: int, cut: bool) -> Utterance | None:
        drop = max(0, trailing_silence - self._pad_frames)
        frames = self._frames[: len(self._frames) - drop] if drop else self._frames
        speech_frames = self._speech_frames
        start = self._start_frame
        self._active = False
        self._frames = []
        self._preroll.clear()  # after a cut, speech goes on in a new utterance without pre-roll
        if speech_frames * FRAME_MS < self.config.min_speech_ms or not frames:
            return None
        audio = np.concatenate(frames)
        start_s = start * FRAME_SAMPLES / TARGET_RATE_HZ
        return Utterance(
            audio=audio,
            start_s=start_s,
            end_s=start_s + len(audio) / TARGET_RATE_HZ,
            speech_s=speech_frames * FRAME_MS / 1000.0,
            cut=cut,
        )
