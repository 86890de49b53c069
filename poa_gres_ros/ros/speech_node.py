"""ROS 2 speech node: audio (topic or WAV file) -> spoken instructions, fully offline.

Topics
  ``audio`` (sub, poa_gres_ros/msg/AudioData; remap it to the microphone topic). QoS: KEEP_LAST
      ``audio_queue_depth`` (200 = 20 s of 100 ms chunks), reliability ``audio_reliability``
      ('reliable' by default; 'best_effort' also matches best-effort publishers). An
      incompatible publisher is reported in the log instead of failing silently.
  ``instruction/spoken`` (pub, std_msgs/String, reliable, depth 10; relative, so a namespace
      prefixes it, as gres_node's subscription): one message per recognised utterance whose
      confidence reaches ``confidence_threshold``; published only while active.
  ``/diagnostics`` (pub, diagnostic_msgs/DiagnosticArray, every ``diagnostics_period_s``):
      backend, model load time, counters, last transcript/confidence/latency, queue depth.

Lifecycle, like gres_node: parameters are declared (and checked) at construction; configure
loads the recogniser (Whisper or pocketsphinx) and warms it up, and creates the publishers and
the diagnostics timer; activate starts recognition, subscribes the audio and reads
``wav_file`` (once a subscriber of ``instruction/spoken`` is matched, or after 5 s: the output is
volatile); deactivate unsubscribes and stops recognition after the decode in progress;
cleanup frees the recogniser. ``autostart`` (default true) runs configure + activate at start.

Threads: the subscription callback only decodes, resamples and runs the Silero VAD (a few ms
per chunk); recognition runs on the SpeechPipeline worker thread, so audio keeps arriving
while Whisper decodes. Bad audio (unknown format, partial frame, unsupported rate) is logged
(throttled), counted and dropped; the node keeps running. Parameters: config/speech.yaml
(see poa_gres_ros/ros/speech_params.py).
"""

from __future__ import annotations

import gc
import statistics
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from poa_gres_ros.msg import AudioData
from poa_gres_ros.ros.log_text import short_text
from poa_gres_ros.ros.process_exit import (
    ignore_further_signals,
    release_lifecycle_state_machine,
)
from poa_gres_ros.ros.speech_params import declare_speech_params, dynamic_update
from poa_gres_ros.speech.audio import TARGET_RATE_HZ, read_wav_mono_16k
from poa_gres_ros.speech.pipeline import PipelineStats, SpeechEvent, SpeechPipeline
from poa_gres_ros.speech.recognizers import create_recognizer

