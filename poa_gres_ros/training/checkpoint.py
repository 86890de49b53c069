"""Training checkpoints without pickle-on-load, and scalar logs (CSV + TensorBoard).

A checkpoint is a folder ``<output_dir>/checkpoints/iter_0001000/`` with

* ``model.safetensors``: the model's stored (non-external) weights;
* ``trainer_state.pt``: optimizer, LR scheduler, AMP scaler, iteration and torch RNG state,
  written with ``torch.save`` and read with ``torch.load(weights_only=True)`` (tensors and
  plain containers only, so a tampered file cannot run code).

``<output_dir>/checkpoints/last`` names the newest folder; ``--resume auto`` reads it.
"""

from __future__ import annotations

import csv
import os
import shutil

import torch
from safetensors.torch import load_file, save_file

LAST = 'last'


def save_checkpoint(
    out_dir: str, iteration: int, model, optimizer, scheduler, scaler, epoch: int, keep: int = 2
) -> str:
    """Write ``iter_<n>`` under ``<out_dir>/checkpoints`` and prune to ``keep`` newest.

    Returns:
        The checkpoint folder path.
    """
    root = os.path.join(out_dir, 'checkpoints')
    path = os.path.join(root, f'iter_{iteration:07d}')
    tmp = path + '.partial'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    weights = {
        k: v.detach().cpu().contiguous().clone() for k, v in model.stored_state_dict().items()
    }
    save_file(weights, os.path.join(tmp, 'model.safetensors'))
    state = {
        'iteration': int(iteration),
        'epoch': int(epoch),
        'optimizer': optimizer.state_dict(),
        'scheduler': scheduler.state_dict(),
        'scaler': scaler.state_dict() if scaler is not None else {},
        'torch_rng': torch.get_rng_state(),
    }
    torch.save(state, os.path.join(tmp, 'trainer_state.pt'))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    with open(os.path.join(root, LAST), 'w', encoding='utf-8') as fh:
        fh.write(os.path.basename(path) + '\n')
    old = sorted(
        d for d in os.listdir(root) if d.startswith('iter_') and not d.endswith('.partial')
    )
    for d in old[: max(0, len(old) - max(1, keep))]:
        shutil.rmtree(os.path.join(root, d), ignore_errors=True)
    return path


def resolve_checkpoint(resume: str, out_dir: str) -> str:
    """Checkpoint folder from ``--resume``: a checkpoint folder, an output dir, or 'auto'.

    Raises:
        FileNotFoundError: nothing to resume from (the places looked at are named).
    """
    candidates = []
    base = out_dir if resume == 'auto' else resume
    if os.path.isfile(os.path.join(base, 'trainer_state.pt')):
        return base
    for root in (os.path.join(base, 'checkpoints'), base):
        last = os.path.join(root, LAST)
        candidates.append(last)
        if os.path.isfile(last):
            with open(last, encoding='utf-8') as fh:
                path = os.path.join(root, fh.read().strip())
            if os.path.isfile(os.path.join(path, 'trainer_state.pt')):
                return path
    raise FileNotFoundError(
        f'no checkpoint to resume from: looked for {base}/trainer_state.pt and {candidates}'
    )


def load_checkpoint(path: str, model, optimizer, scheduler, scaler) -> dict:
    """Restore model weights and trainer state in place; returns the state dict (iteration,
    epoch).

    Raises:
        ValueError: the weights do not fit the model (missing/unexpected keys are named).
    """
    weights = load_file(os.path.join(path, 'model.safetensors'))
    expected = model.stored_state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f'checkpoint {path} does not fit the model: missing {missing[:10]}, '
            f'unexpected {unexpected[:10]} (different model config?)'
        )
    model.load_state_dict(weights, strict=False)
    state = torch.load(
        os.path.join(path, 'trainer_state.pt'), map_location='cpu', weights_only=True
    )
    optimizer.load_state_dict(state['optimizer'])
    scheduler.load_state_dict(state['scheduler'])
    if scaler is not None and state.get('scaler'):
        scaler.load_state_dict(state['scaler'])
    if 'torch_rng' in state:
        torch.set_rng_state(state['torch_rng'])
    return state


class ScalarLog:
    """Appends scalar rows to ``<out_dir>/metrics.csv`` and TensorBoard (``<out_dir>/tb``).

    TensorBoard is optional: without the package only the CSV is written. The CSV header
    grows when new keys appear (the file is rewritten then).
    """

    def __init__(self, out_dir: str, tensorboard: bool = True):
        self.path = os.path.join(out_dir, 'metrics.csv')
        self.keys: list[str] = []
        if os.path.isfile(self.path):
            with open(self.path, newline='', encoding='utf-8') as fh:
                self.keys = next(csv.reader(fh), [])
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(os.path.join(out_dir, 'tb'))
            except ImportError:
                self.tb = None

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {'iter': step, **values}
        new = [k for k in row if k not in self.keys]
        if new:
            rows = []
            if os.path.isfile(self.path):
                with open(self.path, newline='', encoding='utf-8') as fh:
                    rows = list(csv.DictReader(fh))
            self.keys += new
            with open(self.path, 'w', newline='', encoding='utf-8') as fh:
                w = csv.DictWriter(fh, fieldnames=self.keys)
                w.writeheader()
                w.writerows(rows)
        with open(self.path, 'a', newline='', encoding='utf-8') as fh:
            csv.DictWriter(fh, fieldnames=self.keys).writerow(row)
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, int | float) and v == v:
                    self.tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
