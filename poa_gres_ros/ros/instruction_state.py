"""The node's current instruction: ids, receive stamps, clearing, expiry and image binding.

Binding rule: an image is processed with the newest
instruction the node *received before the image*. The node captures that binding in the image
callback, at receipt, by calling :meth:`InstructionState.bind` with the node-clock receipt
time; the frame then carries its instruction through the single-slot buffer, so an instruction
arriving while the frame waits or is processed never changes the frame's result, and every
published result names the instruction (text, id, receive stamp) it was computed with.

Which clock: both receipt times come from the node clock (``node.get_clock().now()``), which
is ROS time under ``use_sim_time`` (``/clock`` from ``ros2 bag play --clock``) and system time
otherwise. Receipt order decides the binding, so header stamps are never compared with
receive stamps for it: a camera's header stamp may come from another clock (hardware time,
or recorded time when a bag is played without ``--clock``). Header stamps are used only for
the latency measured from the image stamp (node clock now - header stamp), which is meaningful
when the camera and the node share a time base (live, or replay with ``--clock`` and
``use_sim_time:=true``).

Expiry: with ``timeout_s > 0`` an instruction older than ``timeout_s`` (node clock at image
receipt - instruction receipt) binds no image. When the clock jumps backwards (a looped bag
under ``use_sim_time``), the age would be negative: the instruction's age is then counted
from the jump (its expiry reference is re-based to the new time) instead of expiring or
living forever.

Pure Python and thread-safe (one lock); no ROS imports.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Instruction:
    """One received instruction.

    Attributes:
        id: 1, 2, ... in receive order (0 never occurs).
        text: the text as received (str; a non-ASCII instruction is kept as is).
        stamp_ns: node-clock receive time in nanoseconds (ROS time under use_sim_time).
        source: the topic it came from (e.g. '/instruction' or '/instruction/spoken').
        invalid_utf8: True if the sender's bytes were not valid UTF-8 (rclpy replaced the bad
            bytes with U+FFFD); the text is still used.
    """

    id: int
    text: str
    stamp_ns: int
    source: str = ''
    invalid_utf8: bool = False


@dataclass
class _Encoding:
    truncated: bool
    num_tokens: int


@dataclass
class InstructionState:
    """Thread-safe holder of the current instruction.

    Args:
        timeout_s: instructions older than this (seconds of node-clock time) bind no image;
            0 = never expire. Settable at run time with :meth:`set_timeout`.
    """

    timeout_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _current: Instruction | None = field(default=None, repr=False)
    _age_ref_ns: int = field(default=0, repr=False)
    _next_id: int = field(default=1, repr=False)
    _encodings: dict[int, _Encoding] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.set_timeout(self.timeout_s)

    def set_timeout(self, timeout_s: float) -> None:
        """Set the expiry in seconds (>= 0; 0 = never). Raises ValueError if negative."""
        if timeout_s < 0:
            raise ValueError(f'instruction_timeout_s={timeout_s} must be >= 0 (0 = never)')
        with self._lock:
            self.timeout_s = float(timeout_s)

    def receive(self, text: str, stamp_ns: int, source: str = '') -> Instruction | None:
        """Record an instruction received at node-clock time ``stamp_ns`` (ns).

        An empty or whitespace-only ``text`` clears the state (no output until the next
        instruction) and returns None; otherwise returns the new :class:`Instruction`, whose id
        is one more than the previous one (clears use no id).
        """
        if not isinstance(text, str):
            raise TypeError(f'instruction text must be str, got {type(text).__name__}')
        with self._lock:
            if not text.strip():
                self._current = None
                return None
            instr = Instruction(
                id=self._next_id,
                text=text,
                stamp_ns=int(stamp_ns),
                source=source,
                invalid_utf8='\ufffd' in text,
            )
            self._next_id += 1
            self._current = instr
            self._age_ref_ns = instr.stamp_ns
            self._encodings = {k: v for k, v in self._encodings.items() if k >= instr.id - 8}
            return instr

    def clear(self) -> None:
        """Forget the current instruction (ids keep counting from where they were)."""
        with self._lock:
            self._current = None

    def bind(self, now_ns: int) -> Instruction | None:
        """The instruction an image received at node-clock time ``now_ns`` is processed with:
        the newest received instruction, or None if there is none, it was cleared, or it is
        older than ``timeout_s``."""
        with self._lock:
            instr = self._current
            if instr is None:
                return None
            if now_ns < self._age_ref_ns:  # clock jumped back: count the age from the jump
                self._age_ref_ns = int(now_ns)
            if self.timeout_s > 0 and now_ns - self._age_ref_ns > self.timeout_s * NS_PER_S:
                return None
            return instr

    def current(self) -> Instruction | None:
        """The newest instruction regardless of expiry (None after a clear)."""
        with self._lock:
            return self._current

    def record_encoding(self, instruction_id: int, truncated: bool, num_tokens: int) -> bool:
        """Remember how instruction ``instruction_id`` was encoded (the predictor's
        InstructionInfo). Returns True the first time for that id (so the caller warns about
        truncation once per instruction, not once per frame)."""
        with self._lock:
            first = instruction_id not in self._encodings
            self._encodings[instruction_id] = _Encoding(bool(truncated), int(num_tokens))
            return first

    def was_truncated(self, instruction_id: int) -> bool | None:
        """True/False once encoded, None if that instruction was not encoded (yet)."""
        with self._lock:
            enc = self._encodings.get(instruction_id)
            return None if enc is None else enc.truncated
