"""Instance-level metrics against hand-computed cases (docs/metrics.md, instance metrics)."""

from __future__ import annotations

import numpy as np
import pytest

from poa_gres_ros.core.instance_metrics import (
    GtPhrase,
    InstanceEvaluator,
    count_instances,
    gt_phrases_of,
    iou_matrix,
    markdown_table,
    match_instances,
    merge_summaries,
    phrase_index,
    summary_line,
)
from poa_gres_ros.core.metrics import REPORT_TYPES, GresEvaluator
from poa_gres_ros.core.results import PhraseSpan


def _rows(h, w, *boxes):
    """(K, h, w) bool masks, one per box (y0, y1, x0, x1)."""
    out = np.zeros((len(boxes), h, w), bool)
    for k, (y0, y1, x0, x1) in enumerate(boxes):
        out[k, y0:y1, x0:x1] = True
    return out


def _line(*intervals, n=100):
    """(K, 1, n) masks on one pixel row: [start, end) per mask."""
    return _rows(1, n, *[(0, 1, a, b) for a, b in intervals])


# GT on 10 x 10: A top-left 5x5 (25 px), B top-right 5x5 (25 px), C bottom half (50 px)
GT = _rows(10, 10, (0, 5, 0, 5), (0, 5, 5, 10), (5, 10, 0, 10))
PRED = _rows(
    10,
    10,
    (0, 5, 0, 5),  # p0 = A: IoU 1
    (0, 5, 3, 10),  # p1: 35 px, B 25/35 = 0.714, A 10/50 = 0.2
    (5, 10, 0, 4),  # p2: 20 px, C 20/50 = 0.4 (no match)
    (0, 5, 4, 10),  # p3: 30 px, B 25/30 = 0.833, A 5/50 = 0.1
)


def test_iou_matrix_hand_computed():
    iou = iou_matrix(PRED, GT)
    assert iou.shape == (4, 3)
    np.testing.assert_allclose(
        iou,
        [[1.0, 0.0, 0.0], [0.2, 25 / 35, 0.0], [0.0, 0.0, 0.4], [0.1, 25 / 30, 0.0]],
    )
    assert iou_matrix(PRED[:0], GT).shape == (0, 3) and iou_matrix(PRED, GT[:0]).shape == (4, 0)
    with pytest.raises(ValueError, match='differ'):
        iou_matrix(PRED, GT[:, :5])


def test_matching_is_one_to_one_at_iou_half():
    # p1 and p3 both pass 0.5 on B: B goes to one of them (p3, the larger IoU); p2 is under 0.5
    assert match_instances(PRED, GT) == [(0, 0, 1.0), (3, 1, pytest.approx(25 / 30))]
    # at IoU >= 0.4, C is matched too
    assert [(p, g) for p, g, _ in match_instances(PRED, GT, 0.4)] == [(0, 0), (2, 2), (3, 1)]


def test_matching_maximises_the_number_of_pairs_before_their_iou():
    # X = [0, 40), Y = [10, 50); a = [4, 44): X 36/44 = 0.818, Y 34/46 = 0.739;
    # b = [8, 30): X 22/40 = 0.55, Y 20/42 = 0.476 (not allowed).
    # Most IoU over any pairs (a-X + b-Y = 1.294) leaves one allowed pair; two are possible.
    gt, pred = _line((0, 40), (10, 50)), _line((4, 44), (8, 30))
    got = match_instances(pred, gt)
    assert [(p, g) for p, g, _ in got] == [(0, 1), (1, 0)]
    assert [iou for *_, iou in got] == pytest.approx([34 / 46, 22 / 40])


def test_phrase_index_by_largest_character_overlap():
    phrases = [GtPhrase(0, 11, (0,)), GtPhrase(16, 29, (1,))]  # 'the red mug', 'the blue duck'
    assert phrase_index(PhraseSpan('red mug', 4, 11), phrases) == 0
    assert phrase_index(PhraseSpan('mug and the ', 8, 20), phrases) == 1  # 3 vs 4 chars
    assert phrase_index(PhraseSpan('mug and the', 8, 19), phrases) is None  # 3 vs 3: a tie
    assert phrase_index(PhraseSpan('and', 12, 15), phrases) is None  # touches neither
    assert phrase_index(None, phrases) is None


def _sample_multi(ev):
    """'the red mug and the blue duck': two GT objects, three predictions."""
    gt = _rows(10, 10, (0, 5, 0, 5), (5, 10, 5, 10))
    pred = _rows(10, 10, (0, 5, 0, 5), (5, 10, 5, 10), (0, 2, 6, 9))
    spans = [PhraseSpan('red mug', 4, 11), PhraseSpan('the', 0, 3), None]
    phrases = [GtPhrase(0, 11, (0,)), GtPhrase(16, 29, (1,))]
    return ev.add(pred, gt, 'multi', spans, phrases)


