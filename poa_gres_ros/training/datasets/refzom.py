"""Ref-ZOM loader (docs/method.md#ref-zom-format; toggle1995/RIS-DMMI ``data/dataset_zom.py``,
``refer/refer.py``).

A Ref-ZOM folder holds ``refs(final).p`` and ``instances.json``; images are COCO train+val
2014. Each ref has ``source`` in {'zero', 'one', 'many'}; every sentence is a sample; 'zero'
refs are no-target (their ``ann_id`` is ignored, as RIS-DMMI ``getMask`` does). The split
'test' selects every ref whose split name contains 'test' (REFER ``getRefIds``).

Security: ``refs(final).p`` is a pickle, and unpickling an untrusted pickle can run arbitrary
code through the globals it names. :class:`RestrictedUnpickler` refuses **every** global
(``find_class`` always raises), so only plain containers and scalars (dict, list, tuple,
str, int, float, bool, None) can be built; a file that needs anything else fails with
``pickle.UnpicklingError`` before any code runs. Python 2 byte strings are decoded as UTF-8.
To avoid pickle entirely, convert once to JSON (:func:`convert_refs_to_json`) and pass
``refs_file='refs(final).json'``.
"""

from __future__ import annotations

import io
import json
import os
import pickle

from poa_gres_ros.training.datasets.grefcoco import refs_to_records
from poa_gres_ros.training.datasets.records import CocoMasks, GresRecord, load_coco

REFS_FILE = 'refs(final).p'


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves no globals at all (so no code can be referenced or run)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(
            f'refused global {module}.{name}: only plain lists/dicts/strings/numbers are '
            'accepted in a refs pickle'
        )


def safe_load_pickle(path: str | os.PathLike):
    """Load a pickle made only of builtin containers and scalars (see module docstring).

    Raises:
        FileNotFoundError: missing file. pickle.UnpicklingError: the file names a global.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path} not found')
    with open(path, 'rb') as fh:
        data = fh.read()
    return RestrictedUnpickler(io.BytesIO(data), encoding='utf-8').load()


def _read_refs(path: str) -> list[dict]:
    if path.endswith('.json'):
        with open(path, encoding='utf-8') as fh:
            refs = json.load(fh)
    else:
        refs = safe_load_pickle(path)
    if not isinstance(refs, list):
        raise ValueError(f'{path} must hold a list of refs, got {type(refs).__name__}')
    return refs


def convert_refs_to_json(pickle_path: str | os.PathLike, json_path: str | os.PathLike) -> int:
    """Write the refs of a Ref-ZOM pickle as JSON (through the restricted unpickler).

    Returns:
        Number of refs written.
    """
    refs = _read_refs(os.fspath(pickle_path))
    with open(json_path, 'w', encoding='utf-8') as fh:
        json.dump(refs, fh)
    return len(refs)


def load_refzom(
    root: str | os.PathLike,
    splits: str | list[str] = 'test',
    refs_file: str = REFS_FILE,
    instances_file: str = 'instances.json',
    skip_targeted_without_masks: bool = False,
) -> tuple[list[GresRecord], CocoMasks]:
    """Read Ref-ZOM records (one per sentence); ``record.source`` is 'zero'/'one'/'many'.

    Args:
        root: folder with ``refs_file`` and ``instances_file``.
        splits: 'train' and/or 'test' (any split whose name contains 'test' counts as test).
    Raises:
        FileNotFoundError, ValueError, pickle.UnpicklingError: see :func:`safe_load_pickle`
        and :func:`poa_gres_ros.training.datasets.grefcoco.refs_to_records`.
    """
    root = os.fspath(root)
    refs_path = os.path.join(root, refs_file)
    refs = _read_refs(refs_path)
    wanted = [splits] if isinstance(splits, str) else list(splits)
    norm = []
    for ref in refs:
        if not isinstance(ref, dict) or 'source' not in ref:
            raise ValueError(f'{refs_path}: every Ref-ZOM ref needs a "source" key')
        split = str(ref.get('split', ''))
        if 'test' in wanted and 'test' in split:
            split = 'test'
        norm.append({**ref, 'split': split})
    coco = load_coco(os.path.join(root, instances_file))
    records = refs_to_records(norm, coco, wanted, skip_targeted_without_masks, 'refzom', refs_path)
    return records, CocoMasks(coco)
