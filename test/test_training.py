"""Trainer, optimizer, schedule, checkpoints, feature cache and the train/eval CLIs on the
tiny preset and a fixture dataset written by the test."""

import csv
import json
import os

import numpy as np
import pytest
import torch

from poa_gres_ros.tools.cli import main as cli_main
from poa_gres_ros.training.config import ScheduleConfig, TrainConfig
from poa_gres_ros.training.evaluate import evaluate_dataset, model_inputs
from poa_gres_ros.training.optim import lr_factor, param_groups
from poa_gres_ros.training.trainer import Trainer

from support.gref_files import write_grefcoco_fixture

OVERFIT_ITERS = 100


def _cfg(root, out, **kw):
    base = {
        'model': {'preset': 'tiny'},
        'data': {
            'root': root,
            'train_splits': ['train'],
            'val_splits': ['train'],
            'max_train_samples': 4,
            'max_val_samples': 4,
        },
        'batch_size': 4,
        'output_dir': out,
        'seed': 0,
        'log_every': 10,
        'checkpoint_every': 0,
        'progress': False,
        'num_threads': 1,
        'optim': {'lr': 2e-3, 'text_lr': 2e-3, 'backbone_lr': 2e-3, 'weight_decay': 0.0},
        'schedule': {'max_iters': OVERFIT_ITERS, 'warmup_iters': 5, 'decay': 'none'},
        'criterion': {'num_points': 256},
    }
    for key, value in kw.items():
        node = base
        *parents, last = key.split('.')
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return TrainConfig.from_dict(base)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('gref'))
    write_grefcoco_fixture(root)
    return root


@pytest.fixture(scope='module')
def overfit(data_root, tmp_path_factory):
    out = str(tmp_path_factory.mktemp('run'))
    trainer = Trainer(_cfg(data_root, out))
    model_dir = trainer.train()
    return trainer, out, model_dir


def test_overfit_four_samples_loss_halves_and_iou_above_0_8(overfit):
    trainer, out, model_dir = overfit
    with open(os.path.join(out, 'metrics.csv'), newline='') as fh:
        rows = [r for r in csv.DictReader(fh) if r['loss']]
    first, last = float(rows[0]['loss']), float(rows[-1]['loss'])
    assert last <= 0.5 * first, (first, last)
    res = evaluate_dataset(trainer.model, trainer.val_set)
    ious = [s['iou'] for s in res.samples]
    assert len(ious) == 4 and min(ious) > 0.8, res.samples
    assert {s['outcome'] for s in res.samples} == {'TN', 'TP'}  # no-target sample recognised
    summary = json.load(open(os.path.join(out, 'train_summary.json')))
    assert summary['iterations'] == OVERFIT_ITERS and summary['val_metrics']['val/gIoU'] > 80
    assert os.path.isfile(os.path.join(model_dir, 'model.safetensors'))
    assert os.listdir(os.path.join(out, 'tb'))  # TensorBoard event file written


def test_final_model_folder_reloads_with_identical_outputs(overfit):
    from poa_gres_ros.modeling.io import load_model
    from poa_gres_ros.training.datasets.gres_dataset import collate_gres

    trainer, _, model_dir = overfit
    loaded = load_model(model_dir)
    batch = collate_gres([trainer.val_set[i] for i in range(4)])
    trainer.model.eval()
    with torch.no_grad():
        a = trainer.model(**model_inputs(batch))
        b = loaded(**model_inputs(batch))
    torch.testing.assert_close(a.merged_mask_logits, b.merged_mask_logits)
    torch.testing.assert_close(a.no_target_logits, b.no_target_logits)


def test_eval_cli_writes_reports_matching_evaluate(overfit, data_root, tmp_path, capsys):
    trainer, _, model_dir = overfit
    rc = cli_main(
        [
            'eval',
            '--model',
            model_dir,
            '--data',
            data_root,
            '--split',
            'train',
            '--split',
            'val',
            '--max-samples',
            '4',
            '--examples',
            '4',
            '--out',
            str(tmp_path),
            '--device',
            'cpu',
        ]
    )
    assert rc == 0
    rep = json.load(open(tmp_path / 'report.json'))
    res = evaluate_dataset(trainer.model, trainer.val_set)
    got = rep['splits']['train']['summary']['all']
    for key in ('gIoU', 'inst-recall', 'inst-precision', 'count-acc'):
        assert got[key] == pytest.approx(res.summary['all'][key]), key
    assert got['num_gt'] == 4  # red square twice, the two discs (crowd dropped), no-target
    assert 'instances: recall' in capsys.readouterr().out
    assert 'inst-recall' in (tmp_path / 'report.md').read_text()
    assert set(rep['splits']) == {'train', 'val'}
    for name in (
        'report.md',
        'iou_hist_val.png',
        'per_type_train.png',
        'overlays_train.png',
        'samples_val.jsonl',
    ):
        assert (tmp_path / name).stat().st_size > 0


