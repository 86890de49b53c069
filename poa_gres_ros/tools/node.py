"""Start gres_node (and speech_node with --speech true) the way launch/gres.launch.py does.

The ROS 2 launch package is not installable from pip, so on the pip-wheel ROS 2 of this
repository this verb is the stand-in for

    ros2 launch poa_gres_ros gres.launch.py [namespace:=...] [image_topic:=...] ...

with the same arguments (same names, same defaults), the same executables (installed
lib/poa_gres_ros/gres_node, else the source checkout's scripts/gres_node) and the same
parameter file (installed share/poa_gres_ros/config/gres.yaml, else config/gres.yaml).
Ctrl-C (SIGINT) or SIGTERM is passed on to the nodes; the exit status is the worst of theirs.
--dry-run prints the commands instead.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

VERB = 'node'
HELP = 'start gres_node (and the speech node) like gres.launch.py, without ros2 launch'

PACKAGE = 'poa_gres_ros'
SOURCE_ROOT = Path(__file__).resolve().parents[2]


def add_arguments(parser):
    parser.add_argument('--namespace', default='', help='namespace of the nodes and topics')
    parser.add_argument('--params-file', default=None, help='default: the installed gres.yaml')
    parser.add_argument('--image-topic', default='/camera/image_raw', help='camera topic')
    parser.add_argument('--use-sim-time', default='false', help='true: use /clock')
    parser.add_argument('--log-level', default='info', help='debug, info, warn, error, fatal')
    parser.add_argument('--model-dir', default='', help='model folder or name ("" = file)')
    parser.add_argument('--backend', default='', help='backend ("" = from the params file)')
    parser.add_argument('--speech', default='false', help='true: also start speech_node')
    parser.add_argument('--dry-run', action='store_true', help='print the commands and exit')


def _find(kind: str, rel: str) -> Path | None:
    """``<prefix>/<kind>/poa_gres_ros/<rel>`` on AMENT_PREFIX_PATH, else None."""
    for prefix in filter(None, os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)):
        path = Path(prefix) / kind / PACKAGE / rel
        if path.exists():
            return path
    return None


def executable(name: str) -> Path:
    """The installed lib/poa_gres_ros/<name>, else scripts/<name> of the source checkout.
    Raises FileNotFoundError naming both places."""
    path = _find('lib', name) or SOURCE_ROOT / 'scripts' / name
    if not path.exists():
        raise FileNotFoundError(f'executable {name} not found in lib/{PACKAGE} or {path.parent}')
    return path


def config_file(name: str) -> Path:
    """The installed share/poa_gres_ros/config/<name>, else config/<name> of the checkout."""
    path = _find('share', f'config/{name}') or SOURCE_ROOT / 'config' / name
    if not path.exists():
        raise FileNotFoundError(f'parameter file {name} not found in share/{PACKAGE}/config '
                                f'or {path.parent}')  # fmt: skip
    return path


def _truthy(text: str) -> bool:
    return text.strip().lower() in ('true', '1', 'yes')


def node_commands(args) -> list[list[str]]:
    """The argv of each node process for the parsed arguments (what gres.launch.py starts).
    Parameter overrides (-p) come after the parameter file, so they win, as in launch."""
    sim = 'true' if _truthy(args.use_sim_time) else 'false'
    common = ['--ros-args', '--log-level', args.log_level]
    if args.namespace:
        common += ['-r', f'__ns:=/{args.namespace.strip("/")}']
    params = args.params_file or str(config_file('gres.yaml'))
    gres = [sys.executable, str(executable('gres_node')), *common, '-r', '__node:=gres_node']
    gres += ['--params-file', params, '-p', f'use_sim_time:={sim}']
    for name, value in (('model_dir', args.model_dir), ('backend', args.backend)):
        if value:
            gres += ['-p', f'{name}:={value}']
    gres += ['-r', f'image:={args.image_topic}']  # <image>/compressed follows it
    commands = [gres]
    if _truthy(args.speech):
        speech = [sys.executable, str(executable('speech_node')), *common]
        speech += ['-r', '__node:=speech_node', '--params-file', str(config_file('speech.yaml'))]
        speech += ['-r', '/instruction/spoken:=instruction/spoken']  # into the namespace
        speech += ['-p', f'use_sim_time:={sim}']
        commands.append(speech)
    return commands


def run(args) -> int:
    commands = node_commands(args)
    if args.dry_run:
        for cmd in commands:
            print(shlex.join(cmd))
        return 0
    procs = [subprocess.Popen(cmd) for cmd in commands]

    def _forward(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGINT, _forward)
    signal.signal(signal.SIGTERM, _forward)
    codes = [p.wait() for p in procs]
    return max(codes, key=abs)
