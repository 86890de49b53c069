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
        use_sim_time: take time from /clock.
        log_level: 'debug', 'info', 'warn', 'error' or 'fatal'.
        model_dir: ``model_dir`` parameter override ('' = from the parameter file).
        backend: ``backend`` parameter override ('' = from the parameter file).
        speech: also start speech_node.
    """

    namespace: str = ''
    params_file: str | None = None
    image_topic: str = '/camera/image_raw'
    use_sim_time: bool = False
    log_level: str = 'info'
    model_dir: str = ''
    backend: str = ''
    speech: bool = False


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
    common = ['--ros-args', '--log-level', launch.log_level]
    if launch.namespace:
        common += ['-r', f'__ns:=/{launch.namespace.strip("/")}']
    params = launch.params_file or str(config_file('gres.yaml'))
    gres = [sys.executable, str(executable('gres_node')), *common, '-r', '__node:=gres_node']
    gres += ['--params-file', params, '-p', f'use_sim_time:={sim}']
    for name, value in (('model_dir', launch.model_dir), ('backend', launch.backend)):
        if value:
            gres += ['-p', f'{name}:={value}']
    gres += ['-r', f'image:={launch.image_topic}']  # <image>/compressed follows it
    commands = [gres]
    if launch.speech:
        speech = [sys.executable, str(executable('speech_node')), *common]
        speech += ['-r', '__node:=speech_node', '--params-file', str(config_file('speech.yaml'))]
        speech += ['-r', '/instruction/spoken:=instruction/spoken']  # into the namespace
        speech += ['-p', f'use_sim_time:={sim}']
        commands.append(speech)
    return commands
