"""The node's single-slot frame buffer, its counters and latency statistics (no ROS imports).

Single slot: the image callback puts the newest frame into one slot (queues in front of a model
slower than the camera make memory grow and latency climb until the process dies); a frame still
waiting there is replaced and counted as dropped. The inference callback takes whatever is in
the slot. Memory is therefore bounded by one waiting frame plus the one being processed,
whatever the input rate, and latency is bounded by about two inference times (the frame in
flight plus the newest one).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


class LatestSlot:
    """Thread-safe one-item buffer where the newest item wins."""

    def __init__(self):
        self._lock = threading.Lock()
        self._item = None

    def put(self, item) -> bool:
        """Store ``item``; return True if it replaced an item nobody had taken (a drop)."""
        with self._lock:
            replaced = self._item is not None
            self._item = item
            return replaced

    def take(self):
        """Remove and return the waiting item, or None."""
        with self._lock:
            item, self._item = self._item, None
            return item

    def clear(self) -> bool:
        """Drop the waiting item; True if there was one."""
        return self.take() is not None


COUNTERS = (
    'received',  # image messages received while active
    'lost_in_transport',  # frames the middleware dropped before our callback (message lost)
    'processed',  # frames run through the model and published
    'dropped_stale',  # frames replaced in the slot by a newer one before processing
    'rejected',  # frames that could not be converted (encoding, sizes, data length)
    'no_instruction',  # frames with no (or an expired or cleared) instruction: skipped
    'errors',  # frames whose inference or publishing raised
    'instructions',  # instructions received (clears not counted)
    'debug_published',  # debug overlays computed and published (only while subscribed)
    'bound_by_stamp',  # images bound to the instruction current at their header stamp
    'bound_by_receipt',  # images bound to the newest instruction received before them
    'clock_jumps',  # node clock steps back or source changes (instruction history restarted)
    'rebound',  # images bound again before inference: an instruction's callback ran late
)


@dataclass
class _Sample:
    t_s: float  # monotonic time of publication
    receipt_ms: float  # receipt -> publication (steady clock)
    stamp_ms: float | None  # header stamp -> publication (node clock), None if stamp unset
    inference_ms: float


@dataclass
class NodeStats:
    """Counters and a sliding window of per-frame latencies; thread-safe.

    Durations from receipt are measured with ``time.monotonic`` (sim time may pause or jump);
    latency from the image stamp uses the node clock, so it is meaningful live and under
    ``use_sim_time`` with ``--clock`` replay.
    """

    window_s: float = 10.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    _samples: deque = field(default_factory=deque, repr=False)
    _received_t: deque = field(default_factory=deque, repr=False)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (one of :data:`COUNTERS`)."""
        with self._lock:
            self.counts[name] += n
            if name == 'received':
                self._received_t.append(time.monotonic())

    def record(self, receipt_ms: float, stamp_ms: float | None, inference_ms: float) -> None:
        """Record one published frame's latencies (milliseconds)."""
        with self._lock:
            self.counts['processed'] += 1
            self._samples.append(_Sample(time.monotonic(), receipt_ms, stamp_ms, inference_ms))

    def _trim(self, now_s: float) -> None:
        while self._samples and now_s - self._samples[0].t_s > self.window_s:
            self._samples.popleft()
        while self._received_t and now_s - self._received_t[0] > self.window_s:
            self._received_t.popleft()

    def snapshot(self) -> dict:
        """Counters plus, over the last ``window_s`` seconds: input and output rates (Hz) and
        p50 / p90 / max of the latencies (ms). Latency keys are absent without samples."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            out: dict = dict(self.counts)
            samples = list(self._samples)
            n_in = len(self._received_t)
        span = self.window_s
        out['input_rate_hz'] = n_in / span
        out['output_rate_hz'] = len(samples) / span
        for key in ('receipt_ms', 'inference_ms', 'stamp_ms'):
            vals = [getattr(s, key) for s in samples if getattr(s, key) is not None]
            if vals:
                arr = np.asarray(vals)
                out[f'latency_{key}_p50'] = float(np.percentile(arr, 50))
                out[f'latency_{key}_p90'] = float(np.percentile(arr, 90))
                out[f'latency_{key}_max'] = float(arr.max())
        return out

    def reset(self) -> None:
        """Zero the counters and forget the window (at cleanup)."""
        with self._lock:
            self.counts = dict.fromkeys(COUNTERS, 0)
            self._samples.clear()
            self._received_t.clear()


class KeyedThrottle:
    """Allow one log line per key every ``period_s`` seconds (steady clock) and count the
    lines suppressed meanwhile, so that, e.g., each bad encoding is reported on its own."""

    def __init__(self, period_s: float = 5.0):
        self.period_s = period_s
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def ready(self, key: str) -> tuple[bool, int]:
        """(log now?, number of suppressed occurrences since the last line for ``key``)."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.period_s:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return False, 0
            self._last[key] = now
            return True, self._suppressed.pop(key, 0)


def stamp_latency_ms(now_ns: int, stamp_sec: int, stamp_nanosec: int) -> float | None:
    """Node-clock ``now_ns`` minus a header stamp, in ms; None for an unset (zero) stamp."""
    if not stamp_sec and not stamp_nanosec:
        return None
    return (now_ns - (stamp_sec * 1_000_000_000 + stamp_nanosec)) / 1e6