def test_resume_continues_bitwise_like_an_uninterrupted_run(data_root, tmp_path):
    full = Trainer(
        _cfg(data_root, str(tmp_path / 'a'), **{'schedule.max_iters': 4, 'data.val_splits': []})
    )
    full.train()
    part = Trainer(
        _cfg(
            data_root,
            str(tmp_path / 'b'),
            checkpoint_every=2,
            **{'schedule.max_iters': 2, 'data.val_splits': []},
        )
    )
    part.train()
    resumed = Trainer(
        _cfg(data_root, str(tmp_path / 'b'), **{'schedule.max_iters': 4, 'data.val_splits': []}),
        resume='auto',
    )
    assert resumed.iteration == 2
    resumed.train()
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    assert resumed.scheduler.last_epoch == 4


def test_cached_features_match_image_forward_and_cache_is_reused(data_root, tmp_path):
    cfg = _cfg(
        data_root,
        str(tmp_path / 'run'),
        cache_dir=str(tmp_path / 'cache'),
        **{
            'schedule.max_iters': 2,
            'model.overrides': {'backbone.frozen': True, 'text.frozen': True},
        },
    )
    trainer = Trainer(cfg)
    ds = trainer.train_set
    assert type(ds).__name__ == 'CachedFeatureDataset'
    item = ds[2]
    assert item['features']['res2'].dtype == torch.float16
    from poa_gres_ros.training.datasets.gres_dataset import GresDataset, model_preprocess

    img_ds = GresDataset(
        ds.records,
        ds.masks,
        os.path.join(data_root, 'images'),
        ds.size_hw,
        trainer.model.tokenizer,
        trainer.model.config.text.max_tokens,
        model_preprocess(trainer.model.config),
    )
    m = trainer.model.eval()
    with torch.no_grad():
        ref = m.extract_features(img_ds[2]['images'][None])
        txt = m.encode_text(img_ds[2]['input_ids'][None], img_ds[2]['attention_mask'][None])
    for k, v in ref.items():
        torch.testing.assert_close(item['features'][k].float(), v[0], atol=2e-2, rtol=2e-3)
    torch.testing.assert_close(item['text_features'].float(), txt[0], atol=2e-2, rtol=2e-3)
    assert torch.equal(item['gt_masks'], img_ds[2]['gt_masks'])
    trainer.train()
    stamp = os.path.getmtime(os.path.join(ds.cache.cache_dir, 'res2.npy'))
    Trainer(cfg)  # same records and fingerprint: the cache is reused, not rebuilt
    assert os.path.getmtime(os.path.join(ds.cache.cache_dir, 'res2.npy')) == stamp
    bad = _cfg(data_root, str(tmp_path / 'run2'), cache_dir=str(tmp_path / 'cache'))
    with pytest.raises(ValueError, match='cached features would go stale'):
        Trainer(bad)  # tiny trains its backbone: caching must be refused


def test_train_cli_with_yaml_and_overrides(data_root, tmp_path):
    cfg_path = tmp_path / 'train.yaml'
    cfg_path.write_text(
        f'model: {{preset: tiny}}\n'
        f'data: {{root: {data_root}, train_splits: [train], val_splits: [], '
        f'max_train_samples: 4}}\n'
        f'batch_size: 2\noutput_dir: {tmp_path / "out"}\nprogress: false\n'
        f'schedule: {{max_iters: 50, warmup_iters: 1}}\ncriterion: {{num_points: 64}}\n'
    )
    rc = cli_main(
        [
            'train',
            '--config',
            str(cfg_path),
            '--set',
            'schedule.max_iters=3',
            '--set',
            'ablation=hard_selection',
        ]
    )
    assert rc == 0
    saved = json.load(open(tmp_path / 'out' / 'model' / 'config.json'))
    assert saved['heads']['aggregation'] == 'hard'
    summary = json.load(open(tmp_path / 'out' / 'train_summary.json'))
    assert summary['iterations'] == 3
    assert cli_main(['train', '--config', str(tmp_path / 'missing.yaml')]) == 2


def test_config_ablations_and_errors(tmp_path):
    cfg = TrainConfig.from_dict({'ablation': 'no_poa', 'data': {'root': 'x'}})
    crit = cfg.effective_criterion()
    assert crit.weight_phrase == 0 and crit.matcher().cost_phrase == 0
    assert (
        TrainConfig.from_dict({'ablation': 'merged_only'})
        .effective_criterion()
        .instance_supervision
        is False
    )
    assert TrainConfig.from_dict({'ablation': 'hard_selection'}).model_overrides() == {
        'heads.aggregation': 'hard'
    }
    with pytest.raises(ValueError, match='unknown keys in optim'):
        TrainConfig.from_dict({'optim': {'learning_rate': 1}})
    with pytest.raises(ValueError, match='exactly one of preset or model_dir'):
        TrainConfig.from_dict({'model': {'preset': 'tiny', 'model_dir': 'x'}})
    p = tmp_path / 'c.json'
    p.write_text('{"batch_size": 0}')
    with pytest.raises(ValueError, match='batch_size'):
        TrainConfig.from_file(p)


