"""Architecture guard: only poa_gres_ros.ros may import rclpy or ROS message packages.

Every other module must import on a training server without ROS (architecture.md §2).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / 'poa_gres_ros'
ROS_IMPORT = re.compile(
    r'^\s*(import|from)\s+(rclpy|std_msgs|sensor_msgs|builtin_interfaces|diagnostic_msgs|'
    r'lifecycle_msgs|rosgraph_msgs|poa_gres_ros\.msg)\b', re.M)


def _non_ros_modules() -> list[str]:
    mods = []
    for path in sorted(PKG.rglob('*.py')):
        rel = path.relative_to(PKG.parent).with_suffix('')
        parts = rel.parts
        if parts[1] in ('ros', 'msg') or '__pycache__' in parts:
            continue
        mods.append('.'.join(parts[:-1] if parts[-1] == '__init__' else parts))
    return mods


def test_no_ros_imports_outside_ros_layer():
    offenders = []
    for path in PKG.rglob('*.py'):
        rel = path.relative_to(PKG)
        if rel.parts[0] in ('ros', 'msg'):
            continue
        if ROS_IMPORT.search(path.read_text()):
            offenders.append(str(rel))
    assert offenders == [], f'ROS imports outside poa_gres_ros/ros: {offenders}'


def test_library_imports_without_ros():
    mods = _non_ros_modules()
    assert 'poa_gres_ros.core.results' in mods
    code = ('import sys\n'
            'for name in ("rclpy", "std_msgs", "sensor_msgs"):\n'
            '    sys.modules[name] = None  # any import of it now raises ImportError\n'
            f'import importlib\nfor m in {mods!r}:\n    importlib.import_module(m)\n')
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                         cwd=PKG.parent)
    assert res.returncode == 0, res.stderr[-3000:]
