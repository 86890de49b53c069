"""Writes a tiny gRefCOCO-format dataset (and a Ref-ZOM pickle) for loader/trainer tests.

Each image shows coloured shapes on grey: a red square (polygon annotation), a blue and a
green disc (compressed RLE), and a crowd region (uncompressed RLE, iscrowd=1). Refs: one
single target, one multi target that also lists the crowd annotation (it must be skipped),
one no-target ([-1]). Splits: image 0 and 1 'train', image 2 'val', image 3 'test_comp'.
"""

from __future__ import annotations

import json
import os
import pickle

import cv2
import numpy as np
from pycocotools import mask as mask_utils

COLORS = {'red': (220, 30, 30), 'blue': (30, 30, 220), 'green': (30, 180, 30)}
SPLITS = ['train', 'train', 'val', 'test_comp']


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _uncompressed_rle(mask: np.ndarray) -> dict:
    flat = mask.astype(np.uint8).flatten(order='F')
    counts, prev, run = [], 0, 0
    for v in flat:
        if v != prev:
            counts.append(run)
            run, prev = 0, v
        run += 1
    counts.append(run)
    return {'size': list(mask.shape), 'counts': counts}


def write_grefcoco_fixture(root, size_hw=(64, 96), num_images=4, seed=0) -> dict:
    """Write the dataset under ``root``; returns {'masks': {ann_id: (H, W) bool}, ...}."""
    h, w = size_hw
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, 'images'), exist_ok=True)
    images, anns, refs, gt = [], [], [], {}
    ann_id, sent_id = 1, 1
    yy, xx = np.mgrid[:h, :w]
    for i in range(num_images):
        img = np.full((h, w, 3), 128, np.uint8)
        # red square (polygon), left part of the image
        x0, y0 = int(rng.integers(2, w // 4)), int(rng.integers(2, h // 3))
        s = h // 3
        sq = np.zeros((h, w), bool)
        sq[y0 : y0 + s, x0 : x0 + s] = True
        img[sq] = COLORS['red']
        poly = [x0, y0, x0 + s, y0, x0 + s, y0 + s, x0, y0 + s]
        objs = [('red', sq, {'segmentation': [[float(v) for v in poly]]})]
        for name, cx in (('blue', int(w * 0.55)), ('green', int(w * 0.82))):
            cy, r = int(rng.integers(h // 3, 2 * h // 3)), int(h * 0.16)
            disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            img[disc] = COLORS[name]
            objs.append((name, disc, {'segmentation': _rle(disc)}))
        crowd = np.zeros((h, w), bool)
        crowd[h - 6 :, : w // 2] = True
        objs.append(('crowd', crowd, {'segmentation': _uncompressed_rle(crowd), 'iscrowd': 1}))
        fname = f'scene_{i:03d}.png'
        cv2.imwrite(os.path.join(root, 'images', fname), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        images.append({'id': i + 1, 'file_name': fname, 'height': h, 'width': w})
        ids = {}
        for name, m, seg in objs:
            ys, xs = np.nonzero(m)
            anns.append(
                {
                    'id': ann_id,
                    'image_id': i + 1,
                    'category_id': 1,
                    'iscrowd': 0,
                    'area': int(m.sum()),
                    'bbox': [
                        int(xs.min()),
                        int(ys.min()),
                        int(np.ptp(xs)) + 1,
                        int(np.ptp(ys)) + 1,
                    ],
                    **seg,
                }
            )
            gt[ann_id] = m
            ids[name] = ann_id
            ann_id += 1

        specs = [
            ([ids['red']], ['the red square', 'red block on the left'], False),
            ([ids['blue'], ids['green'], ids['crowd']], ['the two discs'], False),
            ([-1], ['the yellow duck'], True),
        ]
        for ann_list, texts, no_target in specs:
            sents = []
            for t in texts:
                sents.append(
                    {'raw': t, 'sent': t.lower(), 'sent_id': sent_id, 'tokens': t.lower().split()}
                )
                sent_id += 1
            refs.append(
                {
                    'ref_id': len(refs) + 1,
                    'image_id': i + 1,
                    'file_name': fname.replace('.png', f'_{len(refs)}.png'),
                    'split': SPLITS[i % len(SPLITS)],
                    'ann_id': ann_list,
                    'category_id': [1] * len(ann_list),
                    'no_target': no_target,
                    'sentences': sents,
                    'sent_ids': [x['sent_id'] for x in sents],
                }
            )
    coco = {
        'images': images,
        'annotations': anns,
        'categories': [{'id': 1, 'name': 'shape', 'supercategory': 'shape'}],
    }
    with open(os.path.join(root, 'instances.json'), 'w') as fh:
        json.dump(coco, fh)
    with open(os.path.join(root, 'grefs(unc).json'), 'w') as fh:
        json.dump(refs, fh)
    return {'masks': gt, 'refs': refs, 'images': images}


def write_refzom_pickle(root, refs) -> str:
    """Ref-ZOM-style ``refs(final).p`` from gRefCOCO refs: 'zero'/'one'/'many' sources."""
    out = []
    for r in refs:
        n = len([a for a in r['ann_id'] if a != -1])
        src = 'zero' if r['no_target'] else ('one' if n == 1 else 'many')
        ann = r['ann_id'][:2] if src == 'many' else (r['ann_id'][0] if src == 'one' else 1)
        split = 'test' if r['split'] != 'train' else 'train'
        out.append({**r, 'ann_id': ann, 'source': src, 'split': split})
    path = os.path.join(root, 'refs(final).p')
    with open(path, 'wb') as fh:
        pickle.dump(out, fh, protocol=2)
    return path
