"""AdamW parameter groups and the warm-up + decay learning-rate schedule.

Method: docs/method.md#optimizer-and-schedule.

Groups: backbone (``optim.backbone_lr``), text encoder (``optim.text_lr``) and everything
else (``optim.lr``), each split into decayed and non-decayed parameters. No weight decay on
normalisation layers and embeddings (Mask2Former ``build_optimizer``: WEIGHT_DECAY_NORM =
WEIGHT_DECAY_EMBED = 0, plus position tables) and on scalar gates and PReLU slopes (decay
would pull the IA slope alpha to 0, a choice of ours). Frozen parameters are left out.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from poa_gres_ros.training.config import OptimConfig, ScheduleConfig

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase)
_NO_DECAY_NAMES = ('embed', 'position_bias_table', 'prelu')


def _no_decay(module: nn.Module, name: str, param: nn.Parameter) -> bool:
    if isinstance(module, (*_NORMS, nn.Embedding)):
        return True
    if param.numel() == 1:
        return True
    return any(s in name.lower() for s in _NO_DECAY_NAMES)


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict]:
    """AdamW parameter groups of a POAModel.

    Args:
        model: the model (un-wrapped; parameters under ``backbone.`` and ``text_encoder.``
            get their own learning rates).
        cfg: :class:`OptimConfig`.
    Returns:
        Non-empty groups with keys 'params', 'lr', 'weight_decay', 'name'.
    Raises:
        ValueError: the model has no trainable parameter.
    """
    buckets: dict[tuple[str, bool], list[nn.Parameter]] = {}
    seen: set[int] = set()
    for mod_name, module in model.named_modules():
        for p_name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            full = f'{mod_name}.{p_name}' if mod_name else p_name
            part = (
                'backbone'
                if full.startswith('backbone.')
                else ('text' if full.startswith('text_encoder.') else 'decoder')
            )
            buckets.setdefault((part, _no_decay(module, full, p)), []).append(p)
    if not buckets:
        raise ValueError('the model has no trainable parameters (everything frozen?)')
    lrs = {'backbone': cfg.backbone_lr, 'text': cfg.text_lr, 'decoder': cfg.lr}
    groups = []
    for (part, no_decay), params in sorted(buckets.items()):
        groups.append(
            {
                'params': params,
                'lr': lrs[part],
                'weight_decay': 0.0 if no_decay else cfg.weight_decay,
                'name': f'{part}{"_no_decay" if no_decay else ""}',
            }
        )
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`."""
    return torch.optim.AdamW(param_groups(model, cfg), betas=tuple(cfg.betas), eps=cfg.eps)


def lr_factor(it: int, max_iters: int, cfg: ScheduleConfig) -> float:
    """LR multiplier at optimizer step ``it`` (0-based).

    Linear warm-up from ``warmup_factor`` to 1 over ``warmup_iters``, multiplied by the decay:
    'poly' ``(1 - it / max_iters) ** poly_power``, 'step' ``gamma ** #(steps passed)``
    (steps as fractions of ``max_iters``), 'none' 1.
    """
    if cfg.decay == 'poly':
        decay = max(0.0, 1.0 - it / max(1, max_iters)) ** cfg.poly_power
    elif cfg.decay == 'step':
        decay = cfg.gamma ** sum(it >= math.floor(s * max_iters) for s in cfg.steps)
    else:
        decay = 1.0
    if it < cfg.warmup_iters:
        alpha = it / cfg.warmup_iters
        decay *= cfg.warmup_factor * (1 - alpha) + alpha
    return decay


def build_scheduler(optimizer, max_iters: int, cfg: ScheduleConfig):
    """``LambdaLR`` applying :func:`lr_factor` to every group's base LR."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, max_iters, cfg))
