"""Print the environment poa_gres_ros runs in: versions, ROS 2 availability, backends, models.

Use it first when something does not work on a robot: it says which optional parts import
(rclpy and the generated messages, onnxruntime, tensorrt, CUDA) and where models are found.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import platform

VERB = 'info'
HELP = 'show versions, ROS 2 / backend availability and installed models'


def add_arguments(parser):
    parser.add_argument('--json', action='store_true', help='print one JSON object')


def _version(module: str) -> str:
    try:
        mod = importlib.import_module(module)
    except Exception as exc:  # report any import failure: this is a diagnostic tool
        return f'unavailable ({type(exc).__name__}: {exc})'
    return str(getattr(mod, '__version__', 'installed'))


def collect() -> dict:
    """Return a dict of what is installed; never raises for a missing optional part."""
    out = {
        'python': platform.python_version(),
        'platform': platform.platform(),
        'poa_gres_ros': _version('poa_gres_ros'),
    }
    for mod in ('numpy', 'torch', 'transformers', 'onnxruntime', 'tensorrt', 'cv2'):
        out[mod] = _version(mod)
    # ROS parts are located, not imported: importing this verb needs no ROS.
    for key, mod in (('rclpy', 'rclpy'), ('interfaces', 'poa_gres_ros.msg')):
        spec = importlib.util.find_spec(mod)
        out[key] = (
            f'found at {spec.origin}'
            if spec
            else 'unavailable: set up ROS 2 and build the package with colcon (make setup)'
        )
    try:
        import torch

        out['cuda'] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'
    except ImportError:
        out['cuda'] = 'no (torch missing)'
    return out


def run(args) -> int:
    info = collect()
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        width = max(len(k) for k in info)
        for key, value in info.items():
            print(f'{key:<{width}}  {value}')
    return 0
