"""The node's optional depth input: ``depth`` + ``camera_info`` subscriptions, stamp pairing,
and the 3D fields of a result (docs/geometry3d.md#inputs-and-pairing,
docs/geometry3d.md#instance-geometry).

Pairing without a growing queue: depth images go into a fixed ``StampRing`` (the newest
few); when the inference callback takes a frame it calls :meth:`DepthInput.begin` with the
frame's stamp, which pins the nearest depth image within ``depth_tolerance_s`` if it is
already there, and any depth image arriving during the inference that is nearer still
replaces the pin (one message). :meth:`DepthInput.fill` then lifts every instance. So a frame
finds its depth even when many depth images arrive while the model runs, and memory stays at
the ring plus one pinned image. A fast model can finish before the frame's depth image has
arrived (drivers publish depth a little after colour): while no depth image at or after the
frame's stamp has been seen, ``fill`` waits up to ``depth_wait_s`` for it (only where one can
come: a depth image was received before, or the depth topic has publishers).

Every problem (no depth in time, no CameraInfo, unknown encoding, all-zero / NaN depth, sizes,
K all zeros) sets ``depth_status`` and ``depth_detail`` on the result and is reported through
``on_problem(key, text)`` (the node logs it, throttled per cause); the 2D result is published
as always.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo

from poa_gres_ros.conversions.depth3d import depth_inputs, geometry_msg
from poa_gres_ros.conversions.result_msgs import stamp_ns
from poa_gres_ros.core.geometry3d import lift_instances
from poa_gres_ros.core.stamp_pairing import StampRing
from poa_gres_ros.msg import GresInstances
from poa_gres_ros.ros.image_input import ImageInput
from poa_gres_ros.ros.result_msgs import rclpy_message_class

RING_CAPACITY = 8
CAMERA_INFO_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=2, reliability=ReliabilityPolicy.BEST_EFFORT
)  # best effort matches reliable and best-effort camera drivers alike


class DepthInput:
    """Depth and CameraInfo subscriptions of the node and the 3D part of each result.

    Args:
        node: the node. mode: the image_qos value (the depth topic follows the image rules,
            'auto' included). on_problem: ``on_problem(key, text)`` for throttled logs.
        on_incompatible: called when a depth publisher with incompatible QoS appears.
        callback_group: where the subscription callbacks run.
    """

    def __init__(self, node, mode: str, on_problem: Callable[[str, str], None],
                 on_incompatible: Callable[[], None], callback_group):  # fmt: skip
        self.node = node
        self.topic = node.resolve_topic_name('depth')
        self.info_topic = node.resolve_topic_name('camera_info')
        self.images = ImageInput(
            node, self.topic, mode, False, self._on_depth, lambda _n: None, on_incompatible,
            callback_group,
        )  # fmt: skip
        self._group = callback_group
        self._on_problem = on_problem
        self._ring = StampRing(RING_CAPACITY)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._newest = None  # newest depth stamp received (ns)
        self._info = None
        self._info_sub = None
        self._wanted: tuple[int, int] | None = None  # (stamp ns, tolerance ns)
        self._pinned = None  # (gap ns, message)

    def subscribe(self) -> str | None:
        """Subscribe depth and camera_info; returns the depth topic's 'auto' QoS log line."""
        chosen = self.images.subscribe()
        self._info_sub = self.node.create_subscription(
            CameraInfo, 'camera_info', self._on_info, CAMERA_INFO_QOS,
            callback_group=self._group,
        )  # fmt: skip
        return chosen

    def unsubscribe(self) -> None:
        self.images.unsubscribe()
        if self._info_sub is not None:
            self.node.destroy_subscription(self._info_sub)
            self._info_sub = None
        self._ring.clear()
        with self._lock:
            self._wanted, self._pinned = None, None

    def _on_info(self, msg) -> None:
        self._info = msg

    def _on_depth(self, msg, topic: str) -> None:
        stamp = stamp_ns(msg.header.stamp)
        self._ring.put(stamp, msg)
        with self._lock:
            self._newest = stamp if self._newest is None else max(self._newest, stamp)
            if self._wanted is not None:
                self._pin(stamp, msg)
            self._arrived.notify_all()

    def _pin(self, stamp: int, msg) -> None:
        want, tol = self._wanted
        gap = abs(stamp - want)
        if gap <= tol and (self._pinned is None or gap < self._pinned[0]):
            self._pinned = (gap, msg)

    def begin(self, stamp_ns: int, tolerance_s: float) -> None:
        """A frame with header stamp ``stamp_ns`` is being processed: pin its depth image."""
        tol = int(round(tolerance_s * 1e9))
        got_stamp, msg, _ = self._ring.nearest(stamp_ns, tol)
        with self._lock:
            self._wanted, self._pinned = (int(stamp_ns), tol), None
            if msg is not None:
                self._pin(got_stamp, msg)

    def fill(
        self, result: GresInstances, pred, *, erode_px: int, min_points: int, wait_s: float = 0.0
    ) -> list | None:
        """Set the 3D fields of ``result`` (built for ``pred``, after :meth:`begin`), waiting
        up to ``wait_s`` seconds for a depth image that has not arrived yet (module docstring).

        Returns:
            the ``core.geometry3d.Instance3D`` per instance (for the cloud and markers), or
            None when the frame has no usable depth (status and reason set on ``result``).
        """
        # wait only where a depth image can come: one was received, or the topic has publishers
        stream = self._newest is not None or self.node.count_publishers(self.topic) > 0
        with self._lock:
            if self._pinned is None and self._wanted is not None and wait_s > 0 and stream:
                want = self._wanted[0]
                self._arrived.wait_for(
                    lambda: (
                        self._pinned is not None
                        or (self._newest is not None and self._newest >= want)
                    ),
                    timeout=wait_s,
                )
            pinned, wanted = self._pinned, self._wanted
            self._wanted, self._pinned = None, None
        if pinned is None:
            stamp, tol = wanted if wanted is not None else (stamp_ns(result.header.stamp), 0)
            _, _, reason = self._ring.nearest(stamp, tol)
            return self._fail(result, GresInstances.DEPTH_MISSING, reason, 'depth:missing')
        msg = pinned[1]
        result.depth_stamp = msg.header.stamp
        h, w = int(result.mask.height), int(result.mask.width)
        try:
            depth_m, intr = depth_inputs(msg, self._info, (h, w))
        except ValueError as exc:
            status = GresInstances.DEPTH_MISSING if self._info is None else None
            return self._fail(result, status or GresInstances.DEPTH_INVALID, str(exc), 'depth')
        boxes = [
            (b.x_offset, b.y_offset, b.x_offset + b.width, b.y_offset + b.height)
            for b in (i.bbox for i in result.instances)
        ]
        try:
            geos = lift_instances(
                [i.mask for i in pred.instances], depth_m, intr, boxes, erode_px=erode_px,
                min_points=min_points,
            )  # fmt: skip
        except Exception as exc:  # boundary: the 2D result goes out whatever happens here
            reason = f'3D lifting failed: {type(exc).__name__}: {exc}'
            return self._fail(result, GresInstances.DEPTH_INVALID, reason, 'depth:lift')
        for inst, geo in zip(result.instances, geos):
            inst.geometry = geometry_msg(geo, rclpy_message_class)
        result.depth_status = GresInstances.DEPTH_OK
        result.depth_detail = ''
        return geos

    def _fail(self, result, status: int, reason: str, key: str) -> None:
        result.depth_status = status
        result.depth_detail = reason
        cause = re.sub(r'[\d.]+', '#', reason)  # one throttle per cause, not per number
        self._on_problem(
            f'{key}:{cause[:60]}',
            f'no 3D for the image at {result.header.stamp.sec}.'
            f'{result.header.stamp.nanosec:09d} (2D result published): {reason} '
            f'[depth {self.topic}, camera_info {self.info_topic}]',
        )
        return None
