"""Start gres_node (and speech_node with --speech true) the way launch/gres.launch.py does.

The ROS 2 launch package is not installable from pip, so on the pip-wheel ROS 2 of this
repository this verb is the stand-in for

    ros2 launch poa_gres_ros gres.launch.py [namespace:=...] [image_topic:=...] ...

with the same arguments (same names, same defaults), the same executables (installed
lib/poa_gres_ros/gres_node, else the source checkout's scripts/gres_node) and the same
parameter file (installed share/poa_gres_ros/config/gres.yaml, else config/gres.yaml).
The command lines come from ``ros/launch_commands.py`` (shared with live bag replay).
Ctrl-C (SIGINT) or SIGTERM is passed on to the nodes; the exit status is the worst of theirs.
--dry-run prints the commands instead.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
from dataclasses import fields

from poa_gres_ros.ros.launch_commands import NodeLaunch, node_commands

VERB = 'node'
HELP = 'start gres_node (and the speech node) like gres.launch.py, without ros2 launch'


def add_arguments(parser):
    parser.add_argument('--namespace', default='', help='namespace of the nodes and topics')
    parser.add_argument('--params-file', default=None, help='default: the installed gres.yaml')
    parser.add_argument('--image-topic', default='/camera/image_raw', help='camera topic')
    parser.add_argument(
        '--depth-topic',
        default='/camera/aligned_depth_to_color/image_raw',
        help='aligned depth (with the enable_3d parameter)',
    )
    parser.add_argument(
        '--camera-info-topic', default='/camera/camera_info', help='colour CameraInfo (enable_3d)'
    )
    parser.add_argument('--use-sim-time', default='false', help='true: use /clock')
    parser.add_argument('--log-level', default='info', help='every logger: debug, info, ...')
    parser.add_argument('--node-log-level', default='', help="the nodes' own loggers only")
    parser.add_argument('--model-dir', default='', help='model folder or name ("" = file)')
    parser.add_argument('--backend', default='', help='backend ("" = from the params file)')
    parser.add_argument('--speech', default='false', help='true: also start speech_node')
    parser.add_argument('--speech-params-file', default=None, help='default: speech.yaml')
    parser.add_argument('--dry-run', action='store_true', help='print the commands and exit')


def _truthy(text: str) -> bool:
    return text.strip().lower() in ('true', '1', 'yes')


def node_launch(args) -> NodeLaunch:
    """The parsed arguments as launch arguments (same names; 'true'/'1'/'yes' are true, as in
    launch)."""
    values = {f.name: getattr(args, f.name) for f in fields(NodeLaunch)}
    values.update(use_sim_time=_truthy(args.use_sim_time), speech=_truthy(args.speech))
    return NodeLaunch(**values)


def run(args) -> int:
    commands = node_commands(node_launch(args))
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
