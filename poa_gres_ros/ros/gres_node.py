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

This module holds the lifecycle (parameters, transitions, release) and ``main``; the frame
path is in ``gres_node_frames`` and the diagnostics, QoS check and throttled logs in
``gres_node_health``.
"""

from __future__ import annotations

import functools
import gc
import threading

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleNodeMixin, TransitionCallbackReturn
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as RosClock
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Bool, String
from visualization_msgs.msg import MarkerArray

from poa_gres_ros.core.node_settings import (
    DYNAMIC,
    SPECS,
    NodeSettings,
    check_value,
    validate_incoming,
)
from poa_gres_ros.msg import GresInstances
from poa_gres_ros.ros import qos as Q
from poa_gres_ros.ros.binding_notices import BindingNotices
from poa_gres_ros.ros.clock_receipt import ClockReceiptMap
from poa_gres_ros.ros.depth_input import DepthInput
from poa_gres_ros.ros.frame_processor import FrameProcessor
from poa_gres_ros.ros.gres_node_frames import GresNodeFrames
from poa_gres_ros.ros.gres_node_health import GresNodeHealth
from poa_gres_ros.ros.image_input import ImageInput
from poa_gres_ros.ros.instruction_state import InstructionState
from poa_gres_ros.ros.node_params import declare_all
from poa_gres_ros.ros.node_stats import KeyedThrottle, LatestSlot, NodeStats
from poa_gres_ros.ros.predictor_loading import freeze_heap, load_predictor, unfreeze_heap
from poa_gres_ros.ros.process_exit import (
    ignore_further_signals,
    release_lifecycle_state_machine,
)

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


class GresNode(GresNodeFrames, GresNodeHealth, LifecycleNode):
    """Lifecycle node ``gres_node``; see the module docstring and config/gres.yaml.

    The frame path (callbacks, inference, publishing) is ``gres_node_frames.GresNodeFrames``;
    diagnostics, the QoS check and throttled logging are ``gres_node_health.GresNodeHealth``.
    """

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
        self.instructions = InstructionState(  # reads the node clock under its lock
            self._settings.instruction_timeout_s,
            self._settings.stamp_tolerance_s,
            lambda: self.get_clock().now().nanoseconds,
        )
        self._clock_receipts = ClockReceiptMap()  # use_sim_time: reception -> /clock time
        self._clock_sub = None
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
        if self.get_parameter('use_sim_time').value:  # instruction times on the /clock line
            self._clock_sub = self.create_subscription(
                RosClock, '/clock', self._on_clock, Q.CLOCK_RECEIPT_QOS,
                callback_group=self._rx_group,
            )  # fmt: skip
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

    def destroy_node(self) -> None:
        super().destroy_node()
        release_lifecycle_state_machine(self)  # leave the graph now, not after the lease

    def release(self) -> None:
        """Stop processing and destroy every publisher, subscription and timer (idempotent;
        also called on Ctrl-C so the model is freed even without a shutdown transition)."""
        self._stop_processing()
        for sub in [*self._instr_subs, *([self._clock_sub] if self._clock_sub else [])]:
            self.destroy_subscription(sub)
        self._instr_subs = self._notices.instruction_subs = []
        self._clock_sub = None
        self._clock_receipts.clear()
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
