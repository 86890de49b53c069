"""The GRES node's parameters: one table, declared once with descriptors, validated on set.

Read-only parameters (model, backend, device, precision, engine cache, QoS, autostart) take
effect at configure / activate; change them with a parameter file and a restart (or
``cleanup`` + ``configure`` after relaunching with new overrides). Dynamic parameters
(thresholds, ``max_instances``, ``publish_debug``, ``instruction_timeout_s``) take effect from
the next frame: the node keeps one immutable :class:`NodeSettings` snapshot and swaps it on a
successful set; the inference callback reads the snapshot once per frame (field fault #28).
Validation uses the *incoming* values passed to the on-set callback, never
``get_parameter`` (which still returns the old values inside that callback, field fault #29).
"""

from __future__ import annotations

from dataclasses import dataclass

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)

from poa_gres_ros.core.thresholds import Thresholds

BACKENDS = ('auto', 'torch', 'onnxruntime', 'tensorrt')
PRECISIONS = ('fp32', 'fp16', 'int8')
IMAGE_QOS = ('sensor_data', 'reliable', 'system_default', 'auto')


@dataclass(frozen=True)
class _Spec:
    default: object
    description: str
    read_only: bool = False
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None


SPECS: dict[str, _Spec] = {
    'model_dir': _Spec(
        'tabletop',
        'Model folder (config.json + model.safetensors) or the name of an installed model, '
        'resolved by poa_gres_ros.inference.resolve_model_dir (POA_GRES_MODEL_PATH, the '
        'package share dir, the source checkout models/).',
        read_only=True,
    ),
    'backend': _Spec(
        'auto',
        'Inference backend. auto: TensorRT if it imports and device is a CUDA GPU, else ONNX '
        'Runtime (exports the model to ONNX into the cache on first use, about a minute on a '
        'CPU), else torch; the choice and its reason are logged.',
        read_only=True,
        choices=BACKENDS,
    ),
    'device': _Spec('cpu', "Device: 'cpu', 'cuda' or 'cuda:N'.", read_only=True),
    'precision': _Spec(
        'fp32', 'Numeric precision (fp16/int8: TensorRT only).', read_only=True, choices=PRECISIONS
    ),
    'engine_cache_dir': _Spec(
        '', "TensorRT engine cache directory ('' = the backend's default).", read_only=True
    ),
    'image_qos': _Spec(
        'auto',
        'Image subscription QoS: sensor_data (best effort, matches every camera), reliable, '
        'system_default, or auto (best effort, switched to reliable while every publisher of '
        'the image topic is reliable: Fast DDS drops many large best-effort samples, e.g. about '
        'half of 640x480 rgb8 frames at 30 Hz). A warning is logged when the image topic has '
        'publishers but none match.',
        read_only=True,
        choices=IMAGE_QOS,
    ),
    'num_threads': _Spec(
        0,
        'CPU threads of the inference backend (torch / ONNX Runtime intra-op threads); 0 = the '
        "backend's default (all cores). Set it below the core count when other processes "
        'share the CPU.',
        True,
        (0, 256),
    ),
    'subscribe_compressed': _Spec(
        False,
        'Also subscribe <image topic>/compressed (sensor_msgs/CompressedImage).',
        read_only=True,
    ),
    'autostart': _Spec(
        True,
        'Configure and activate on start (false: wait for lifecycle transitions).',
        read_only=True,
    ),  # fmt: skip
    'warmup_runs': _Spec(
        1, 'Dummy inferences run at activation before the node reports ready.', True, (0, 20)
    ),
    'diagnostics_period_s': _Spec(
        1.0, 'Period of /diagnostics and of the QoS check, seconds.', True, (0.1, 60.0)
    ),
    'relevance_threshold': _Spec(
        0.5, 'Keep a query as an instance when relevance > this.', range=(0.0, 1.0)
    ),  # fmt: skip
    'mask_threshold': _Spec(0.5, 'Mask pixel threshold on sigmoid(mask logit).', range=(0.0, 1.0)),
    'no_target_threshold': _Spec(
        0.5, 'Predict no-target when the no-target probability > this.', range=(0.0, 1.0)
    ),
    'max_instances': _Spec(10, 'Keep at most this many instances.', range=(1, 100)),
    'publish_debug': _Spec(
        True, 'Publish /gres/debug_image (computed only while someone subscribes).'
    ),
    'instruction_timeout_s': _Spec(
        0.0, 'Instructions older than this bind no image (0 = never expire).', range=(0.0, 86400.0)
    ),
    'enable_3d': _Spec(
        False,
        'Lift every instance to 3D (camera optical frame, metres) with the aligned depth image '
        'on depth (16UC1 mm or 32FC1 m) and the colour CameraInfo on camera_info; also '
        'publishes gres/points and gres/markers while subscribed (docs/geometry3d.md).',
        read_only=True,
    ),
    'depth_tolerance_s': _Spec(
        0.02,
        'A colour image is paired with the depth image of the nearest header stamp if it is '
        'within this many seconds; otherwise its 3D is marked missing.',
        range=(0.0, 10.0),
    ),
    'depth_erode_px': _Spec(
        2,
        'Erode each mask by this many pixels before lifting (edge depth is unreliable).',
        range=(0, 20),
    ),  # fmt: skip
    'depth_min_points': _Spec(
        10, 'Fewer valid depth points than this leave an instance without 3D.', range=(1, 100000)
    ),
}


