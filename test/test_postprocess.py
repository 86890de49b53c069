"""The one post-processing path (core/postprocess.py, docs/postprocessing.md).

Hand-built model outputs check each rule; a 480x640 parity test checks the OpenCV and torch
resize kernels; a real tiny model checks that evaluation and the Predictor return the same
answers for the same images and sentences.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from poa_gres_ros.core.grounding import ground_phrase
from poa_gres_ros.core.postprocess import (
    InstructionTokens,
    mask_logit_cut,
    postprocess,
    resize_maps_cv2,
    resize_maps_torch,
    select_queries,
    suppress_duplicates,
)
from poa_gres_ros.core.thresholds import Thresholds

from support.gref_files import write_grefcoco_fixture

H, W = 8, 12  # stride-4 maps of a 32 x 48 image
BIG = 8.0  # logit of a confident pixel


def _outputs(relevance, boxes, merged_boxes, nt=0.1, tokens=4):
    """Model outputs (batch of one) with instance i's logits +BIG inside boxes[i], -BIG
    outside, and the merged probability 0.9 inside merged_boxes, 0.1 outside."""
    n = len(relevance)
    logits = np.full((1, n, H, W), -BIG, np.float32)
    for i, box in enumerate(boxes):
        if box is not None:
            y0, y1, x0, x1 = box
            logits[0, i, y0:y1, x0:x1] = BIG
    merged = np.full((1, H, W), 0.1, np.float32)
    for y0, y1, x0, x1 in merged_boxes:
        merged[0, y0:y1, x0:x1] = 0.9
    return {
        'mask_logits': logits,
        'relevance': np.asarray([relevance], np.float32),
        'token_attention': np.full((1, n, tokens), 1.0 / tokens, np.float32),
        'merged_mask': merged,
        'no_target_prob': np.asarray([nt], np.float32),
    }


def test_selection_is_stable_relevance_descending_ties_by_query_index():
    thr = Thresholds(relevance=0.5, max_instances=3)
    rel = np.array([0.9, 0.7, 0.9, 0.2, 0.7, 0.5])
    assert select_queries(rel, thr).tolist() == [0, 2, 1]  # 0.5 is not > 0.5
    assert select_queries(rel, Thresholds(relevance=0.5, max_instances=10)).tolist() == [0, 2, 1, 4]
    assert select_queries(rel, Thresholds(relevance=0.95)).tolist() == []
    assert mask_logit_cut(0.5) == 0.0 and mask_logit_cut(0.0) == -np.inf
    assert mask_logit_cut(1.0) == np.inf and mask_logit_cut(0.75) == pytest.approx(np.log(3))


def test_instances_in_stable_order_with_their_masks_at_the_output_size():
    out = _outputs([0.6, 0.9, 0.6, 0.3], [(0, 4, 0, 3), (4, 8, 6, 9), (0, 2, 9, 12), (5, 8, 0, 3)],
                   [(0, 8, 0, 12)])  # fmt: skip
    (pred,) = postprocess(out, (32, 48), Thresholds())
    assert [i.query_index for i in pred.instances] == [1, 0, 2]
    assert [i.relevance for i in pred.instances] == pytest.approx([0.9, 0.6, 0.6])
    # query 1 covers stride-4 rows 4..7, columns 6..8: source rows 16..31, columns 24..35 with
    # the bilinear edge inside the boundary cells (logits +-8 cross 0 half way)
    m = pred.instances[0].mask
    assert m.shape == (32, 48) and m.dtype == np.bool_
    assert pred.instances[0].box_xyxy_px == (24, 16, 36, 32)
    assert not pred.no_target and pred.no_target_prob == pytest.approx(0.1)
    assert pred.instances[0].phrase is None  # no tokens given: no phrases


def test_duplicates_are_dropped_before_the_instance_cap():
    """Query 2 covers 12 of query 0's 16 stride-4 cells (IoU 0.75): dropped at the default
    0.5, kept at 0.8 and with 1 (no suppression); the cap counts the instances left."""
    boxes = [(0, 4, 0, 4), (4, 8, 6, 9), (0, 4, 1, 4), (5, 8, 0, 3)]
    out = _outputs([0.9, 0.7, 0.8, 0.6], boxes, [(0, 8, 0, 12)])
    (pred,) = postprocess(out, (32, 48), Thresholds())
    assert [i.query_index for i in pred.instances] == [0, 1, 3]
    (pred,) = postprocess(out, (32, 48), Thresholds(max_instances=2))
    assert [i.query_index for i in pred.instances] == [0, 1]  # not [0, 2]: 2 is a duplicate
    (pred,) = postprocess(out, (32, 48), Thresholds(duplicate_iou=0.8))
    assert [i.query_index for i in pred.instances] == [0, 2, 1, 3]
    (pred,) = postprocess(out, (32, 48), Thresholds(duplicate_iou=1.0, max_instances=3))
    assert [i.query_index for i in pred.instances] == [0, 2, 1]
    (pred,) = postprocess(out, (32, 48), Thresholds(), resize='torch')
    assert [i.query_index for i in pred.instances] == [0, 1, 3]


def test_suppress_duplicates_compares_with_kept_masks_only():
    a = np.zeros((3, 4, 4), bool)
    a[0, :2] = True  # rows 0-1
    a[1, 1:3] = True  # rows 1-2: IoU 1/3 with 0
    a[2, 2:4] = True  # rows 2-3: IoU 0 with 0, 1/3 with 1
    assert suppress_duplicates(a, 0.5).tolist() == [0, 1, 2]
    assert suppress_duplicates(a, 0.3).tolist() == [0, 2]  # 1 goes; 2 is compared with 0 only
    assert suppress_duplicates(np.zeros((2, 3, 3), bool), 0.0).tolist() == [0, 1]  # empty: IoU 0
    with pytest.raises(ValueError, match='duplicate_iou'):
        Thresholds(duplicate_iou=1.5)


def test_merged_mask_is_restricted_to_the_reported_instances():
    # merged probability covers the whole image; query 3 (relevance 0.3) is not kept
    out = _outputs([0.8, 0.7, 0.2, 0.3], [(0, 4, 0, 4), (4, 8, 8, 12), (0, 8, 0, 12), (4, 8, 0, 4)],
                   [(0, 8, 0, 12)])  # fmt: skip
    (pred,) = postprocess(out, (32, 48), Thresholds())
    union = pred.instances[0].mask | pred.instances[1].mask
    assert np.array_equal(pred.final_mask, union)
    # two 16 x 16 px squares, each less its one inner corner pixel (bilinear corner < 0)
    assert pred.final_mask.sum() == 2 * (16 * 16 - 1)
    # a merged mask smaller than the instances stays as it is (M restricted, never grown)
    out = _outputs([0.8], [(0, 8, 0, 12)], [(0, 4, 0, 4)])
    (pred,) = postprocess(out, (H, W), Thresholds())
    assert pred.final_mask.sum() == 16 and pred.instances[0].mask.sum() == H * W


def test_a_targeted_answer_without_a_kept_instance_is_no_target():
    # the head says "target" (0.2), the merged mask has 48 px, but no query passes relevance
    out = _outputs([0.4, 0.3], [(0, 4, 0, 4), (0, 8, 0, 12)], [(0, 4, 0, 12)], nt=0.2)
    (pred,) = postprocess(out, (H, W), Thresholds())
    assert pred.no_target and pred.instances == [] and not pred.final_mask.any()
    assert pred.no_target_prob == pytest.approx(0.2)  # the head's value, as given
    # a kept query whose mask is empty at the output size is dropped: again no instance left
    out = _outputs([0.9], [None], [(0, 4, 0, 12)], nt=0.2)
    (pred,) = postprocess(out, (H, W), Thresholds())
    assert pred.no_target and pred.instances == [] and not pred.final_mask.any()


def test_no_target_head_blanks_everything():
    out = _outputs([0.9, 0.8], [(0, 4, 0, 4), (4, 8, 4, 8)], [(0, 8, 0, 8)], nt=0.7)
    (pred,) = postprocess(out, (H, W), Thresholds(no_target=0.5))
    assert pred.no_target and pred.instances == [] and not pred.final_mask.any()
    (pred,) = postprocess(out, (H, W), Thresholds(no_target=0.75))
    assert not pred.no_target and len(pred.instances) == 2


def test_phrases_come_from_the_kept_queries_attention():
    text = 'the cup and the duck'
    offsets = [(0, 0), (0, 3), (4, 7), (8, 11), (12, 15), (16, 20), (0, 0)]
    out = _outputs([0.9, 0.8], [(0, 4, 0, 4), (4, 8, 4, 8)], [(0, 8, 0, 8)], tokens=9)
    att = np.zeros((2, 9), np.float32)  # two padding columns beyond the 7 tokens
    att[0, [1, 2]] = 0.5
    att[1, [4, 5]] = 0.5
    out['token_attention'] = att[None]
    tok = InstructionTokens(text, offsets, [None, 0, 1, 2, 3, 4, None])
    (pred,) = postprocess(out, (H, W), Thresholds(), [tok])
    assert [i.phrase.text for i in pred.instances] == ['the cup', 'the duck']
    assert pred.instruction == text
    assert pred.instances[1].phrase == ground_phrase(text, offsets, att[1, :7], tok.word_ids)


def test_batches_sizes_and_inputs_of_any_kind():
    a = _outputs([0.9], [(0, 4, 0, 4)], [(0, 8, 0, 8)])
    b = _outputs([0.2], [(0, 4, 0, 4)], [(0, 8, 0, 8)])
    both = {k: np.concatenate([a[k], b[k]]) for k in a}
    preds = postprocess(both, [(H, W), (16, 24)], Thresholds())
    assert [p.final_mask.shape for p in preds] == [(H, W), (16, 24)]
    assert [p.no_target for p in preds] == [False, True]
    as_torch = {k: torch.from_numpy(v).half() for k, v in both.items()}
    again = postprocess(as_torch, [(H, W), (16, 24)], Thresholds())
    assert np.array_equal(again[0].final_mask, preds[0].final_mask)
    with pytest.raises(KeyError, match='merged_mask'):
        postprocess({k: v for k, v in a.items() if k != 'merged_mask'}, (H, W), Thresholds())
    with pytest.raises(ValueError, match='3 output sizes for a batch of 2'):
        postprocess(both, [(H, W)] * 3, Thresholds())
    with pytest.raises(ValueError, match='resize'):
        postprocess(a, (H, W), Thresholds(), resize='nearest')
    with pytest.raises(TypeError, match='Thresholds'):
        postprocess(a, (H, W), {'mask': 0.5})


def test_cv2_and_torch_resize_agree_at_480x640():
    """Both kernels sample the same pixel centres; they place the sample points within about
    1e-5 px of each other (torch computes source coordinates in float32), so a map differs by
    at most 1e-5 x its largest step between neighbouring cells, and a mask pixel may differ only
    where the map is that close to the cut."""
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((1, 12, 96, 128)) * 6).astype(np.float32)  # tabletop maps
    a = resize_maps_cv2(logits[0], (480, 640))
    b = resize_maps_torch(torch.from_numpy(logits[0]), (480, 640)).numpy()
    step = max(np.abs(np.diff(logits, axis=2)).max(), np.abs(np.diff(logits, axis=3)).max())
    bound = 1e-5 * step + 1e-6 * np.abs(logits).max()
    assert np.abs(a - b).max() <= bound
    out = {
        'mask_logits': logits,
        'relevance': rng.uniform(0.3, 1.0, (1, 12)).astype(np.float32),
        'token_attention': np.full((1, 12, 5), 0.2, np.float32),
        'merged_mask': 1 / (1 + np.exp(-logits[:, :4].max(1))),
        'no_target_prob': np.array([0.1], np.float32),
    }
    (pc,) = postprocess(out, (480, 640), Thresholds(), resize='cv2')
    (pt,) = postprocess(out, (480, 640), Thresholds(), resize='torch')
    assert [i.query_index for i in pc.instances] == [i.query_index for i in pt.instances]
    assert len(pc.instances) >= 5
    for x, y in zip(pc.instances, pt.instances):
        near_cut = np.abs(resize_maps_cv2(logits[0, [x.query_index]], (480, 640))[0]) <= bound
        assert not np.any((x.mask != y.mask) & ~near_cut)
    assert (pc.final_mask != pt.final_mask).sum() <= 10  # pixels at a cut, out of 307200


@pytest.fixture(scope='module')
def tiny_eval(tmp_path_factory):
    from poa_gres_ros.modeling import build_model
    from poa_gres_ros.training.datasets import GresDataset, load_grefcoco
    from poa_gres_ros.training.datasets.gres_dataset import model_preprocess

    root = str(tmp_path_factory.mktemp('gref'))
    write_grefcoco_fixture(root)
    torch.manual_seed(0)
    model = build_model('tiny').eval()
    recs, masks = load_grefcoco(root, ['train', 'val'])
    cfg = model.config
    ds = GresDataset(recs, masks, os.path.join(root, 'images'), tuple(cfg.input.size_hw),
                     model.tokenizer, cfg.text.max_tokens, model_preprocess(cfg))  # fmt: skip
    return root, model, ds


@pytest.mark.parametrize('relevance', [0.3, 0.465])
def test_evaluation_and_the_predictor_give_the_same_answers(tiny_eval, relevance):
    """Evaluation batches four sentences through ``POAModel.forward`` (tokens padded to
    max_tokens); the Predictor runs one image at a time through the two-stage torch backend.
    Both post-process with the same function: the same decisions, queries, phrases and masks.
    The network itself runs on other batch shapes, so its outputs agree to float rounding
    (about 1e-7), which could move a pixel lying exactly at the mask threshold."""
    from poa_gres_ros.inference import Predictor
    from poa_gres_ros.training.datasets.records import read_rgb
    from poa_gres_ros.training.evaluate import evaluate_dataset

    root, model, ds = tiny_eval
    # 0.3: every query passes and, duplicates kept, several instances; 0.465: the default rule
    thr = Thresholds(relevance=relevance, duplicate_iou=1.0 if relevance == 0.3 else 0.5)
    res = evaluate_dataset(model, ds, thr, batch_size=4, eval_size='source', keep_examples=len(ds))
    assert len(res.examples) == len(ds) == 12
    predictor = Predictor.from_model(model, thresholds=thr)
    kinds, differing, pixels = set(), 0, 0
    for idx, ev, _ in res.examples:
        rec = ds.records[idx]
        predictor.set_instruction(rec.sentence)
        pr = predictor.predict(read_rgb(os.path.join(root, 'images', rec.file_name)))
        assert ev.no_target == pr.no_target
        assert ev.no_target_prob == pytest.approx(pr.no_target_prob, abs=1e-6)
        assert [i.query_index for i in ev.instances] == [i.query_index for i in pr.instances]
        assert [i.phrase for i in ev.instances] == [i.phrase for i in pr.instances]
        for a, b in zip([ev.final_mask] + [i.mask for i in ev.instances],
                        [pr.final_mask] + [i.mask for i in pr.instances]):  # fmt: skip
            differing += int((a != b).sum())
            pixels += a.size
        kinds.add((ev.no_target, len(ev.instances) > 1))
        # the answer agrees with itself: merged pixels lie in instances; no-target has neither
        union = np.zeros_like(ev.final_mask)
        for inst in ev.instances:
            union |= inst.mask
        assert not np.any(ev.final_mask & ~union)
        assert bool(ev.instances) != ev.no_target
        assert not (ev.no_target and ev.final_mask.any())
        sample = next(s for s in res.samples if s['index'] == idx)
        assert sample['num_pred'] == len(ev.instances) and sample['pred_no_target'] == ev.no_target
    assert differing <= 1e-4 * pixels, (differing, pixels)
    if relevance == 0.3:  # every query of the untrained model passes: several instances
        assert kinds == {(False, True)}
    else:  # the untrained model's best relevance per sentence lies in 0.454-0.480, so
        # at 0.465 some sentences keep no query and become no-target
        assert {nt for nt, _ in kinds} == {True, False}


def test_one_pass_for_several_thresholds_equals_one_evaluation_each(tiny_eval):
    """``evaluate_thresholds`` post-processes one network pass per set of thresholds: each
    result equals ``evaluate_dataset`` with that set alone, and calibration, which uses it
    for all relevance candidates, equals the per-candidate no-target calibration."""
    import json

    from poa_gres_ros.training.calibrate import calibrate, calibrate_no_target
    from poa_gres_ros.training.evaluate import evaluate_dataset, evaluate_thresholds

    _, model, ds = tiny_eval
    sets = [Thresholds(relevance=0.3, duplicate_iou=1.0), Thresholds(relevance=0.465),
            Thresholds(relevance=0.465, no_target=1.0)]  # fmt: skip
    together = evaluate_thresholds(model, ds, sets, batch_size=4, eval_size='source')
    for thr, res in zip(sets, together):
        alone = evaluate_dataset(model, ds, thr, batch_size=4, eval_size='source')
        assert json.dumps(res.summary, sort_keys=True) == json.dumps(alone.summary, sort_keys=True)
        assert res.samples == alone.samples
    assert [s['num_pred'] for s in together[0].samples] != [
        s['num_pred'] for s in together[1].samples
    ]  # the sets do give different answers
    candidates = (0.3, 0.465, 0.6)
    cal = calibrate(model, ds, relevance_candidates=candidates, batch_size=4)
    for r in candidates:
        one = calibrate_no_target(model, ds, Thresholds(relevance=r), batch_size=4)
        assert cal.giou_per_relevance[r] == one.giou
        if r == cal.relevance_threshold:
            assert cal.no_target == one
    with pytest.raises(ValueError):
        evaluate_thresholds(model, ds, [])
