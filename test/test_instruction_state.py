"""Instruction state: ids, clearing, binding, expiry, clock jumps, threads."""

from __future__ import annotations

import threading

import pytest

from poa_gres_ros.ros.instruction_state import NS_PER_S, InstructionState


def test_ids_count_up_and_clear_uses_none():
    st = InstructionState()
    a = st.receive('the red mug', 10, '/instruction')
    b = st.receive('the duck', 20, '/instruction/spoken')
    assert (a.id, b.id) == (1, 2)
    assert b.source == '/instruction/spoken' and b.stamp_ns == 20
    assert st.receive('   \t\n', 30) is None
    assert st.current() is None and st.bind(40) is None
    assert st.receive('the bowl', 50).id == 3
    st.clear()  # lifecycle cleanup: nothing bound, but ids never restart
    assert st.bind(60) is None and st.receive('the cup', 70).id == 4


@pytest.mark.parametrize('text', ['', ' ', '\t\n  '])
def test_empty_or_whitespace_clears(text):
    st = InstructionState()
    st.receive('the red mug', 0)
    assert st.receive(text, 1) is None
    assert st.bind(2) is None


def test_image_before_any_instruction_binds_nothing():
    st = InstructionState()
    assert st.bind(123) is None


def test_binding_is_the_instruction_current_at_receipt():
    st = InstructionState()
    first = st.receive('the red mug', 100)
    bound = st.bind(150)  # image received now
    st.receive('the duck', 160)  # arrives while the frame waits: must not change it
    assert bound is first and bound.text == 'the red mug'
    assert st.bind(170).text == 'the duck'


def test_timeout_expires_and_zero_never_does():
    st = InstructionState(timeout_s=2.0)
    st.receive('the red mug', 0)
    assert st.bind(2 * NS_PER_S) is not None
    assert st.bind(2 * NS_PER_S + 1) is None
    st.set_timeout(0.0)
    assert st.bind(10_000 * NS_PER_S) is not None
    with pytest.raises(ValueError, match='must be >= 0'):
        st.set_timeout(-1)


def test_clock_jumping_back_rebases_the_age():
    """A looped bag under use_sim_time: the clock goes from t=100 s back to t=1 s."""
    st = InstructionState(timeout_s=5.0)
    st.receive('the red mug', 100 * NS_PER_S)
    assert st.bind(1 * NS_PER_S) is not None  # after the jump: still valid, age counts from 1 s
    assert st.bind(5 * NS_PER_S) is not None
    assert st.bind(7 * NS_PER_S) is None  # 6 s after the jump


def test_non_ascii_and_invalid_utf8_are_kept_and_flagged():
    st = InstructionState()
    jp = st.receive('赤いマグカップ と the duck ü', 1)
    assert jp.text == '赤いマグカップ と the duck ü' and not jp.invalid_utf8
    bad = st.receive('the \ufffd\ufffd mug', 2)  # what rclpy makes of invalid UTF-8 bytes
    assert bad.invalid_utf8 and bad.text == 'the \ufffd\ufffd mug'


def test_non_str_is_a_type_error():
    with pytest.raises(TypeError, match='must be str'):
        InstructionState().receive(b'bytes', 0)


def test_record_encoding_reports_first_time_only():
    st = InstructionState()
    instr = st.receive('a very long instruction', 0)
    assert st.was_truncated(instr.id) is None
    assert st.record_encoding(instr.id, truncated=True, num_tokens=20) is True
    assert st.record_encoding(instr.id, truncated=True, num_tokens=20) is False
    assert st.was_truncated(instr.id) is True


