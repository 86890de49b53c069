"""The shipped tabletop model on the small evaluation set stays above documented floors.

The set is regenerated deterministically (``poa-gres make-dataset --preset small-eval``, about
20-40 s) and evaluated like the model card (``--eval-size source``, default thresholds). The
floors sit a few points under the numbers measured when the model was trained (MODEL_CARD.md,
"Small evaluation set"): a regression in the model, its loading, the post-processing or the
generator moves the metrics by more than that.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from poa_gres_ros.tools.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / 'models' / 'tabletop'

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SHIPPED / 'config.json').is_file(), reason='models/tabletop is not in this checkout'
    ),
]
pytest.importorskip('pybullet')

# split: {metric: floor}, a few points under the values measured on this set (generator
# tabletop-2: sampled cameras, resolutions, tables, camera effects and carriers,
# docs/tabletop.md) with the post-processing of docs/postprocessing.md and the thresholds
# calibrated on val and folded into the model (docs/method.md#calibration): test cIoU 43.80,
# gIoU 54.25, N-acc 87.27, T-acc 86.60; test_comp cIoU 33.32, gIoU 50.25 (MODEL_CARD.md, "Small
# evaluation set"). The model shipped before it scored test cIoU 30.12, gIoU 43.99, N-acc
# 90.91, T-acc 78.87; test_comp cIoU 19.79, gIoU 32.33 on the same set. Raise these floors
# together with the model card when a better model is committed.
FLOORS = {
    'test': {'cIoU': 40.0, 'gIoU': 50.0, 'N-acc': 82.0, 'T-acc': 82.0},
    'test_comp': {'cIoU': 28.0, 'gIoU': 45.0},
}


@pytest.fixture(scope='module')
def report(tmp_path_factory):
    base = tmp_path_factory.mktemp('shipped')
    data, out = base / 'eval_small', base / 'report'
    assert (
        cli_main(['make-dataset', '--out', str(data), '--preset', 'small-eval', '--no-progress'])
        == 0
    )
    args = ['eval', '--model', str(SHIPPED), '--data', str(data), '--split', 'test']
    args += ['--split', 'test_comp', '--eval-size', 'source', '--out', str(out), '--threads', '2']
    assert cli_main(args) == 0
    with open(out / 'report.json') as fh:
        return json.load(fh)


@pytest.mark.parametrize('split', sorted(FLOORS))
def test_shipped_model_metrics_above_floors(report, split):
    metrics = report['splits'][split]['summary']['all']
    low = {k: (metrics[k], floor) for k, floor in FLOORS[split].items() if metrics[k] < floor}
    assert not low, f'{split}: metric below floor (value, floor): {low}'


def test_shipped_model_folder_is_small_and_self_describing():
    files = {p.name for p in SHIPPED.iterdir()}
    assert {'config.json', 'model.safetensors', 'MODEL_CARD.md'} <= files
    assert os.path.getsize(SHIPPED / 'model.safetensors') < 20e6
    with open(SHIPPED / 'config.json') as fh:
        cfg = json.load(fh)
    assert cfg['name'] == 'tabletop'


def test_the_readme_segment_example_finds_the_orange_lego(tmp_path, capsys, monkeypatch):
    """The README's ``poa-gres segment`` command, run as written (plus ``--json``) on the
    shipped sample image: the most relevant instance is the orange lego brick. Its box in the
    dataset the image comes from (tabletop-2 test split, tabletop_test_000000_1.png) is x 277
    to 319, y 246 to 293 px."""
    import shlex

    readme = (ROOT / 'README.md').read_text()
    start = readme.index('poa-gres segment --model tabletop --image examples/')
    command = readme[start : readme.index('\n', readme.index('--text', start))]
    argv = shlex.split(command.replace('\\\n', ' '), comments=True)[1:]
    argv[argv.index('--out') + 1] = str(tmp_path / 'overlay.png')
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the repository
    assert cli_main([*argv, '--json']) == 0
    report = json.loads(capsys.readouterr().out)
    assert not report['no_target'] and report['instances']
    x0, y0, x1, y1 = report['instances'][0]['box_xyxy_px']
    gx0, gy0, gx1, gy1 = 277, 246, 319, 293
    inter = max(0, min(x1, gx1) - max(x0, gx0)) * max(0, min(y1, gy1) - max(y0, gy0))
    union = (x1 - x0) * (y1 - y0) + (gx1 - gx0) * (gy1 - gy0) - inter
    assert inter / union > 0.6, report['instances'][0]
    assert (tmp_path / 'overlay.png').is_file()
