"""ROS 2 speech node: audio (topic or WAV file) -> spoken instructions, fully offline.

Topics
  ``audio`` (sub, poa_gres_ros/msg/AudioData; remap it to the microphone topic). QoS: KEEP_LAST
      ``audio_queue_depth`` (200 = 20 s of 100 ms chunks), reliability ``audio_reliability``
      ('reliable' by default; 'best_effort' also matches best-effort publishers). An
      incompatible publisher is reported in the log instead of failing silently.
  ``/instruction/spoken`` (pub, std_msgs/String, reliable, depth 10): one message per
      recognised utterance whose confidence reaches ``confidence_threshold``.
  ``/diagnostics`` (pub, diagnostic_msgs/DiagnosticArray, every ``diagnostics_period_s``):
      backend, model load time, counters, last transcript/confidence/latency, queue depth.

Threads: the subscription callback only decodes, resamples and runs the Silero VAD (a few ms
per chunk); recognition runs on the SpeechPipeline worker thread, so audio keeps arriving
while Whisper decodes. Bad audio (unknown format, partial frame, unsupported rate) is logged
(throttled), counted and dropped; the node keeps running. Parameters: config/speech.yaml
(see poa_gres_ros/ros/speech_params.py).
"""

from __future__ import annotations

import statistics
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from poa_gres_ros.msg import AudioData
from poa_gres_ros.ros.speech_params import declare_speech_params, dynamic_update
from poa_gres_ros.speech.audio import TARGET_RATE_HZ, read_wav_mono_16k
from poa_gres_ros.speech.pipeline import SpeechEvent, SpeechPipeline
from poa_gres_ros.speech.recognizers import create_recognizer

OUTPUT_TOPIC = '/instruction/spoken'


