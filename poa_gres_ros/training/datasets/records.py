"""Dataset records shared by the gRefCOCO, Ref-ZOM and tabletop loaders, and GT rasterisation.

One :class:`GresRecord` per sentence (ReLA ``load_grefcoco_json``: a sample is a sentence, not a
reference). :class:`CocoMasks` turns the referred annotation ids of a record into per-instance
binary masks at the network input size through pycocotools, the way ReLA's ``RefCOCOMapper``
does (docs/method.md#grefcoco-format): polygon coordinates are scaled to the target size and
rasterised there (detectron2 ``ResizeTransform.apply_coords`` + ``polygons_to_bitmask``); RLE
masks are decoded at the source size and resized with nearest neighbour. No flip, ever:
expressions say left and right (docs/method.md#augmentation).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

EXPR_TYPES = ('single', 'multi', 'no_target')


@dataclass(frozen=True)
class RefPhrase:
    """A phrase of a sentence and the annotations it names (tabletop refs carry them).

    Attributes:
        text: ``sentence[char_start:char_end]``.
        char_start, char_end: the span in Python ``str`` indices, end exclusive.
        ann_ids: the annotation ids of the objects the phrase names.
    """

    text: str
    char_start: int
    char_end: int
    ann_ids: tuple[int, ...]


@dataclass(frozen=True)
class GresRecord:
    """One sample: an image and one sentence with its referred instances.

    Attributes:
        image_id: COCO image id.
        file_name: image path relative to the image root (from ``instances.json``).
        height, width: source image size in pixels.
        sentence: the raw sentence (``sentences[i]['raw']``, or ``sent`` if raw is missing).
        sent_id: sentence id (unique per dataset).
        ref_id: reference id.
        ann_ids: non-crowd referred annotation ids (empty for no-target).
        no_target: GT no-target flag (gRefCOCO ``ann_id == [-1]`` / ``no_target``; Ref-ZOM
            ``source == 'zero'``).
        expr_type: 'single' | 'multi' | 'no_target' (from the ref's ``expr_type`` when
            present, otherwise from the number of referred annotations).
        split: the ref's split name.
        source: dataset family, e.g. 'grefcoco', 'tabletop', or Ref-ZOM's 'zero'/'one'/'many'.
        phrases: the sentence's phrases with the objects each names, when the dataset gives
            them (tabletop's per-sentence ``phrases``), else empty.
    """

    image_id: int
    file_name: str
    height: int
    width: int
    sentence: str
    sent_id: int
    ref_id: int
    ann_ids: tuple[int, ...]
    no_target: bool
    expr_type: str
    split: str
    source: str = 'grefcoco'
    phrases: tuple[RefPhrase, ...] = ()


def load_coco(instances_path: str | os.PathLike):
    """Load a COCO ``instances.json`` with pycocotools (quietly).

    Raises:
        FileNotFoundError: the file does not exist.
    """
    from pycocotools.coco import COCO

    if not os.path.isfile(instances_path):
        raise FileNotFoundError(f'COCO instances file not found: {instances_path}')
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(os.fspath(instances_path))


@dataclass(frozen=True)
class ObjectVocabulary:
    """The names of a dataset's object categories and colours (name alignment,
    docs/method.md#name-alignment).

    Attributes:
        category_ids: COCO category ids, ascending; index k names ``category_names[k]``.
        category_names: the noun users say for each category: the first of the category's
            ``nouns`` (a tabletop extra) or its ``name`` with '_' read as a space.
        colours: colour names of the annotations' ``colour`` field (a tabletop extra), sorted;
            empty for datasets without colours (gRefCOCO).
    """

    category_ids: tuple[int, ...]
    category_names: tuple[str, ...]
    colours: tuple[str, ...]

    @property
    def texts(self) -> tuple[str, ...]:
        """Category names then colour names: the rows of the name embeddings."""
        return self.category_names + self.colours

    @classmethod
    def of(cls, coco) -> ObjectVocabulary:
        """The vocabulary of a ``pycocotools.coco.COCO`` annotation set."""
        cats = sorted(coco.cats.values(), key=lambda c: c['id'])
        names = tuple((c.get('nouns') or [str(c['name']).replace('_', ' ')])[0] for c in cats)
        colours = sorted({a['colour'] for a in coco.anns.values() if a.get('colour')})
        return cls(tuple(c['id'] for c in cats), names, tuple(colours))


class CocoMasks:
    """Rasterises referred instances of a COCO annotation set at a target size.

    Args:
        coco: a ``pycocotools.coco.COCO`` object.
    """

    def __init__(self, coco):
        self.coco = coco
        self._objects_memo: dict[tuple[int, int, int], tuple[tuple[int, ...], np.ndarray]] = {}

    def instance_mask(self, ann_id: int, size_hw: tuple[int, int] | None = None) -> np.ndarray:
        """(H, W) uint8 {0, 1} mask of one annotation at ``size_hw`` (None = source size).

        Raises:
            KeyError: unknown annotation id. ValueError: an annotation without segmentation.
        """
        from pycocotools import mask as mask_utils

        ann = self.coco.anns[ann_id]
        img = self.coco.imgs[ann['image_id']]
        h0, w0 = int(img['height']), int(img['width'])
        h, w = size_hw if size_hw is not None else (h0, w0)
        seg = ann.get('segmentation')
        if not seg:
            raise ValueError(f'annotation {ann_id} has no segmentation')
        if isinstance(seg, list):  # polygons: scale coordinates, rasterise at the target size
            sx, sy = w / w0, h / h0
            polys = []
            for poly in seg:
                p = np.asarray(poly, dtype=np.float64).reshape(-1, 2) * (sx, sy)
                polys.append(p.reshape(-1).tolist())
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
            return _decode(rle)
        if isinstance(seg.get('counts'), list):  # uncompressed RLE
            seg = mask_utils.frPyObjects(seg, h0, w0)
        m = _decode(seg)
        if m.ndim == 3:
            m = m.max(axis=2)
        if (h, w) != (h0, w0):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST)
        return m

    def masks(self, record: GresRecord, size_hw: tuple[int, int] | None = None) -> np.ndarray:
        """(K, H, W) uint8 per-instance masks of a record (K = 0 for no-target)."""
        h, w = size_hw if size_hw is not None else (record.height, record.width)
        if not record.ann_ids:
            return np.zeros((0, h, w), np.uint8)
        return np.stack([self.instance_mask(a, (h, w)) for a in record.ann_ids])

    def object_ann_ids(self, image_id: int) -> tuple[int, ...]:
        """Ids of every non-crowd annotated object of an image, ascending."""
        ids = self.coco.getAnnIds(imgIds=[image_id])
        return tuple(sorted(a for a in ids if not self.coco.anns[a].get('iscrowd', 0)))

    def objects(
        self, record: GresRecord, size_hw: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every annotated object of the record's image and whether the record refers to it.

        This is the instance supervision of every annotated object (docs/method.md#matching):
        referred and unreferred objects alike get a query.

        Returns:
            ``(masks, referred)``: (K, H, W) uint8 masks of the K non-crowd objects of the
            image (ascending annotation id) and (K,) bool, True for the record's ``ann_ids``.
        """
        h, w = size_hw if size_hw is not None else (record.height, record.width)
        key = (record.image_id, h, w)
        hit = self._objects_memo.get(key)
        if hit is None:
            ids = self.object_ann_ids(record.image_id)
            masks = np.zeros((0, h, w), np.uint8)
            if ids:
                masks = np.stack([self.instance_mask(a, (h, w)) for a in ids])
            # sentences of one image arrive together (image-grouped batches): keep a few
            if len(self._objects_memo) >= 8:
                self._objects_memo.pop(next(iter(self._objects_memo)))
            hit = self._objects_memo[key] = (ids, masks)
        ids, masks = hit
        return masks, np.array([a in record.ann_ids for a in ids], dtype=bool)

    def object_labels(
        self, record: GresRecord, vocabulary: ObjectVocabulary
    ) -> tuple[np.ndarray, np.ndarray]:
        """Category and colour of every object of ``objects`` (same order).

        Returns:
            ``(category, colour)``: (K,) int64 indices into ``vocabulary.category_ids`` and
            ``vocabulary.colours``, -1 where the annotation has no such label.
        """
        cat_index = {c: k for k, c in enumerate(vocabulary.category_ids)}
        col_index = {c: k for k, c in enumerate(vocabulary.colours)}
        anns = [self.coco.anns[a] for a in self.object_ann_ids(record.image_id)]
        cat = [cat_index.get(a.get('category_id'), -1) for a in anns]
        col = [col_index.get(a.get('colour'), -1) for a in anns]
        return np.array(cat, dtype=np.int64), np.array(col, dtype=np.int64)


def _decode(rle) -> np.ndarray:
    """pycocotools decode; silences its numpy-2 ``__array__(copy=...)`` DeprecationWarning."""
    from pycocotools import mask as mask_utils

    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        return mask_utils.decode(rle).astype(np.uint8)


def expr_type_of(ref: dict, num_referred: int, no_target: bool) -> str:
    """'no_target' / 'single' / 'multi': the ref's ``expr_type`` if valid, else derived."""
    t = ref.get('expr_type')
    if t in EXPR_TYPES:
        return t
    if no_target:
        return 'no_target'
    return 'multi' if num_referred > 1 else 'single'


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB image.

    Raises:
        FileNotFoundError: missing or unreadable file.
    """
    img = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read image {path}')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
