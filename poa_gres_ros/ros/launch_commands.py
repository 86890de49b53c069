"""The node processes that launch/gres.launch.py starts, as argv lists (no rclpy).

The ROS 2 launch package is not installable from pip, so ``poa-gres node`` (tools/node.py) and
live bag replay (ros/bag_player.py) start the nodes from these command lines: the same
executables (installed lib/poa_gres_ros/<name>, else the source checkout's scripts/<name>),
the same parameter files (installed share/poa_gres_ros/config/<name>, else config/<name>) and
the same remappings as the launch file.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = 'poa_gres_ros'
SOURCE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class NodeLaunch:
    """The launch arguments of gres.launch.py (same names, same defaults).

    Attributes:
        namespace: namespace of the nodes and their relative topics ('' = none).
        params_file: gres_node's parameter file; None = the installed config/gres.yaml.
        image_topic: the camera topic ``image`` is remapped to (``<image>/compressed`` follows).
        depth_topic, camera_info_topic: what ``depth`` and ``camera_info`` are remapped to
            (read by gres_node only with its enable_3d parameter).
        use_sim_time: take time from /clock.
        log_level: level of every logger (rcl and rmw included): 'debug', 'info', 'warn',
            'error' or 'fatal'.
        node_log_level: level of the nodes' own loggers only ('' = log_level).
        model_dir: ``model_dir`` parameter override ('' = from the parameter file).
        backend: ``backend`` parameter override ('' = from the parameter file).
        speech: also start speech_node.
        speech_params_file: speech_node's parameter file; None = the installed
            config/speech.yaml.
    """

    namespace: str = ''
    params_file: str | None = None
    image_topic: str = '/camera/image_raw'
    depth_topic: str = '/camera/aligned_depth_to_color/image_raw'
    camera_info_topic: str = '/camera/camera_info'
    use_sim_time: bool = False
    log_level: str = 'info'
    node_log_level: str = ''
    model_dir: str = ''
    backend: str = ''
    speech: bool = False
    speech_params_file: str | None = None


def _find(kind: str, rel: str) -> Path | None:
    """``<prefix>/<kind>/poa_gres_ros/<rel>`` on AMENT_PREFIX_PATH, else None."""
    for prefix in filter(None, os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep)):
        path = Path(prefix) / kind / PACKAGE / rel
        if path.exists():
            return path
    return None


def executable(name: str) -> Path:
    """The installed lib/poa_gres_ros/<name>, else scripts/<name> of the source checkout.

    Raises:
        FileNotFoundError: in neither place (both are named).
    """
    path = _find('lib', name) or SOURCE_ROOT / 'scripts' / name
    if not path.exists():
        raise FileNotFoundError(f'executable {name} not found in lib/{PACKAGE} or {path.parent}')
    return path


def config_file(name: str) -> Path:
    """The installed share/poa_gres_ros/config/<name>, else config/<name> of the checkout.

    Raises:
        FileNotFoundError: in neither place (both are named).
    """
    path = _find('share', f'config/{name}') or SOURCE_ROOT / 'config' / name
    if not path.exists():
        raise FileNotFoundError(f'parameter file {name} not found in share/{PACKAGE}/config '
                                f'or {path.parent}')  # fmt: skip
    return path


def node_commands(launch: NodeLaunch) -> list[list[str]]:
    """The argv of each node process (gres_node, then speech_node with ``launch.speech``).

    Parameter overrides (-p) come after the parameter file, so they win, as in launch.
    """
    sim = 'true' if launch.use_sim_time else 'false'
    ns = launch.namespace.strip('/')

    def common(node: str) -> list[str]:
        out = ['--ros-args', '--log-level', launch.log_level]
        if launch.node_log_level:  # the node's own logger: <namespace>.<node>
            logger = '.'.join(filter(None, [*ns.split('/'), node]))
            out += ['--log-level', f'{logger}:={launch.node_log_level}']
        return out + (['-r', f'__ns:=/{ns}'] if ns else [])

    params = launch.params_file or str(config_file('gres.yaml'))
    gres = [sys.executable, str(executable('gres_node')), *common('gres_node')]
    gres += ['-r', '__node:=gres_node']
    gres += ['--params-file', params, '-p', f'use_sim_time:={sim}']
    for name, value in (('model_dir', launch.model_dir), ('backend', launch.backend)):
        if value:
            gres += ['-p', f'{name}:={value}']
    gres += ['-r', f'image:={launch.image_topic}']  # <image>/compressed follows it
    gres += ['-r', f'depth:={launch.depth_topic}', '-r', f'camera_info:={launch.camera_info_topic}']
    commands = [gres]
    if launch.speech:
        speech_params = launch.speech_params_file or str(config_file('speech.yaml'))
        speech = [sys.executable, str(executable('speech_node')), *common('speech_node')]
        speech += ['-r', '__node:=speech_node', '--params-file', speech_params]
        speech += ['-p', f'use_sim_time:={sim}']
        commands.append(speech)
    return commands
