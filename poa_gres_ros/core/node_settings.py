"""The GRES node's parameters as one table, and the settings they map to (no ROS).

:data:`SPECS` holds every parameter once: default, description, range or choices, and whether
it is read-only. ``ros/node_params.py`` turns it into parameter descriptors and declares it;
config/gres.yaml lists the same names and defaults (tested); offline bag replay reads a
parameter file through :func:`read_parameter_file` and :meth:`NodeSettings.from_values`, so
offline and live replay score with the same values.

Read-only parameters (model, backend, device, precision, engine cache, QoS, autostart) take
effect at configure / activate. Dynamic parameters (thresholds, ``max_instances``,
``publish_debug``, ``instruction_timeout_s``, ``stamp_tolerance_s``, the 3D settings) take
effect from the next
frame: the node keeps one immutable :class:`NodeSettings` snapshot and swaps it on a successful
set, and the inference callback reads the snapshot once per frame, so a frame never mixes old
and new values.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from poa_gres_ros.core.inference_options import BACKENDS, PRECISIONS
from poa_gres_ros.core.thresholds import Thresholds

IMAGE_QOS = ('sensor_data', 'reliable', 'system_default', 'auto')
_T = Thresholds()  # the threshold defaults are Thresholds' own


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter: default (its type is the parameter's type), description, read-only,
    numeric range [lo, hi] or string choices."""

    default: object
    description: str
    read_only: bool = False
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None


SPECS: dict[str, ParameterSpec] = {
    'model_dir': ParameterSpec(
        'tabletop',
        'Model folder (config.json + model.safetensors) or the name of an installed model, '
        'resolved by poa_gres_ros.inference.resolve_model_dir (POA_GRES_MODEL_PATH, the '
        'package share dir, the source checkout models/).',
        read_only=True,
    ),
    'backend': ParameterSpec(
        'auto',
        'Inference backend. auto: TensorRT if it imports and device is a CUDA GPU, else ONNX '
        'Runtime (exports the model to ONNX into the cache on first use, about a minute on a '
        'CPU), else torch; the choice and its reason are logged.',
        read_only=True,
        choices=('auto', *BACKENDS),
    ),
    'device': ParameterSpec('cpu', "Device: 'cpu', 'cuda' or 'cuda:N'.", read_only=True),
    'precision': ParameterSpec(
        'fp32', 'Numeric precision (fp16/int8: TensorRT only).', read_only=True, choices=PRECISIONS
    ),
    'engine_cache_dir': ParameterSpec(
        '', "TensorRT engine cache directory ('' = the backend's default).", read_only=True
    ),
    'image_qos': ParameterSpec(
        'auto',
        'Image subscription QoS: sensor_data (best effort, matches every camera), reliable, '
        'system_default, or auto (best effort, switched to reliable while every publisher of '
        'the image topic is reliable: Fast DDS drops many large best-effort samples, e.g. about '
        'half of 640x480 rgb8 frames at 30 Hz). A warning is logged when the image topic has '
        'publishers but none match.',
        read_only=True,
        choices=IMAGE_QOS,
    ),
    'num_threads': ParameterSpec(
        0,
        'CPU threads of the inference backend (torch / ONNX Runtime intra-op threads); 0 = the '
        "backend's default (all cores). Set it below the core count when other processes "
        'share the CPU.',
        True,
        (0, 256),
    ),
    'subscribe_compressed': ParameterSpec(
        False,
        'Also subscribe <image topic>/compressed (sensor_msgs/CompressedImage).',
        read_only=True,
    ),
    'autostart': ParameterSpec(
        True,
        'Configure and activate on start (false: wait for lifecycle transitions).',
        read_only=True,
    ),  # fmt: skip
    'warmup_runs': ParameterSpec(
        3,
        'Dummy inferences run at activation before the node reports ready (the first runs of '
        'a backend are several times slower, TensorRT most).',
        True,
        (0, 20),
    ),
    'diagnostics_period_s': ParameterSpec(
        1.0, 'Period of /diagnostics and of the QoS check, seconds.', True, (0.1, 60.0)
    ),
    'relevance_threshold': ParameterSpec(
        _T.relevance, 'Keep a query as an instance when relevance > this.', range=(0.0, 1.0)
    ),
    'mask_threshold': ParameterSpec(
        _T.mask, 'Mask pixel threshold on sigmoid(mask logit).', range=(0.0, 1.0)
    ),
    'no_target_threshold': ParameterSpec(
        _T.no_target, 'Predict no-target when the no-target probability > this.', range=(0.0, 1.0)
    ),
    'max_instances': ParameterSpec(
        _T.max_instances, 'Keep at most this many instances.', range=(1, 100)
    ),
    'duplicate_iou_threshold': ParameterSpec(
        _T.duplicate_iou,
        'Drop an instance whose mask overlaps a more relevant one with IoU > this (1 = keep).',
        range=(0.0, 1.0),
    ),
    'publish_debug': ParameterSpec(
        True, 'Publish /gres/debug_image (computed only while someone subscribes).'
    ),
    'instruction_timeout_s': ParameterSpec(
        0.0, 'Instructions older than this bind no image (0 = never expire).', range=(0.0, 86400.0)
    ),
    'stamp_tolerance_s': ParameterSpec(
        1.0,
        'Binding (docs/binding.md): without use_sim_time, an image whose header stamp is within '
        'this many seconds of the node clock gets the newest instruction received at or before '
        'its stamp; otherwise (another clock) the newest one received before the image.',
        range=(0.001, 3600.0),
    ),
    'enable_3d': ParameterSpec(
        False,
        'Lift every instance to 3D (camera optical frame, metres) with the aligned depth image '
        'on depth (16UC1 mm or 32FC1 m) and the colour CameraInfo on camera_info; also '
        'publishes gres/points and gres/markers while subscribed (docs/geometry3d.md).',
        read_only=True,
    ),
    'depth_tolerance_s': ParameterSpec(
        0.02,
        'A colour image is paired with the depth image of the nearest header stamp if it is '
        'within this many seconds; otherwise its 3D is marked missing.',
        range=(0.0, 10.0),
    ),
    'depth_wait_s': ParameterSpec(
        0.1,
        'After inference, wait at most this long for the depth image of the frame when it has '
        'not arrived yet (no depth at or after its stamp seen); 0 = never wait.',
        range=(0.0, 1.0),
    ),
    'depth_erode_px': ParameterSpec(
        2,
        'Erode each mask by this many pixels before lifting (edge depth is unreliable).',
        range=(0, 20),
    ),  # fmt: skip
    'depth_min_points': ParameterSpec(
        10, 'Fewer valid depth points than this leave an instance without 3D.', range=(1, 100000)
    ),
}


