"""Where the ONNX Runtime and TensorRT backends get the ONNX files.

``find_or_export_onnx(model_dir)``: the model folder's ``onnx/`` subfolder (written by
``poa-gres export MODEL_DIR``) when its metadata matches the folder's current config, weights
and external parts and every file hash matches; otherwise the cache
(``artifacts.default_cache_dir()/onnx/<model>-<H>x<W>-op<opset>-<key>``, keyed by the weights hash,
config hash, external parts, input size, opset and torch version), exporting into it on first
use with a log line saying so and how long it took. Never at import. A corrupt or mismatched
export is reported with the reason and rebuilt in the cache, never used; two processes that
start together export once (a file lock).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from poa_gres_ros.core.json_files import read_json
from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.export.artifacts import (
    canonical_json,
    default_cache_dir,
    ensure_writable_dir,
    exclusive_lock,
    file_sha256,
    key_hash,
    read_metadata,
    slug,
)
from poa_gres_ros.export.onnx_export import (
    EXPORT_FORMAT,
    METADATA_NAME,
    export_onnx,
    model_fingerprint,
)
from poa_gres_ros.export.wrappers import GRAPH_FILES, GRAPHS, OPSET

MODEL_ONNX_SUBDIR = 'onnx'
_log = logging.getLogger(__name__)


def validate_export(
    export_dir: str | os.PathLike, fingerprint: dict, size_hw, check_files: bool = True
) -> str | None:
    """Why an export folder cannot be used for a model, or None when it can.

    Checks: metadata.json present and readable, format, config/weights/external fingerprint,
    input size, both graph files present with the recorded SHA-256 (a truncated or edited file
    is caught here, before ONNX Runtime or TensorRT see it).
    """
    folder = Path(export_dir)
    meta_path = folder / METADATA_NAME
    meta, why = read_metadata(meta_path)
    if meta is None:
        return why
    if meta.get('format') != EXPORT_FORMAT:
        return f'{meta_path}: format {meta.get("format")!r} is not {EXPORT_FORMAT!r}'
    for key in ('config_sha256', 'weights_sha256', 'external'):
        if canonical_json(meta.get(key)) != canonical_json(fingerprint[key]):
            return (
                f'{meta_path}: {key} differs from the model folder (exported from other '
                'weights or config; re-export)'
            )
    if list(meta.get('input_size_hw', [])) != list(size_hw):
        return f'{meta_path}: input size {meta.get("input_size_hw")} is not {list(size_hw)}'
    graphs = meta.get('graphs')
    if not isinstance(graphs, dict):
        return f'{meta_path}: no graphs section'
    for name in GRAPHS:
        entry = graphs.get(name) or {}
        path = folder / str(entry.get('file', GRAPH_FILES[name]))
        if not path.is_file():
            return f'{path} is missing'
        if check_files and file_sha256(path) != entry.get('sha256'):
            return f'{path} is corrupt or was changed (SHA-256 differs from {meta_path})'
    return None


def onnx_cache_dir(
    cache_root: str | os.PathLike, cfg: POAConfig, fingerprint: dict, opset: int = OPSET
) -> Path:
    """Cache folder of an export: keyed by weights/config/external hash, input size, opset and
    torch version (``cache`` module docstring)."""
    h, w = cfg.input.size_hw
    key = key_hash(
        {
            **fingerprint,
            'input_size_hw': [h, w],
            'opset': opset,
            'torch': torch.__version__,
            'format': EXPORT_FORMAT,
        }
    )
    return Path(cache_root) / 'onnx' / f'{slug(cfg.name, 24)}-{h}x{w}-op{opset}-{key}'


def find_or_export_onnx(
    model_dir: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    export_if_missing: bool = True,
) -> tuple[Path, dict]:
    """Folder of a valid export of ``model_dir`` (see the module docstring) and its metadata.

    Args:
        model_dir: model folder. cache_dir: cache root (default ``default_cache_dir()``).
        export_if_missing: export into the cache when no valid export exists (logged, with the
            time it took); False raises instead.
    Raises:
        RuntimeError: no valid export and ``export_if_missing`` is False (with the reasons and
            the command to run), the cache is not writable, or the export failed.
    """
    from poa_gres_ros.modeling.io import load_config

    model_dir = Path(model_dir)
    cfg = load_config(model_dir)
    fingerprint = model_fingerprint(model_dir)
    reasons = []
    shipped = model_dir / MODEL_ONNX_SUBDIR
    if shipped.is_dir():
        why = validate_export(shipped, fingerprint, cfg.input.size_hw)
        if why is None:
            return shipped, read_json(shipped / METADATA_NAME)
        _log.warning('not using the ONNX export in the model folder: %s', why)
        reasons.append(why)
    cached = onnx_cache_dir(cache_dir or default_cache_dir(), cfg, fingerprint)
    if cached.is_dir():
        why = validate_export(cached, fingerprint, cfg.input.size_hw)
        if why is None:
            _log.info('using cached ONNX export %s', cached)
            return cached, read_json(cached / METADATA_NAME)
        _log.warning('cached ONNX export is not usable and will be rebuilt: %s', why)
        reasons.append(why)
    else:
        reasons.append(f'no export in {shipped} or {cached}')
    if not export_if_missing:
        raise RuntimeError(
            'no valid ONNX export of ' + str(model_dir) + ' (' + '; '.join(reasons) + '); run '
            f'`poa-gres export {model_dir}` or allow export_if_missing'
        )
    ensure_writable_dir(cached.parent, 'ONNX cache')
    with exclusive_lock(cached.parent / f'.{cached.name}.lock'):
        if validate_export(cached, fingerprint, cfg.input.size_hw) is None:  # built meanwhile
            return cached, read_json(cached / METADATA_NAME)
        _log.warning(
            'exporting %s to ONNX into %s (first use; about 1-3 min on 2 CPU cores)',
            model_dir,
            cached,
        )
        t0 = time.perf_counter()
        meta = export_onnx(model_dir, cached)
        _log.warning('ONNX export of %s took %.1f s', model_dir.name, time.perf_counter() - t0)
    return cached, meta
