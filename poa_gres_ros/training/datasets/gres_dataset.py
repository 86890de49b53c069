"""PyTorch dataset over :class:`GresRecord` lists: images, tokens and per-instance GT masks.

Transforms are ReLA's (docs/method.md#augmentation): a fixed resize of image and GT to the network
input size, no flip, no crop, no colour jitter. Image preprocessing is the model's own
(``poa_gres_ros.modeling.preprocess.preprocess_image``) so that training and inference see
identical tensors; tokenisation uses the model's tokenizer with its ``max_tokens``.

A batch (from :func:`collate_gres`) is a dict:

* ``images``: (B, 3, H, W) float32 normalised (image datasets), or ``features``: dict
  'res2'..'res5' of (B, C_l, H_l, W_l) float16 (cached-feature datasets, see
  ``feature_cache``) plus ``text_features``: (B, L, D) float16;
* ``input_ids``, ``attention_mask``: (B, L) int64;
* ``gt_masks``: list of B uint8 tensors (K_b, H, W) at the input size (K_b = 0: no target);
* ``object_masks`` / ``object_referred`` (datasets built ``with_objects``): lists of B uint8
  tensors (K_b, H, W) with every annotated object of the image and B bool tensors (K_b,);
  with a ``vocabulary`` also ``object_category`` / ``object_colour``: B int64 tensors (K_b,)
  of indices into the vocabulary (-1 = unlabelled);
* ``no_target``: (B,) bool; ``index``: (B,) int64 record indices.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from poa_gres_ros.training.datasets.records import CocoMasks, GresRecord, read_rgb

OBJECT_KEYS = ('object_masks', 'object_referred', 'object_category', 'object_colour')


def tokenize(tokenizer, sentences: Sequence[str], max_tokens: int) -> tuple[np.ndarray, ...]:
    """Tokenise sentences with [CLS]/[SEP], padded/truncated to ``max_tokens``.

    Args:
        tokenizer: a Hugging Face (fast) tokenizer.
        sentences: S strings.
        max_tokens: L.
    Returns:
        ``(input_ids, attention_mask)``, each (S, L) int64.
    """
    if not sentences:
        return np.zeros((0, max_tokens), np.int64), np.zeros((0, max_tokens), np.int64)
    enc = tokenizer(
        list(sentences),
        max_length=max_tokens,
        padding='max_length',
        truncation=True,
        return_tensors='np',
    )
    return enc['input_ids'].astype(np.int64), enc['attention_mask'].astype(np.int64)


def model_preprocess(model_cfg) -> Callable[[np.ndarray], torch.Tensor]:
    """The model's image preprocessing as a callable ``(H, W, 3) uint8 RGB -> (3, h, w)``."""
    from poa_gres_ros.modeling.preprocess import preprocess_image

    def fn(image_rgb: np.ndarray) -> torch.Tensor:
        return preprocess_image(image_rgb, model_cfg)

    return fn


def object_targets(masks: CocoMasks, record: GresRecord, size_hw, vocabulary=None) -> dict:
    """Every annotated object of ``record``'s image, for all-object matching.

    Returns:
        'object_masks' (K, H, W) uint8 at ``size_hw`` (pixels), 'object_referred' (K,) bool,
        and with an ``ObjectVocabulary`` also 'object_category' and 'object_colour' (K,) int64
        name indices (``CocoMasks.object_labels``).
    """
    obj_masks, referred = masks.objects(record, size_hw)
    out = {
        'object_masks': torch.from_numpy(obj_masks),
        'object_referred': torch.from_numpy(referred),
    }
    if vocabulary is not None:
        cat, col = masks.object_labels(record, vocabulary)
        out.update(object_category=torch.from_numpy(cat), object_colour=torch.from_numpy(col))
    return out


