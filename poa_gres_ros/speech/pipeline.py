"""Audio stream -> utterances -> transcripts, with recognition on a worker thread (no ROS).

:class:`SpeechPipeline` is what the speech node wraps. Input threads (a ROS subscription, a
WAV reader) call :meth:`SpeechPipeline.push_pcm` / :meth:`push_audio`; each named stream has
its own resampler, Silero VAD state and :class:`UtteranceSegmenter`, so decoding, VAD and
cutting cost a few milliseconds per 100 ms chunk on the caller's thread. Finished utterances
go through a bounded queue to one worker thread that runs the recogniser, so audio keeps
flowing while a (0.3-1 s) decode runs. When the queue is full the oldest waiting utterance is
dropped (the newest instruction matters most to a robot) and counted. A stream expects one
source: a change of rate/channels/format between chunks ends the open utterance.

Every outcome is reported through ``on_event(SpeechEvent)``: 'published' (confidence at or
above the threshold), 'low_confidence', 'empty' or 'queue_full'. The callback runs on the
worker thread (or on the pushing thread for 'queue_full').
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from poa_gres_ros.speech.audio import (
    TARGET_RATE_HZ,
    StreamResampler,
    check_stream_format,
    decode_pcm,
    downmix,
)
from poa_gres_ros.speech.recognizers import Recognizer, Transcript
from poa_gres_ros.speech.vad import SileroVad, Utterance, UtteranceSegmenter, VadConfig

_LOG = logging.getLogger(__name__)


@dataclass
class SpeechEvent:
    """The outcome of one utterance.

    kind: 'published' | 'low_confidence' | 'empty' | 'queue_full'.
    transcript: None for 'queue_full'. stream: the input stream name.
    queued_ms: utterance end detected -> decoding started; total_ms: end detected -> event.
    """

    kind: str
    utterance: Utterance
    stream: str
    transcript: Transcript | None = None
    queued_ms: float = 0.0
    total_ms: float = 0.0


@dataclass
class PipelineStats:
    """Counters since start (read them from any thread; values are plain ints/floats)."""

    chunks: int = 0
    bad_chunks: int = 0
    utterances: int = 0
    published: int = 0
    low_confidence: int = 0
    empty: int = 0
    queue_full: int = 0
    last_text: str = ''
    last_confidence: float = 0.0
    last_decode_ms: float = 0.0
    decode_ms: deque = field(default_factory=lambda: deque(maxlen=100))


class _Stream:
    def __init__(self, vad_config: VadConfig, vad_model: str | None):
        self.segmenter = UtteranceSegmenter(SileroVad(vad_model), vad_config)
        self.format: tuple[int, int, str] | None = None
        self.resampler: StreamResampler | None = None


class SpeechPipeline:
    """Streams of PCM in, :class:`SpeechEvent` out (see module docstring).

    recognizer: a :class:`Recognizer`; vad_config: utterance cutting; confidence_threshold in
    [0, 1] (settable at any time, read per utterance); max_pending >= 1 utterances waiting
    for the recogniser; vad_model: Silero ONNX path (None = the silero-vad wheel's).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        on_event: Callable[[SpeechEvent], None],
        vad_config: VadConfig | None = None,
        confidence_threshold: float = 0.4,
        max_pending: int = 4,
        vad_model: str | None = None,
    ):
        if int(max_pending) < 1:
            raise ValueError(f'max_pending must be >= 1, got {max_pending}')
        self.recognizer = recognizer
        self.on_event = on_event
        self.vad_config = vad_config or VadConfig()
        self.vad_config.validate()
        self.confidence_threshold = float(confidence_threshold)
        self.stats = PipelineStats()
        self._vad_model = vad_model
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()  # guards _streams and per-stream state
        self._queue: queue.Queue = queue.Queue(maxsize=int(max_pending))
        self._busy = threading.Event()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name='speech-recognizer', daemon=True)

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the recognition worker thread."""
        self._worker.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the worker after its current decode (waiting utterances are discarded)."""
        self._stop.set()
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass  # the worker checks _stop after each item
        if self._worker.is_alive():
            self._worker.join(timeout_s)

    @property
    def pending(self) -> int:
        """Utterances waiting for or in recognition."""
        return self._queue.qsize() + int(self._busy.is_set())

    def in_speech(self, stream: str = 'topic') -> bool:
        """True while ``stream`` has an open utterance."""
        s = self._streams.get(stream)
        return bool(s and s.segmenter.in_speech)

    # --------------------------------------------------------------------------------- input
    def push_pcm(
        self,
        data: bytes,
        sample_rate: int,
        channels: int,
        sample_format: str,
        stream: str = 'topic',
    ) -> int:
        """Add one chunk of interleaved PCM (AudioData fields) to ``stream``.

        Returns the number of utterances it finished. Raises ValueError (nothing is added, the
        stream is untouched) for an unsupported rate/channels/format or a partial frame.
        A format change flushes the stream's open utterance and restarts resampling.
        """
        try:
            check_stream_format(sample_rate, channels, sample_format)
            frames = decode_pcm(data, sample_format, channels)
        except ValueError:
            self.stats.bad_chunks += 1
            raise
        fmt = (int(sample_rate), int(channels), sample_format)
        with self._lock:
            st = self._stream(stream)
            n = 0
            if st.format != fmt:
                if st.format is not None:
                    _LOG.info('stream %s changed format %s -> %s', stream, st.format, fmt)
                    n += self._enqueue(st.segmenter.flush(), stream)
                st.format = fmt
                st.resampler = StreamResampler(fmt[0], TARGET_RATE_HZ)
            mono = st.resampler.push(downmix(frames))
            self.stats.chunks += 1
            return n + self._enqueue(st.segmenter.feed(np.clip(mono, -1.0, 1.0)), stream)

    def push_audio(self, audio_16k: np.ndarray, stream: str = 'topic') -> int:
        """Add ``(N,)`` float32 mono 16 kHz samples in [-1, 1]; returns utterances finished."""
        with self._lock:
            st = self._stream(stream)
            self.stats.chunks += 1
            return self._enqueue(st.segmenter.feed(audio_16k), stream)

    def end_stream(self, stream: str = 'topic') -> int:
        """End of ``stream`` (file end, silence timeout): emit its open utterance, forget it."""
        with self._lock:
            st = self._streams.pop(stream, None)
            if st is None:
                return 0
            n = 0
            if st.resampler is not None:
                n += self._enqueue(st.segmenter.feed(st.resampler.flush()), stream)
            return n + self._enqueue(st.segmenter.flush(), stream)

    def _stream(self, name: str) -> _Stream:
        if name not in self._streams:
            self._streams[name] = _Stream(self.vad_config, self._vad_model)
        return self._streams[name]

    def _enqueue(self, utterances: list[Utterance], stream: str) -> int:
        for utt in utterances:
            self.stats.utterances += 1
            item = (utt, stream, time.monotonic())
            while True:
                try:
                    self._queue.put_nowait(item)
                    break
                except queue.Full:
                    try:
                        old = self._queue.get_nowait()
                    except queue.Empty:
                        continue
                    if old is not None:
                        self.stats.queue_full += 1
                        self._emit(SpeechEvent('queue_full', old[0], old[1]))
        return len(utterances)

    # -------------------------------------------------------------------------------- worker
    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None or self._stop.is_set():
                break
            self._busy.set()
            try:
                self._recognise(*item)
            except Exception:  # keep the worker alive; the node logs and counts it
                _LOG.exception('speech recognition failed for one utterance')
            finally:
                self._busy.clear()

    def _recognise(self, utt: Utterance, stream: str, t_end: float) -> None:
        queued_ms = (time.monotonic() - t_end) * 1000.0
        tr = self.recognizer.transcribe(utt.audio)
        st = self.stats
        st.last_decode_ms = tr.decode_ms
        st.decode_ms.append(tr.decode_ms)
        if not tr.text:
            kind = 'empty'
            st.empty += 1
        elif tr.confidence < self.confidence_threshold:
            kind = 'low_confidence'
            st.low_confidence += 1
        else:
            kind = 'published'
            st.published += 1
            st.last_text, st.last_confidence = tr.text, tr.confidence
        total_ms = (time.monotonic() - t_end) * 1000.0
        self._emit(SpeechEvent(kind, utt, stream, tr, queued_ms, total_ms))

    def _emit(self, event: SpeechEvent) -> None:
        try:
            self.on_event(event)
        except Exception:
            _LOG.exception('speech event callback failed')
