"""gRefCOCO / Ref-ZOM metrics against hand-computed cases (docs/method.md#metrics).

Every branch of ReLA's counting after its fix in commit 884ef17: no-target TP / FN, targeted TN
/ FP (the predicted mask of an FP still enters U), empty union, per-type split, Pr@X boundaries.
"""

import numpy as np
import pytest

from poa_gres_ros.core.metrics import (
    GresEvaluator,
    RefZomEvaluator,
    count_sample,
    gres_metrics,
    intersection_union,
)


def _mask(h, w, *boxes):
    m = np.zeros((h, w), bool)
    for y0, y1, x0, x1 in boxes:
        m[y0:y1, x0:x1] = True
    return m


EMPTY = np.zeros((4, 4), bool)
G = _mask(4, 4, (0, 2, 0, 2))  # 4 px
P_HALF = _mask(4, 4, (0, 2, 0, 1))  # 2 px inside G -> I 2, U 4
P_SHIFT = _mask(4, 4, (0, 2, 1, 3))  # 4 px, I 2, U 6


def test_no_target_true_positive():
    r = count_sample(EMPTY, EMPTY, pred_no_target=True, gt_no_target=True)
    assert (r.intersection_px, r.union_px, r.iou, r.outcome, r.expr_type) == (
        0,
        0,
        1.0,
        'TP',
        'no_target',
    )


def test_no_target_true_positive_ignores_predicted_pixels():
    # ReLA: a predicted no-target decides the sample alone; the mask adds nothing to U.
    r = count_sample(P_SHIFT, EMPTY, pred_no_target=True, gt_no_target=True)
    assert (r.union_px, r.iou, r.outcome) == (0, 1.0, 'TP')


def test_no_target_false_negative_adds_predicted_area_to_union():
    r = count_sample(P_SHIFT, EMPTY, pred_no_target=False, gt_no_target=True)
    assert (r.intersection_px, r.union_px, r.iou, r.outcome) == (0, 4, 0.0, 'FN')
    # a blank mask without the flag still scores IoU 0 (docs/method.md#grefcoco-metrics)
    r = count_sample(EMPTY, EMPTY, pred_no_target=False, gt_no_target=True)
    assert (r.union_px, r.iou, r.outcome) == (0, 0.0, 'FN')


def test_targeted_true_negative():
    r = count_sample(P_SHIFT, G, pred_no_target=False, gt_no_target=False, num_gt_instances=1)
    assert (r.intersection_px, r.union_px, r.outcome, r.expr_type) == (2, 6, 'TN', 'single')
    assert r.iou == pytest.approx(2 / 6)


def test_targeted_false_positive_keeps_predicted_mask_in_union():
    # predicted no-target on a targeted sample: I forced to 0, U = |P u G| with the raw P
    r = count_sample(P_SHIFT, G, pred_no_target=True, gt_no_target=False, num_gt_instances=2)
    assert (r.intersection_px, r.union_px, r.iou, r.outcome, r.expr_type) == (
        0,
        6,
        0.0,
        'FP',
        'multi',
    )
    # with the mask blanked (our Predictor, docs/method.md#no-target) U is only the GT
    r = count_sample(EMPTY, G, pred_no_target=True, gt_no_target=False)
    assert (r.union_px, r.outcome) == (4, 'FP')


def test_targeted_with_empty_union_scores_zero():
    r = count_sample(EMPTY, EMPTY, pred_no_target=False, gt_no_target=False)
    assert (r.union_px, r.iou, r.outcome) == (0, 0.0, 'TN')


