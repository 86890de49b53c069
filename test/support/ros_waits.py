"""Helpers for tests that talk to real ROS 2 processes."""

from __future__ import annotations

import time


def spin_until(node, predicate, timeout_s: float = 10.0, proc=None) -> bool:
    """Spin ``node`` until ``predicate()`` is true or ``timeout_s`` seconds pass.

    If ``proc`` (a fixtures.Proc) dies meanwhile, raise AssertionError with its log tail, so a
    crashed node is reported as such and not as a timeout.
    Returns the final value of ``predicate()``.
    """
    import rclpy

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        if proc is not None and not proc.alive():
            raise AssertionError(
                f'{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-3000:]}'
            )
        rclpy.spin_once(node, timeout_sec=0.05)
    return bool(predicate())


def wait_for_subscribers(node, publisher, count: int = 1, timeout_s: float = 10.0) -> bool:
    """Wait until ``publisher`` has at least ``count`` matched subscriptions."""
    return spin_until(node, lambda: publisher.get_subscription_count() >= count, timeout_s)


def wait_for_publishers(node, topic: str, count: int = 1, timeout_s: float = 10.0) -> bool:
    """Wait until ``topic`` has at least ``count`` publishers in the graph."""
    return spin_until(node, lambda: node.count_publishers(topic) >= count, timeout_s)
