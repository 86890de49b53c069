"""The training loop: ``poa-gres train --config FILE`` (docs/method.md#training).

One process per device. Under ``torchrun --nproc_per_node G`` every process trains on its
shard (``DistributedSampler``) with DistributedDataParallel; rank 0 alone logs, evaluates and
writes checkpoints and the final model folder. On CPU with a frozen backbone and text encoder
(tabletop preset) and ``cache_dir`` set, frozen features are computed once and only the
decoder trains (``datasets.feature_cache``).

Per step: forward (autocast on CUDA), :class:`POACriterion` in float32, backward (GradScaler
for float16), gradient clipping, AdamW step, LR schedule (warm-up + poly/step decay).
Non-finite losses skip the step; 20 in a row stop training with an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Sampler
from tqdm import tqdm

from poa_gres_ros.training.calibrate import apply_calibration, calibrate
from poa_gres_ros.training.checkpoint import (
    ScalarLog,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from poa_gres_ros.training.config import TrainConfig
from poa_gres_ros.training.criterion import POACriterion
from poa_gres_ros.training.data_setup import (
    build_datasets,
    build_model_for_training,
    name_features,
)
from poa_gres_ros.training.datasets.gres_dataset import OBJECT_KEYS, collate_gres
from poa_gres_ros.training.datasets.grouped_sampler import ImageGroupedBatchSampler
from poa_gres_ros.training.evaluate import evaluate_dataset, model_inputs, to_device
from poa_gres_ros.training.optim import build_optimizer, build_scheduler, lr_factor

LOG = logging.getLogger(__name__)
MAX_BAD_STEPS = 20


class _SkipSampler(Sampler):
    """Yields the indices of ``base`` after the first ``skip`` (mid-epoch resume)."""

    def __init__(self, base: Sampler, skip: int):
        self.base, self.skip = base, skip

    def __iter__(self):
        for k, idx in enumerate(self.base):
            if k >= self.skip:
                yield idx

    def __len__(self):
        return max(0, len(self.base) - self.skip)


def _dist_env() -> tuple[int, int, int]:
    world = int(os.environ.get('WORLD_SIZE', '1'))
    return world, int(os.environ.get('RANK', '0')), int(os.environ.get('LOCAL_RANK', '0'))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Builds everything from a :class:`TrainConfig` and runs the loop.

    Args:
        cfg: the training configuration.
        resume: None, 'auto' (newest checkpoint in ``output_dir``) or a checkpoint folder.
    """

    def __init__(self, cfg: TrainConfig, resume: str | None = None):
        self.cfg = cfg
        self.world, self.rank, local_rank = _dist_env()
        if self.world > 1 and not dist.is_initialized():
            backend = 'nccl' if torch.cuda.is_available() else 'gloo'
            dist.init_process_group(backend)
        self.main = self.rank == 0
        self.device = self._pick_device(cfg.device, local_rank)
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        seed_everything(cfg.seed + self.rank)
        os.makedirs(cfg.output_dir, exist_ok=True)
        self.model = build_model_for_training(cfg).to(self.device)
        self.train_set, self.val_set = build_datasets(
            cfg, self.model, self.device, self.main, self._barrier
        )
        self.criterion = POACriterion(cfg.effective_criterion())
        vocab = getattr(self.train_set, 'vocabulary', None)
        self.num_categories = len(vocab.category_ids) if vocab is not None else 0
        self.name_features, self.name_mask = (None, None)
        if self.criterion.cfg.weight_name:
            self.name_features, self.name_mask = name_features(self.model, vocab, self.device)
        self.optimizer = build_optimizer(self.model, cfg.optim)
        per_step = cfg.batch_size * self.world
        self.drop_last = len(self.train_set) >= per_step
        self.iters_per_epoch = max(
            1,
            (len(self.train_set) // per_step)
            if self.drop_last
            else math.ceil(len(self.train_set) / per_step),
        )
        if cfg.sentences_per_image > 1:  # the grouped sampler's own count
            self.iters_per_epoch = max(1, len(self._loader(0, 0).batch_sampler))
        self.max_iters = cfg.schedule.max_iters or max(
            1, math.ceil(cfg.schedule.epochs * self.iters_per_epoch)
        )
        self.scheduler = build_scheduler(self.optimizer, self.max_iters, cfg.schedule)
        use_amp = cfg.amp and self.device.type == 'cuda'
        self.amp_dtype = getattr(torch, cfg.amp_dtype) if use_amp else None
        self.scaler = (
            torch.amp.GradScaler('cuda') if use_amp and cfg.amp_dtype == 'float16' else None
        )
        self.iteration, self.epoch = 0, 0
        if resume:
            # the config's learning rates and schedule length apply after a resume: a run can
            # be continued with a longer schedule (schedule.max_iters) or another optim.lr
            base_lrs = [g['initial_lr'] for g in self.optimizer.param_groups]
            path = resolve_checkpoint(resume, cfg.output_dir)
            state = load_checkpoint(path, self.model, self.optimizer, self.scheduler, self.scaler)
            self.iteration, self.epoch = int(state['iteration']), int(state['epoch'])
            factor = lr_factor(self.iteration, self.max_iters, cfg.schedule)
            self.scheduler.base_lrs = list(base_lrs)
            for group, lr in zip(self.optimizer.param_groups, base_lrs, strict=True):
                group['initial_lr'], group['lr'] = lr, lr * factor
            LOG.info('resumed from %s at iteration %d', path, self.iteration)
        self.net = self.model
        if self.world > 1:
            # ablations leave some parameters without gradient (POA projections without the
            # POA loss, the IA slope under hard selection), as does the name-alignment head
            # when the data carries no object names
            crit = cfg.effective_criterion()
            find_unused = (
                cfg.ablation != 'full'
                or (self.name_features is None and self.model.name_alignment is not None)
                or not crit.instance_supervision
                or not all(
                    (crit.weight_phrase, crit.weight_score, crit.weight_merged, crit.weight_nt)
                )
            )
            ids = [self.device.index] if self.device.type == 'cuda' else None
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=find_unused
            )
        self.log = ScalarLog(cfg.output_dir) if self.main else None
        if self.main:
            with open(os.path.join(cfg.output_dir, 'train_config.json'), 'w') as fh:
                json.dump(cfg.to_dict(), fh, indent=2)

    @staticmethod
    def _pick_device(name: str, local_rank: int) -> torch.device:
        if name == 'auto':
            name = f'cuda:{local_rank}' if torch.cuda.is_available() else 'cpu'
        dev = torch.device(name)
        if dev.type == 'cuda':
            if not torch.cuda.is_available():
                raise RuntimeError(f'device={name!r} but CUDA is not available; use device: cpu')
            if dev.index is None:
                dev = torch.device('cuda', local_rank)
            torch.cuda.set_device(dev)
        return dev

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def _loader(self, epoch: int, skip_batches: int) -> DataLoader:
        k = self.cfg.sentences_per_image
        if k > 1:
            batches = ImageGroupedBatchSampler(
                self.train_set.records,
                self.cfg.batch_size,
                k,
                seed=self.cfg.seed,
                rank=self.rank,
                world_size=self.world,
                drop_last=self.drop_last,
            )
            batches.set_epoch(epoch, skip_batches)
            return DataLoader(
                self.train_set,
                batch_sampler=batches,
                collate_fn=collate_gres,
                num_workers=self.cfg.data.num_workers,
                pin_memory=self.device.type == 'cuda',
            )
        sampler = DistributedSampler(
            self.train_set,
            num_replicas=self.world,
            rank=self.rank,
            shuffle=True,
            seed=self.cfg.seed,
            drop_last=self.drop_last,
        )
        sampler.set_epoch(epoch)
        s = _SkipSampler(sampler, skip_batches * self.cfg.batch_size) if skip_batches else sampler
        return DataLoader(
            self.train_set,
            batch_size=self.cfg.batch_size,
            sampler=s,
            collate_fn=collate_gres,
            num_workers=self.cfg.data.num_workers,
            drop_last=self.drop_last,
            pin_memory=self.device.type == 'cuda',
            persistent_workers=False,
        )

    def step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """One optimisation step on a collated batch; returns (loss, weighted parts)."""
        self.net.train()
        b = to_device(batch, self.device)
        gt = [m.to(self.device, non_blocking=True) for m in batch['gt_masks']]
        nt = batch['no_target'].to(self.device)
        objects = {
            k: [t.to(self.device, non_blocking=True) for t in batch[k]]
            for k in OBJECT_KEYS
            if k in batch
        }
        names = {}
        if self.name_features is not None and 'object_category' in objects:
            names = {'name_features': self.name_features, 'name_mask': self.name_mask}
            objects['num_categories'] = self.num_categories
        ctx = (
            torch.autocast('cuda', dtype=self.amp_dtype)
            if self.amp_dtype is not None
            else contextlib.nullcontext()
        )
        with ctx:
            out = self.net(**model_inputs(b), **names)
        loss, parts = self.criterion(out, gt, nt, **objects)
        if not torch.isfinite(loss):
            self.optimizer.zero_grad(set_to_none=True)
            return loss.detach(), parts
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.cfg.optim.clip_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for p in self.model.parameters() if p.grad is not None],
                self.cfg.optim.clip_grad_norm,
            )
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        return loss.detach(), parts

    def evaluate(self) -> dict:
        """gRefCOCO metrics of the validation set ('all' section), rank 0 only."""
        if self.val_set is None or not self.main:
            return {}
        res = evaluate_dataset(
            self.model, self.val_set, batch_size=self.cfg.batch_size, device=self.device
        )
        keys = ('cIoU', 'gIoU', 'N-acc', 'T-acc')
        return {
            f'val/{k}': res.summary['all'][k] for k in keys if res.summary['all'][k] is not None
        }

    def train(self) -> str | None:
        """Run until ``max_iters``; returns the final model folder (rank 0) or None."""
        cfg = self.cfg
        bar = tqdm(
            total=self.max_iters,
            initial=self.iteration,
            desc='train',
            disable=not (self.main and cfg.progress),
            dynamic_ncols=True,
        )
        acc: dict[str, torch.Tensor] = {}
        n_acc, bad, t0 = 0, 0, time.perf_counter()
        t_start = t0
        start_iter = self.iteration
        while self.iteration < self.max_iters:
            skip = self.iteration - self.epoch * self.iters_per_epoch
            if skip >= self.iters_per_epoch:
                self.epoch, skip = self.epoch + 1, 0
            for batch in self._loader(self.epoch, skip):
                loss, parts = self.step(batch)
                self.iteration += 1
                if not torch.isfinite(loss):
                    bad += 1
                    if bad >= MAX_BAD_STEPS:
                        raise RuntimeError(
                            f'{bad} non-finite losses in a row at iteration '
                            f'{self.iteration}; lower optim.lr or disable amp'
                        )
                else:
                    bad = 0
                    for k, v in {'loss': loss, **parts}.items():
                        acc[k] = acc.get(k, 0.0) + v
                    n_acc += 1
                bar.update(1)
                if (
                    self.main
                    and (self.iteration % cfg.log_every == 0 or self.iteration == self.max_iters)
                    and n_acc
                ):
                    dt = time.perf_counter() - t0
                    row = {k: float(v) / n_acc for k, v in acc.items()}
                    row.update(
                        lr=self.optimizer.param_groups[0]['lr'],
                        epoch=self.epoch,
                        it_per_s=n_acc / dt,
                        samples_per_s=n_acc * cfg.batch_size / dt,
                    )
                    bar.set_postfix(loss=f'{row["loss"]:.3f}', it_s=f'{row["it_per_s"]:.2f}')
                    self.log.write(self.iteration, row)
                    acc, n_acc, t0 = {}, 0, time.perf_counter()
                if cfg.eval_every and self.iteration % cfg.eval_every == 0:
                    self._eval_and_log()
                if (
                    self.main
                    and cfg.checkpoint_every
                    and self.iteration % cfg.checkpoint_every == 0
                ):
                    self._save_checkpoint()
                if self.iteration >= self.max_iters:
                    break
            else:
                self.epoch += 1
        bar.close()
        elapsed = time.perf_counter() - t_start
        return self._finish(elapsed, self.iteration - start_iter)

    def _eval_and_log(self) -> dict:
        metrics = self.evaluate()
        if self.main and metrics:
            self.log.write(self.iteration, metrics)
        self._barrier()
        return metrics

    def _finish(self, elapsed_s: float, iters_run: int) -> str | None:
        cfg = self.cfg
        out, calibration = None, None
        if self.main:
            # the checkpoint keeps the uncalibrated weights, so a resumed run trains on them
            self._save_checkpoint()
            if self.val_set is not None and cfg.calibrate:
                calibration = calibrate(
                    self.model, self.val_set, batch_size=cfg.batch_size, device=self.device
                )
                apply_calibration(self.model, calibration)
                LOG.info('calibration on val: %s', calibration.to_dict())
        metrics = self._eval_and_log() if self.val_set is not None else {}
        if self.main:
            from poa_gres_ros.modeling.io import save_model

            out = str(save_model(self.model, os.path.join(cfg.output_dir, 'model')))
            summary = {
                'iterations': self.iteration,
                'iterations_this_run': iters_run,
                'train_time_s': elapsed_s,
                'it_per_s': iters_run / elapsed_s if elapsed_s > 0 else None,
                'batch_size': cfg.batch_size,
                'world_size': self.world,
                'device': str(self.device),
                'train_samples': len(self.train_set),
                'calibration': calibration.to_dict() if calibration else None,
                'val_metrics': metrics,
                'model_dir': out,
            }
            with open(os.path.join(cfg.output_dir, 'train_summary.json'), 'w') as fh:
                json.dump(summary, fh, indent=2)
            self.log.close()
        self._barrier()
        return out

    def _save_checkpoint(self) -> None:
        save_checkpoint(
            self.cfg.output_dir,
            self.iteration,
            self.model,
            self.optimizer,
            self.scheduler,
            self.scaler,
            self.epoch,
            self.cfg.keep_checkpoints,
        )
