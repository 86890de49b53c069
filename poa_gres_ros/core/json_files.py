"""Reading JSON files with errors that name the file (model configs, export and engine
metadata, dataset annotations)."""

from __future__ import annotations

import json
import os


def read_json(path: str | os.PathLike, expect: type = dict, what: str = '') -> dict | list:
    """The JSON value in ``path``, which must be of type ``expect`` (dict or list).

    Args:
        path: the file. expect: ``dict`` (a JSON object) or ``list``.
        what: what the file should hold, for the error (e.g. 'gRefCOCO refs').
    Raises:
        FileNotFoundError: no such file. ValueError: not valid JSON, or another type.
    """
    with open(path, encoding='utf-8') as fh:
        try:
            data = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f'{path} is not valid JSON ({exc})') from exc
    if not isinstance(data, expect):
        kind = 'object' if expect is dict else 'list'
        suffix = f' of {what}' if what else ''
        raise ValueError(f'{path} must hold a JSON {kind}{suffix}, got {type(data).__name__}')
    return data
