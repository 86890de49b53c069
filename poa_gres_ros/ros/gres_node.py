"""The GRES lifecycle node: camera image + instruction -> referred instances.

The node only converts, calls the predictor, converts back and publishes:
``conversions.image_msgs`` (Image -> RGB), ``instruction_state`` (binding), the
``poa_gres_ros.inference.Predictor`` (the model), ``result_msgs`` (messages).

Lifecycle: parameters are declared in ``__init__``; ``configure`` reads them, resolves the model
folder and creates publishers and the instruction subscriptions (an instruction received while
inactive is kept); ``activate`` loads the model, warms it up (the first inferences are several
times slower) and subscribes to images; ``deactivate`` unsubscribes, waits for the frame in
flight and frees the model; ``cleanup`` removes everything. A missing or corrupt model makes the
transition return FAILURE with the reason logged. ``autostart`` (default true) runs configure +
activate at start.

Threads: image and instruction callbacks (reentrant group) only bind the frame to the current
instruction and put it in a single slot (newest wins, stale frames dropped and counted); a
guard condition wakes the inference callback (its own mutually exclusive group) on a
MultiThreadedExecutor. Every callback catches at its boundary, logs (throttled per cause)
and keeps the executor alive. Times: node clock for stamps (use_sim_time works), a steady
clock for durations and for the diagnostics timer (reports go on while a bag is paused).
"""

from __future__ import annotations

import functools
import gc
import re
import sys
import threading
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleNodeMixin, TransitionCallbackReturn
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Bool, String
from visualization_msgs.msg import MarkerArray

