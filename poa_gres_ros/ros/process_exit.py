"""Process-level helpers for the node executables (scripts/gres_node, scripts/speech_node)."""

from __future__ import annotations

import atexit
import logging
import os
import sys


def exit_process(status: int) -> None:
    """End the process with ``status`` right after an orderly ROS shutdown.

    Destroys the default rclpy context first: that finalises its DDS participant, which frees
    the participant's Fast DDS shared-memory ports (``os._exit`` alone leaves them behind, and
    the next process that takes the same port, a restarted node, can go unheard for seconds).
    Then runs the atexit handlers, flushes the logs and calls ``os._exit``. This skips only
    CPython's module teardown, which takes 2-3 s once torch and transformers are loaded
    (measured on 2 CPU cores) and would break the "Ctrl-C exits within 2 s" contract. Call it
    only after the node, the executor and the context were shut down (``main()`` does that).
    """
    _destroy_ros_context()
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _destroy_ros_context() -> None:
    """Destroy the default rclpy context if rclpy was used (after ``rclpy.try_shutdown``)."""
    rclpy = sys.modules.get('rclpy')
    if rclpy is None:
        return
    try:
        rclpy.get_default_context().destroy()
    except Exception as exc:  # exiting anyway: say why the ports may be left behind
        print(f'[exit] could not destroy the ROS context: {exc!r}', file=sys.stderr)


def release_lifecycle_state_machine(node) -> None:
    """Call right after ``LifecycleNode.destroy_node()``: let the node leave the ROS graph now.

    rclpy's ``LifecycleNode.destroy_node`` destroys the node's publishers, services and timers
    but not its lifecycle state machine, and the state machine holds the underlying rcl node.
    The node is then never removed from the graph: other processes list it (``ros2 node
    list``, ``get_node_names()``) until its participant's lease runs out, 20 s with Fast DDS,
    also after a normal Ctrl-C (measured; a plain ``Node`` leaves at once). Releasing the state
    machine finishes the node's destruction, which announces its removal. No-op for a node
    without one.
    """
    state_machine = getattr(node, '_state_machine', None)
    if state_machine is not None:
        state_machine.destroy_when_not_in_use()


def ignore_further_signals() -> None:
    """Call when a node's orderly shutdown begins (after the first Ctrl-C or SIGTERM).

    Further SIGINT and SIGTERM are ignored until the process ends: ``timeout -s INT ros2
    launch ...`` signals the whole process group and launch forwards the signal once more, and
    a supervisor may follow with SIGTERM; without this, the second signal raises
    KeyboardInterrupt in the middle of the shutdown (a traceback and exit status -2) or
    SIGTERM's default action kills the process (-15). rclpy's handlers are removed first, so
    that the context shutdown cannot restore the default action behind our back. Shutdown
    itself stays bounded (one frame in flight, one second for the executor); launch's
    SIGKILL after its own timeout still ends a process that hangs.
    """
    import signal

    from rclpy.signals import uninstall_signal_handlers

    uninstall_signal_handlers()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
