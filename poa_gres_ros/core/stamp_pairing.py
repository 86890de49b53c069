"""Pair messages by header stamp with a bounded buffer (no queue that grows).

Used by the node to pair each colour image with the depth image of the nearest stamp
(docs/geometry3d.md#inputs-and-pairing). Pure Python, thread-safe, no ROS.
"""

from __future__ import annotations

import threading
from collections import deque

NS_PER_S = 1_000_000_000


class StampRing:
    """The ``capacity`` most recent (stamp, item) pairs; older ones fall out.

    Args:
        capacity: how many items are kept (>= 1). A few camera periods are enough: a colour
            frame is looked up after its inference, when its depth has long arrived.
    """

    def __init__(self, capacity: int = 8):
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self._items: deque = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, stamp_ns: int, item) -> None:
        """Keep ``item`` with header stamp ``stamp_ns`` (nanoseconds)."""
        with self._lock:
            self._items.append((int(stamp_ns), item))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def nearest(self, stamp_ns: int, tolerance_ns: int):
        """The item whose stamp is nearest to ``stamp_ns`` if within ``tolerance_ns``.

        Returns:
            ``(stamp_ns, item, None)`` on success, else ``(None, None, reason)`` with the
            reason in words (nothing received, or how far the nearest stamp is and on which
            side).
        """
        with self._lock:
            items = list(self._items)
        if not items:
            return None, None, 'no depth image received yet'
        best_stamp, best = min(items, key=lambda it: abs(it[0] - stamp_ns))
        gap = best_stamp - stamp_ns
        if abs(gap) <= tolerance_ns:
            return best_stamp, best, None
        side = 'older' if gap < 0 else 'newer'
        return (
            None,
            None,
            (
                f'nearest depth image is {abs(gap) / NS_PER_S:.3f} s {side} than the colour image '
                f'(depth_tolerance_s {tolerance_ns / NS_PER_S:g})'
            ),
        )
