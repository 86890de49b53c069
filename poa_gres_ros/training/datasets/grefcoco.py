"""gRefCOCO-format loader (docs/method.md#grefcoco-format), also used for the tabletop datasets.

A dataset folder holds ``grefs(unc).json`` (list of refs), ``instances.json`` (COCO images,
annotations, categories) and the images (``images/`` by default; for gRefCOCO itself point
``image_root`` at COCO ``train2014``). Loading follows ReLA ``load_grefcoco_json``
(henghuiding/ReLA ``gres_model/data/datasets/grefcoco.py``) and ``G_REFER``:

* one sample per sentence;
* ``ann_id`` is a list; ``[-1]`` (or ``no_target: true``) means no target;
* crowd annotations (``iscrowd = 1``) are skipped; per-instance ids are kept (instance
  supervision needs them, not only the merged mask);
* the image file name comes from ``instances.json`` (the ref's ``file_name`` carries an extra
  suffix in gRefCOCO and is ignored);
* extra keys of tabletop refs are read when present: ``expr_type`` names the expression type
  and per-sentence ``phrases: [{text, char_start, char_end, ann_ids}]`` become
  ``GresRecord.phrases`` (phrase-grounding accuracy).
"""

from __future__ import annotations

import logging
import os
from collections import Counter

from poa_gres_ros.core.json_files import read_json
from poa_gres_ros.training.datasets.records import (
    CocoMasks,
    GresRecord,
    RefPhrase,
    expr_type_of,
    load_coco,
)

LOG = logging.getLogger(__name__)
GREFS_FILE = 'grefs(unc).json'
INSTANCES_FILE = 'instances.json'


def _as_list(x) -> list:
    return list(x) if isinstance(x, list | tuple) else [x]


def _phrases(sent: dict, where: str, ref_id: int) -> tuple[RefPhrase, ...]:
    """A sentence's optional ``phrases: [{text, char_start, char_end, ann_ids}]``."""
    try:
        return tuple(
            RefPhrase(
                str(p['text']),
                int(p['char_start']),
                int(p['char_end']),
                tuple(int(a) for a in p['ann_ids']),
            )
            for p in sent.get('phrases') or ()
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f'{where}: ref {ref_id} has a malformed phrase: {exc!r}') from exc


def load_grefcoco(
    root: str | os.PathLike,
    splits: str | list[str],
    refs_file: str = GREFS_FILE,
    instances_file: str = INSTANCES_FILE,
    skip_targeted_without_masks: bool = False,
    source: str = 'grefcoco',
) -> tuple[list[GresRecord], CocoMasks]:
    """Read the records of some splits of a gRefCOCO-format dataset.

    Args:
        root: dataset folder.
        splits: one split name or several ('train', 'val', 'testA', 'testB'; tabletop:
            'train', 'val', 'test', 'test_comp').
        refs_file / instances_file: file names inside ``root`` (or absolute paths).
        skip_targeted_without_masks: drop targeted sentences whose referred annotations are
            all crowd (training needs at least one instance; evaluation keeps them, as ReLA).
        source: the ``source`` written into every record.
    Returns:
        ``(records, masks)``: records in file order (refs, then sentences), and the
        :class:`CocoMasks` rasteriser over ``instances.json``.
    Raises:
        FileNotFoundError: a missing file. ValueError: a malformed ref, an annotation id
        absent from ``instances.json``, or a split with no refs (the splits found are listed).
    """
    root = os.fspath(root)
    refs_path = os.path.join(root, refs_file)
    if not os.path.isfile(refs_path):
        raise FileNotFoundError(f'{refs_path} not found (expected a gRefCOCO-format folder)')
    refs = read_json(refs_path, list, 'refs')
    coco = load_coco(os.path.join(root, instances_file))
    records = refs_to_records(refs, coco, splits, skip_targeted_without_masks, source, refs_path)
    return records, CocoMasks(coco)


def refs_to_records(
    refs: list[dict],
    coco,
    splits: str | list[str],
    skip_targeted_without_masks: bool = False,
    source: str = 'grefcoco',
    where: str = 'refs',
) -> list[GresRecord]:
    """Turn gRefCOCO-style ref dicts into per-sentence records (see :func:`load_grefcoco`).

    A ref with a ``source`` key of 'zero', 'one' or 'many' (Ref-ZOM) takes no-target from
    ``source == 'zero'`` and records that source.
    """
    wanted = set(_as_list(splits))
    out: list[GresRecord] = []
    dropped = 0
    found_splits = Counter()
    for ref in refs:
        try:
            split = ref['split']
            found_splits[split] += 1
            if split not in wanted:
                continue
            ann_ids = [int(a) for a in _as_list(ref['ann_id']) if a is not None]
            sentences = ref['sentences']
            ref_id, image_id = int(ref['ref_id']), int(ref['image_id'])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f'{where}: malformed ref {str(ref)[:200]}: {exc!r}') from exc
        rec_source = ref.get('source', source)
        if rec_source in ('zero', 'one', 'many'):
            no_target = rec_source == 'zero'
        else:
            no_target = bool(ref.get('no_target', False)) or ann_ids in ([], [-1])
        referred = [] if no_target else [a for a in ann_ids if a != -1]
        kept = []
        for a in referred:
            if a not in coco.anns:
                raise ValueError(
                    f'{where}: ref {ref_id} names annotation {a}, which is not in '
                    'instances.json (mismatched dataset versions?)'
                )
            if not coco.anns[a].get('iscrowd', 0):
                kept.append(a)
        if not no_target and not kept and skip_targeted_without_masks:
            dropped += len(sentences)
            continue
        if image_id not in coco.imgs:
            raise ValueError(
                f'{where}: ref {ref_id} names image {image_id}, absent from instances.json'
            )
        img = coco.imgs[image_id]
        etype = expr_type_of(ref, len(referred), no_target)
        for sent in sentences:
            text = sent.get('raw') or sent.get('sent')
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f'{where}: ref {ref_id} has an empty sentence')
            out.append(
                GresRecord(
                    image_id=image_id,
                    file_name=img['file_name'],
                    height=int(img['height']),
                    width=int(img['width']),
                    sentence=text,
                    sent_id=int(sent.get('sent_id', -1)),
                    ref_id=ref_id,
                    ann_ids=tuple(kept),
                    no_target=no_target,
                    expr_type=etype,
                    split=split,
                    source=rec_source,
                    phrases=_phrases(sent, where, ref_id),
                )
            )
    if dropped:
        LOG.info('skipped %d targeted sentences whose referred instances are all crowd', dropped)
    missing = wanted - set(found_splits)
    if missing:
        raise ValueError(
            f'{where}: no refs in split(s) {sorted(missing)}; splits present: {dict(found_splits)}'
        )
    return out
