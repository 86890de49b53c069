"""`poa-gres init-model` and `poa-gres segment` end to end on the tiny preset, and the overlay."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from poa_gres_ros.core.results import GresPrediction, InstanceResult, PhraseSpan
from poa_gres_ros.core.visualize import PALETTE_RGB, ascii_label, draw_overlay
from poa_gres_ros.tools.cli import main


@pytest.fixture(scope='module')
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('cli') / 'tiny'
    assert main(['init-model', '--preset', 'tiny', '--out', str(out), '--seed', '1']) == 0
    return out


def test_init_model_refuses_a_non_empty_folder(tiny_dir, capsys):
    assert main(['init-model', '--preset', 'tiny', '--out', str(tiny_dir)]) == 2
    assert 'not empty' in capsys.readouterr().err
    assert (
        main(
            [
                'init-model',
                '--preset',
                'tiny',
                '--out',
                str(tiny_dir / 'x'),
                '--set',
                'decoder.nope=1',
            ]
        )
        == 2
    )


def test_segment_writes_overlay_and_prints_instances(tiny_dir, tmp_path, capsys):
    img = np.full((90, 120, 3), 180, np.uint8)
    cv2.circle(img, (40, 45), 20, (0, 0, 255), -1)
    cv2.imwrite(str(tmp_path / 'scene.png'), img)
    out = tmp_path / 'overlay.png'
    rc = main(
        [
            'segment',
            '--model',
            str(tiny_dir),
            '--image',
            str(tmp_path / 'scene.png'),
            '--text',
            'the red mug and the duck on the left',
            '--out',
            str(out),
            '--relevance',
            '0',
            '--no-target',
            '1',
            '--json',
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report['instruction'] == 'the red mug and the duck on the left'
    assert 1 <= len(report['instances']) <= 6  # tiny model: 6 queries, relevance threshold 0
    for inst in report['instances']:
        x0, y0, x1, y1 = inst['box_xyxy_px']
        assert 0 <= x0 < x1 <= 120 and 0 <= y0 < y1 <= 90
    overlay = cv2.imread(str(out))
    assert overlay.shape == (90, 120, 3) and not np.array_equal(overlay, img)


def test_segment_reports_a_missing_image(tiny_dir, tmp_path, capsys):
    rc = main(
        [
            'segment',
            '--model',
            str(tiny_dir),
            '--image',
            str(tmp_path / 'none.png'),
            '--text',
            'a cup',
        ]
    )
    assert rc == 2 and 'cannot read image' in capsys.readouterr().err


def _prediction(h=60, w=80, no_target=False):
    a = np.zeros((h, w), bool)
    a[10:30, 5:25] = True
    b = np.zeros((h, w), bool)
    b[35:55, 40:70] = True
    insts = [
        InstanceResult(a, 0.9, PhraseSpan('red mug', 4, 11), 0),
        InstanceResult(b, 0.7, PhraseSpan('café', 0, 4), 3),
    ]
    return GresPrediction(
        instances=[] if no_target else insts,
        final_mask=(a | b) & ~no_target,
        no_target=no_target,
        no_target_prob=0.9 if no_target else 0.1,
        instruction='the red mug and the café cup',
    )


def test_draw_overlay_colours_instances():
    img = np.full((60, 80, 3), 128, np.uint8)
    out = draw_overlay(img, _prediction(), alpha=1.0, show_instruction=False)
    assert out.shape == img.shape and out.dtype == np.uint8 and np.array_equal(img[0, 0], [128] * 3)
    assert tuple(out[20, 15]) == PALETTE_RGB[0] or tuple(out[25, 20]) == PALETTE_RGB[0]
    assert tuple(out[50, 65]) == PALETTE_RGB[1]
    banner = draw_overlay(img, _prediction(no_target=True), show_instruction=False)
    assert not np.array_equal(banner, img)  # the no-target banner is drawn
    with pytest.raises(ValueError, match='prediction masks'):
        draw_overlay(np.zeros((10, 10, 3), np.uint8), _prediction())
    assert ascii_label('café 杯') == 'cafe ?'


def test_segment_and_eval_take_the_node_parameter_names_for_thresholds():
    """Both verbs spell the post-processing options like the node parameters, default to the
    node's Thresholds(), and segment's short spellings still work."""
    from poa_gres_ros.core.thresholds import Thresholds
    from poa_gres_ros.tools.cli import build_parser
    from poa_gres_ros.tools.threshold_args import thresholds_from_args

    parser = build_parser()
    node_names = ['--relevance-threshold', '0.3', '--mask-threshold', '0.4',
                  '--no-target-threshold', '0.6', '--max-instances', '3',
                  '--duplicate-iou-threshold', '0.7']  # fmt: skip
    want = Thresholds(relevance=0.3, mask=0.4, no_target=0.6, max_instances=3, duplicate_iou=0.7)
    seg = ['segment', '--model', 'm', '--image', 'i.png', '--text', 't']
    ev = ['eval', '--model', 'm', '--data', 'd', '--split', 'val']
    assert thresholds_from_args(parser.parse_args([*seg, *node_names])) == want
    assert thresholds_from_args(parser.parse_args([*ev, *node_names])) == want
    short = ['--relevance', '0.3', '--mask', '0.4', '--no-target', '0.6', '--max-instances', '3',
             '--duplicate-iou', '0.7']  # fmt: skip
    assert thresholds_from_args(parser.parse_args([*seg, *short])) == want
    assert thresholds_from_args(parser.parse_args(seg)) == Thresholds()
    with pytest.raises(ValueError, match='relevance'):
        thresholds_from_args(parser.parse_args([*ev, '--relevance-threshold', '1.5']))
