"""The tabletop dataset end to end: gRefCOCO files, annotation consistency, determinism."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from poa_gres_ros.tabletop.camera import RESOLUTIONS, CameraPose, Lighting
from poa_gres_ros.tabletop.carriers import HELD_OUT_CARRIERS
from poa_gres_ros.tabletop.catalog import HELD_OUT_PAIRS, HELD_OUT_SYNONYMS, TYPE_KEYS
from poa_gres_ros.tabletop.dataset import COMPOSITION, make_dataset
from poa_gres_ros.tabletop.queries import mentioned_pairs, query_from_dict
from poa_gres_ros.tabletop.render import min_visible_area_px
from poa_gres_ros.tabletop.scene import TabletopScene, sample_scene_spec
from poa_gres_ros.tabletop.sensor import SensorEffects
from poa_gres_ros.tabletop.textures import TABLE_TEXTURES
from poa_gres_ros.tools.cli import main as cli_main

pytest.importorskip('pybullet')
pytest.importorskip('pycocotools')
# pycocotools 2.0 calls np.array(copy=False) on numpy 2; harmless here.
pytestmark = pytest.mark.filterwarnings('ignore::DeprecationWarning:pycocotools')

SCENES = {'train': 3, 'val': 2, 'test': 2, 'test_comp': 2}  # = --scenes 3 --eval-scenes 2
SEED = 5


@pytest.fixture(scope='session')
def dataset_dir(tmp_path_factory):
    """A 9-scene dataset of all splits (about 6 s on one core)."""
    out = str(tmp_path_factory.mktemp('tabletop') / 'ds')
    make_dataset(out, SCENES, seed=SEED, workers=1, progress=False)
    return out


@pytest.fixture(scope='session')
def loaded(dataset_dir):
    from pycocotools.coco import COCO

    coco = COCO(os.path.join(dataset_dir, 'instances.json'))
    with open(os.path.join(dataset_dir, 'grefs(unc).json')) as fh:
        refs = json.load(fh)
    return coco, refs


def _decode(coco, ann_id):
    from pycocotools import mask as mask_utils

    seg = dict(coco.anns[ann_id]['segmentation'])
    return mask_utils.decode({'size': seg['size'], 'counts': seg['counts'].encode()}).astype(bool)


def test_files_and_counts(dataset_dir, loaded):
    coco, refs = loaded
    images = coco.dataset['images']
    assert [c['name'] for c in coco.dataset['categories']] == list(TYPE_KEYS)
    assert {s: sum(im['split'] == s for im in images) for s in SCENES} == SCENES
    for im in images:
        rgb = cv2.imread(os.path.join(dataset_dir, 'images', im['file_name']))
        assert rgb.shape == (im['height'], im['width'], 3)
        assert (im['width'], im['height']) in {(w, h) for w, h, _ in RESOLUTIONS}
        assert im['table']['texture'] in TABLE_TEXTURES
        assert np.array(im['K']).shape == (3, 3) and im['K'][0][0] > 0
    with open(os.path.join(dataset_dir, 'summary.json')) as fh:
        summary = json.load(fh)
    for split, s in summary['splits'].items():
        rs = [r for r in refs if r['split'] == split]
        assert s['refs'] == len(rs) and s['sentences'] == sum(len(r['sentences']) for r in rs)
    assert {r['expr_type'] for r in refs} == {'single', 'multi', 'no_target'}
    assert len({r['ref_id'] for r in refs}) == len(refs)
    sent_ids = [s['sent_id'] for r in refs for s in r['sentences']]
    assert len(set(sent_ids)) == len(sent_ids)


def test_rle_masks_equal_a_fresh_render(dataset_dir, loaded):
    """The stored camera, light, camera effects and seed reproduce every stored image and
    mask exactly."""
    coco, _ = loaded
    for im in coco.dataset['images'][:4]:
        cam = {k: v for k, v in im['camera'].items() if k not in ('K', 'T_world_camera')}
        cam = {k: tuple(v) if isinstance(v, list) else v for k, v in cam.items()}
        light = {k: tuple(v) if isinstance(v, list) else v for k, v in im['lighting'].items()}
        pose = CameraPose(**cam)
        assert np.allclose(pose.K, im['K'])
        spec = sample_scene_spec(im['scene_seed'], COMPOSITION[im['split']])
        with TabletopScene(spec) as scene:
            view = scene.render(pose, Lighting(**light))
        stored = cv2.imread(os.path.join(dataset_dir, 'images', im['file_name']))[:, :, ::-1]
        assert np.array_equal(stored, SensorEffects(**im['sensor']).apply(view.rgb))
        anns = coco.imgToAnns[im['id']]
        assert len(anns) == len(view.well_visible())  # slivers are not annotated
        for ann, idx in zip(anns, view.well_visible()):
            assert np.array_equal(_decode(coco, ann['id']), view.mask(idx))


def test_every_ref_is_consistent(loaded):
    coco, refs = loaded
    for r in refs:
        im = coco.imgs[r['image_id']]
        assert r['file_name'].startswith(os.path.splitext(im['file_name'])[0] + '_')
        kind = r['expr_type']
        if r['no_target']:
            assert kind == 'no_target' and r['ann_id'] == [-1] and r['category_id'] == [-1]
        else:
            assert len(r['ann_id']) == (1 if kind == 'single' else len(r['ann_id']))
            assert kind != 'multi' or len(r['ann_id']) >= 2
            assert kind != 'no_target'
            for a, c in zip(r['ann_id'], r['category_id']):
                ann = coco.anns[a]
                assert ann['image_id'] == r['image_id'] and ann['category_id'] == c
                assert ann['area'] >= min_visible_area_px(im['width'], im['height'])
                m = _decode(coco, a)
                assert m.shape == (im['height'], im['width']) and m.sum() == ann['area']
        for s in r['sentences']:
            words = s['sent'].replace(',', ' ,').replace('?', ' ?').replace('.', ' .').split()
            assert s['raw'] == s['sent'] and s['tokens'] == words
            ids, ends = [], -1
            for p in s['phrases']:
                assert s['sent'][p['char_start'] : p['char_end']] == p['text']
                assert p['char_start'] > ends
                ends = p['char_end']
                ids += p['ann_ids']
                assert bool(p['ann_ids']) != r['no_target']
            assert len(ids) == len(set(ids))  # phrases refer to disjoint instances
            assert sorted(ids) == sorted(a for a in r['ann_id'] if a != -1)


def test_no_target_refs_name_nothing_in_the_scene(loaded):
    coco, refs = loaded
    for r in (r for r in refs if r['no_target']):
        im = coco.imgs[r['image_id']]
        spec = sample_scene_spec(im['scene_seed'], COMPOSITION[im['split']])
        query = query_from_dict(r['query'])
        with TabletopScene(spec) as scene:  # every object of the scene, visible or not
            for f in query.filters():
                assert not any(f.matches(o) for o in scene.objects), r['sentences'][0]['sent']


def test_compositional_split_holds_out_its_pairs(loaded):
    coco, refs = loaded
    names = {c['id']: c['name'] for c in coco.dataset['categories']}
    for ann in coco.dataset['annotations']:
        split = coco.imgs[ann['image_id']]['split']
        held = (ann['colour'], names[ann['category_id']]) in HELD_OUT_PAIRS
        assert not held or split == 'test_comp'
    comp = [r for r in refs if r['split'] == 'test_comp']
    assert comp
    for r in refs:
        named = mentioned_pairs(query_from_dict(r['query'])) & HELD_OUT_PAIRS
        assert bool(named) == (r['split'] == 'test_comp'), r['sentences'][0]['sent']


def test_same_seed_same_bytes_with_two_workers(dataset_dir, tmp_path):
    out = str(tmp_path / 'again')
    args = [
        'make-dataset',
        '--out',
        out,
        '--scenes',
        str(SCENES['train']),
        '--eval-scenes',
        str(SCENES['test']),
        '--seed',
        str(SEED),
        '--no-progress',
    ]
    assert cli_main(args + ['--workers', '2']) == 0
    for f in ('instances.json', 'grefs(unc).json'):
        with open(os.path.join(dataset_dir, f), 'rb') as a, open(os.path.join(out, f), 'rb') as b:
            assert a.read() == b.read()
    names = sorted(os.listdir(os.path.join(dataset_dir, 'images')))
    assert names == sorted(os.listdir(os.path.join(out, 'images'))) and len(names) == 9
    for name in names:
        a = cv2.imread(os.path.join(dataset_dir, 'images', name))
        b = cv2.imread(os.path.join(out, 'images', name))
        assert np.array_equal(a, b)
    # An existing dataset is not overwritten silently; other seeds give other data.
    assert cli_main(args) == 2
    other = str(tmp_path / 'other')
    assert (
        cli_main(
            [
                'make-dataset',
                '--out',
                other,
                '--scenes',
                '0',
                '--eval-scenes',
                '1',
                '--seed',
                str(SEED + 1),
                '--split',
                'val',
                '--no-progress',
            ]
        )
        == 0
    )
    a = cv2.imread(os.path.join(dataset_dir, 'images', 'tabletop_val_000000_0.png'))
    b = cv2.imread(os.path.join(other, 'images', 'tabletop_val_000000_0.png'))
    assert not np.array_equal(a, b)


def test_held_out_phrasing_only_in_the_test_split(loaded):
    _, refs = loaded
    words = [w for sg, pl in HELD_OUT_SYNONYMS.values() for w in sg + pl]
    starts = tuple(c.split('{}')[0] for c in HELD_OUT_CARRIERS)
    n_test = 0
    for r in refs:
        for s in r['sentences']:
            uses = any(w in s['sent'] for w in words) or s['sent'].startswith(starts)
            assert uses == s['held_out_phrasing'], s['sent']
            assert not uses or r['split'] == 'test', (r['split'], s['sent'])
            n_test += uses
    assert n_test > 0


def test_test_split_alone_gives_the_same_images_and_sentences(dataset_dir, loaded, tmp_path):
    """``--scenes 0 --split test`` regenerates exactly the test split of a full dataset."""
    coco, refs = loaded
    out = str(tmp_path / 'test_only')
    args = ['make-dataset', '--out', out, '--scenes', '0', '--eval-scenes', str(SCENES['test'])]
    args += ['--seed', str(SEED), '--split', 'test', '--no-progress']
    assert cli_main(args) == 0
    with open(os.path.join(out, 'grefs(unc).json')) as fh:
        alone = json.load(fh)

    def sents(rs):
        return [(r['file_name'].rsplit('_', 1)[0], s['sent']) for r in rs for s in r['sentences']]

    assert sents(alone) == sents(r for r in refs if r['split'] == 'test')
    names = sorted(os.listdir(os.path.join(out, 'images')))
    assert names == sorted(
        im['file_name'] for im in coco.dataset['images'] if im['split'] == 'test'
    )
    for name in names:
        a = cv2.imread(os.path.join(dataset_dir, 'images', name))
        b = cv2.imread(os.path.join(out, 'images', name))
        assert np.array_equal(a, b)