def test_lr_schedule_warmup_poly_step():
    s = ScheduleConfig(warmup_iters=10, warmup_factor=0.1, decay='poly', poly_power=1.0)
    assert lr_factor(0, 100, s) == pytest.approx(0.1)
    assert lr_factor(5, 100, s) == pytest.approx((1 - 0.05) * (0.1 * 0.5 + 0.5))
    assert lr_factor(50, 100, s) == pytest.approx(0.5)
    s = ScheduleConfig(warmup_iters=0, decay='step', steps=(0.7, 0.9), gamma=0.1)
    assert [lr_factor(i, 100, s) for i in (69, 70, 89, 90)] == pytest.approx([1, 0.1, 0.1, 0.01])


def test_param_groups_lrs_and_no_decay():
    from poa_gres_ros.core.model_presets import get_preset
    from poa_gres_ros.modeling.build import build_model

    model = build_model(get_preset('tiny').with_overrides({'text.frozen': True}))
    cfg = TrainConfig().optim
    groups = param_groups(model, cfg)
    by_name = {g['name']: g for g in groups}
    assert not any(n.startswith('text') for n in by_name)  # frozen text encoder left out
    assert by_name['backbone']['lr'] == cfg.backbone_lr and by_name['decoder']['lr'] == cfg.lr
    ids = {id(p): g['weight_decay'] for g in groups for p in g['params']}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.LayerNorm | torch.nn.Embedding | torch.nn.GroupNorm):
            for p in module.parameters(recurse=False):
                if p.requires_grad:
                    assert ids[id(p)] == 0.0, name
    linear = next(
        m
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and n.startswith('decoder')
    )
    assert ids[id(linear.weight)] == cfg.weight_decay
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in groups for p in g['params']) == n_trainable
    assert np.isfinite(n_trainable)


@pytest.mark.slow  # two torchrun worker processes, each builds the model (~30-60 s shared CPU)
def test_ddp_two_cpu_processes_with_torchrun(data_root, tmp_path):
    import subprocess
    import sys

    cfg_path = tmp_path / 'ddp.yaml'
    out = tmp_path / 'out'
    cfg_path.write_text(
        f'model: {{preset: tiny}}\n'
        f'data: {{root: {data_root}, train_splits: [train], val_splits: [val]}}\n'
        f'batch_size: 2\noutput_dir: {out}\nprogress: false\nnum_threads: 1\n'
        f'schedule: {{max_iters: 4, warmup_iters: 1}}\ncriterion: {{num_points: 64}}\n'
        f'checkpoint_every: 2\nlog_every: 2\n'
    )
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'torch.distributed.run',
            '--nproc_per_node',
            '2',
            '--master_port',
            str(29500 + os.getpid() % 1000),
            '-m',
            'poa_gres_ros.tools.cli',
            'train',
            '--config',
            str(cfg_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.load(open(out / 'train_summary.json'))
    # 8 train sentences, 2 processes x batch 2: 2 steps per epoch, 4 steps in all
    assert summary['world_size'] == 2 and summary['iterations'] == 4
    assert summary['train_samples'] == 8
    assert sorted(os.listdir(out / 'checkpoints')) == ['iter_0000002', 'iter_0000004', 'last']
    assert (out / 'model' / 'model.safetensors').is_file()


def test_resume_applies_the_configs_lr_and_longer_schedule(data_root, tmp_path):
    out = str(tmp_path / 'r')
    first = _cfg(
        data_root,
        out,
        checkpoint_every=2,
        **{'schedule.max_iters': 2, 'schedule.decay': 'poly', 'data.val_splits': []},
    )
    Trainer(first).train()
    longer = _cfg(
        data_root,
        out,
        **{
            'schedule.max_iters': 10,
            'schedule.decay': 'poly',
            'optim.lr': 4e-3,
            'data.val_splits': [],
        },
    )
    resumed = Trainer(longer, resume='auto')
    assert resumed.iteration == 2
    factor = lr_factor(2, 10, longer.schedule)
    assert 0.0 < factor < 1.0
    lrs = sorted({round(g['lr'], 12) for g in resumed.optimizer.param_groups})
    # tiny trains its backbone and text encoder too: they keep backbone_lr = text_lr = 2e-3
    assert lrs == [round(2e-3 * factor, 12), round(4e-3 * factor, 12)]
    resumed.train()
    assert resumed.iteration == 10
