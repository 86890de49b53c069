"""Shared harness of the node benchmarks: start gres_node as a real process, feed it frames
and collect its results by header stamp (used by bench_node_latency.py and soak_node.py).

Not a test helper: benchmarks print measurements; they assert nothing.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NS_PER_S = 1_000_000_000


def isolate_ros(domain_id: int | None = None) -> None:
    """Own ROS domain, discovery on this host, Fast DDS large-data transport (before rclpy)."""
    os.environ.setdefault('ROS_DOMAIN_ID', str(domain_id or random.randint(120, 200)))
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ.setdefault('FASTDDS_BUILTIN_TRANSPORTS', 'LARGE_DATA')
    os.environ['HF_HUB_OFFLINE'] = '1'


def frames(n: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` (H, W, 3) uint8 RGB frames of random 32-px tiles (deterministic)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        tiles = rng.integers(0, 256, (height // 32 + 1, width // 32 + 1, 3), dtype=np.uint8)
        out.append(np.repeat(np.repeat(tiles, 32, 0), 32, 1)[:height, :width].copy())
    return out


def image_msg(rgb: np.ndarray, stamp_ns: int):
    """rgb8 sensor_msgs/Image with the given header stamp."""
    from sensor_msgs.msg import Image

    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding='rgb8', step=rgb.shape[1] * 3)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), NS_PER_S)
    msg.header.frame_id = 'bench_camera'
    msg.data = rgb.tobytes()
    return msg


class NodeUnderTest:
    """scripts/gres_node with config/gres.yaml in its own process, images on /bench/image."""

    def __init__(self, model_dir: str, log_path: Path, extra: list[str] = ()):
        argv = [sys.executable, str(ROOT / 'scripts' / 'gres_node'), '--ros-args',
                '--params-file', str(ROOT / 'config' / 'gres.yaml'),
                '-p', f'model_dir:={model_dir}', '-p', 'publish_debug:=false',
                '-r', 'image:=/bench/image', *extra]  # fmt: skip
        self.log_path = log_path
        self._log = open(log_path, 'wb')  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)

    def rss_mb(self) -> float:
        """Resident memory of the node process in MiB (VmRSS from /proc)."""
        for line in Path(f'/proc/{self.popen.pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024.0
        return float('nan')

    def stop(self, timeout_s: float = 10.0) -> tuple[int, float]:
        """SIGINT; returns (exit status, seconds to exit)."""
        t0 = time.monotonic()
        self.popen.send_signal(signal.SIGINT)
        try:
            code = self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            code = self.popen.wait()
        self._log.close()
        return code, time.monotonic() - t0


class Client:
    """rclpy side: publishes the instruction (transient local) and images, collects results."""

    def __init__(self, reliable_images: bool = False):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from poa_gres_ros.msg import GresInstances
        from poa_gres_ros.ros.qos import INSTRUCTION_QOS, RESULT_QOS

        rclpy.init()
        self.node = rclpy.create_node('gres_bench')
        self.arrivals: dict[int, tuple[float, object]] = {}  # stamp -> (perf time, msg)
        self._instr = self.node.create_publisher(String, '/instruction', INSTRUCTION_QOS)
        image_qos = qos_profile_sensor_data
        if reliable_images:
            image_qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self._img = self.node.create_publisher(Image, '/bench/image', image_qos)
        self.node.create_subscription(GresInstances, '/gres/instances', self._on_result,
                                      RESULT_QOS)  # fmt: skip
        self.last_diag: dict[str, str] = {}  # newest /diagnostics values of the node
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10)

    def _on_diag(self, arr):
        for st in arr.status:
            if st.name.endswith(': inference'):
                self.last_diag = {kv.key: kv.value for kv in st.values}

    def _on_result(self, msg):
        stamp = msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec
        self.arrivals[stamp] = (time.perf_counter(), msg)

    def instruct(self, text: str):
        from std_msgs.msg import String

        self._instr.publish(String(data=text))

    def publish(self, msg) -> float:
        t = time.perf_counter()
        self._img.publish(msg)
        return t

    def spin(self, timeout_s: float = 0.0):
        import rclpy

        rclpy.spin_once(self.node, timeout_sec=timeout_s)

    def wait_for(self, stamp_ns: int, timeout_s: float) -> bool:
        end = time.monotonic() + timeout_s
        while stamp_ns not in self.arrivals and time.monotonic() < end:
            self.spin(0.01)
        return stamp_ns in self.arrivals

    def close(self):
        import rclpy

        self.node.destroy_node()
        rclpy.try_shutdown()


def wait_until_answering(client: Client, node: NodeUnderTest, rgb, timeout_s=180.0) -> None:
    """Resend a probe frame until the node answers (model loaded, discovery done).
    Raises RuntimeError with the node's log tail if it does not."""
    end = time.monotonic() + timeout_s
    k = 0
    while time.monotonic() < end:
        if node.popen.poll() is not None:
            break
        k += 1
        stamp = k * 1000  # tiny stamps: never confused with real ones
        client.publish(image_msg(rgb, stamp))
        if client.wait_for(stamp, 1.0):
            return
    raise RuntimeError(f'node never answered; log tail:\n{node.log_path.read_text()[-3000:]}')


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, float), q)) if len(values) else float('nan')