def test_concurrent_receivers_get_unique_consecutive_ids():
    st = InstructionState()
    ids: list[int] = []
    lock = threading.Lock()

    def worker(k):
        for i in range(200):
            instr = st.receive(f'thing {k} {i}', i)
            with lock:
                ids.append(instr.id)
            st.bind(i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == list(range(1, 801))


# ---------------------------------------------------------------- header-stamp binding
S = NS_PER_S


def _ms(t_s: float) -> int:
    return round(t_s * 1000) * 1_000_000


def test_sim_time_binds_by_header_stamp_not_by_arrival():
    """A frame captured at 3.9 s that reaches the node after the instruction of 5.2 s keeps
    the instruction it was captured under."""
    st = InstructionState()
    a = st.receive('the red mug', _ms(1.0))
    b = st.receive('the duck', _ms(5.2))
    late = st.bind_image(_ms(5.3), _ms(3.9), sim_time=True)
    assert late.instruction is a and late.rule == 'header stamp' and late.reason == 'use_sim_time'
    assert late.offset_s == pytest.approx(1.4)
    assert st.bind_image(_ms(5.3), _ms(5.2), sim_time=True).instruction is b  # at = included
    assert st.bind_image(_ms(5.35), _ms(5.3), sim_time=True).instruction is b
    assert st.bind(_ms(5.4)) is b  # receipt order would have given the new one
    early = InstructionState()
    early.receive('the red mug', _ms(1.0))
    assert early.bind_image(_ms(1.1), _ms(0.9), sim_time=True).instruction is None  # before it


def test_an_instruction_never_moves_before_an_image_already_received():
    """The node clock lags the camera (the /clock message behind the instruction): an image
    stamped 5.0 s was received, then an instruction at node time 4.98 s; it applies only to
    images after 5.0 s."""
    st = InstructionState()
    a = st.receive('the red mug', _ms(1.0))
    assert st.bind_image(_ms(4.97), _ms(5.0), sim_time=True).instruction is a
    b = st.receive('the duck', _ms(4.98))
    assert b.stamp_ns == _ms(4.98)  # the message still reports the real receive time
    assert st.bind_image(_ms(4.99), _ms(5.0), sim_time=True).instruction is a
    assert st.bind_image(_ms(5.05), _ms(5.1), sim_time=True).instruction is b


def test_live_rule_follows_the_stamp_tolerance():
    st = InstructionState(stamp_tolerance_s=0.5)
    a = st.receive('the red mug', 100 * S)
    b = st.receive('the duck', 102 * S)
    near = st.bind_image(_ms(102.3), _ms(101.9), sim_time=False)  # 0.4 s: same time base
    assert (near.instruction, near.rule, near.reason) == (a, 'header stamp',
                                                          'stamp within tolerance')  # fmt: skip
    far = st.bind_image(_ms(102.3), _ms(101.7), sim_time=False)  # 0.6 s: not trusted
    assert (far.instruction, far.rule, far.reason) == (b, 'receipt order',
                                                       'stamp outside tolerance')  # fmt: skip
    camera_clock = st.bind_image(_ms(102.3), 5 * S, sim_time=False)  # hardware time
    assert camera_clock.rule == 'receipt order' and camera_clock.instruction is b
    unset = st.bind_image(_ms(102.3), 0, sim_time=True)
    assert (unset.rule, unset.reason, unset.instruction) == ('receipt order', 'stamp unset', b)
    st.set_stamp_tolerance(1.0)
    assert st.bind_image(_ms(102.3), _ms(101.7), sim_time=False).instruction is a
    with pytest.raises(ValueError, match='must be > 0'):
        st.set_stamp_tolerance(0.0)
    assert 'within 1 s of the node clock' in near.describe(1.0)
    assert far.describe(0.5).startswith('receipt order (image stamps 0.6 s from the node clock')


def test_looped_recording_with_clock_falls_back_to_receipt_order():
    """A bag looped into one recording and played with --clock: the clock goes on (3 s ... 6 s)
    while the second pass repeats the header stamps of the first (10 s ... 12.9 s). Every frame
    of the second pass, also those stamped within the tolerance of the first pass's newest
    stamp, is bound by receipt order: its stamp does not read on the node clock."""
    st = InstructionState()
    mug = st.receive('the red mug', _ms(10.0))
    duck = st.receive('the duck', _ms(12.0))
    assert st.bind_image(_ms(12.95), _ms(12.9), sim_time=True).instruction is duck
    teddy = st.receive('the teddy', _ms(13.05))  # said before the second pass
    for t in (0.0, 0.1, 1.0, 1.9, 2.0, 2.5, 2.9):
        second = st.bind_image(_ms(13.15 + t), _ms(10.0 + t), sim_time=True)
        assert second.instruction is teddy, t
        assert (second.rule, second.reason) == ('receipt order', 'stamps jumped back'), t
    assert 'jumped backwards' in second.describe(1.0)
    st.clear()  # a new session: stamps are trusted again
    cup = st.receive('the cup', _ms(17.0))
    assert st.bind_image(_ms(17.2), _ms(17.1), sim_time=True).instruction is cup
    assert mug.id == 1


def test_stamps_that_jumped_back_are_trusted_again_once_they_read_on_the_node_clock():
    """Live: a camera clock set back by 5 s, then corrected."""
    st = InstructionState(stamp_tolerance_s=0.5)
    a = st.receive('the red mug', 100 * S)
    assert st.bind_image(_ms(101.0), _ms(100.95), sim_time=False).rule == 'header stamp'
    b = st.receive('the duck', _ms(101.5))
    back = st.bind_image(_ms(101.6), _ms(96.95), sim_time=False)
    assert (back.instruction, back.reason) == (b, 'stamps jumped back')
    assert st.bind_image(_ms(101.7), _ms(97.05), sim_time=False).reason == 'stamps jumped back'
    fixed = st.bind_image(_ms(101.8), _ms(101.4), sim_time=False)  # captured before the duck
    assert (fixed.instruction, fixed.rule) == (a, 'header stamp')


def test_clock_jump_back_keeps_the_current_instruction_by_stamp():
    """ros2 bag play --loop --clock: the clock and the stamps jump from 100 s back to 1 s."""
    st = InstructionState(timeout_s=5.0)
    st.receive('the red mug', 50 * S)
    mug2 = st.receive('the mug again', 99 * S)
    assert st.bind_image(100 * S, _ms(99.9), sim_time=True).instruction is mug2
    after = st.bind_image(_ms(1.05), _ms(1.0), sim_time=True)  # first frame of the next loop
    assert after.instruction is mug2 and after.rule == 'header stamp'
    assert st.bind_image(_ms(5.9), _ms(5.9), sim_time=True).instruction is mug2  # 4.9 s old
    assert st.bind_image(_ms(6.2), _ms(6.1), sim_time=True).instruction is None  # 5.1 s old


def test_reported_clock_jump_restarts_the_history_and_the_loop_start_instruction_binds():
    """ros2 bag play --loop --clock of a 0.8 s bag: the node's time-jump callback reports the
    clock going back from 0.85 s to 0.0 s (less than CLOCK_JUMP_S, so only the report sees
    it). The instruction re-published at the loop start binds the frames after it; a frame
    captured just before the jump and received just after it (its stamp more than the
    tolerance ahead of the node clock) keeps its own loop's one."""
    st = InstructionState(stamp_tolerance_s=0.2)
    st.receive('the red mug', _ms(0.0))
    duck = st.receive('the duck', _ms(0.4))
    assert st.bind_image(_ms(0.75), _ms(0.7), sim_time=True).instruction is duck
    st.clock_jumped(_ms(0.0))
    late = st.bind_image(_ms(0.02), _ms(0.8), sim_time=True)  # loop 1's last frame, late
    assert (late.instruction, late.rule) == (duck, 'header stamp')
    assert late.reason == 'captured before the clock jumped back'
    early = st.bind_image(_ms(0.03), _ms(0.01), sim_time=True)  # before the re-published one
    assert early.instruction is duck  # the instruction current at the jump
    mug = st.receive('the red mug', _ms(0.05))  # re-published at the loop start
    for t in (0.1, 0.3):
        assert st.bind_image(_ms(t + 0.02), _ms(t), sim_time=True).instruction is mug
    duck2 = st.receive('the duck', _ms(0.4))
    assert st.bind_image(_ms(0.5), _ms(0.45), sim_time=True).instruction is duck2
    assert (mug.id, duck2.id) == (3, 4)


def test_clock_jump_reported_before_the_loop_start_instruction_callback():
    """The loop-start instruction reached its callback before the node processed the /clock
    jump (node clock still at the old loop's end): after the jump it is the current one."""
    st = InstructionState()
    st.receive('the red mug', _ms(0.0))
    st.receive('the duck', _ms(2.0))
    mug = st.receive('the red mug', _ms(2.95))  # the clock message behind it
    st.clock_jumped(_ms(0.01))
    assert st.bind_image(_ms(0.06), _ms(0.05), sim_time=True).instruction is mug


def test_clear_and_expiry_by_stamp():
    st = InstructionState(timeout_s=2.0)
    mug = st.receive('the red mug', _ms(1.0))
    assert st.receive('', _ms(3.0)) is None  # cleared at 3 s
    assert st.bind_image(_ms(3.2), _ms(2.5), sim_time=True).instruction is mug  # before it
    assert st.bind_image(_ms(3.2), _ms(3.1), sim_time=True).instruction is None
    duck = st.receive('the duck', _ms(4.0))
    assert st.bind_image(_ms(6.1), _ms(6.0), sim_time=True).instruction is duck
    assert st.bind_image(_ms(6.2), _ms(6.1), sim_time=True).instruction is None  # expired


def test_instruction_time_is_when_the_middleware_received_it():
    """Live: the callback ran 3 s after the middleware received the instruction (a loaded
    executor). Frames captured after the reception are bound to it, also one bound before
    the callback ran once it is bound again before inference; a 3 s late callback is not a
    clock jump."""
    st = InstructionState(stamp_tolerance_s=5.0)
    a = st.receive('the red mug', 100 * S)
    early = st.bind_image(_ms(101.1), _ms(101.0), sim_time=False)
    assert early.instruction is a  # the duck's callback has not run yet
    before = st.bind_image(_ms(101.2), _ms(100.4), sim_time=False)
    b = st.receive('the duck', _ms(103.5), received_ns=_ms(100.5))
    assert b.stamp_ns == _ms(100.5)
    assert st.rebind(early) is b and st.rebind(before) is a
    assert st.bind_image(_ms(103.6), _ms(100.9), sim_time=False).instruction is b
    assert st.bind_image(_ms(103.6), _ms(100.45), sim_time=False).instruction is a
    assert st.bind_image(_ms(103.7), _ms(102.0), sim_time=False).rule == 'header stamp'
    # unknown (0) or later than the callback (another clock): the callback time
    assert st.receive('the cup', _ms(104.0), received_ns=0).stamp_ns == _ms(104.0)
    assert st.receive('the box', _ms(105.0), received_ns=_ms(105.1)).stamp_ns == _ms(105.0)


def test_rebind_takes_a_late_instruction_only_under_the_stamp_rule():
    """Under /clock a frame bound before the instruction's callback ran (its time is at or
    before the frame's stamp) is processed with it; a later instruction, a receipt-order
    binding and a binding from before a clock jump stay as they were; a late clear drops it."""
    st = InstructionState()
    a = st.receive('the red mug', _ms(1.0))
    bound = st.bind_image(_ms(6.01), _ms(6.0), sim_time=True)
    assert bound.instruction is a and bound.stamp_ns == _ms(6.0)
    b = st.receive('the duck', _ms(6.3), received_ns=_ms(5.95), on_sim_clock=True)
    assert b.stamp_ns == _ms(5.95) and st.rebind(bound) is b
    st.receive('the cup', _ms(6.4), received_ns=_ms(6.2), on_sim_clock=True)
    assert st.rebind(bound) is b  # after the stamp: never changes the frame
    receipt = st.bind_image(_ms(6.5), 0, sim_time=True)
    st.receive('', _ms(6.6), received_ns=_ms(6.55), on_sim_clock=True)
    assert st.rebind(receipt) is receipt.instruction  # receipt order: decided at receipt
    late = st.bind_image(_ms(6.7), _ms(6.6), sim_time=True)
    assert late.instruction is None
    framed = st.bind_image(_ms(6.8), _ms(6.5), sim_time=True)
    assert framed.instruction is not None
    st.receive('', _ms(6.9), received_ns=_ms(6.45), on_sim_clock=True)  # a clear before it
    assert st.rebind(framed) is None
    kept = st.bind_image(_ms(6.95), _ms(6.4), sim_time=True)
    st.clock_jumped(_ms(0.0))
    assert st.rebind(kept) is kept.instruction  # another time line: not bound again


def test_a_sim_reception_may_lead_the_lagging_node_clock_by_the_tolerance():
    """Under /clock the reception mapped onto /clock is ahead of the node clock when the
    node's own /clock callback lags; up to stamp_tolerance_s it is the instruction's time."""
    st = InstructionState(stamp_tolerance_s=1.0)
    assert st.receive('a', _ms(5.0), received_ns=_ms(5.4), on_sim_clock=True).stamp_ns == _ms(5.4)
    assert st.receive('b', _ms(6.0), received_ns=_ms(7.5), on_sim_clock=True).stamp_ns == _ms(6.0)
    assert st.receive('c', _ms(7.0), received_ns=_ms(7.4)).stamp_ns == _ms(7.0)  # live: never


def test_clock_is_read_under_the_lock_so_a_stalled_reader_is_no_clock_jump():
    """A callback that read the node clock, then stalled for 2 s while others bound frames,
    would present a 2 s old time: a clock jump back that restarts the history and binds
    frames already waiting to the wrong instruction. Read under the lock, the times are in
    order and no jump is seen."""
    now = [_ms(5.9)]
    st = InstructionState(clock=lambda: now[0])
    a = st.receive('the red mug')
    assert a.stamp_ns == _ms(5.9)
    stalled_reader = threading.Event()
    results = []

    def slow_callback():
        stalled_reader.wait(5)
        results.append(st.bind_image(None, _ms(5.95), sim_time=True))

    t = threading.Thread(target=slow_callback)
    t.start()
    now[0] = _ms(8.0)
    b = st.receive('the duck', received_ns=_ms(8.0), on_sim_clock=True)
    stalled_reader.set()
    t.join(5)
    (late,) = results
    assert late.instruction is a and late.epoch == 0  # no restart of the history
    assert st.bind_image(None, _ms(8.1), sim_time=True).instruction is b
    with pytest.raises(ValueError, match='no clock'):
        InstructionState().bind_image(None, 1, sim_time=True)