DYNAMIC: frozenset[str] = frozenset(n for n, s in SPECS.items() if not s.read_only)
THRESHOLD_PARAMETERS = {
    'relevance_threshold': 'relevance',
    'mask_threshold': 'mask',
    'no_target_threshold': 'no_target',
    'max_instances': 'max_instances',
    'duplicate_iou_threshold': 'duplicate_iou',
}
"""Parameter name -> ``Thresholds`` field. The other fields of :class:`NodeSettings` are
named like their parameters."""


@dataclass(frozen=True)
class NodeSettings:
    """The dynamic parameters as one immutable snapshot (swapped atomically on set).

    Attributes:
        thresholds: post-processing thresholds (``relevance_threshold``, ``mask_threshold``,
            ``no_target_threshold``, ``max_instances``, ``duplicate_iou_threshold``).
        publish_debug, instruction_timeout_s, stamp_tolerance_s, depth_tolerance_s, depth_wait_s,
            depth_erode_px, depth_min_points: the parameters of the same names.
    """

    thresholds: Thresholds
    publish_debug: bool
    instruction_timeout_s: float
    stamp_tolerance_s: float
    depth_tolerance_s: float
    depth_wait_s: float
    depth_erode_px: int
    depth_min_points: int

    @classmethod
    def from_values(cls, values: dict) -> NodeSettings:
        """Build from parameter values (name -> value); a missing dynamic parameter takes its
        default from :data:`SPECS`, other names are ignored.

        Raises:
            ValueError: a value out of range for ``Thresholds``.
        """

        def get(name):  # typed like the parameter's default (bool, int, float)
            return type(SPECS[name].default)(values.get(name, SPECS[name].default))

        thresholds = Thresholds(**{f: get(name) for name, f in THRESHOLD_PARAMETERS.items()})
        others = {f.name: get(f.name) for f in fields(cls) if f.name != 'thresholds'}
        return cls(thresholds=thresholds, **others)

    def values(self) -> dict:
        """The dynamic parameter values of this snapshot (name -> value)."""
        out = {name: getattr(self.thresholds, f) for name, f in THRESHOLD_PARAMETERS.items()}
        out.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != 'thresholds'})
        return out

    def updated(self, values: dict) -> NodeSettings:
        """A copy with the given (incoming) dynamic parameter values applied."""
        merged = self.values()
        merged.update({k: v for k, v in values.items() if k in DYNAMIC})
        return NodeSettings.from_values(merged)


def check_value(name: str, value) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name``, or None if it is."""
    spec = SPECS.get(name)
    if spec is None:
        return None  # not ours (use_sim_time, qos overrides, ...)
    if spec.choices is not None and value not in spec.choices:
        return f'{name}={value!r} is not one of {", ".join(spec.choices)}'
    if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
        return f'{name}={value} is outside [{spec.range[0]}, {spec.range[1]}]'
    if name == 'model_dir' and not str(value).strip():
        return 'model_dir is empty: give a model folder or an installed model name'
    return None


def validate_incoming(settings: NodeSettings, incoming: dict) -> str | None:
    """Why a parameter set with the ``incoming`` values (name -> new value) must be refused,
    or None. Uses only the incoming values and the current ``settings`` snapshot, never
    ``get_parameter`` (inside that callback it still returns the old values)."""
    for name, value in incoming.items():
        reason = check_value(name, value)
        if reason:
            return reason
    try:
        settings.updated(incoming)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def read_parameter_file(path: str | Path, node_name: str = 'gres_node') -> dict:
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