def test_full_summary_hand_computed():
    ev = GresEvaluator()
    ev.add(EMPTY, EMPTY, True, True)  # TP: I0 U0 IoU1
    ev.add(P_SHIFT, EMPTY, False, True)  # FN: I0 U4 IoU0
    ev.add(G, G, False, False, 1)  # TN: I4 U4 IoU1
    ev.add(P_HALF, G, False, False, 2)  # TN: I2 U4 IoU.5
    ev.add(P_SHIFT, G, True, False, 3)  # FP: I0 U6 IoU0
    s = ev.summary()
    a = s['all']
    assert a['cIoU'] == pytest.approx(100 * 6 / 18)
    assert a['gIoU'] == pytest.approx(100 * 2.5 / 5)
    assert a['N-acc'] == pytest.approx(50.0)
    assert a['T-acc'] == pytest.approx(100 * 2 / 3)
    assert a['Pr@0.7'] == pytest.approx(100 / 3)
    assert a['Pr@0.9'] == pytest.approx(100 / 3)
    assert (a['TP'], a['FN'], a['FP'], a['TN'], a['count']) == (1, 1, 1, 2, 5)
    assert (a['num_targeted'], a['num_no_target']) == (3, 2)
    # per expression type
    assert s['single']['cIoU'] == pytest.approx(100.0) and s['single']['count'] == 1
    assert s['multi']['cIoU'] == pytest.approx(100 * 2 / 10)
    assert s['multi']['gIoU'] == pytest.approx(25.0)
    assert s['multi']['N-acc'] is None  # no no-target samples: undefined, not 0
    assert s['multi']['T-acc'] == pytest.approx(50.0)
    assert s['no_target']['cIoU'] == pytest.approx(0.0)
    assert s['no_target']['gIoU'] == pytest.approx(50.0)
    assert s['no_target']['T-acc'] is None and s['no_target']['Pr@0.7'] is None
    np.testing.assert_allclose(ev.ious(), [1, 0, 1, 0.5, 0])


def test_pr_threshold_is_inclusive():
    g = _mask(10, 10, (0, 10, 0, 10))
    p = _mask(10, 10, (0, 7, 0, 10))  # IoU exactly 0.7
    s = gres_metrics([p], [g], [False], [False])['all']
    assert s['Pr@0.7'] == 100.0 and s['Pr@0.8'] == 0.0


def test_all_no_target_correct_gives_undefined_ciou():
    s = gres_metrics(np.zeros((2, 3, 3), bool), np.zeros((2, 3, 3), bool), [1, 1], [1, 1])
    assert s['all']['cIoU'] is None and s['all']['gIoU'] == 100.0 and s['all']['N-acc'] == 100.0


def test_array_function_equals_accumulator():
    rng = np.random.default_rng(0)
    n = 12
    gt_nt = rng.random(n) < 0.3
    gts = rng.random((n, 8, 8)) < 0.4
    gts[gt_nt] = False
    preds = rng.random((n, 8, 8)) < 0.4
    pred_nt = rng.random(n) < 0.3
    k = rng.integers(1, 4, n)
    ev = GresEvaluator()
    for i in range(n):
        ev.add(preds[i], gts[i].astype(np.uint8), pred_nt[i], gt_nt[i], k[i])
    assert gres_metrics(preds, gts, pred_nt, gt_nt, k) == ev.summary()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match='resize'):
        intersection_union(np.zeros((4, 4)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match='2-D'):
        intersection_union(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)))
    with pytest.raises(ValueError, match='empty GT mask'):
        count_sample(EMPTY, G, False, True)
    with pytest.raises(ValueError, match='same number'):
        gres_metrics([EMPTY], [EMPTY, EMPTY], [0], [0])
    with pytest.raises(TypeError):
        intersection_union(np.array([['a']]), np.array([['a']]))


def test_refzom_hand_computed():
    ev = RefZomEvaluator()
    assert ev.add(EMPTY, EMPTY, 'zero') == 1.0  # empty prediction on a zero sample: correct
    assert ev.add(P_HALF, EMPTY, 'zero') == 0.0  # any pixel makes it wrong
    assert ev.add(P_HALF, G, 'one') == pytest.approx(0.5)  # I2 U4
    assert ev.add(P_SHIFT, G, 'many') == pytest.approx(2 / 6)  # I2 U6
    s = ev.summary()
    assert s['Acc'] == pytest.approx(50.0)
    assert s['oIoU'] == pytest.approx(100 * 4 / 10)
    assert s['mIoU'] == pytest.approx(100 * (0.5 + 1 / 3) / 2)
    assert s['Pr@0.5'] == pytest.approx(50.0) and s['Pr@0.6'] == 0.0
    assert (s['num_target'], s['num_zero']) == (2, 2)
    with pytest.raises(ValueError, match='source'):
        ev.add(EMPTY, EMPTY, 'none')
