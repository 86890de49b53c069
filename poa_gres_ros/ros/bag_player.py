"""Live bag replay into a running gres_node: publish the bag at its recorded timing, record the
node's results and diagnostics (the rclpy side of ``poa-gres replay --live``).

What it does, in order:

1. Starts gres_node the way ``poa-gres node`` does (``launch_commands.node_commands``: the
   installed executable and parameter file, ``-p model_dir``/``backend`` overrides, the image
   topic remapped to where the bag's images are published, ``use_sim_time`` with ``clock``),
   or connects to a node that is already running.
2. Waits until the node is active: it subscribed the image topic (it does so only after
   loading and warming up the model), its /gres/instances publisher matched ours, its
   /instruction subscription matched, and a /diagnostics report says 'active'. A started node
   that exits, or logs that its autostart failed (e.g. a model that does not load), ends the
   wait at once with the tail of its log.
3. Plays the bag (``BagTimeline.raw_messages``: log-time order, an instruction logged at an
   image's time first): each message at ``(log time - first log time) / rate`` after the start,
   as raw CDR straight to ``Publisher.publish`` (nothing is deserialised; rclpy and rosbags
   write the same CDR).
   /instruction goes out reliable + transient local (the node subscribes so), images, depth
   and camera_info reliable (``image_qos='best_effort'``: like most camera drivers' sensor-data
   profile). A bag with depth and camera_info starts the node with ``enable_3d`` and its
   ``depth`` / ``camera_info`` remapped to the bag's topics (docs/geometry3d.md). With
   ``clock``, /clock carries the bag's log time, published before each message and every
   25 ms in between (``ros2 bag play --clock``), and the node runs with
   ``use_sim_time:=true``: without it the recorded header stamps and the node's wall-clock
   time diverge.
4. Records every /gres/instances result as raw CDR with its arrival time (``raw=True``
   subscription; decoded later with rosbags) and the node's /diagnostics counters before and
   after playback.
5. Waits until results stop (no result for ``max(3 s, 2 x the longest gap between results)``),
   takes a fresh diagnostics report and stops a node it started with SIGINT (exit status
   recorded; a node that does not exit within 15 s is killed).

Fast DDS: when it starts the node, the player sets ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA``
(unless set) for both processes (measured here: p99 3.8 ms instead of 24-30 ms for 640x480
rgb8). A node that is already running must use the same transport setting.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from poa_gres_ros.bag.live_eval import LiveCapture
from poa_gres_ros.bag.timeline import BagTimeline
from poa_gres_ros.bag.typestore import COMPRESSED_IMAGE
from poa_gres_ros.ros.launch_commands import NodeLaunch, node_commands
from poa_gres_ros.ros.result_msgs import rclpy_message_class

CLOCK_PERIOD_S = 0.025
PLAY_ROLES = ('instruction', 'image', 'camera_info', 'depth')
AUTOSTART_FAILED = re.compile(r'autostart: (configure|activate) failed')  # gres_node's log line


@dataclass
class LiveSettings:
    """Options of a live replay (see the module docstring).

    Attributes:
        rate: playback speed factor (> 0; 2 = twice as fast).
        clock: publish /clock and run the node with use_sim_time.
        image_qos: 'reliable' or 'best_effort' for the image and camera_info publishers.
        image_topic: where images are published (None: the bag's topic); the started node is
            remapped to it.
        start_node: start gres_node (False: connect to a running one).
        model, backend, params_file: for the started node (None: the parameter file's).
        node_name: the node whose /diagnostics are read.
        startup_timeout_s: how long to wait for the node to become active.
        drain_timeout_s: at most this long after playback for the last results.
        log_path: the started node's log file (None: a temporary file).
        extra_ros_args: more ``--ros-args`` for the started node (e.g. ``-p name:=value``).
    """

    rate: float = 1.0
    clock: bool = False
    image_qos: str = 'reliable'
    image_topic: str | None = None
    start_node: bool = True
    model: str | None = None
    backend: str | None = None
    params_file: str | None = None
    node_name: str = 'gres_node'
    startup_timeout_s: float = 180.0
    drain_timeout_s: float = 60.0
    log_path: str | None = None
    extra_ros_args: tuple[str, ...] = ()

    def __post_init__(self):
        if not self.rate > 0:
            raise ValueError(f'rate must be > 0, got {self.rate}')
        if self.image_qos not in ('reliable', 'best_effort'):
            raise ValueError(
                f"image_qos must be 'reliable' or 'best_effort', got {self.image_qos!r}"
            )


def node_argv(
    settings: LiveSettings, image_topic: str, compressed: bool, topics: dict | None = None
) -> list[str]:
    """The gres_node command line (``launch_commands.node_commands`` plus overrides). With a
    depth topic in the bag (``topics``: role -> topic), ``depth`` and ``camera_info`` are
    remapped to the bag's and ``enable_3d`` is set."""
    base = image_topic[: -len('/compressed')] if compressed else image_topic
    topics = topics or {}
    three_d = {}
    if 'depth' in topics and 'camera_info' in topics:
        three_d = dict(depth_topic=topics['depth'], camera_info_topic=topics['camera_info'])
    launch = NodeLaunch(
        params_file=settings.params_file,
        image_topic=base,
        **three_d,
        use_sim_time=settings.clock,
        model_dir=settings.model or '',
        backend=settings.backend or '',
    )
    argv = node_commands(launch)[0]
    if compressed:
        argv += ['-p', 'subscribe_compressed:=true']
    if three_d:
        argv += ['-p', 'enable_3d:=true']
    return argv + list(settings.extra_ros_args)


class _Recorder:
    """Subscriptions and their data; callbacks run on the executor thread."""

    def __init__(self, node, node_name: str):
        from diagnostic_msgs.msg import DiagnosticArray

        from poa_gres_ros.msg import GresInstances
        from poa_gres_ros.ros.qos import DIAGNOSTICS_QOS, RESULT_QOS

        self.outputs: list[tuple[float, bytes]] = []
        self.diag: dict | None = None
        self.diag_time = 0.0
        self._name = f'/{node_name.strip("/")}: inference'
        self.results = node.create_subscription(
            GresInstances, '/gres/instances', self._on_result, RESULT_QOS, raw=True
        )
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, DIAGNOSTICS_QOS)

    def _on_result(self, raw) -> None:
        self.outputs.append((time.monotonic(), bytes(raw)))

    def _on_diag(self, arr) -> None:
        for st in arr.status:
            if st.name == self._name:
                self.diag = {kv.key: kv.value for kv in st.values}
                self.diag_time = time.monotonic()


def _tail(path: Path | None, n: int = 3000) -> str:
    if path is None or not path.exists():
        return ''
    return path.read_text(errors='replace')[-n:]


def play_live(timeline: BagTimeline, settings: LiveSettings) -> LiveCapture:
    """Replay ``timeline`` into gres_node and record what comes back (module docstring).

    Returns:
        LiveCapture (plain data; score it with ``bag.live_eval.evaluate_live``).
    Raises:
        RuntimeError: the node exits or does not become active within the timeout (the
            message holds the tail of its log).
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    image_topic = settings.image_topic or timeline.topics['image']
    compressed = timeline.msgtypes['image'] == COMPRESSED_IMAGE
    if compressed and not image_topic.endswith('/compressed'):
        image_topic += '/compressed'
    proc, log_path, log_fh = None, None, None
    if settings.start_node:
        os.environ.setdefault('FASTDDS_BUILTIN_TRANSPORTS', 'LARGE_DATA')
        log_path = Path(settings.log_path or f'/tmp/gres_node_replay_{os.getpid()}.log')
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_fh = open(log_path, 'wb')  # noqa: SIM115 - closed in the finally below
        argv = node_argv(settings, image_topic, compressed, timeline.topics)
        proc = subprocess.Popen(argv, stdout=log_fh, stderr=subprocess.STDOUT)
    capture = LiveCapture(
        settings={
            'rate': settings.rate,
            'clock': settings.clock,
            'image_qos': settings.image_qos,
            'image_topic': image_topic,
            'fastdds_transports': os.environ.get('FASTDDS_BUILTIN_TRANSPORTS', 'default'),
        }
    )
    capture.node = {
        'started': settings.start_node,
        'name': settings.node_name,
        'log': str(log_path) if log_path else None,
    }
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = SingleThreadedExecutor(context=context)
    spinner = None
    try:
        node = rclpy.create_node('gres_bag_player', context=context)
        executor.add_node(node)
        rec = _Recorder(node, settings.node_name)
        pubs = _publishers(node, timeline, image_topic, settings)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        _wait_active(node, rec, pubs, image_topic, proc, log_path, settings.startup_timeout_s)
        capture.counters_before = dict(rec.diag or {})
        _play(timeline, pubs, capture, settings, proc)
        _drain(rec, capture, proc, settings.drain_timeout_s)
        capture.outputs = list(rec.outputs)
        capture.counters_after = dict(rec.diag) if rec.diag is not None else None
        capture.node['model_dir'] = (rec.diag or {}).get('model_dir')
    finally:
        executor.shutdown(timeout_sec=1.0)
        if spinner is not None:
            spinner.join(timeout=2.0)
        context.try_shutdown()
        if proc is not None:
            capture.node['exit_code'] = _stop(proc)
            log_fh.close()
    return capture


def _publishers(node, timeline: BagTimeline, image_topic: str, settings: LiveSettings) -> dict:
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock

    from poa_gres_ros.ros.qos import INSTRUCTION_QOS

    rel = (
        ReliabilityPolicy.RELIABLE
        if settings.image_qos == 'reliable'
        else ReliabilityPolicy.BEST_EFFORT
    )
    cam_qos = QoSProfile(depth=5, reliability=rel)
    pubs = {
        'image': node.create_publisher(
            rclpy_message_class(timeline.msgtypes['image']), image_topic, cam_qos
        ),
        'instruction': node.create_publisher(
            rclpy_message_class(timeline.msgtypes['instruction']), '/instruction', INSTRUCTION_QOS
        ),
    }
    for role in ('camera_info', 'depth'):
        if role in timeline.topics:
            pubs[role] = node.create_publisher(
                rclpy_message_class(timeline.msgtypes[role]), timeline.topics[role], cam_qos
            )
    if settings.clock:
        pubs['clock'] = node.create_publisher(Clock, '/clock', QoSProfile(depth=1))
    return pubs


def _wait_active(node, rec, pubs, image_topic, proc, log_path, timeout_s) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(
                f'gres_node exited with status {proc.returncode} before it was '
                f'active; log {log_path}:\n{_tail(log_path)}'
            )
        if proc is not None and AUTOSTART_FAILED.search(_tail(log_path, 20_000)):
            raise RuntimeError(
                f'gres_node could not start (its autostart failed); log {log_path}:\n'
                f'{_tail(log_path)}'
            )
        ready = (
            node.count_subscribers(image_topic) >= 1
            and rec.results.get_publisher_count() >= 1
            and pubs['instruction'].get_subscription_count() >= 1
            and (rec.diag or {}).get('lifecycle_state') == 'active'
            and _side_topics_matched(node, pubs)
        )
        if ready:
            return
        time.sleep(0.1)
    where = f'; log {log_path}:\n{_tail(log_path)}' if log_path else ''
    raise RuntimeError(
        f'gres_node did not become active within {timeout_s:.0f} s (image '
        f'topic {image_topic} subscribed, results and diagnostics){where}'
    )


def _side_topics_matched(node, pubs) -> bool:
    """Every subscriber of the depth and camera_info topics that the graph shows (a node with
    enable_3d subscribes them just before its images) is matched by our publisher, so the first
    frames' depth is not lost to discovery; true at once for a node without them."""
    return all(
        pubs[role].get_subscription_count() >= node.count_subscribers(pubs[role].topic_name)
        for role in ('depth', 'camera_info')
        if role in pubs
    )


def _publish_clock(pubs, ns: int) -> None:
    from builtin_interfaces.msg import Time
    from rosgraph_msgs.msg import Clock

    pubs['clock'].publish(Clock(clock=Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)))


