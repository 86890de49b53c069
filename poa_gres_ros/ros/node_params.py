"""The GRES node's parameters in rclpy: descriptors and declaration of the one table.

The table itself (names, defaults, descriptions, ranges, choices, read-only) and the settings
snapshot it maps to are ``core/node_settings.py`` (no ROS), shared with offline bag replay.
Validation on set uses the *incoming* values passed to the on-set callback, never
``get_parameter``, which still returns the old values inside that callback.
"""

from __future__ import annotations

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
)

from poa_gres_ros.core.node_settings import SPECS


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
