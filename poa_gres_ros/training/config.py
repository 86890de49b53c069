"""Training configuration: one YAML or JSON file for ``poa-gres train --config FILE``.

Example (tabletop, CPU, cached frozen features)::

    model: {preset: tabletop}          # or {model_dir: models/tabletop} to fine-tune a folder
    ablation: full                     # full | no_poa | merged_only | hard_selection
    data:
      root: data/tabletop              # gRefCOCO-format folder (grefs(unc).json, instances.json)
      format: grefcoco                 # grefcoco | refzom
      train_splits: [train]
      val_splits: [val]
    batch_size: 8
    cache_dir: runs/cache              # frozen features cached here (CPU training)
    output_dir: runs/tabletop_full
    optim: {lr: 1.0e-4, weight_decay: 0.05, clip_grad_norm: 1.0}
    schedule: {max_iters: 20000, warmup_iters: 200, decay: poly}
    criterion: {num_points: 4096}
    seed: 0

Every section is a dataclass below; unknown keys raise ValueError naming the valid ones.
Defaults: docs/method.md#optimizer-and-schedule.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from poa_gres_ros.training.criterion import ABLATIONS, CriterionConfig


@dataclass
class ModelSpec:
    """Which model to train.

    Attributes:
        preset: a preset name of ``core.model_presets`` ('paper', 'tabletop', 'tiny').
        model_dir: a model folder to start from (fine-tuning); exclusive with ``preset``.
        overrides: dotted model-config overrides, e.g. ``{'decoder.num_queries': 50}``.
    """

    preset: str | None = 'tabletop'
    model_dir: str | None = None
    overrides: dict = field(default_factory=dict)


@dataclass
class DataConfig:
    """Dataset location and splits.

    Attributes:
        root: dataset folder.
        format: 'grefcoco' (gRefCOCO and tabletop) or 'refzom'.
        train_splits / val_splits: split names ('train'; 'val').
        image_root: image folder; None = ``<root>/images``.
        refs_file / instances_file: None = the format's default names.
        max_train_samples / max_val_samples: use only the first N sentences (debugging,
            quick validation); None = all.
        num_workers: DataLoader worker processes (0 on a 2-core CPU).
    """

    root: str = ''
    format: str = 'grefcoco'
    train_splits: list[str] = field(default_factory=lambda: ['train'])
    val_splits: list[str] = field(default_factory=lambda: ['val'])
    image_root: str | None = None
    refs_file: str | None = None
    instances_file: str | None = None
    max_train_samples: int | None = None
    max_val_samples: int | None = 500
    num_workers: int = 0


@dataclass
class OptimConfig:
    """AdamW with parameter groups (docs/method.md#optimizer-and-schedule).

    Attributes:
        lr: decoder and heads (1e-4).
        backbone_lr / text_lr: backbone and text encoder when they are trained (1e-5).
        weight_decay: 0.05; norms, embeddings and scalar gates/slopes get 0 (Mask2Former
            ``WEIGHT_DECAY_NORM`` / ``WEIGHT_DECAY_EMBED`` = 0).
        betas, eps: AdamW.
        clip_grad_norm: full-model gradient-norm clip (1.0 Mask2Former, 0.01 ReLA); 0 = off.
    """

    lr: float = 1e-4
    backbone_lr: float = 1e-5
    text_lr: float = 1e-5
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    clip_grad_norm: float = 1.0


@dataclass
class ScheduleConfig:
    """Length and learning-rate schedule.

    Attributes:
        max_iters: optimizer steps; None = ``epochs`` x steps per epoch.
        epochs: used when ``max_iters`` is None (20 epochs).
        warmup_iters: linear warm-up from ``warmup_factor`` x LR to the LR.
        warmup_factor: start factor of the warm-up.
        decay: 'poly' ((1 - t/T)^power), 'step' (x gamma at each of ``steps``) or 'none'.
        poly_power: 0.9.
        steps: step-decay points as fractions of max_iters (0.7, 0.9).
        gamma: step-decay factor (0.1).
    """

    max_iters: int | None = None
    epochs: float = 20.0
    warmup_iters: int = 100
    warmup_factor: float = 0.001
    decay: str = 'poly'
    poly_power: float = 0.9
    steps: tuple[float, ...] = (0.7, 0.9)
    gamma: float = 0.1


@dataclass
class TrainConfig:
    """The whole training run (see module docstring for a file example).

    Attributes:
        model, data, optim, schedule, criterion: the sections above.
        ablation: 'full', 'no_poa' (lambda_phrase = 0 in loss and cost), 'merged_only' (no
            instance matching losses) or 'hard_selection' (model ``heads.aggregation='hard'``).
        batch_size: sentences per process (per GPU under torchrun).
        sentences_per_image: k > 1 fills batches with k sentences of each image, so the pixel
            decoder runs once per image (``datasets.grouped_sampler``); 1 = plain shuffling.
        output_dir: checkpoints, logs (CSV, TensorBoard) and the final model folder.
        cache_dir: where frozen features are cached; None = no cache. Used only when both the
            backbone and the text encoder are frozen.
        device: 'auto' (CUDA if available, else CPU), 'cpu', 'cuda', 'cuda:1' ...
        amp: mixed precision on CUDA (ignored on CPU); amp_dtype 'float16' or 'bfloat16'.
        seed: seeds torch, numpy and the sampler.
        log_every / checkpoint_every / eval_every: in iterations (0 = never eval).
        keep_checkpoints: newest checkpoints kept.
        num_threads: torch CPU threads (None = torch default).
        progress: tqdm progress bar on rank 0.
        calibrate: at the end, choose the relevance and no-target thresholds on the
            validation split and fold them into the saved model (``training/calibrate.py``,
            docs/method.md#calibration); the checkpoint keeps the uncalibrated weights.
    """

    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    criterion: CriterionConfig = field(default_factory=CriterionConfig)
    ablation: str = 'full'
    batch_size: int = 8
    sentences_per_image: int = 1
    output_dir: str = 'runs/train'
    cache_dir: str | None = None
    device: str = 'auto'
    amp: bool = True
    amp_dtype: str = 'bfloat16'
    seed: int = 0
    log_every: int = 20
    checkpoint_every: int = 1000
    eval_every: int = 0
    keep_checkpoints: int = 2
    num_threads: int | None = None
    progress: bool = True
    calibrate: bool = True

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the field and what to change."""
        if self.ablation not in ABLATIONS:
            raise ValueError(f'ablation={self.ablation!r}; use one of {ABLATIONS}')
        if (self.model.preset is None) == (self.model.model_dir is None):
            raise ValueError('model: give exactly one of preset or model_dir')
        if self.data.format not in ('grefcoco', 'refzom'):
            raise ValueError(f'data.format={self.data.format!r}; use grefcoco or refzom')
        if self.batch_size < 1:
            raise ValueError(f'batch_size={self.batch_size} must be >= 1')
        if self.sentences_per_image < 1:
            raise ValueError(f'sentences_per_image={self.sentences_per_image} must be >= 1')
        if self.schedule.decay not in ('poly', 'step', 'none'):
            raise ValueError(f'schedule.decay={self.schedule.decay!r}; use poly, step or none')
        if self.schedule.max_iters is not None and self.schedule.max_iters < 1:
            raise ValueError('schedule.max_iters must be >= 1')
        if self.amp_dtype not in ('float16', 'bfloat16'):
            raise ValueError(f'amp_dtype={self.amp_dtype!r}; use float16 or bfloat16')
        for name in ('lr', 'backbone_lr', 'text_lr', 'weight_decay', 'clip_grad_norm'):
            if getattr(self.optim, name) < 0:
                raise ValueError(f'optim.{name} must be >= 0')

    def effective_criterion(self) -> CriterionConfig:
        """The criterion config with the ablation applied."""
        return self.criterion.ablation(self.ablation)

    def model_overrides(self) -> dict:
        """Model-config overrides with the ablation applied."""
        over = dict(self.model.overrides)
        if self.ablation == 'hard_selection':
            over['heads.aggregation'] = 'hard'
        return over

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from nested dicts. Raises ValueError for unknown keys or bad values."""
        if not isinstance(data, dict):
            raise ValueError('the training config must be a mapping')
        sections = {
            'model': ModelSpec,
            'data': DataConfig,
            'optim': OptimConfig,
            'schedule': ScheduleConfig,
        }
        kwargs = _pick(cls, data, 'config')
        for key, sec in sections.items():
            if key in kwargs:
                kwargs[key] = sec(**_pick(sec, kwargs[key] or {}, key))
        if 'criterion' in kwargs:
            kwargs['criterion'] = CriterionConfig.from_dict(kwargs['criterion'] or {})
        return cls(**kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a YAML (``.yaml``/``.yml``) or JSON file.

        Raises:
            FileNotFoundError: no such file. ValueError: unparsable or invalid content.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f'training config {path} not found')
        with open(path, encoding='utf-8') as fh:
            text = fh.read()
        try:
            if path.endswith(('.yaml', '.yml')):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:  # yaml.YAMLError / json.JSONDecodeError: report as config error
            raise ValueError(f'cannot parse {path}: {exc}') from exc
        try:
            return cls.from_dict(data or {})
        except (TypeError, ValueError) as exc:
            raise ValueError(f'{path}: {exc}') from exc


def _pick(cls, values: dict, where: str) -> dict:
    if not isinstance(values, dict):
        raise ValueError(f'{where} must be a mapping, got {type(values).__name__}')
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f'unknown keys in {where}: {unknown}; valid: {sorted(names)}')
    out = dict(values)
    for f in dataclasses.fields(cls):
        if f.name in out and isinstance(out[f.name], list) and 'tuple' in str(f.type):
            out[f.name] = tuple(out[f.name])
    return out
