"""Inference-time configuration shared by the predictor, the node and evaluation.

Architecture hyper-parameters live in ``core/model_config.py`` (saved with each model); the
values here are user-facing knobs that may change between frames (ROS parameters).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Thresholds:
    """Post-processing thresholds.

    Attributes:
        relevance: keep query i as an instance when its relevance score p_i > this, in [0, 1].
        mask: a pixel belongs to a kept instance when sigmoid(S_i) > this, in [0, 1]; also the
            threshold on the merged mask M (0.5, docs/method.md#aggregation).
        no_target: predict no-target when the no-target probability > this, in [0, 1].
        max_instances: keep at most this many instances (highest relevance first), >= 1.
    """

    relevance: float = 0.5
    mask: float = 0.5
    no_target: float = 0.5
    max_instances: int = 10

    def __post_init__(self):
        for name in ('relevance', 'mask', 'no_target'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'threshold {name}={value} must be in [0, 1]')
        if self.max_instances < 1:
            raise ValueError(f'max_instances={self.max_instances} must be >= 1')

    def to_dict(self) -> dict:
        return asdict(self)