def _play(timeline, pubs, capture: LiveCapture, settings: LiveSettings, proc) -> None:
    start_wall, first_log = None, None
    clock = 'clock' in pubs
    for role, _topic, _type, log_ns, raw, idx in timeline.raw_messages(PLAY_ROLES):
        if role not in pubs:
            continue
        if start_wall is None:
            start_wall, first_log = time.monotonic(), log_ns
        target = start_wall + (log_ns - first_log) / 1e9 / settings.rate
        while True:
            now = time.monotonic()
            if now >= target:
                break
            if clock:
                _publish_clock(pubs, first_log + int((now - start_wall) * settings.rate * 1e9))
            time.sleep(min(CLOCK_PERIOD_S if clock else 0.05, target - now))
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f'gres_node exited with status {proc.returncode} during playback')
        if clock:
            _publish_clock(pubs, log_ns)
        t = time.monotonic()
        pubs[role].publish(raw)  # raw CDR straight onto the wire
        if role == 'image':
            capture.published.append((idx, t))
        elif role == 'instruction':
            capture.instructions_published += 1


def _drain(rec: _Recorder, capture: LiveCapture, proc, timeout_s: float) -> None:
    """Wait for the last results, then for one diagnostics report newer than them."""
    end_play = time.monotonic()
    deadline = end_play + timeout_s
    while time.monotonic() < deadline:
        times = [t for t, _ in rec.outputs]
        gaps = [b - a for a, b in zip(times, times[1:])]
        quiet = max(3.0, 2.0 * max(gaps, default=0.0))
        last = max(times[-1] if times else end_play, end_play)
        if time.monotonic() - last > quiet or (proc is not None and proc.poll() is not None):
            break
        time.sleep(0.1)
    after = time.monotonic()
    while rec.diag_time <= after and time.monotonic() < after + 5.0:
        time.sleep(0.05)


def _stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
