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
