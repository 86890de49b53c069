"""Find a model folder from a path or a bare name (e.g. 'tabletop').

Search order for a bare name (first folder holding ``<name>/config.json`` wins):
1. every directory in ``$POA_GRES_MODEL_PATH`` (os.pathsep separated);
2. ``<ament share of poa_gres_ros>/models`` (a colcon/ROS install), if ament_index_python
   is importable and the package is registered;
3. ``<sys.prefix>/share/poa_gres_ros/models`` (``pip install .``);
4. ``models/`` of the source checkout this module lives in.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_VAR = 'POA_GRES_MODEL_PATH'


def model_search_dirs() -> list[Path]:
    """The directories searched for bare model names, in order (existing or not)."""
    dirs = [Path(p) for p in os.environ.get(ENV_VAR, '').split(os.pathsep) if p]
    try:
        from ament_index_python.packages import (
            PackageNotFoundError,
            get_package_share_directory,
        )
    except ImportError:  # no ROS 2 Python here: skip this place
        pass
    else:
        try:
            dirs.append(Path(get_package_share_directory('poa_gres_ros')) / 'models')
        except (PackageNotFoundError, ValueError, LookupError):  # package not registered
            pass
    dirs.append(Path(sys.prefix) / 'share' / 'poa_gres_ros' / 'models')
    dirs.append(Path(__file__).resolve().parents[2] / 'models')
    out: list[Path] = []
    for d in dirs:
        if d not in out:
            out.append(d)
    return out


def resolve_model_dir(name_or_path: str | os.PathLike) -> Path:
    """Return the model folder for a path or a bare name.

    Args:
        name_or_path: a folder holding config.json, or a name such as 'tabletop'.
    Raises:
        FileNotFoundError: nothing found; the message lists every place that was looked at.
    """
    raw = os.fspath(name_or_path)
    if not raw:
        raise FileNotFoundError('empty model name or path')
    path = Path(raw).expanduser()
    if (path / 'config.json').is_file():
        return path.resolve()
    looked = [str(path)]
    is_name = os.sep not in raw and not raw.startswith('.')
    if is_name:
        for d in model_search_dirs():
            cand = d / raw
            looked.append(str(cand))
            if (cand / 'config.json').is_file():
                return cand.resolve()
    raise FileNotFoundError(
        f'model {raw!r} not found (a model folder holds config.json and '
        f'model.safetensors); looked in: {", ".join(looked)}; set '
        f'{ENV_VAR} or pass a folder path'
    )
