"""pytest fixtures for real-process ROS 2 tests (loaded by conftest.py).

- ``ros_node``: an rclpy node in the test process (session scope) to publish and subscribe.
- ``spawn``: start a process (a node, a publisher script); at the end of the test each one
  gets SIGINT and must exit with status 0 within ``stop_timeout_s``, else the test fails
  with the tail of its log. Output goes to a log file (never a pipe that could fill up).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    """A spawned process and its combined stdout/stderr log file."""

    popen: subprocess.Popen
    log_path: Path
    name: str
    stop_timeout_s: float

    def log(self) -> str:
        """The process output so far (UTF-8, undecodable bytes replaced)."""
        return self.log_path.read_text(errors='replace')

    def alive(self) -> bool:
        return self.popen.poll() is None


@pytest.fixture(scope='session')
def ros_node():
    """A plain rclpy node in the test process; rclpy is initialised once per session."""
    import rclpy

    rclpy.init()
    node = rclpy.create_node('pytest_probe')
    yield node
    node.destroy_node()
    rclpy.try_shutdown()


@pytest.fixture
def spawn(tmp_path):
    """``spawn(argv, name=None, stop_timeout_s=10.0, env=None) -> Proc``.

    ``argv[0] == 'python'`` is replaced by this interpreter. Processes are stopped with
    SIGINT after the test; a process that does not exit within ``stop_timeout_s`` seconds is
    killed and a process that exits with a non-zero status fails the test (clean shutdown
    is part of every node's contract).
    """
    procs: list[Proc] = []

    def _spawn(argv, name=None, stop_timeout_s=10.0, env=None, cwd=None):
        argv = [sys.executable if a == 'python' and i == 0 else str(a) for i, a in enumerate(argv)]
        name = name or Path(argv[1] if argv[0] == sys.executable else argv[0]).name
        log_path = tmp_path / f'{name}-{len(procs)}.log'
        full_env = dict(os.environ, **(env or {}))
        fh = open(log_path, 'wb')  # noqa: SIM115 - closed after the process ends
        popen = subprocess.Popen(
            argv, stdout=fh, stderr=subprocess.STDOUT, env=full_env, cwd=cwd or ROOT
        )
        fh.close()
        proc = Proc(popen, log_path, name, stop_timeout_s)
        procs.append(proc)
        return proc

    yield _spawn

    problems = []
    for p in procs:
        if p.alive():
            p.popen.send_signal(signal.SIGINT)
    for p in procs:
        try:
            rc = p.popen.wait(p.stop_timeout_s)
        except subprocess.TimeoutExpired:
            p.popen.kill()
            p.popen.wait()
            problems.append(f'{p.name} did not exit within {p.stop_timeout_s} s of SIGINT')
            continue
        if rc != 0:
            problems.append(f'{p.name} exited with status {rc}')
    if problems:
        tails = '\n'.join(f'--- {p.name} log tail ---\n{p.log()[-3000:]}' for p in procs)
        pytest.fail('; '.join(problems) + '\n' + tails)
