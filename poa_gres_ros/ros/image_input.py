"""The node's image subscriptions: raw and compressed topics, QoS (incl. 'auto'), loss count.

``image`` (after remapping) and ``<that>/compressed``, as image_transport names it, so one remap
of ``image`` moves both. Frames the middleware drops before the callback (best-effort large
samples, which Fast DDS drops under load, or a KEEP_LAST history overflowing) are counted
through the message-lost event; an incompatible publisher triggers the node's QoS check at once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable

from rclpy.event_handler import SubscriptionEventCallbacks
from sensor_msgs.msg import CompressedImage, Image

from poa_gres_ros.ros import qos as Q


class ImageInput:
    """Subscribes, re-subscribes (image_qos 'auto') and unsubscribes the image topics.

    Args:
        node: the rclpy node. topic: the resolved image topic. mode: the image_qos value.
        compressed: also subscribe ``<topic>/compressed``.
        on_image: ``on_image(msg, topic)``; on_lost: ``on_lost(count)`` for message-lost
            events; on_incompatible: called when a publisher with incompatible QoS appears.
        callback_group: where the callbacks run.
    """

    def __init__(self, node, topic: str, mode: str, compressed: bool, on_image: Callable,
                 on_lost: Callable[[int], None], on_incompatible: Callable[[], None],
                 callback_group):  # fmt: skip
        self.node, self.topic, self.mode = node, topic, mode
        self.qos = Q.image_qos(mode)
        self._topics = [(Image, topic)]
        if compressed:
            self._topics.append((CompressedImage, topic.rstrip('/') + '/compressed'))
        self._on_image = on_image
        self._events = SubscriptionEventCallbacks(
            message_lost=lambda e: on_lost(e.total_count_change),
            incompatible_qos=lambda _e: on_incompatible(),
        )
        self._group = callback_group
        self._lock = threading.Lock()
        self.subscriptions: list = []

    def subscribe(self) -> str | None:
        """Subscribe; with mode 'auto', at the reliability the image topic's current
        publishers offer (no switch, and no frame lost to one, when the camera runs first).
        Returns a log line when 'auto' chose from publishers."""
        with self._lock:
            want = Q.auto_reliability(self.node, self.topic) if self.mode == 'auto' else None
            if want is not None:
                self.qos = Q.with_reliability(self.qos, want)
            self._subscribe()
        if want is None:
            return None
        return f'image_qos auto: {self.topic} publishers are {want.name}; subscribed so'

    def _subscribe(self) -> None:
        self.subscriptions = [
            self.node.create_subscription(
                msg_type,
                topic,
                functools.partial(self._on_image, topic=topic),
                self.qos,
                callback_group=self._group,
                event_callbacks=self._events,
            )  # fmt: skip
            for msg_type, topic in self._topics
        ]

    def unsubscribe(self) -> None:
        with self._lock:
            for sub in self.subscriptions:
                self.node.destroy_subscription(sub)
            self.subscriptions = []

    def follow_publishers(self) -> str | None:
        """With mode 'auto' and active subscriptions, switch the reliability to what the
        publishers offer (:func:`qos.auto_reliability`); returns a log line if it switched."""
        with self._lock:
            if self.mode != 'auto' or not self.subscriptions:
                return None
            want = Q.auto_reliability(self.node, self.topic)
            if want is None or want == self.qos.reliability:
                return None
            self.qos = Q.with_reliability(self.qos, want)
            for sub in self.subscriptions:
                self.node.destroy_subscription(sub)
            self._subscribe()
            return f'image_qos auto: {self.topic} publishers are {want.name}; subscribed so'

    def mismatches(self) -> list[str]:
        """QoS mismatch reports of the subscribed image topics (empty when all is well)."""
        with self._lock:
            reports = [Q.mismatch_report(self.node, t, self.qos) for _, t in self._topics
                       if self.subscriptions]  # fmt: skip
        return [r for r in reports if r]
