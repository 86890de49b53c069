"""Write tabletop views in the gRefCOCO format: COCO instances + grefs + images.

Format: docs/method.md#grefcoco-format.

A dataset folder holds:
- ``instances.json``: COCO ``images`` (plus ``K``, ``camera``, ``lighting``, ``table``
  (texture name and RGBA tint), ``sensor`` (camera effects on the PNG, ``sensor`` module),
  ``split``, ``scene_seed``, ``view_index``), ``annotations`` (one per *well-visible* object,
  see ``render``: objects with a tiny visible mask are dropped; ``segmentation`` is COCO RLE
  from ``pycocotools.mask.encode`` with ``counts`` as str, ``bbox`` [x, y, w, h] px,
  ``area`` px, ``iscrowd`` 0, plus ``colour``, ``size_class``, ``scale`` and
  ``centre_xyz_m``) and ``categories`` (one per object type).
- ``grefs(unc).json``: a list of refs ``{ref_id, image_id, file_name, split, ann_id,
  category_id, no_target, sentences, sent_ids}`` as in gRefCOCO, where ``ann_id`` is ``[-1]``
  and ``category_id`` ``[-1]`` for no-target, and ``sentences`` are ``{raw, sent, sent_id,
  tokens}``. Tabletop extras: ``expr_type``, ``template``, ``query`` (the meaning, see
  ``queries.query_from_dict``) and per sentence ``phrases: [{text, char_start, char_end,
  ann_ids}]`` (spans index ``sent``; ``raw == sent``).
- ``images/<file_name>``: RGB PNG at the view's resolution (``camera.RESOLUTIONS``).

Ref ``file_name`` follows gRefCOCO: the image's file name with ``_<ref_id>`` inserted before the
extension (loaders strip the last ``_`` field); loaders should find images by ``image_id``.
Ids are assigned in the order records are added, so the output is byte-identical for the same
records in the same order.
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from poa_gres_ros.tabletop.catalog import TYPE_KEYS, category_id

INSTANCES_FILE = 'instances.json'
REFS_FILE = 'grefs(unc).json'
IMAGES_DIR = 'images'
_TOKEN_RE = re.compile(r'[a-z0-9]+|[^\sa-z0-9]')


def encode_mask(mask: np.ndarray) -> dict:
    """COCO RLE of a (H, W) bool mask: ``{'size': [H, W], 'counts': str}`` (pycocotools)."""
    from pycocotools import mask as mask_utils

    if mask.ndim != 2:
        raise ValueError(f'mask must be (H, W), got shape {mask.shape}')
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {'size': [int(v) for v in rle['size']], 'counts': rle['counts'].decode('ascii')}


def tokenize(sent: str) -> list[str]:
    """Word tokens as in RefCOCO ``tokens`` (lower-case words and single punctuation marks)."""
    return _TOKEN_RE.findall(sent.lower())


def _r(v, nd=6):
    return [round(float(x), nd) for x in v]


def view_record(
    scene, view, referrals, *, split: str, file_name: str, view_index: int, sensor=None
) -> dict:
    """Everything the writer needs from one view, as plain JSON-ready data (no arrays).

    Built where the view was rendered (a worker process), so only RLE strings travel.
    Object indices in ``refs`` refer to ``objects[*]['index']``. ``sensor``: the
    ``sensor.SensorEffects`` applied to the written image (None: the image is the render).
    """
    from pycocotools import mask as mask_utils

    objects = []
    for idx in view.well_visible():
        obj = scene.objects[idx]
        rle = encode_mask(view.mask(idx))
        coco_rle = {'size': rle['size'], 'counts': rle['counts'].encode('ascii')}
        objects.append(
            {
                'index': idx,
                'type': obj.type_key,
                'colour': obj.colour,
                'size_class': obj.size_class,
                'scale': round(obj.spec.scale, 6),
                'centre_xyz_m': _r(obj.centre_xyz_m),
                'segmentation': rle,
                'area': int(mask_utils.area(coco_rle)),
                'bbox': _r(mask_utils.toBbox(coco_rle), 2),
            }
        )
    refs = [
        {
            'template': r.template,
            'expr_type': r.expr_type,
            'targets': sorted(r.targets),
            'phrase_targets': [sorted(s) for s in r.phrase_targets],
            'query': r.query.to_dict(),
            'sentences': [
                {'text': s.text, 'spans': [list(sp) for sp in s.spans], 'held_out': s.held_out}
                for s in r.sentences
            ],
        }
        for r in referrals
    ]
    pose = view.pose
    return {
        'split': split,
        'file_name': file_name,
        'view_index': view_index,
        'scene_seed': scene.spec.seed,
        'width': pose.width_px,
        'height': pose.height_px,
        'K': np.round(pose.K, 6).tolist(),
        'camera': pose.to_dict(),
        'lighting': view.lighting.to_dict(),
        'table': {
            'texture': scene.spec.table_texture,
            'rgba': _r(scene.spec.table_rgba, 4),
        },
        'sensor': None if sensor is None else sensor.to_dict(),
        'n_scene_objects': len(scene.objects),
        'objects': objects,
        'refs': refs,
    }


class GRefWriter:
    """Collects view records, assigns COCO/gRefCOCO ids and writes the two json files."""

    def __init__(self, info: dict | None = None):
        self.info = dict(info or {})
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.refs: list[dict] = []
        self._n_sent = 0

    def add(self, rec: dict) -> None:
        """Add one ``view_record`` (ids continue from the previous records)."""
        image_id = len(self.images) + 1
        self.images.append(
            {
                'id': image_id,
                'file_name': rec['file_name'],
                'width': rec['width'],
                'height': rec['height'],
                'split': rec['split'],
                'scene_seed': rec['scene_seed'],
                'view_index': rec['view_index'],
                'K': rec['K'],
                'camera': rec['camera'],
                'lighting': rec['lighting'],
                'table': rec['table'],
                'sensor': rec['sensor'],
            }
        )
        ann_of, cat_of = {}, {}
        for o in rec['objects']:
            ann_id = len(self.annotations) + 1
            ann_of[o['index']], cat_of[o['index']] = ann_id, category_id(o['type'])
            self.annotations.append(
                {
                    'id': ann_id,
                    'image_id': image_id,
                    'category_id': cat_of[o['index']],
                    'segmentation': o['segmentation'],
                    'area': o['area'],
                    'bbox': o['bbox'],
                    'iscrowd': 0,
                    'colour': o['colour'],
                    'size_class': o['size_class'],
                    'scale': o['scale'],
                    'centre_xyz_m': o['centre_xyz_m'],
                }
            )
        stem, ext = os.path.splitext(rec['file_name'])
        for r in rec['refs']:
            ref_id = len(self.refs) + 1
            missing = [t for t in r['targets'] if t not in ann_of]
            if missing:
                raise RuntimeError(f'ref targets objects {missing} that are not in the view')
            sentences = []
            for s in r['sentences']:
                self._n_sent += 1
                text = s['text']
                sentences.append(
                    {
                        'raw': text,
                        'sent': text,
                        'sent_id': self._n_sent,
                        'tokens': tokenize(text),
                        'held_out_phrasing': bool(s.get('held_out', False)),
                        'phrases': [
                            {
                                'text': text[a:b],
                                'char_start': a,
                                'char_end': b,
                                'ann_ids': [ann_of[t] for t in pt],
                            }
                            for (a, b), pt in zip(s['spans'], r['phrase_targets'])
                        ],
                    }
                )
            no_target = not r['targets']
            self.refs.append(
                {
                    'ref_id': ref_id,
                    'image_id': image_id,
                    'file_name': f'{stem}_{ref_id}{ext}',
                    'split': rec['split'],
                    'ann_id': [-1] if no_target else [ann_of[t] for t in r['targets']],
                    'category_id': [-1] if no_target else [cat_of[t] for t in r['targets']],
                    'no_target': no_target,
                    'sentences': sentences,
                    'sent_ids': [s['sent_id'] for s in sentences],
                    'expr_type': r['expr_type'],
                    'template': r['template'],
                    'query': r['query'],
                }
            )

    def categories(self) -> list[dict]:
        return [{'id': category_id(k), 'name': k, 'supercategory': 'tabletop'} for k in TYPE_KEYS]

    def write(self, out_dir: str) -> tuple[str, str]:
        """Write ``instances.json`` and ``grefs(unc).json`` into ``out_dir``; returns paths."""
        os.makedirs(out_dir, exist_ok=True)
        inst = {
            'info': self.info,
            'licenses': [],
            'images': self.images,
            'annotations': self.annotations,
            'categories': self.categories(),
        }
        paths = (os.path.join(out_dir, INSTANCES_FILE), os.path.join(out_dir, REFS_FILE))
        for path, obj in zip(paths, (inst, self.refs)):
            with open(path, 'w', encoding='utf-8') as fh:
                json.dump(obj, fh, separators=(',', ':'), ensure_ascii=True)
                fh.write('\n')
        return paths