@dataclass(frozen=True)
class NodeSettings:
    """The dynamic parameters as one immutable snapshot (swapped atomically on set)."""

    thresholds: Thresholds
    publish_debug: bool
    instruction_timeout_s: float
    depth_tolerance_s: float = 0.02
    depth_erode_px: int = 2
    depth_min_points: int = 10

    @classmethod
    def from_values(cls, values: dict) -> NodeSettings:
        """Build from parameter values (name -> value); raises ValueError if inconsistent."""
        return cls(
            thresholds=Thresholds(
                relevance=float(values['relevance_threshold']),
                mask=float(values['mask_threshold']),
                no_target=float(values['no_target_threshold']),
                max_instances=int(values['max_instances']),
            ),
            publish_debug=bool(values['publish_debug']),
            instruction_timeout_s=float(values['instruction_timeout_s']),
            depth_tolerance_s=float(values.get('depth_tolerance_s', 0.02)),
            depth_erode_px=int(values.get('depth_erode_px', 2)),
            depth_min_points=int(values.get('depth_min_points', 10)),
        )

    def updated(self, values: dict) -> NodeSettings:
        """A copy with the given (incoming) parameter values applied."""
        t = self.thresholds
        merged = {
            'relevance_threshold': t.relevance,
            'mask_threshold': t.mask,
            'no_target_threshold': t.no_target,
            'max_instances': t.max_instances,
            'publish_debug': self.publish_debug,
            'instruction_timeout_s': self.instruction_timeout_s,
            'depth_tolerance_s': self.depth_tolerance_s,
            'depth_erode_px': self.depth_erode_px,
            'depth_min_points': self.depth_min_points,
        }
        merged.update({k: v for k, v in values.items() if k in merged})
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
    ``get_parameter`` (field fault #29)."""
    for name, value in incoming.items():
        reason = check_value(name, value)
        if reason:
            return reason
    try:
        settings.updated(incoming)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def descriptor(name: str) -> ParameterDescriptor:
    """The ParameterDescriptor of ``name``: description (with choices), range, read_only."""
    spec = SPECS[name]
    text = spec.description
    if spec.choices:
        text += f' One of: {", ".join(spec.choices)}.'
    desc = ParameterDescriptor(name=name, description=text, read_only=spec.read_only)
    if isinstance(spec.default, bool):
        desc.type = ParameterType.PARAMETER_BOOL
    elif isinstance(spec.default, int):
        desc.type = ParameterType.PARAMETER_INTEGER
        if spec.range is not None:
            lo, hi = spec.range
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
    elif isinstance(spec.default, float):
        desc.type = ParameterType.PARAMETER_DOUBLE
        if spec.range is not None:
            lo, hi = spec.range
            desc.floating_point_range = [
                FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)
            ]
    else:
        desc.type = ParameterType.PARAMETER_STRING
    return desc


def declare_all(node) -> dict:
    """Declare every parameter of :data:`SPECS` on ``node``; return name -> value.

    Raises rclpy's InvalidParameterValueException / InvalidParameterTypeException when a
    parameter override (file or ``-p``) violates a range or type.
    """
    params = node.declare_parameters(
        '', [(name, spec.default, descriptor(name)) for name, spec in SPECS.items()]
    )
    return {p.name: p.value for p in params}
