"""When, on the ``/clock`` time line, the middleware received a message (docs/binding.md).

Under ``use_sim_time`` an instruction's time is the ``/clock`` time at which the node's
middleware received it, not the node clock when its callback ran: on a loaded computer the
callback (and rclpy's own ``/clock`` callback) can run a second later, while frames captured
in between must still be answered with the new instruction. The middleware stamps reception
on the computer's system clock (``MessageInfo['received_timestamp']``, ns); this map relates
that clock to ``/clock`` through the reception stamps of the ``/clock`` messages themselves
(a bag player publishes ``/clock`` with each message and every 25-40 ms in between).

``to_clock(r)`` takes the newest ``/clock`` message received at or before ``r`` and adds the
system time elapsed since, scaled by the replay rate: the median rate between consecutive
``/clock`` messages over the last second since any jump back (0 while paused or while the
same value is repeated, and a clock set forwards in one step is a jump, not a rate); it never
passes a ``/clock`` value received after ``r``.
It answers None (the caller uses its callback time) when no ``/clock`` message came before
``r`` or the newest one is more than ``MAX_EXTRAPOLATION_S`` older (a stopped clock).

Pure Python and thread-safe (one lock); no ROS imports.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque

NS_PER_S = 1_000_000_000
MAX_EXTRAPOLATION_S = 0.5  # a /clock silent for longer than this is not extrapolated
RATE_WINDOW_S = 1.0  # the replay rate is measured over this much system time
MAX_RATE = 100.0


class ClockReceiptMap:
    """Pairs (system time of reception, /clock value) of recent ``/clock`` messages.

    Args:
        capacity: pairs kept (oldest dropped first); 512 covers 5 s of a 100 Hz ``/clock``.
    """

    def __init__(self, capacity: int = 512):
        self._lock = threading.Lock()
        self._received: deque[int] = deque(maxlen=capacity)
        self._clock: deque[int] = deque(maxlen=capacity)

    def observe(self, received_ns: int, clock_ns: int) -> None:
        """Record a ``/clock`` message: ``received_ns`` its middleware reception (system time,
        ns; 0 = unknown, ignored) and ``clock_ns`` its value (ns). Callbacks may run out of
        reception order; the pairs are kept sorted by reception."""
        if received_ns <= 0:
            return
        with self._lock:
            if not self._received or received_ns >= self._received[-1]:
                self._received.append(int(received_ns))
                self._clock.append(int(clock_ns))
                return
            i = bisect.bisect_right(self._received, received_ns)
            if len(self._received) == self._received.maxlen:  # make room: drop the oldest
                if i == 0:
                    return  # older than everything kept
                self._received.popleft()
                self._clock.popleft()
                i -= 1
            self._received.insert(i, int(received_ns))
            self._clock.insert(i, int(clock_ns))

    def clear(self) -> None:
        """Forget every pair (the node clock's time source changed)."""
        with self._lock:
            self._received.clear()
            self._clock.clear()

    def to_clock(self, received_ns: int | None) -> int | None:
        """The ``/clock`` time (ns) at system time ``received_ns`` (module docstring), or None
        if it cannot be told (unknown reception, no ``/clock`` before it, a stopped clock)."""
        if not received_ns or received_ns <= 0:
            return None
        with self._lock:
            i = bisect.bisect_right(self._received, received_ns) - 1
            if i < 0:
                return None
            t_i, c_i = self._received[i], self._clock[i]
            elapsed = received_ns - t_i
            if elapsed > MAX_EXTRAPOLATION_S * NS_PER_S:
                return None
            start = t_i - int(RATE_WINDOW_S * NS_PER_S)
            j = i  # back over the window while /clock went forwards (not across a jump back)
            while j > 0 and self._received[j - 1] >= start and self._clock[j - 1] <= self._clock[j]:
                j -= 1
            rates = sorted(
                (self._clock[k + 1] - self._clock[k]) / dt
                for k in range(j, i)
                if (dt := self._received[k + 1] - self._received[k]) > 0
            )
            # The median step rate: a clock set forwards in one step (a jump, not a rate) or
            # two messages taken in one batch move the mean, not the median.
            rate = min(max(rates[(len(rates) - 1) // 2], 0.0), MAX_RATE) if rates else 1.0
            estimate = c_i + int(elapsed * rate)
            if i + 1 < len(self._received):  # a /clock received later bounds it
                estimate = min(estimate, max(c_i, self._clock[i + 1]))
            return estimate
