"""The model can learn to ground: a small decoder overfits a few rendered sentences.

Real parts throughout: PyBullet-rendered tabletop views with generated expressions (single,
multi-target, no-target), the frozen EfficientNet-Lite0 and MiniLM-L6 of the tabletop preset,
cached features, the real criterion and Hungarian matcher, the trainer, the evaluation's
post-processing and the val calibration. A smaller decoder (C = 64, 2 layers, 12 queries)
keeps it to about three minutes of one CPU thread; fixed seeds and one thread make the run
deterministic on a machine.

Measured on the development machine (one thread, 240 steps): cIoU 87.2, gIoU 89.0, N-acc 100,
T-acc 100 for today's design. The design before the text-stream, relevance, matching and
name changes (format-1 architecture, POA gradient into the text, only referred objects
matched) scored cIoU 70.6, gIoU 78.0, N-acc 100, T-acc 100 with the same data and budget;
the cIoU and gIoU floors sit between the two, so a regression of that kind fails here.
"""

from __future__ import annotations

import copy

import pytest
import torch

from poa_gres_ros.tools.cli import main as cli_main
from poa_gres_ros.training.calibrate import apply_calibration, calibrate
from poa_gres_ros.training.config import TrainConfig
from poa_gres_ros.training.evaluate import evaluate_dataset
from poa_gres_ros.training.trainer import Trainer

pytestmark = pytest.mark.slow
pytest.importorskip('pybullet')

STEPS = 240
FLOORS = {'cIoU': 80.0, 'gIoU': 84.0, 'N-acc': 99.0, 'T-acc': 95.0}
SMALL_DECODER = {
    'decoder.hidden_dim': 64,
    'decoder.num_layers': 2,
    'decoder.num_queries': 12,
    'decoder.dim_feedforward': 256,
}


def _config(data, out, overrides: dict) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            'model': {'preset': 'tabletop', 'overrides': overrides},
            'data': {'root': str(data), 'train_splits': ['train'], 'val_splits': []},
            'batch_size': 8,
            'sentences_per_image': 4,
            'cache_dir': str(out / 'cache'),
            'output_dir': str(out / 'run'),
            'optim': {'lr': 2e-3, 'weight_decay': 0.0, 'clip_grad_norm': 1.0},
            'schedule': {'max_iters': STEPS, 'warmup_iters': 10, 'decay': 'poly'},
            'criterion': {'num_points': 1024, 'instance_targets': 'all_objects'},
            'seed': 0,
            'log_every': 40,
            'checkpoint_every': 0,
            'eval_every': 0,
            'num_threads': 1,
            'progress': False,
            'calibrate': False,
        }
    )


@pytest.fixture(scope='module')
def rendered(tmp_path_factory):
    data = tmp_path_factory.mktemp('learn') / 'data'
    args = ['make-dataset', '--out', str(data), '--scenes', '2', '--eval-scenes', '0']
    args += ['--views-per-scene', '1', '--seed', '3', '--workers', '1', '--no-progress']
    assert cli_main(args) == 0
    return data


@pytest.fixture(scope='module')
def trained(rendered, tmp_path_factory):
    out = tmp_path_factory.mktemp('learn_run')
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(_config(rendered, out, SMALL_DECODER))
        trainer.train()
    finally:
        torch.set_num_threads(threads)
    return trainer


def _scores(model, dataset, thresholds=None) -> dict:
    res = evaluate_dataset(model, dataset, thresholds, eval_size='input')
    return {k: res.summary['all'][k] for k in FLOORS}


def test_small_decoder_overfits_rendered_sentences(trained):
    train_set = trained.train_set
    kinds = {r.expr_type for r in train_set.records}
    assert {'single', 'multi', 'no_target'} <= kinds, kinds  # every expression type is there
    assert len(train_set) >= 12
    metrics = _scores(trained.model, train_set)
    print('metrics', metrics)
    low = {k: (round(v, 2), FLOORS[k]) for k, v in metrics.items() if v < FLOORS[k]}
    assert not low, f'after {STEPS} steps, below floor (value, floor): {low}; all: {metrics}'


def test_calibration_folded_into_the_model_gives_the_gIoU_it_chose(trained):
    model, data = copy.deepcopy(trained.model), trained.train_set
    cal = calibrate(model, data, relevance_candidates=(0.2, 0.5, 0.8))
    assert cal.giou_per_relevance[cal.relevance_threshold] == max(cal.giou_per_relevance.values())
    apply_calibration(model, cal)
    after = _scores(model, data)
    print('calibration', cal.relevance_threshold, cal.no_target.threshold, after)
    assert after['gIoU'] == pytest.approx(cal.no_target.giou, abs=1e-6)
    assert after['N-acc'] == pytest.approx(cal.no_target.n_acc, abs=1e-6)
    # the uncalibrated model at r = t = 0.5 is one of the candidates the calibration beat
    assert after['gIoU'] >= _scores(trained.model, data)['gIoU'] - 1e-6
