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
        duplicate_iou: drop a candidate whose mask overlaps a higher-relevance kept candidate
            with IoU > this (mask non-maximum suppression on the model's stride-4 masks,
            docs/postprocessing.md), in [0, 1]; 1 keeps duplicates.
    """

    relevance: float = 0.5
    mask: float = 0.5
    no_target: float = 0.5
    max_instances: int = 10
    duplicate_iou: float = 0.5

    def __post_init__(self):
        for name in ('relevance', 'mask', 'no_target', 'duplicate_iou'):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'threshold {name}={value} must be in [0, 1]')
        if self.max_instances < 1:
            raise ValueError(f'max_instances={self.max_instances} must be >= 1')

    def to_dict(self) -> dict:
        return asdict(self)