from poa_gres_ros.conversions.image_msgs import ImageConversionError
from poa_gres_ros.core.node_settings import (
    DYNAMIC,
    SPECS,
    NodeSettings,
    check_value,
    validate_incoming,
)
from poa_gres_ros.core.visualize import draw_overlay
from poa_gres_ros.msg import GresInstances
from poa_gres_ros.ros import geometry_viz
from poa_gres_ros.ros import qos as Q
from poa_gres_ros.ros.binding_notices import BindingNotices
from poa_gres_ros.ros.depth_input import DepthInput
from poa_gres_ros.ros.diagnostics import build_diagnostics
from poa_gres_ros.ros.frame_processor import Frame, FrameProcessor
from poa_gres_ros.ros.image_input import ImageInput
from poa_gres_ros.ros.instruction_state import InstructionState
from poa_gres_ros.ros.log_text import short_text
from poa_gres_ros.ros.node_params import declare_all
from poa_gres_ros.ros.node_stats import KeyedThrottle, LatestSlot, NodeStats, stamp_latency_ms
from poa_gres_ros.ros.predictor_loading import freeze_heap, load_predictor, unfreeze_heap
from poa_gres_ros.ros.process_exit import ignore_further_signals
from poa_gres_ros.ros.result_msgs import rgb8_image

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class GresNode(LifecycleNode):
    """Lifecycle node ``gres_node``; see the module docstring and config/gres.yaml."""

    def __init__(self, node_name: str = 'gres_node', **kwargs):
        # Lifecycle services in a reentrant group: get_state answers ('activating') while a
        # model loads for seconds to minutes; a transition requested meanwhile is refused by
        # the state machine, not queued behind the load.
        Node.__init__(self, node_name, **kwargs)  # what LifecycleNode.__init__ does, plus
        LifecycleNodeMixin.__init__(self, callback_group=ReentrantCallbackGroup())  # the group
        values = declare_all(self)
        self._settings = NodeSettings.from_values(values)
        self.add_on_set_parameters_callback(self._validate_params)
        self.add_post_set_parameters_callback(self._apply_params)
        self.instructions = InstructionState(
            self._settings.instruction_timeout_s, self._settings.stamp_tolerance_s
        )
        self.stats = NodeStats()
        self._slot = LatestSlot()
        self._throttle = KeyedThrottle(5.0)
        self._rx_group = ReentrantCallbackGroup()
        self._infer_group = MutuallyExclusiveCallbackGroup()
        self._diag_group = MutuallyExclusiveCallbackGroup()  # reports go on during activation
        self._processor: FrameProcessor | None = None
        self._predictor_lock = threading.Lock()
        self._stopping = threading.Event()
        self._exiting = False  # set by main() on Ctrl-C: no more error logs from late frames
        self._values: dict = {}
        self._model_path = None
        self._pubs: dict = {}
        self._instr_subs: list = []
        self._images: ImageInput | None = None
        self._depth: DepthInput | None = None  # enable_3d: depth + camera_info
        self._diag_timer = None
        self._wake = None
        self._prev_snapshot: dict | None = None
        self._qos_problem: str | None = None
        self._image_topic = self.resolve_topic_name('image')
        self._notices = BindingNotices(
            self, self.instructions, self.stats, self._throttle, self._image_topic
        )
        self._autostart_timer = None
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        if values['autostart']:
            self._autostart_timer = self.create_timer(  # own group: parameter services stay free
                0.0, self._autostart, MutuallyExclusiveCallbackGroup(), self._steady
            )

    # ---------------------------------------------------------------- parameters
    def _validate_params(self, params) -> SetParametersResult:
        """On-set validator: checks only the incoming values (get_parameter still returns the
        old ones inside this callback)."""
        reason = validate_incoming(self._settings, {p.name: p.value for p in params})
        return SetParametersResult(successful=reason is None, reason=reason or '')

    def _apply_params(self, params) -> None:
        incoming = {p.name: p.value for p in params if p.name in DYNAMIC}
        if incoming:
            self._settings = self._settings.updated(incoming)  # read once per frame
            self.instructions.set_timeout(self._settings.instruction_timeout_s)
            self.instructions.set_stamp_tolerance(self._settings.stamp_tolerance_s)
            self.get_logger().info(f'parameters set (from the next frame): {incoming}')

    # ---------------------------------------------------------------- lifecycle
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        if self.trigger_configure() != SUCCESS:
            self.get_logger().error('autostart: configure failed (reason above); staying down')
        elif self.trigger_activate() != SUCCESS:
            self.get_logger().error('autostart: activate failed (reason above); node inactive')

    def on_configure(self, state) -> TransitionCallbackReturn:
        values = {name: self.get_parameter(name).value for name in SPECS}
        reasons = [r for r in (check_value(n, v) for n, v in values.items()) if r]
        if reasons:
            self.get_logger().error(f'configure failed: {"; ".join(reasons)}')
            return FAILURE
        try:
            from poa_gres_ros.inference import resolve_model_dir

            self._model_path = resolve_model_dir(values['model_dir'])
        except (ImportError, FileNotFoundError, ValueError) as exc:
            self.get_logger().error(f'configure failed: model {values["model_dir"]!r}: {exc}')
            return FAILURE
        self._values = values
        self._images = ImageInput(
            self, self._image_topic, values['image_qos'], values['subscribe_compressed'],
            self._on_image, lambda n: self.stats.count('lost_in_transport', n), self._check_qos,
            self._rx_group,
        )  # fmt: skip
        lp = self.create_lifecycle_publisher
        self._pubs = {
            'instances': lp(GresInstances, 'gres/instances', Q.RESULT_QOS),
            'mask': lp(Image, 'gres/mask', Q.RESULT_QOS),
            'no_target': lp(Bool, 'gres/no_target', Q.RESULT_QOS),
            'debug': lp(Image, 'gres/debug_image', Q.RESULT_QOS),
            'points': lp(PointCloud2, 'gres/points', Q.RESULT_QOS),
            'markers': lp(MarkerArray, 'gres/markers', Q.RESULT_QOS),
            'diagnostics': self.create_publisher(
                DiagnosticArray, '/diagnostics', Q.DIAGNOSTICS_QOS
            ),
        }
        if values['enable_3d']:
            self._depth = DepthInput(
                self, values['image_qos'],
                lambda key, text: self._log_throttled(key, text, warn=True),
                self._check_qos, self._rx_group,
            )  # fmt: skip
        self._instr_subs = [
            self.create_subscription(
                String, topic, functools.partial(self._on_instruction, topic=topic), qos,
                callback_group=self._rx_group,
            )  # fmt: skip
            for topic, qos in (('instruction', Q.INSTRUCTION_QOS),
                               ('instruction/spoken', Q.SPOKEN_QOS))
        ]  # fmt: skip
        self._notices.instruction_subs = self._instr_subs
        self._diag_timer = self.create_timer(  # steady: reports go on while a bag is paused
            values['diagnostics_period_s'], self._on_diag_timer, self._diag_group, self._steady
        )
        self.get_logger().info(f'configured: model folder {self._model_path}')
        return super().on_configure(state)

    def on_activate(self, state) -> TransitionCallbackReturn:
        v = self._values
        try:
            predictor, warm_ms = load_predictor(
                self._model_path, v, self._settings.thresholds, lambda: self._exiting
            )
        except Exception as exc:  # boundary: any load failure is a FAILURE with its reason
            self.get_logger().error(
                f'activate failed: cannot load model {self._model_path} with backend '
                f'{v["backend"]!r} on {v["device"]!r}: {type(exc).__name__}: {exc}'
            )
            return FAILURE
        if self._exiting:  # Ctrl-C while loading: do not start processing
            predictor.close()
            return FAILURE
        frozen, freeze_ms = freeze_heap()  # no multi-100-ms collector pauses per frame later
        warn = self.get_logger().warning
        with self._predictor_lock:
            self._processor = FrameProcessor(predictor, self.instructions, warn)
        self._stopping.clear()
        self._wake = self.create_guard_condition(self._on_wake, callback_group=self._infer_group)
        result = super().on_activate(state)  # lifecycle publishers on before the first frame
        if self._depth is not None:  # before the images: a frame's depth is never missed
            chosen = self._depth.subscribe()
            if chosen:
                self.get_logger().info(chosen)
        chosen = self._images.subscribe()
        if chosen:
            self.get_logger().info(chosen)
        self.get_logger().info(
            f'active: model {predictor.model_name} ({predictor.backend_name} on {v["device"]}, '
            f'input {predictor.input_size_hw}, warm-up {warm_ms:.0f} ms; {frozen} objects '
            f'frozen for the garbage collector in {freeze_ms:.0f} ms); images from '
            f'{self._image_topic} ({v["image_qos"]})'
        )
        self._wake.trigger()  # encode an instruction that came while inactive
        return result

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_processing()
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

    def _stop_processing(self) -> None:
        """Unsubscribe images, let the frame in flight finish, free the model."""
        self._stopping.set()
        if self._images is not None:
            self._images.unsubscribe()
        if self._depth is not None:
            self._depth.unsubscribe()
        self._slot.clear()
        with self._predictor_lock:  # waits for the frame in flight
            processor, self._processor = self._processor, None
        if processor is not None and hasattr(processor.predictor, 'close'):
            if not self._exiting:  # the model's reference cycles are collectable again
                unfreeze_heap()
            processor.predictor.close()  # frees the backend (GPU memory, sessions)
        if self._wake is not None:
            self.destroy_guard_condition(self._wake)
            self._wake = None

    def release(self) -> None:
        """Stop processing and destroy every publisher, subscription and timer (idempotent;
        also called on Ctrl-C so the model is freed even without a shutdown transition)."""
        self._stop_processing()
        for sub in self._instr_subs:
            self.destroy_subscription(sub)
        self._instr_subs = self._notices.instruction_subs = []
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        for name, pub in self._pubs.items():
            if name == 'diagnostics':
                self.destroy_publisher(pub)
            else:
                self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        self._depth = None
        self.instructions.clear()  # ids keep counting: a result id is never reused
        self.stats.reset()

    # ---------------------------------------------------------------- callbacks
    def _on_instruction(self, msg: String, info, topic: str) -> None:
        try:  # live, its time is when the middleware received it (the callback may run later)
            source, clock = self.resolve_topic_name(topic), self.get_clock()
            received = None if clock.ros_time_is_active else info.get('received_timestamp')
            instr = self.instructions.receive(msg.data, clock.now().nanoseconds, source, received)
            if instr is None:
                self.get_logger().info(f'instruction cleared by an empty message on {source}')
                return
            self.stats.count('instructions')
            self.get_logger().info(
                f'instruction {instr.id} from {source}: {short_text(instr.text)}'
            )
            if instr.invalid_utf8:
                self.get_logger().warning(
                    f'instruction {instr.id} was not valid UTF-8; bad bytes became U+FFFD'
                )
            if self._wake is not None:
                self._wake.trigger()  # encode the text now, once
        except Exception as exc:  # boundary: keep the executor alive
            self._log_throttled('instruction', f'instruction callback failed: {exc!r}')

    def _on_image(self, msg, topic: str) -> None:
        try:
            if self._stopping.is_set():
                return
            self.stats.count('received')
            clock = self.get_clock()
            stamp = msg.header.stamp
            binding = self.instructions.bind_image(
                clock.now().nanoseconds, stamp.sec * 1_000_000_000 + stamp.nanosec,
                clock.ros_time_is_active,
            )  # fmt: skip
            self._notices.note(binding, self._settings.stamp_tolerance_s)
            instr = binding.instruction
            if instr is None:
                self.stats.count('no_instruction')
                if not self._exiting:
                    self._notices.warn_no_instruction()
                return
            if self._slot.put(Frame(msg, instr, time.monotonic(), topic)):
                self.stats.count('dropped_stale')
            if self._wake is not None:
                self._wake.trigger()
        except Exception as exc:  # boundary: keep the executor alive
            self._log_throttled('image', f'image callback failed: {exc!r}')

    def _on_wake(self) -> None:
        with self._predictor_lock:
            processor = self._processor
            while processor is not None and not self._stopping.is_set():
                frame = self._slot.take()
                if frame is None:
                    break
                try:
                    self._process(processor, frame)
                except Exception as exc:  # boundary: a bad frame never kills the node
                    self.stats.count('errors')
                    self._log_throttled('process', f'frame from {frame.topic} failed: {exc!r}')
            current = self.instructions.current()
            if processor is not None and current is not None and not self._stopping.is_set():
                try:
                    processor.ensure_encoded(current)
                except Exception as exc:  # boundary
                    self._log_throttled('encode', f'encoding the instruction failed: {exc!r}')

    def _process(self, processor: FrameProcessor, frame: Frame) -> None:
        settings = self._settings  # one snapshot per frame
        depth = self._depth
        if depth is not None:
            stamp = frame.msg.header.stamp
            depth.begin(stamp.sec * 1_000_000_000 + stamp.nanosec, settings.depth_tolerance_s)
        try:
            out = processor.run(frame, settings.thresholds)
        except ImageConversionError as exc:
            self.stats.count('rejected')
            cause = re.sub(r'\d+', '#', str(exc))  # one throttle per encoding and cause
            self._log_throttled(f'convert:{cause}', f'dropped a frame from {frame.topic}: {exc}')
            return
        header = frame.msg.header
        geos = None
        if depth is not None:
            geos = depth.fill(
                out.result, out.prediction, erode_px=settings.depth_erode_px,
                min_points=settings.depth_min_points, wait_s=settings.depth_wait_s,
            )  # fmt: skip
        self._pubs['instances'].publish(out.result)
        self._pubs['mask'].publish(out.result.mask)
        self._pubs['no_target'].publish(Bool(data=out.result.no_target))
        debug = self._pubs['debug']
        if settings.publish_debug and debug.get_subscription_count() > 0:
            debug.publish(rgb8_image(draw_overlay(out.rgb, out.prediction), header))
            self.stats.count('debug_published')
        if geos is not None:
            self._publish_3d(header, out.result, geos)
        self._record_latency(frame, out.inference_ms)
        t = out.prediction.timings_ms  # node_log_level:=debug: one line per frame
        self.get_logger().debug(
            f'frame {header.stamp.sec}.{header.stamp.nanosec:09d} from {frame.topic}: '
            f'instruction {frame.instruction.id}, {len(out.result.instances)} instance(s), '
            f'no-target {out.result.no_target}; model {out.inference_ms:.0f} ms (preprocess '
            f'{t.get("preprocess", 0):.0f}, vision {t.get("vision", 0):.0f}, postprocess '
            f'{t.get("postprocess", 0):.0f})'
        )

    def _publish_3d(self, header, result, geos) -> None:
        """gres/points and gres/markers, built only while subscribed (lazy)."""
        points, marks = self._pubs['points'], self._pubs['markers']
        if points.get_subscription_count() > 0:
            points.publish(geometry_viz.point_cloud(header, geos, [i.id for i in result.instances]))
        if marks.get_subscription_count() > 0:
            marks.publish(geometry_viz.markers(header, result, geos))

    def _record_latency(self, frame: Frame, inference_ms: float) -> None:
        stamp = frame.msg.header.stamp
        stamp_ms = stamp_latency_ms(self.get_clock().now().nanoseconds, stamp.sec, stamp.nanosec)
        if stamp_ms is not None and not -1_000.0 < stamp_ms < 3_600_000.0:
            self._log_throttled(
                'stamp', f'image stamps are {stamp_ms / 1e3:.1f} s from the node clock: the '
                'camera and the node need one time base (for bag replay: ros2 bag play --clock '
                'and use_sim_time:=true); latency from the stamp is not meaningful', warn=True,
            )  # fmt: skip
            stamp_ms = None
        self.stats.record((time.monotonic() - frame.receipt_mono_s) * 1e3, stamp_ms, inference_ms)

    def _on_diag_timer(self) -> None:
        try:
            self._check_qos()
            snap = self.stats.snapshot()
            problems = [self._qos_problem] if self._qos_problem else []
            skipped = snap['no_instruction'] - (self._prev_snapshot or {}).get('no_instruction', 0)
            if skipped > 0:
                problems.append(f'{skipped} image(s) skipped since the last report: '
                                + self._notices.no_instruction_text())  # fmt: skip
            extra = {
                'lifecycle_state': 'active' if self._processor is not None else 'inactive',
                'model_dir': str(self._model_path),
                'image_topic': self._image_topic,
                'binding_rule': self._notices.rule or 'no image yet',
                'image_qos': self._values.get('image_qos', '')
                + (f' ({self._images.qos.reliability.name})' if self._images else ''),
            }
            arr = build_diagnostics(
                self.get_clock().now().to_msg(), f'{self.get_fully_qualified_name()}: inference',
                str(self._model_path), snap, self._prev_snapshot, extra, problems,
            )  # fmt: skip
            self._prev_snapshot = snap
            self._pubs['diagnostics'].publish(arr)
        except Exception as exc:  # boundary
            self._log_throttled('diagnostics', f'diagnostics failed: {exc!r}')

    def _check_qos(self) -> None:
        """Warn when a topic we subscribe has publishers but none matches (faults #8-#11);
        with image_qos 'auto', follow the image publishers' reliability first."""
        switched = self._images.follow_publishers() if self._images is not None else None
        if switched:
            self.get_logger().info(switched)
        if self._depth is not None:
            switched_depth = self._depth.images.follow_publishers()
            if switched_depth:
                self.get_logger().info(switched_depth)
        problems = self._images.mismatches() if self._images is not None else []
        if self._depth is not None:
            problems += self._depth.images.mismatches()
        for sub, qos in zip(self._instr_subs, (Q.INSTRUCTION_QOS, Q.SPOKEN_QOS)):
            problems.append(Q.mismatch_report(self, sub.topic_name, qos))
        problems = [p for p in problems if p]
        self._qos_problem = '; '.join(problems) or None
        for problem in problems:
            self._log_throttled(f'qos:{problem[:40]}', f'QoS mismatch: {problem}', warn=True)

    def _log_throttled(self, key: str, text: str, warn: bool = False) -> None:
        ok, suppressed = self._throttle.ready(key)
        if not ok or self._exiting or not self.context.ok():  # shutting down: late callbacks
            return
        if suppressed:
            text += f' ({suppressed} similar messages suppressed)'
        try:  # one call site per severity: rclpy refuses to change it between calls
            if warn:
                self.get_logger().warning(text)
            else:
                self.get_logger().error(text)
        except Exception as exc:  # never let logging take the executor down
            print(f'gres_node: logging failed ({exc!r}): {text}', file=sys.stderr)


def main(args=None) -> int:
    """Entry point of ``gres_node``: spin until Ctrl-C / SIGTERM, then exit 0."""
    rclpy.init(args=args)
    try:
        node = GresNode()
    except Exception as exc:  # bad parameter overrides: say which, exit non-zero
        rclpy.logging.get_logger('gres_node').fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_further_signals()  # a second Ctrl-C / SIGTERM must not break the shutdown
        gc.disable()  # nor a full collection of the whole heap (seconds on a loaded CPU)
        node._exiting = True
        node.release()  # waits for the frame in flight (one inference), frees the model
        # Do not wait for a callback still running (e.g. an activation loading a model for
        # many seconds): its thread ends with the process, whose state is released here.
        executor.shutdown(timeout_sec=1.0, wait_for_threads=False)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    from poa_gres_ros.ros.process_exit import exit_process

    exit_process(main())
