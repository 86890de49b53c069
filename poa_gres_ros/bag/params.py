"""Read the node's parameter file (config/gres.yaml format) without ROS: thresholds for the
offline replay, so that offline and live replay score with the same values."""

from __future__ import annotations

from pathlib import Path

from poa_gres_ros.core.thresholds import Thresholds


def node_parameters(path: str | Path, node_name: str = 'gres_node') -> dict:
    """The ``ros__parameters`` that apply to ``node_name`` in a ROS 2 parameter file: the
    ``/**`` section, then the node's own section (which wins), as rcl merges them.

    Raises:
        FileNotFoundError: no such file. ValueError: not a ROS 2 parameter file.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'parameter file {path} not found')
    data = yaml.safe_load(path.read_text(encoding='utf-8')) or {}
    if not isinstance(data, dict):
        raise ValueError(f'{path}: not a ROS 2 parameter file (top level must be a mapping)')
    out: dict = {}
    for key in ('/**', node_name, '/' + node_name.lstrip('/')):
        section = data.get(key)
        if isinstance(section, dict):
            out.update(section.get('ros__parameters') or {})
    if not out and data:
        raise ValueError(f'{path}: no ros__parameters for /** or {node_name}')
    return out


def thresholds_from_parameters(values: dict) -> Thresholds:
    """Thresholds from node parameter values (the node's defaults for missing keys)."""
    d = Thresholds()
    return Thresholds(
        relevance=float(values.get('relevance_threshold', d.relevance)),
        mask=float(values.get('mask_threshold', d.mask)),
        no_target=float(values.get('no_target_threshold', d.no_target)),
        max_instances=int(values.get('max_instances', d.max_instances)),
    )
