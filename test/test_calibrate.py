"""No-target calibration: the gIoU-maximising threshold, and folding it into the head's bias."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from poa_gres_ros.modeling import build_model
from poa_gres_ros.modeling.text_encoder import tokenize
from poa_gres_ros.training.calibrate import choose_threshold, shift_no_target_bias


def test_threshold_maximises_giou_by_hand():
    # two no-target samples (head prob 0.30, 0.40), two targeted with instances (0.10 with
    # IoU 0.8, 0.25 with IoU 0.6) and one targeted without any instance (IoU irrelevant)
    nt_prob = np.array([0.30, 0.40, 0.10, 0.25, 0.20])
    gt_nt = np.array([True, True, False, False, False])
    iou = np.array([0.0, 0.0, 0.8, 0.6, 0.9])
    has_inst = np.array([True, True, True, True, False])
    t, giou = choose_threshold(nt_prob, gt_nt, iou, has_inst)
    # t in [0.25, 0.30): both no-target right, both targeted kept: (1 + 1 + 0.8 + 0.6 + 0) / 5;
    # t in [0.10, 0.25) calls the 0.25 sample no-target (2.8 / 5); t in [0.30, 0.40) loses the
    # first no-target sample (2.4 / 5); t >= 0.40, the default 0.5 included, loses both (1.4)
    assert giou == pytest.approx(100 * 3.4 / 5)
    assert 0.25 <= t < 0.30
    assert t == pytest.approx(0.29)  # among the ties, the candidate closest to 0.5


def test_no_samples_or_mismatched_lengths_raise():
    with pytest.raises(ValueError):
        choose_threshold([], [], [], [])
    with pytest.raises(ValueError):
        choose_threshold([0.1], [True, False], [0.0], [True])


def test_bias_shift_moves_the_decision_point():
    torch.manual_seed(0)
    model = build_model('tiny')
    tok = tokenize(model.tokenizer, ['the red mug', 'a duck', 'the purple cube'], 16)
    images = torch.randn(3, 3, 64, 96)
    with torch.no_grad():
        before = model(images, tok.input_ids, tok.attention_mask, aux_outputs=False)
    t = 0.2
    shift_no_target_bias(model, -math.log(t / (1 - t)))
    with torch.no_grad():
        after = model(images, tok.input_ids, tok.attention_mask, aux_outputs=False)
    assert torch.equal(after.no_target_prob > 0.5, before.no_target_prob > t)
    # the logit difference moves by exactly the shift; everything else is unchanged
    d_before = before.no_target_logits[:, 1] - before.no_target_logits[:, 0]
    d_after = after.no_target_logits[:, 1] - after.no_target_logits[:, 0]
    assert torch.allclose(d_after - d_before, torch.full((3,), -math.log(t / (1 - t))), atol=1e-5)
    assert torch.equal(after.mask_logits, before.mask_logits)


def test_relevance_offset_moves_only_the_reported_relevance_and_survives_saving(tmp_path):
    from poa_gres_ros.modeling.io import load_model, save_model
    from poa_gres_ros.training.calibrate import Calibration, NoTargetCalibration, apply_calibration

    torch.manual_seed(0)
    model = build_model('tiny')
    tok = tokenize(model.tokenizer, ['the red mug', 'a duck'], 16)
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        before = model(images, tok.input_ids, tok.attention_mask, aux_outputs=False)
    r, t = 0.2, 0.3
    nt = NoTargetCalibration(t, -math.log(t / (1 - t)), 2, 0.0, 0.0, None, None)
    cal = Calibration(r, -math.log(r / (1 - r)), nt, {r: 0.0})
    apply_calibration(model, cal)
    apply_calibration(model, cal)  # composes: the odds of the threshold multiply
    with torch.no_grad():
        after = model(images, tok.input_ids, tok.attention_mask, aux_outputs=False)
        text = model.encode_text(tok.input_ids, tok.attention_mask)
        vision = model.vision_outputs(images, text, tok.attention_mask)
    odds = (r / (1 - r)) ** 2
    r2 = odds / (1 + odds)
    assert torch.equal(after.relevance > 0.5, before.relevance > r2)
    assert torch.allclose(after.relevance_logits, before.relevance_logits)
    # the trained behaviour is the same: masks, merged mask, raw logits
    assert torch.equal(after.mask_logits, before.mask_logits)
    assert torch.equal(after.merged_mask_logits, before.merged_mask_logits)
    assert torch.allclose(vision['relevance'], after.relevance, atol=1e-6)
    folder = save_model(model, tmp_path / 'm')
    loaded = load_model(folder)
    assert loaded.config.heads.relevance_offset == pytest.approx(2 * cal.relevance_offset)
    with torch.no_grad():
        again = loaded(images, tok.input_ids, tok.attention_mask, aux_outputs=False)
    assert torch.allclose(again.relevance, after.relevance, atol=1e-6)
    assert torch.allclose(again.no_target_prob, after.no_target_prob, atol=1e-6)


def test_cli_calibrate_writes_a_model_whose_evaluation_gives_the_chosen_giou(tmp_path, capsys):
    import json

    from poa_gres_ros.tools.cli import main

    from support.gref_files import write_grefcoco_fixture

    data, model, out = tmp_path / 'gref', tmp_path / 'tiny', tmp_path / 'calibrated'
    write_grefcoco_fixture(str(data))
    assert main(['init-model', '--preset', 'tiny', '--out', str(model), '--seed', '1']) == 0
    args = ['calibrate', '--model', str(model), '--data', str(data), '--split', 'train']
    assert main([*args, '--out', str(model)]) == 2  # never overwrites the model it reads
    assert 'new folder' in capsys.readouterr().err
    assert main([*args, '--out', str(out), '--threads', '1']) == 0
    with open(out / 'calibration.json') as fh:
        cal = json.load(fh)['calibration']
    per_r = cal['giou_per_relevance']  # JSON keys: the candidates as text
    assert per_r[str(cal['relevance_threshold'])] == max(per_r.values())
    report = tmp_path / 'report'
    ev = ['eval', '--model', str(out), '--data', str(data), '--split', 'train', '--examples', '0']
    assert main([*ev, '--out', str(report), '--threads', '1']) == 0
    with open(report / 'report.json') as fh:
        giou = json.load(fh)['splits']['train']['summary']['all']['gIoU']
    assert giou == pytest.approx(cal['no_target']['giou'], abs=1e-6)