def test_one_sample_counts():
    r = _sample_multi(InstanceEvaluator())
    # both GT objects matched; the second instance's span names the other object
    assert (r.num_pred, r.num_gt, r.num_matched) == (3, 2, 2)
    assert (r.phrases_checked, r.phrases_correct) == (2, 1)
    # one GT phrase: not a multi-phrase expression, no phrase check
    single = count_instances(PRED, GT, 'multi', [None] * 4, [GtPhrase(0, 5, (0, 1, 2))])
    assert (single.num_matched, single.phrases_checked) == (2, 0)
    with pytest.raises(ValueError, match='3 phrases for 4'):
        count_instances(PRED, GT, 'multi', [None] * 3)
    with pytest.raises(ValueError, match='expr_type'):
        count_instances(PRED, GT, 'several')


def test_summary_hand_computed():
    ev = InstanceEvaluator()
    _sample_multi(ev)  # multi: P 3, G 2, M 2, phrases 1 of 2
    ev.add(_rows(10, 10, (0, 3, 0, 3)), np.zeros((0, 10, 10), bool), 'no_target')  # P 1, G 0
    ev.add([], _rows(10, 10, (0, 5, 0, 5)), 'single')  # answered no-target: P 0, G 1
    ev.add(_rows(10, 10, (0, 5, 0, 4)), _rows(10, 10, (0, 5, 0, 5)), 'single')  # 20/25: M 1
    s = ev.summary()
    a = s['all']
    assert a['inst-recall'] == pytest.approx(100 * 3 / 4)  # (2 + 0 + 0 + 1) / (2 + 0 + 1 + 1)
    assert a['inst-precision'] == pytest.approx(100 * 3 / 5)  # 3 / (3 + 1 + 0 + 1)
    assert a['count-acc'] == pytest.approx(100 / 3)  # targeted: 3 != 2, 0 != 1, 1 == 1
    assert a['phrase-acc'] == pytest.approx(50.0)
    assert (a['num_pred'], a['num_gt'], a['num_matched'], a['num_targeted']) == (5, 4, 3, 3)
    assert s['single']['inst-recall'] == pytest.approx(50.0)
    assert s['single']['inst-precision'] == pytest.approx(100.0)
    assert s['single']['count-acc'] == pytest.approx(50.0) and s['single']['phrase-acc'] is None
    nt = s['no_target']
    assert nt['inst-recall'] is None and nt['inst-precision'] == 0.0 and nt['count-acc'] is None
    assert len(ev) == 4 and ev.to_records()[1]['num_pred'] == 1


def test_gt_phrases_from_the_phrase_of_each_true_instance():
    """Bag ground truth: each true instance carries the span that names it."""
    mugs, duck = PhraseSpan('the red mugs', 0, 12), PhraseSpan('the duck', 17, 25)
    got = gt_phrases_of([mugs, duck, mugs, None])
    assert got == [GtPhrase(0, 12, (0, 2)), GtPhrase(17, 25, (1,))]
    assert gt_phrases_of([]) == [] and gt_phrases_of([None]) == []


def test_report_helpers_show_the_counted_values():
    ev, gres = InstanceEvaluator(), GresEvaluator()
    _sample_multi(ev)
    gres.add(np.ones((10, 10), bool), np.ones((10, 10), bool), False, False, 2)
    merged = merge_summaries(gres.summary(), ev.summary())
    row = merged['multi']
    assert row['cIoU'] == 100.0 and row['inst-recall'] == 100.0 and row['count'] == 1
    assert row['inst-precision'] == pytest.approx(200 / 3) and row['phrase-acc'] == 50.0
    line = summary_line(row)
    assert line == (
        'instances: recall 100.00 precision 66.67 (2 matched of 2 true, 3 predicted); '
        'count right 0.00; phrase 50.00 (n=2)'
    )
    table = markdown_table(merged, REPORT_TYPES)
    assert len(table) == 2 + len(REPORT_TYPES)
    assert table[0].split(' | ')[1:5] == [
        'inst-recall',
        'inst-precision',
        'count-acc',
        'phrase-acc',
    ]
    assert (
        table[2 + REPORT_TYPES.index('multi')]
        == '| multi | 100.00 | 66.67 | 0.00 | 50.00 | 2 | 2 | 3 | 2 |'
    )
    assert table[2 + REPORT_TYPES.index('single')].startswith('| single | – | – | – | – | 0 |')
