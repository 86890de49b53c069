"""The node's current instruction: ids, receive stamps, clearing, expiry and image binding.

Binding rule (docs/binding.md): an image is processed with the instruction that was current
when the camera captured it. Which instant that is depends on whether the image header stamps
and the node clock share a time base:

* **header stamp** rule, when they do: under ``use_sim_time`` (``/clock`` from a bag replay),
  always; live, when the image's stamp is within ``stamp_tolerance_s`` of the node clock at
  receipt. The image gets the newest instruction *received at or before its header stamp*, so
  a frame captured before an instruction change but delivered after it (a 0.9 MB frame behind
  a small instruction message on a loaded machine) keeps the instruction it was captured
  under. An instruction's time is when the node's middleware received it, on the node
  clock's time line (live: system time; under ``use_sim_time``: the ``/clock`` time at
  reception, from ``clock_receipt.ClockReceiptMap``), which can be seconds before its callback
  runs on a loaded machine. Where that is unknown it is the node clock in the callback, but
  never earlier than the stamp of an image already received (a node clock that lags the
  camera, e.g. a /clock message handled after the instruction, cannot move an instruction
  before frames it came after).
* **receipt order** otherwise (no stamp, a camera clock of its own, recorded stamps replayed
  without ``--clock``): the newest instruction received before the image. Also once the image
  stamps jumped backwards while the node clock did not (a looped recording played with
  ``--clock``: the second pass repeats the first pass's stamps, so they no longer read on the
  node clock): from that image on, until a stamp is within ``stamp_tolerance_s`` of the node
  clock again or the node clock itself jumps back.

The binding is made in the image callback and the frame carries it through the single-slot
buffer. Under the header-stamp rule it is checked once more just before inference
(:meth:`InstructionState.rebind`): an instruction whose callback ran after the image's (a loaded
executor) but whose time is at or before the image stamp takes over; one received after the
stamp never changes the frame's result. Every published result names the instruction (text,
id, receive stamp) it was computed with.

The node clock is read under the state's lock (``clock``), so two callbacks' readings are
never seen out of order: a thread that read the clock and then stalled for a second would
otherwise look like a clock jump back.

Node clock jumping backwards (``ros2 bag play --loop --clock``; the node reports it with
:meth:`InstructionState.clock_jumped` from an rclpy time-jump callback, and a step back of more
than ``CLOCK_JUMP_S`` seen between calls counts too): instruction times before the jump do not
read on the new time line, so the history is restarted. The instruction current at the jump
stays current for every image after it, whatever its stamp, with its age counted from the
jump, until the next instruction (one re-published at the loop start binds the frames after
it). A frame captured before the jump but received after it (its stamp more than
``stamp_tolerance_s`` ahead of the node clock, under ``use_sim_time``) is bound by the
history before the jump.

Expiry: with ``timeout_s > 0`` an instruction older than ``timeout_s`` binds no image (age:
image stamp - instruction time under the header-stamp rule, node clock at image receipt -
instruction receipt otherwise).

Pure Python and thread-safe (one lock); no ROS imports.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

NS_PER_S = 1_000_000_000
CLOCK_JUMP_S = 1.0  # seen between calls; a smaller step back is two threads' clock reads
HISTORY = 32  # instructions (and clears) kept for the header-stamp rule
RULE_STAMP = 'header stamp'
RULE_RECEIPT = 'receipt order'


@dataclass(frozen=True)
class Instruction:
    """One received instruction.

    Attributes:
        id: 1, 2, ... in receive order (0 never occurs).
        text: the text as received (str; a non-ASCII instruction is kept as is).
        stamp_ns: node-clock receive time in nanoseconds (ROS time under use_sim_time; live,
            when the middleware received it).
        source: the topic it came from (e.g. '/instruction' or '/instruction/spoken').
        invalid_utf8: True if the sender's bytes were not valid UTF-8 (rclpy replaced the bad
            bytes with U+FFFD); the text is still used.
    """

    id: int
    text: str
    stamp_ns: int
    source: str = ''
    invalid_utf8: bool = False


@dataclass(frozen=True)
class Binding:
    """How an image was bound (:meth:`InstructionState.bind_image`).

    Attributes:
        instruction: the instruction it is processed with; None: none (skip the image).
        rule: RULE_STAMP or RULE_RECEIPT.
        reason: why that rule, a fixed phrase ('use_sim_time', 'stamp within tolerance',
            'stamp unset', 'stamp outside tolerance', 'stamps jumped back',
            'captured before the clock jumped back').
        offset_s: node clock at receipt - image stamp, seconds (0.0 for an unset stamp).
        stamp_ns: the image header stamp (ns; 0 = unset).
        epoch: the history it was bound in (one more after each restart on a clock jump).
    """

    instruction: Instruction | None
    rule: str
    reason: str
    offset_s: float = 0.0
    stamp_ns: int = 0
    epoch: int = 0

    def describe(self, tolerance_s: float) -> str:
        """One line for logs and diagnostics, e.g. 'header stamp (use_sim_time)'."""
        detail = {
            'stamp within tolerance': f'image stamps within {tolerance_s:g} s of the node clock',
            'stamp outside tolerance': f'image stamps {self.offset_s:.1f} s from the node clock, '
            f'more than stamp_tolerance_s={tolerance_s:g}',
            'stamp unset': 'image header stamps are zero',
            'stamps jumped back': 'image stamps jumped backwards while the node clock did not',
            'captured before the clock jumped back': 'an image captured before the node clock '
            'jumped back, with the instructions before the jump',
        }.get(self.reason, self.reason)
        return f'{self.rule} ({detail})'


@dataclass
class _Encoding:
    truncated: bool
    num_tokens: int


@dataclass
class InstructionState:
    """Thread-safe holder of the current instruction.

    Args:
        timeout_s: instructions older than this (seconds) bind no image; 0 = never expire.
            Settable at run time with :meth:`set_timeout`.
        stamp_tolerance_s: live (not ``use_sim_time``), the header-stamp rule applies when
            |node clock - image stamp| <= this (seconds); image stamps that fall more than
            this behind the newest one while the node clock goes on count as a backwards jump.
        clock: the node clock, ns (e.g. ``lambda: node.get_clock().now().nanoseconds``); read
            under the lock by the methods called without a time. None: callers pass times.
    """

    timeout_s: float = 0.0
    stamp_tolerance_s: float = 1.0
    clock: Callable[[], int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _current: Instruction | None = field(default=None, repr=False)
    _age_ref_ns: int = field(default=0, repr=False)
    _next_id: int = field(default=1, repr=False)
    _encodings: dict[int, _Encoding] = field(default_factory=dict, repr=False)
    # (instruction time ns, age reference ns, instruction or None for a clear), oldest first,
    # since the last backwards jump of the node clock; _before_jump: the same, before it
    _history: deque = field(default_factory=lambda: deque(maxlen=HISTORY), repr=False)
    _before_jump: tuple = field(default=(), repr=False)
    _last_now_ns: int | None = field(default=None, repr=False)
    _last_stamp_ns: int = field(default=-1, repr=False)  # newest image bound by stamp
    _max_stamp_ns: int = field(default=-1, repr=False)  # newest image stamp since a jump
    _stamps_apart: bool = field(default=False, repr=False)  # stamps jumped back, clock did not
    _epoch: int = field(default=0, repr=False)  # restarts of the history

    def __post_init__(self):
        self.set_timeout(self.timeout_s)
        self.set_stamp_tolerance(self.stamp_tolerance_s)

    def set_stamp_tolerance(self, tolerance_s: float) -> None:
        """Set ``stamp_tolerance_s`` (> 0). Raises ValueError otherwise."""
        if not tolerance_s > 0:
            raise ValueError(f'stamp_tolerance_s={tolerance_s} must be > 0')
        with self._lock:
            self.stamp_tolerance_s = float(tolerance_s)

    def clock_jumped(self, now_ns: int) -> None:
        """The node clock jumped backwards to ``now_ns`` (ns), or switched time source
        (``use_sim_time`` turned on or off): restart the history on the new time line (module
        docstring). Called from the node's rclpy time-jump callback."""
        with self._lock:
            self._rebase(now_ns)

    def _observe_clock(self, now_ns: int) -> None:
        """A backwards step of the node clock seen between calls (lock held): a clock whose
        jumps are not reported, e.g. system time stepped back."""
        last = self._last_now_ns
        if last is not None and now_ns < last - CLOCK_JUMP_S * NS_PER_S:
            self._rebase(now_ns)
        self._last_now_ns = int(now_ns)

    def _now(self, now_ns: int | None) -> int:
        """``now_ns``, or the clock read now (lock held)."""
        if now_ns is not None:
            return int(now_ns)
        if self.clock is None:
            raise ValueError('no time given and InstructionState has no clock')
        return int(self.clock())

    def _rebase(self, now_ns: int) -> None:
        self._epoch += 1
        self._before_jump = tuple(self._history)
        self._history.clear()
        if self._current is not None:  # current for every image after the jump
            self._history.append((0, int(now_ns), self._current))
        self._age_ref_ns = self._last_now_ns = int(now_ns)
        self._last_stamp_ns = self._max_stamp_ns = -1
        self._stamps_apart = False

    def set_timeout(self, timeout_s: float) -> None:
        """Set the expiry in seconds (>= 0; 0 = never). Raises ValueError if negative."""
        if timeout_s < 0:
            raise ValueError(f'instruction_timeout_s={timeout_s} must be >= 0 (0 = never)')
        with self._lock:
            self.timeout_s = float(timeout_s)

    def receive(
        self,
        text: str,
        stamp_ns: int | None = None,
        source: str = '',
        received_ns: int | None = None,
        on_sim_clock: bool = False,
    ) -> Instruction | None:
        """Record an instruction whose callback runs at node-clock time ``stamp_ns`` (ns; None:
        read ``clock`` under the lock).

        ``received_ns``: when the middleware received it (ns, on the node clock's time line;
        None or 0 = unknown); used as the instruction's time when it is not later than
        ``stamp_ns`` or, with ``on_sim_clock`` (a reception mapped onto ``/clock``, which the
        node clock's own ``/clock`` callback may lag), not more than ``stamp_tolerance_s``
        later.

        An empty or whitespace-only ``text`` clears the state (no output until the next
        instruction) and returns None; otherwise returns the new :class:`Instruction`, whose id
        is one more than the previous one (clears use no id).
        """
        if not isinstance(text, str):
            raise TypeError(f'instruction text must be str, got {type(text).__name__}')
        with self._lock:
            stamp_ns = self._now(stamp_ns)
            self._observe_clock(stamp_ns)
            ahead = self.stamp_tolerance_s * NS_PER_S if on_sim_clock else 0
            if received_ns and 0 < received_ns <= stamp_ns + ahead:
                stamp_ns = at = int(received_ns)
            else:  # the callback's time: never before an image already received
                at = max(int(stamp_ns), self._last_stamp_ns + 1)
            if not text.strip():
                self._current = None
                self._history.append((at, at, None))
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
            self._history.append((at, at, instr))
            self._age_ref_ns = instr.stamp_ns
            self._encodings = {k: v for k, v in self._encodings.items() if k >= instr.id - 8}
            return instr

    def clear(self) -> None:
        """Forget the current instruction and the image stamps seen (ids keep counting from
        where they were)."""
        with self._lock:
            self._epoch += 1
            self._current = None
            self._history.clear()
            self._before_jump = ()
            self._last_stamp_ns = self._max_stamp_ns = -1
            self._stamps_apart = False

    def bind_image(self, now_ns: int | None, stamp_ns: int, sim_time: bool) -> Binding:
        """Bind an image received at node-clock time ``now_ns`` (None: read ``clock`` under
        the lock) with header stamp ``stamp_ns`` (both ns; 0 = unset stamp) by the rule in
        force (module docstring). ``sim_time``: the node clock follows /clock
        (``use_sim_time``)."""
        with self._lock:
            now_ns = self._now(now_ns)
            self._observe_clock(now_ns)
            tol_ns = self.stamp_tolerance_s * NS_PER_S
            offset_s = (now_ns - stamp_ns) / NS_PER_S if stamp_ns else 0.0
            if not stamp_ns:
                return Binding(self._at_receipt(now_ns), RULE_RECEIPT, 'stamp unset', offset_s)
            if sim_time and self._before_jump and stamp_ns > now_ns + tol_ns:
                instr = self._at_stamp(self._before_jump, stamp_ns)
                return Binding(instr, RULE_STAMP, 'captured before the clock jumped back',
                               offset_s)  # fmt: skip
            self._before_jump = ()  # images come in order: none from before the jump follows
            near = abs(now_ns - stamp_ns) <= tol_ns
            if stamp_ns < self._max_stamp_ns - tol_ns:  # a new run of stamps begins
                self._stamps_apart, self._max_stamp_ns = not near, stamp_ns
            elif self._stamps_apart and near:  # the stamps read on the node clock again
                self._stamps_apart = False
            self._max_stamp_ns = max(self._max_stamp_ns, stamp_ns)
            if self._stamps_apart:
                reason = 'stamps jumped back'
            elif sim_time:
                reason = 'use_sim_time'
            elif near:
                reason = 'stamp within tolerance'
            else:
                reason = 'stamp outside tolerance'
            if reason in ('use_sim_time', 'stamp within tolerance'):
                self._last_stamp_ns = max(self._last_stamp_ns, stamp_ns)
                return Binding(self._at_stamp(self._history, stamp_ns), RULE_STAMP, reason,
                               offset_s, stamp_ns, self._epoch)  # fmt: skip
            return Binding(self._at_receipt(now_ns), RULE_RECEIPT, reason, offset_s)

    def rebind(self, binding: Binding) -> Instruction | None:
        """The instruction to process a bound image with, just before inference (module
        docstring): under the header-stamp rule, in the history it was bound in, the newest
        instruction at or before its stamp now (an instruction whose callback ran late takes
        over; a clear or expiry can make it None); any other binding is kept as it was."""
        with self._lock:
            if (
                binding.rule != RULE_STAMP
                or binding.reason not in ('use_sim_time', 'stamp within tolerance')
                or binding.epoch != self._epoch
            ):
                return binding.instruction
            return self._at_stamp(self._history, binding.stamp_ns)

    def _at_stamp(self, history, stamp_ns: int) -> Instruction | None:
        """Newest instruction of ``history`` whose time is <= ``stamp_ns``, unless expired
        (lock held)."""
        for at, age_ref, instr in reversed(history):
            if at <= stamp_ns:
                if instr is None or (
                    self.timeout_s > 0 and stamp_ns - age_ref > self.timeout_s * NS_PER_S
                ):
                    return None
                return instr
        return None

    def _at_receipt(self, now_ns: int) -> Instruction | None:
        instr = self._current
        if instr is None:
            return None
        if now_ns < self._age_ref_ns:  # clock stepped back: count the age from the step
            self._age_ref_ns = int(now_ns)
        if self.timeout_s > 0 and now_ns - self._age_ref_ns > self.timeout_s * NS_PER_S:
            return None
        return instr

    def bind(self, now_ns: int | None = None) -> Instruction | None:
        """Receipt order only: the instruction an image received at node-clock time
        ``now_ns`` is processed with: the newest received instruction, or None if there is
        none, it was cleared, or it is older than ``timeout_s``."""
        with self._lock:
            now_ns = self._now(now_ns)
            self._observe_clock(now_ns)
            return self._at_receipt(now_ns)

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
