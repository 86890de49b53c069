"""Cached frozen features for CPU training of the decoder only.

With a frozen backbone and a frozen text encoder (tabletop preset), their outputs never
change during training, so they are computed once and read back every epoch:

* image features 'res2'..'res5' of every distinct image, float16, one ``.npy`` file per level
  of shape (num_images, C_l, H_l, W_l), read through ``np.load(mmap_mode='r')``;
* the text encoder's raw last hidden state of every distinct sentence, float16
  (num_sentences, L, D), with its ``input_ids`` / ``attention_mask`` (num_sentences, L) int64;
* ``index.json``: image file names and sentences in row order, shapes, and a fingerprint of
  the model parts that produced the features (input, backbone and text config sections).

No pickle anywhere (``.npy`` files are opened with ``allow_pickle=False``). A cache is
written into a temporary folder and renamed when complete, so an interrupted build never
leaves a half cache that looks valid; a fingerprint mismatch raises instead of silently
training on features of another backbone. Memory: 384x512 EfficientNet-Lite0 features take
about 1.1 MB per image in float16.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from poa_gres_ros.training.datasets.gres_dataset import object_targets, tokenize
from poa_gres_ros.training.datasets.records import CocoMasks, GresRecord, read_rgb

CACHE_FORMAT = 'poa_gres_ros.feature_cache/1'
LEVELS = ('res2', 'res3', 'res4', 'res5')


def model_fingerprint(model_cfg) -> dict:
    """The config sections that determine cached features (input, backbone, text)."""
    d = model_cfg.to_dict()
    return {k: d[k] for k in ('input', 'backbone', 'text')}


class FeatureCache:
    """Read access to a built cache folder.

    Args:
        cache_dir: folder written by :func:`build_feature_cache`.
    Raises:
        FileNotFoundError: no complete cache there.
    """

    def __init__(self, cache_dir: str | os.PathLike):
        self.cache_dir = os.fspath(cache_dir)
        path = os.path.join(self.cache_dir, 'index.json')
        if not os.path.isfile(path):
            raise FileNotFoundError(f'no feature cache at {self.cache_dir} (index.json missing)')
        with open(path, encoding='utf-8') as fh:
            self.index = json.load(fh)
        if self.index.get('format') != CACHE_FORMAT:
            raise ValueError(f'{path}: format {self.index.get("format")!r}, need {CACHE_FORMAT}')
        self.image_row = {name: i for i, name in enumerate(self.index['images'])}
        self.sentence_row = {s: i for i, s in enumerate(self.index['sentences'])}
        self._arrays: dict[str, np.ndarray] | None = None

    def arrays(self) -> dict[str, np.ndarray]:
        """Memory-mapped arrays (opened lazily, once per process, so DataLoader workers work)."""
        if self._arrays is None:
            names = [*LEVELS, 'text_features', 'input_ids', 'attention_mask']
            self._arrays = {
                n: np.load(
                    os.path.join(self.cache_dir, f'{n}.npy'), mmap_mode='r', allow_pickle=False
                )
                for n in names
            }
        return self._arrays

    def check(self, model_cfg, records: Sequence[GresRecord]) -> None:
        """Raise ValueError if the cache was built by other frozen parts or lacks samples."""
        if self.index['fingerprint'] != model_fingerprint(model_cfg):
            raise ValueError(
                f'feature cache {self.cache_dir} was built with another input size, '
                'backbone or text encoder; delete it or choose another cache_dir'
            )
        missing_img = {r.file_name for r in records} - set(self.image_row)
        missing_txt = {r.sentence for r in records} - set(self.sentence_row)
        if missing_img or missing_txt:
            raise ValueError(
                f'feature cache {self.cache_dir} lacks {len(missing_img)} images and '
                f'{len(missing_txt)} sentences of this dataset; rebuild it'
            )

    def __getstate__(self):  # DataLoader workers re-open the memmaps themselves
        state = dict(self.__dict__)
        state['_arrays'] = None
        return state


@torch.no_grad()
def build_feature_cache(
    model,
    records: Sequence[GresRecord],
    image_root: str | os.PathLike,
    cache_dir: str | os.PathLike,
    preprocess: Callable[[np.ndarray], torch.Tensor],
    batch_size: int = 8,
    device: str | torch.device = 'cpu',
    progress: bool = True,
) -> FeatureCache:
    """Compute and store frozen image and text features of ``records`` (if not already there).

    Args:
        model: a ``POAModel`` with ``extract_features``, ``encode_text``, ``tokenizer`` and
            ``config`` (its backbone and text encoder should be frozen; the cached features are
            only valid while they do not train).
        records: samples whose images and sentences are cached.
        image_root: folder of ``record.file_name``.
        cache_dir: output folder; reused when it holds a complete cache with the same
            fingerprint and every image and sentence.
        preprocess: the model's image preprocessing ``(H, W, 3) uint8 -> (3, H, W)``.
    Returns:
        The opened :class:`FeatureCache`.
    """
    cfg = model.config
    cache_dir = os.fspath(cache_dir)
    if os.path.isdir(cache_dir) and os.listdir(cache_dir):
        if not os.path.isfile(os.path.join(cache_dir, 'index.json')):
            raise ValueError(
                f'cache_dir {cache_dir} exists and is not a feature cache; choose '
                'a new or empty folder (it would be overwritten)'
            )
        cache = FeatureCache(cache_dir)  # raises for a foreign index.json
        try:
            cache.check(cfg, records)
            return cache
        except ValueError:
            shutil.rmtree(cache_dir)  # our own stale cache: rebuild
    tmp = cache_dir.rstrip('/') + '.partial'
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    was_training = model.training
    model.eval().to(device)
    images = sorted({r.file_name for r in records})
    sentences = sorted({r.sentence for r in records})
    shapes = {}
    arrays = {}
    bar = tqdm(total=len(images), desc='caching image features', disable=not progress)
    for start in range(0, len(images), batch_size):
        names = images[start : start + batch_size]
        x = torch.stack([preprocess(read_rgb(os.path.join(image_root, n))) for n in names])
        feats = model.extract_features(x.to(device))
        for level in LEVELS:
            f = feats[level]
            if level not in arrays:
                shapes[level] = [len(images), *f.shape[1:]]
                arrays[level] = np.lib.format.open_memmap(
                    os.path.join(tmp, f'{level}.npy'),
                    mode='w+',
                    dtype=np.float16,
                    shape=tuple(shapes[level]),
                )
            arrays[level][start : start + len(names)] = f.float().cpu().numpy().astype(np.float16)
        bar.update(len(names))
    bar.close()
    max_tokens = cfg.text.max_tokens
    ids, mask = tokenize(model.tokenizer, sentences, max_tokens)
    text = None
    for start in range(0, len(sentences), 64):
        t = model.encode_text(
            torch.from_numpy(ids[start : start + 64]).to(device),
            torch.from_numpy(mask[start : start + 64]).to(device),
        )
        if text is None:
            shapes['text_features'] = [len(sentences), *t.shape[1:]]
            text = np.lib.format.open_memmap(
                os.path.join(tmp, 'text_features.npy'),
                mode='w+',
                dtype=np.float16,
                shape=tuple(shapes['text_features']),
            )
        text[start : start + len(t)] = t.float().cpu().numpy().astype(np.float16)
    np.save(os.path.join(tmp, 'input_ids.npy'), ids)
    np.save(os.path.join(tmp, 'attention_mask.npy'), mask)
    for arr in [*arrays.values(), text]:
        if arr is not None:
            arr.flush()
    del arrays, text
    index = {
        'format': CACHE_FORMAT,
        'fingerprint': model_fingerprint(cfg),
        'images': images,
        'sentences': sentences,
        'shapes': shapes,
        'max_tokens': max_tokens,
    }
    with open(os.path.join(tmp, 'index.json'), 'w', encoding='utf-8') as fh:
        json.dump(index, fh)
    if os.path.isdir(cache_dir):
        os.rmdir(cache_dir)  # empty here (checked above)
    os.replace(tmp, cache_dir)
    model.train(was_training)
    return FeatureCache(cache_dir)


class CachedFeatureDataset(Dataset):
    """Like ``GresDataset`` but yields cached frozen features instead of images.

    Items: ``features`` (dict of (C_l, H_l, W_l) float16), ``text_features`` (L, D) float16,
    ``input_ids`` / ``attention_mask`` (L,) int64, ``gt_masks`` (K, H, W) uint8 at
    ``size_hw``, ``no_target``, ``index``.

    Args:
        records: samples; every image and sentence must be in the cache.
        masks: rasteriser over the dataset's ``instances.json``.
        cache: the :class:`FeatureCache`.
        size_hw: network input (H, W) for the GT masks.
        with_objects: also yield every annotated object ('object_masks', 'object_referred').
        vocabulary: an ``ObjectVocabulary`` for the objects' category and colour indices.
    """

    def __init__(
        self,
        records: Sequence[GresRecord],
        masks: CocoMasks,
        cache: FeatureCache,
        size_hw: tuple[int, int],
        with_objects: bool = False,
        vocabulary=None,
    ):
        self.records = list(records)
        self.with_objects = with_objects
        self.vocabulary = vocabulary
        self.masks = masks
        self.cache = cache
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))

    def __len__(self) -> int:
        return len(self.records)

    def _objects(self, index: int) -> dict:
        """``object_targets`` of sample ``index`` when ``with_objects``, else nothing."""
        if not self.with_objects:
            return {}
        return object_targets(self.masks, self.records[index], self.size_hw, self.vocabulary)

    def gt_masks(self, index: int) -> np.ndarray:
        return self.masks.masks(self.records[index], self.size_hw)

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        arr = self.cache.arrays()
        i = self.cache.image_row[rec.file_name]
        s = self.cache.sentence_row[rec.sentence]
        return {
            'features': {k: torch.from_numpy(np.array(arr[k][i])) for k in LEVELS},
            'text_features': torch.from_numpy(np.array(arr['text_features'][s])),
            'input_ids': torch.from_numpy(np.array(arr['input_ids'][s])),
            'attention_mask': torch.from_numpy(np.array(arr['attention_mask'][s])),
            'gt_masks': torch.from_numpy(self.gt_masks(index)),
            **self._objects(index),
            'no_target': rec.no_target,
            'index': index,
            'image_key': rec.file_name,
        }