class SpeechNode(Node):
    """Audio in, std_msgs/String instructions out (see the module docstring)."""

    def __init__(self, **kwargs):
        super().__init__('speech_node', **kwargs)
        self._stop = threading.Event()
        self._wav_thread: threading.Thread | None = None
        self.pipeline: SpeechPipeline | None = None
        self.params = p = declare_speech_params(self)
        log = self.get_logger()
        self._started = time.monotonic()
        self._last_audio: float | None = None
        self._last_bad = ''
        self._bad_since_diag = 0
        self._lock = threading.Lock()

        prompt = p.prompt() if p.backend == 'whisper' else ''
        t0 = time.perf_counter()
        if p.backend == 'whisper':
            self.recognizer = create_recognizer(
                'whisper',
                model_path=p.whisper_model_path or None,
                compute_type=p.whisper_compute_type,
                cpu_threads=p.whisper_cpu_threads,
                beam_size=p.whisper_beam_size,
                initial_prompt=prompt,
            )
        else:
            self.recognizer = create_recognizer('pocketsphinx')
        self.load_ms = (time.perf_counter() - t0) * 1000.0
        self.warmup_ms = self.recognizer.warm_up()
        if not self.context.ok():  # Ctrl-C while the model loaded
            raise ExternalShutdownException()
        log.info(
            f'{p.backend} recogniser loaded in {self.load_ms:.0f} ms (warm-up decode '
            f'{self.warmup_ms:.0f} ms); prompt: {prompt!r}'
        )

        self.pipeline = SpeechPipeline(
            self.recognizer,
            self._on_event,
            p.vad_config(),
            confidence_threshold=p.confidence_threshold,
            max_pending=p.max_pending_utterances,
        )
        self._pub = self.create_publisher(String, OUTPUT_TOPIC, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=p.audio_queue_depth,
            reliability=ReliabilityPolicy.RELIABLE
            if p.audio_reliability == 'reliable'
            else ReliabilityPolicy.BEST_EFFORT,
        )
        self._sub = self.create_subscription(
            AudioData,
            'audio',
            self._on_audio,
            qos,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_bad_qos),
        )
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.pipeline.start()
        self._timer = self.create_timer(p.diagnostics_period_s, self._on_timer)
        if p.wav_file:
            self._wav_thread = threading.Thread(
                target=self._play_wav, name='wav-input', daemon=True
            )
            self._wav_thread.start()
        log.info(
            f'listening on {self._sub.topic_name} ({p.audio_reliability}, depth '
            f'{p.audio_queue_depth}); publishing to {OUTPUT_TOPIC}'
            + (f'; reading WAV file {p.wav_file}' if p.wav_file else '')
        )

    # ----------------------------------------------------------------------------- callbacks
    def _on_audio(self, msg: AudioData) -> None:
        self._last_audio = time.monotonic()
        try:
            self.pipeline.push_pcm(msg.data, msg.sample_rate, msg.channels, msg.sample_format)
        except ValueError as exc:
            with self._lock:
                self._bad_since_diag += 1
                self._last_bad = str(exc)
            self.get_logger().warning(
                f'dropped bad audio message: {exc}', throttle_duration_sec=5.0
            )
        except Exception as exc:  # boundary: an unexpected VAD/runtime error must not kill spin
            self.get_logger().error(
                f'audio chunk failed: {type(exc).__name__}: {exc}', throttle_duration_sec=5.0
            )

    def _on_bad_qos(self, event) -> None:
        self.get_logger().error(
            f'a publisher on {self._sub.topic_name} has incompatible QoS '
            f'(policy {event.last_policy_kind}); set audio_reliability:=best_effort '
            'if the microphone publishes best effort'
        )

    def _on_set_parameters(self, changed):
        result = dynamic_update(self.params, changed)
        self.pipeline.confidence_threshold = self.params.confidence_threshold
        return result

    def _on_event(self, ev: SpeechEvent) -> None:
        log = self.get_logger()
        utt, tr = ev.utterance, ev.transcript
        if ev.kind == 'queue_full':
            log.warning(
                f'recogniser busy: dropped a waiting {utt.duration_s:.1f} s utterance '
                f'(max_pending_utterances={self.params.max_pending_utterances})'
            )
            return
        timing = (
            f'audio {utt.duration_s:.2f} s, decode {tr.decode_ms:.0f} ms, queued '
            f'{ev.queued_ms:.0f} ms, end of speech -> result {ev.total_ms:.0f} ms'
        )
        if ev.kind == 'published':
            self._pub.publish(String(data=tr.text))
            log.info(f'instruction {tr.text!r} (confidence {tr.confidence:.2f}; {timing})')
        elif ev.kind == 'low_confidence':
            log.info(
                f'dropped {tr.text!r}: confidence {tr.confidence:.2f} < threshold '
                f'{self.pipeline.confidence_threshold:.2f} ({timing})'
            )
        else:
            log.info(f'dropped utterance without words ({timing})')

    def _on_timer(self) -> None:
        if self._last_audio is not None and self.pipeline.in_speech('topic'):
            if time.monotonic() - self._last_audio > self.params.audio_timeout_s:
                self.get_logger().info('audio stopped inside an utterance; closing it')
                self.pipeline.end_stream('topic')
        self._diag_pub.publish(self._diagnostics())

    # ----------------------------------------------------------------------------- WAV input
    def _play_wav(self) -> None:
        p, log = self.params, self.get_logger()
        try:
            audio = read_wav_mono_16k(p.wav_file)
        except (FileNotFoundError, ValueError) as exc:
            log.error(f'cannot read wav_file: {exc}')
            return
        chunk = max(1, int(TARGET_RATE_HZ * p.wav_chunk_ms / 1000))
        t0 = time.monotonic()
        for start in range(0, len(audio), chunk):
            if self._stop.is_set():
                return
            self.pipeline.push_audio(audio[start : start + chunk], stream='wav')
            if p.wav_realtime_factor > 0:
                due = t0 + (start + chunk) / TARGET_RATE_HZ / p.wav_realtime_factor
                self._stop.wait(max(0.0, due - time.monotonic()))
        self.pipeline.end_stream('wav')
        log.info(f'wav_file done: {len(audio) / TARGET_RATE_HZ:.1f} s of audio')

    # ---------------------------------------------------------------------------- diagnostics
    def _diagnostics(self) -> DiagnosticArray:
        st, p = self.pipeline.stats, self.params
        now = time.monotonic()
        with self._lock:
            bad, self._bad_since_diag = self._bad_since_diag, 0
            last_bad = self._last_bad
        silent_s = now - (self._last_audio or self._started)
        level, message = DiagnosticStatus.OK, 'listening'
        if self.pipeline.pending:
            message = 'recognising'
        if bad:
            level, message = DiagnosticStatus.WARN, f'{bad} bad audio message(s): {last_bad}'
        elif silent_s > p.audio_timeout_s and not p.wav_file:
            publishers = self.count_publishers(self._sub.topic_name)
            level = DiagnosticStatus.WARN
            message = (
                f'no audio on {self._sub.topic_name} for {silent_s:.0f} s ({publishers} publishers)'
            )
        decode = list(st.decode_ms)
        values = {
            'backend': p.backend,
            'model_load_ms': f'{self.load_ms:.0f}',
            'warmup_ms': f'{self.warmup_ms:.0f}',
            'confidence_threshold': f'{self.pipeline.confidence_threshold:.2f}',
            'audio_chunks': st.chunks,
            'bad_audio_chunks': st.bad_chunks,
            'utterances': st.utterances,
            'published': st.published,
            'dropped_low_confidence': st.low_confidence,
            'dropped_empty': st.empty,
            'dropped_queue_full': st.queue_full,
            'pending': self.pipeline.pending,
            'last_instruction': st.last_text,
            'last_confidence': f'{st.last_confidence:.2f}',
            'last_decode_ms': f'{st.last_decode_ms:.0f}',
            'median_decode_ms': f'{statistics.median(decode):.0f}' if decode else '',
        }
        status = DiagnosticStatus(
            level=level,
            name=f'{self.get_fully_qualified_name()}: speech recognition',
            message=message,
            hardware_id=p.backend,
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        return arr

    def destroy_node(self) -> None:
        self._stop.set()
        if self._wav_thread is not None:
            self._wav_thread.join(2.0)
        if self.pipeline is not None:
            self.pipeline.stop()
        super().destroy_node()


def main(args=None) -> int:
    """Entry point of scripts/speech_node: spin until Ctrl-C (exit 0); 1 if startup fails.

    Ctrl-C while the model loads also exits 0: rclpy's signal handler shuts the context down,
    and the next ROS call fails, which is recognised here as a shutdown, not as an error.
    """
    rclpy.init(args=args)
    node = None
    rc = 0
    try:
        node = SpeechNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (FileNotFoundError, ValueError, RuntimeError, ImportError, ParameterException) as exc:
        if rclpy.ok():  # not a Ctrl-C during startup
            rclpy.logging.get_logger('speech_node').fatal(f'cannot start: {exc}')
            rc = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return rc