class GresDataset(Dataset):
    """Images + sentences + per-instance GT masks for training or evaluation.

    Args:
        records: samples (one per sentence).
        masks: the rasteriser over the dataset's ``instances.json``.
        image_root: folder that ``record.file_name`` is relative to.
        size_hw: network input (H, W); GT masks are rasterised at this size.
        tokenizer: Hugging Face tokenizer of the model.
        max_tokens: token limit L of the model.
        preprocess: ``(H, W, 3) uint8 -> (3, H, W) float32``, normally
            :func:`model_preprocess`.
        with_objects: also yield every annotated object of the image ('object_masks',
            'object_referred'), for instance supervision of all objects.
        vocabulary: an ``ObjectVocabulary``: with ``with_objects``, also yield each object's
            category and colour index ('object_category', 'object_colour').
    """

    def __init__(
        self,
        records: Sequence[GresRecord],
        masks: CocoMasks,
        image_root: str | os.PathLike,
        size_hw: tuple[int, int],
        tokenizer,
        max_tokens: int,
        preprocess: Callable[[np.ndarray], torch.Tensor],
        with_objects: bool = False,
        vocabulary=None,
    ):
        self.records = list(records)
        self.with_objects = with_objects
        self.vocabulary = vocabulary
        self.masks = masks
        self.image_root = os.fspath(image_root)
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self.preprocess = preprocess
        self.input_ids, self.attention_mask = tokenize(
            tokenizer, [r.sentence for r in self.records], max_tokens
        )

    def __len__(self) -> int:
        return len(self.records)

    def _objects(self, index: int) -> dict:
        """``object_targets`` of sample ``index`` when ``with_objects``, else nothing."""
        if not self.with_objects:
            return {}
        return object_targets(self.masks, self.records[index], self.size_hw, self.vocabulary)

    def gt_masks(self, index: int) -> np.ndarray:
        """(K, H, W) uint8 instance masks of sample ``index`` at the input size."""
        return self.masks.masks(self.records[index], self.size_hw)

    def image_path(self, index: int) -> str:
        return os.path.join(self.image_root, self.records[index].file_name)

    def __getitem__(self, index: int) -> dict:
        rec = self.records[index]
        image = self.preprocess(read_rgb(self.image_path(index)))
        if tuple(image.shape[-2:]) != self.size_hw:
            raise ValueError(
                f'preprocess returned {tuple(image.shape)}, expected size '
                f'{self.size_hw}: the dataset and model input sizes differ'
            )
        return {
            'images': image,
            'input_ids': torch.from_numpy(self.input_ids[index]),
            'attention_mask': torch.from_numpy(self.attention_mask[index]),
            'gt_masks': torch.from_numpy(self.gt_masks(index)),
            **self._objects(index),
            'no_target': rec.no_target,
            'index': index,
            'image_key': rec.file_name,
        }


def collate_gres(batch: list[dict]) -> dict:
    """Stack samples of :class:`GresDataset` or ``CachedFeatureDataset`` into a batch dict.

    Samples of the same image (same ``image_key``) share one entry of ``images`` /
    ``features``; ``image_index`` (B,) int64 then maps each sentence to its image (see
    ``POAModel.forward``). Without repeated images there is no ``image_index``.
    """
    keys = [b.get('image_key') for b in batch]
    first: dict = {}
    for k, key in enumerate(keys):
        first.setdefault(key, k)
    grouped = None not in keys and len(first) < len(batch)
    img_batch = [batch[k] for k in first.values()] if grouped else batch
    out = {
        'input_ids': torch.stack([b['input_ids'] for b in batch]),
        'attention_mask': torch.stack([b['attention_mask'] for b in batch]),
        'gt_masks': [b['gt_masks'] for b in batch],
        **{k: [b[k] for b in batch] for k in OBJECT_KEYS if k in batch[0]},
        'no_target': torch.tensor([bool(b['no_target']) for b in batch]),
        'index': torch.tensor([int(b['index']) for b in batch], dtype=torch.int64),
    }
    if grouped:
        slot = {key: i for i, key in enumerate(first)}
        out['image_index'] = torch.tensor([slot[key] for key in keys], dtype=torch.int64)
    if 'images' in batch[0]:
        out['images'] = torch.stack([b['images'] for b in img_batch])
    if 'features' in batch[0]:
        out['features'] = {
            k: torch.stack([b['features'][k] for b in img_batch]) for k in batch[0]['features']
        }
    if 'text_features' in batch[0]:
        out['text_features'] = torch.stack([b['text_features'] for b in batch])
    return out
