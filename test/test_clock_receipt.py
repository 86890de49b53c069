"""ClockReceiptMap: system-time reception -> /clock time (docs/binding.md)."""

from __future__ import annotations

import pytest

from poa_gres_ros.ros.clock_receipt import ClockReceiptMap

MS = 1_000_000
T0 = 1_790_000_000_000 * MS  # a system time (ns)
BAG = 1_700_000_000_000 * MS  # the bag's /clock (ns)


def _player(m: ClockReceiptMap, rate: float = 1.0, period_ms: int = 25, n: int = 80) -> None:
    """/clock every period_ms of system time, advancing by rate * period."""
    for k in range(n):
        m.observe(T0 + k * period_ms * MS, BAG + int(k * period_ms * rate) * MS)


def test_between_clock_messages_the_replay_rate_is_followed():
    m = ClockReceiptMap()
    _player(m)
    assert m.to_clock(T0 + 1010 * MS) == BAG + 1010 * MS  # 10 ms after the message of 1000
    fast = ClockReceiptMap()
    _player(fast, rate=2.0)
    assert fast.to_clock(T0 + 1010 * MS) == BAG + 2020 * MS
    assert fast.to_clock(T0 + 1000 * MS) == BAG + 2000 * MS


def test_paused_clock_and_later_message_bound_the_estimate():
    m = ClockReceiptMap()
    for k in range(50):  # paused: the same /clock value every 25 ms
        m.observe(T0 + k * 25 * MS, BAG)
    assert m.to_clock(T0 + 1230 * MS) == BAG
    m2 = ClockReceiptMap()
    _player(m2, n=40)  # up to 975 ms, then the clock was set back less than extrapolated
    m2.observe(T0 + 1000 * MS, BAG + 980 * MS)
    assert m2.to_clock(T0 + 990 * MS) == BAG + 980 * MS  # never past a later /clock value


def test_unknown_before_the_first_message_and_after_a_silence():
    m = ClockReceiptMap()
    assert m.to_clock(T0) is None
    m.observe(T0, BAG)
    assert m.to_clock(T0 - 1) is None and m.to_clock(0) is None and m.to_clock(None) is None
    assert m.to_clock(T0 + 5 * MS) == BAG + 5 * MS  # one message: rate 1
    assert m.to_clock(T0 + 600 * MS) is None  # a stopped /clock is not extrapolated
    m.clear()
    assert m.to_clock(T0 + 5 * MS) is None


def test_callbacks_out_of_reception_order_and_a_full_map():
    m = ClockReceiptMap(capacity=8)
    for k in (0, 2, 1, 4, 3, 5, 7, 6, 9, 8):
        m.observe(T0 + k * 100 * MS, BAG + k * 100 * MS)
    assert m.to_clock(T0 + 650 * MS) == BAG + 650 * MS
    m.observe(T0, BAG)  # older than everything kept: ignored
    m.observe(0, BAG)  # unknown reception: ignored
    assert m.to_clock(T0 + 150 * MS) is None  # dropped with the oldest pairs
    assert m.to_clock(T0 + 250 * MS) == BAG + 250 * MS


@pytest.mark.parametrize('jump_ms', [-3000, 0])
def test_the_rate_is_measured_after_a_clock_jump_back(jump_ms):
    m = ClockReceiptMap()
    _player(m, n=20)  # to 475 ms
    m.observe(T0 + 500 * MS, BAG + jump_ms * MS)  # /clock back to the loop start
    assert m.to_clock(T0 + 510 * MS) == BAG + (jump_ms + 10) * MS  # one message after: rate 1
    m.observe(T0 + 525 * MS, BAG + (jump_ms + 50) * MS)  # replayed at 2x after the jump
    assert m.to_clock(T0 + 535 * MS) == BAG + (jump_ms + 70) * MS  # rate from after the jump


def test_a_clock_set_forwards_in_one_step_is_no_replay_rate():
    """A clock published at 1001 s, then set to 1003 s and repeated (as a test or a paused
    player does): an instruction received just after is at 1003 s, not extrapolated at the
    2 s-per-step 'rate' of the jump."""
    m = ClockReceiptMap()
    for k in range(30):  # 1001 s repeated every 10 ms
        m.observe(T0 + k * 10 * MS, BAG + 1001 * 1000 * MS)
    for k in range(30, 50):  # then 1003 s repeated
        m.observe(T0 + k * 10 * MS, BAG + 1003 * 1000 * MS)
    assert m.to_clock(T0 + 495 * MS) == BAG + 1003 * 1000 * MS
    jittery = ClockReceiptMap()  # a rate-1 player whose messages sometimes arrive in pairs
    for k in range(40):
        received = T0 + k * 25 * MS + (24 * MS if k % 5 == 0 else 0)
        jittery.observe(received, BAG + k * 25 * MS)
    assert jittery.to_clock(T0 + 985 * MS) == BAG + 985 * MS