OUTPUT_TOPIC = 'instruction/spoken'  # relative: a namespace prefixes it
WAV_WAIT_FOR_SUBSCRIBER_S = 5.0  # wav_file: wait this long for a matched subscriber
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class SpeechNode(LifecycleNode):
    """Audio in, std_msgs/String instructions out (see the module docstring)."""

    def __init__(self, node_name: str = 'speech_node', **kwargs):
        super().__init__(node_name, **kwargs)
        self._stop = threading.Event()
        self._wav_thread: threading.Thread | None = None
        self.pipeline: SpeechPipeline | None = None
        self.recognizer = None
        self.params = declare_speech_params(self)  # ValueError: main() exits 1 with the reason
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._started = time.monotonic()
        self._last_audio: float | None = None
        self._last_bad = ''
        self._bad_since_diag = 0
        self._lock = threading.Lock()
        self.load_ms = self.warmup_ms = 0.0
        self._stats: PipelineStats | None = None
        self._exiting = False  # set by main() on Ctrl-C: a load in progress is abandoned
        self._pub = self._diag_pub = self._sub = self._timer = None
        self._state = 'unconfigured'
        self._output_topic = self.resolve_topic_name(OUTPUT_TOPIC)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._autostart_timer = None
        if self.params.autostart:
            self._autostart_timer = self.create_timer(0.0, self._autostart, clock=self._steady)

    # ----------------------------------------------------------------------------- lifecycle
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        if self.trigger_configure() != SUCCESS:
            self.get_logger().error('autostart: configure failed (reason above); staying down')
        elif self.trigger_activate() != SUCCESS:
            self.get_logger().error('autostart: activate failed (reason above); node inactive')

    def on_configure(self, state) -> TransitionCallbackReturn:
        """Load the recogniser (and warm it up); create the publishers and diagnostics."""
        p, log = self.params, self.get_logger()
        prompt = p.prompt() if p.backend == 'whisper' else ''
        t0 = time.perf_counter()
        try:
            if p.backend == 'whisper':
                recognizer = create_recognizer(
                    'whisper',
                    model_path=p.whisper_model_path or None,
                    compute_type=p.whisper_compute_type,
                    cpu_threads=p.whisper_cpu_threads,
                    beam_size=p.whisper_beam_size,
                    initial_prompt=prompt,
                )
            else:
                recognizer = create_recognizer('pocketsphinx')
            self.load_ms = (time.perf_counter() - t0) * 1000.0
            self.warmup_ms = recognizer.warm_up()
        except Exception as exc:  # boundary: any load failure is a FAILURE with its reason
            log.error(f'configure failed: cannot load the {p.backend} recogniser: '
                      f'{type(exc).__name__}: {exc}')  # fmt: skip
            return FAILURE
        if self._exiting:
            return FAILURE
        self.recognizer = recognizer
        log.info(
            f'{p.backend} recogniser loaded in {self.load_ms:.0f} ms (warm-up decode '
            f'{self.warmup_ms:.0f} ms); prompt: {prompt!r}'
        )
        self._pub = self.create_lifecycle_publisher(String, OUTPUT_TOPIC, 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._timer = self.create_timer(p.diagnostics_period_s, self._on_timer)
        self._state = 'inactive'
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        """Start recognition, subscribe the audio, read the WAV file if one is set."""
        p = self.params
        self.pipeline = SpeechPipeline(
            self.recognizer,
            self._on_event,
            p.vad_config(),
            confidence_threshold=p.confidence_threshold,
            max_pending=p.max_pending_utterances,
        )
        if self._stats is None:
            self._stats = self.pipeline.stats
        self.pipeline.stats = self._stats  # counters go on across deactivate / activate
        result = super().on_activate(state)  # the publisher is on before the first result
        self.pipeline.start()
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
        self._stop.clear()
        if p.wav_file:
            self._wav_thread = threading.Thread(
                target=self._play_wav, name='wav-input', daemon=True
            )
            self._wav_thread.start()
        self._state = 'active'
        self.get_logger().info(
            f'active: listening on {self._sub.topic_name} ({p.audio_reliability}, depth '
            f'{p.audio_queue_depth}); publishing to {self._pub.topic_name}'
            + (f'; reading WAV file {p.wav_file}' if p.wav_file else '')
        )
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_listening()
        self._state = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self.release()
        return super().on_cleanup(state)

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self.release()
        return super().on_shutdown(state)

    def on_error(self, state) -> TransitionCallbackReturn:
        self.get_logger().error('error processing: releasing everything (back to unconfigured)')
        self.release()
        return SUCCESS

    def _stop_listening(self) -> None:
        """Unsubscribe the audio, stop the WAV reader and the recogniser worker."""
        self._stop.set()
        if self._sub is not None:
            self.destroy_subscription(self._sub)
            self._sub = None
        if self._wav_thread is not None:
            self._wav_thread.join(2.0)
            self._wav_thread = None
        if self.pipeline is not None:
            self.pipeline.stop()  # after the decode in progress; waiting utterances dropped
            self.pipeline = None

    def release(self) -> None:
        """Stop listening and free the recogniser, publishers and timer (idempotent)."""
        self._stop_listening()
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        if self._pub is not None:
            self.destroy_lifecycle_publisher(self._pub)
            self._pub = None
        if self._diag_pub is not None:
            self.destroy_publisher(self._diag_pub)
            self._diag_pub = None
        self.recognizer = None
        self._state = 'unconfigured'

    # ----------------------------------------------------------------------------- callbacks
    def _on_audio(self, msg: AudioData) -> None:
        self._last_audio = time.monotonic()
        pipeline = self.pipeline
        if pipeline is None:  # deactivating
            return
        try:
            pipeline.push_pcm(msg.data, msg.sample_rate, msg.channels, msg.sample_format)
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
        if self.pipeline is not None:
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
            pub = self._pub
            if pub is None or self._state != 'active':
                log.info(f'not published (node {self._state}): {short_text(tr.text)}')
                return
            pub.publish(String(data=tr.text))
            log.info(f'instruction {short_text(tr.text)} on {pub.topic_name} '
                     f'(confidence {tr.confidence:.2f}; {timing})')  # fmt: skip
        elif ev.kind == 'low_confidence':
            log.info(
                f'dropped {short_text(tr.text)}: confidence {tr.confidence:.2f} < threshold '
                f'{self.params.confidence_threshold:.2f} ({timing})'
            )
        else:
            log.info(f'dropped utterance without words ({timing})')

    def _on_timer(self) -> None:
        pipeline = self.pipeline
        if pipeline is not None and self._last_audio is not None and pipeline.in_speech('topic'):
            if time.monotonic() - self._last_audio > self.params.audio_timeout_s:
                self.get_logger().info('audio stopped inside an utterance; closing it')
                pipeline.end_stream('topic')
        if self._diag_pub is not None:
            self._diag_pub.publish(self._diagnostics())

    # ----------------------------------------------------------------------------- WAV input
    def _play_wav(self) -> None:
        p, log = self.params, self.get_logger()
        # The output is volatile: a result published before any subscriber is matched is lost
        # (a grasp pipeline started at the same time, a test probe). Wait, bounded, for one.
        deadline = time.monotonic() + WAV_WAIT_FOR_SUBSCRIBER_S
        while self._pub is not None and self._pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                wait_s = WAV_WAIT_FOR_SUBSCRIBER_S
                log.warning(f'no subscriber on {OUTPUT_TOPIC} after {wait_s:.0f} s; reading '
                            'wav_file anyway')  # fmt: skip
                break
            if self._stop.wait(0.05):
                return
        try:
            audio = read_wav_mono_16k(p.wav_file)
        except (FileNotFoundError, ValueError) as exc:
            log.error(f'cannot read wav_file: {exc}')
            return
        chunk = max(1, int(TARGET_RATE_HZ * p.wav_chunk_ms / 1000))
        t0 = time.monotonic()
        pipeline = self.pipeline
        for start in range(0, len(audio), chunk):
            if self._stop.is_set() or pipeline is None:
                return
            pipeline.push_audio(audio[start : start + chunk], stream='wav')
            if p.wav_realtime_factor > 0:
                due = t0 + (start + chunk) / TARGET_RATE_HZ / p.wav_realtime_factor
                self._stop.wait(max(0.0, due - time.monotonic()))
        pipeline.end_stream('wav')
        log.info(f'wav_file done: {len(audio) / TARGET_RATE_HZ:.1f} s of audio')

    # ---------------------------------------------------------------------------- diagnostics
    def _diagnostics(self) -> DiagnosticArray:
        p, pipeline = self.params, self.pipeline
        st = self._stats or PipelineStats()
        now = time.monotonic()
        with self._lock:
            bad, self._bad_since_diag = self._bad_since_diag, 0
            last_bad = self._last_bad
        silent_s = now - (self._last_audio or self._started)
        level, message = DiagnosticStatus.OK, 'listening'
        if pipeline is None:
            message = f'{self._state}: not listening (lifecycle)'
        elif pipeline.pending:
            message = 'recognising'
        if bad:
            level, message = DiagnosticStatus.WARN, f'{bad} bad audio message(s): {last_bad}'
        elif self._sub is not None and silent_s > p.audio_timeout_s and not p.wav_file:
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
            'lifecycle_state': self._state,
            'output_topic': self._output_topic,
            'confidence_threshold': f'{p.confidence_threshold:.2f}',
            'audio_chunks': st.chunks,
            'bad_audio_chunks': st.bad_chunks,
            'utterances': st.utterances,
            'published': st.published,
            'dropped_low_confidence': st.low_confidence,
            'dropped_empty': st.empty,
            'dropped_queue_full': st.queue_full,
            'pending': pipeline.pending if pipeline is not None else 0,
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
        self.release()
        super().destroy_node()
        release_lifecycle_state_machine(self)  # leave the graph now, not after the lease


def main(args=None) -> int:
    """Entry point of scripts/speech_node: spin until Ctrl-C / SIGTERM (exit 0); 1 if the
    parameters are invalid. Ctrl-C while the model loads also exits 0, and further signals
    during the shutdown are ignored (``process_exit.ignore_further_signals``)."""
    rclpy.init(args=args)
    try:
        node = SpeechNode()
    except (ValueError, ParameterException) as exc:  # bad parameter values: say which
        rclpy.logging.get_logger('speech_node').fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        rclpy.try_shutdown()
        return 0
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_further_signals()
        gc.disable()  # no full collection of the whole heap during the shutdown
        node._exiting = True
        node.destroy_node()  # stops the recogniser after the decode in progress
        executor.shutdown(timeout_sec=1.0)
        rclpy.try_shutdown()
    return 0
