"""TensorRT engine cache: find the engines that match this GPU/TensorRT/precision/ONNX, or build
them. An engine from another GPU, compute capability or TensorRT version does not load, and
an engine build can fail when GPU memory is short: both are reported with the reason.

``plan_engines`` is the pure part (no TensorRT needed): from the ONNX export's metadata, the GPU
identity and the TensorRT version it derives each graph's ``EngineSpec`` (profile shapes
included) and the cache folder. ``find_or_build_engines`` then, per graph, uses the cached
engine when ``rebuild_reason`` finds nothing wrong and TensorRT deserializes it, and otherwise
builds (logged with the reason and that it can take minutes), saves the engine with its metadata
JSON and logs the engine's I/O tensors. The cache folder must be writable only when something is
built (checked first, with an error naming the folder), so a read-only, pre-provisioned cache
works. One file lock per cache folder: two nodes starting together build once.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from poa_gres_ros.core.inference_options import PRECISIONS
from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.export.artifacts import default_cache_dir, ensure_writable_dir, exclusive_lock
from poa_gres_ros.export.tensorrt_engine import (
    EngineSpec,
    build_engine,
    engine_dir,
    engine_io_table,
    format_io_table,
    make_logger,
    profile_shapes,
    rebuild_reason,
    save_engine,
)
from poa_gres_ros.export.wrappers import GRAPH_FILES, GRAPHS, VISION_GRAPH
from poa_gres_ros.inference.backends.tensorrt_runtime import TrtEngine

_log = logging.getLogger(__name__)


def plan_engines(
    onnx_meta: dict,
    gpu: dict,
    tensorrt_version: str,
    precision: str,
    cache_root: str | os.PathLike,
    max_batch: int = 1,
    opt_tokens: int | None = None,
) -> tuple[Path, list[EngineSpec]]:
    """Cache folder and one EngineSpec per graph.

    Args:
        onnx_meta: the export's metadata.json (graphs, input_size_hw, max_tokens).
        gpu: {'gpu_name', 'compute_capability'} (``tensorrt_engine.gpu_identity``).
        precision: one of PRECISIONS. max_batch: >= 1.
        opt_tokens: text length the profile is tuned for (default max_tokens // 2, >= 1).
    Raises:
        ValueError: unknown precision or bad profile limits.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision={precision!r}; use one of {PRECISIONS}')
    max_tokens = int(onnx_meta['max_tokens'])
    opt = int(opt_tokens) if opt_tokens else max(1, max_tokens // 2)
    specs = []
    for graph in GRAPHS:
        g = onnx_meta['graphs'][graph]
        specs.append(
            EngineSpec(
                graph=graph,
                onnx_sha256=g['sha256'],
                gpu_name=gpu['gpu_name'],
                compute_capability=gpu['compute_capability'],
                tensorrt_version=str(tensorrt_version),
                precision=precision,
                input_size_hw=list(onnx_meta['input_size_hw']),
                profile=profile_shapes(g['inputs'], max_batch, opt, max_tokens),
            )
        )
    return engine_dir(cache_root, specs), specs


def find_or_build_engines(
    model_dir: str | os.PathLike,
    config: POAConfig,
    device: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    precision: str = 'fp16',
    max_batch: int = 1,
    opt_tokens: int | None = None,
    workspace_mb: int = 1024,
    calibration_dataset: str | os.PathLike | None = None,
    calibration_images: int = 64,
    export_if_missing: bool = True,
    build_if_missing: bool = True,
    force_rebuild: bool = False,
) -> tuple[dict, str]:
    """Deserialized engines for both graphs ({graph: TrtEngine}) and a one-line description.

    Raises:
        RuntimeError: the cache folder is not writable, a build failed, or an engine is
            missing/stale and ``build_if_missing`` is False (with the reason).
        ValueError: bad options (precision, profile limits, int8 without a dataset).
    """
    import tensorrt as trt

    from poa_gres_ros.export.onnx_artifacts import find_or_export_onnx
    from poa_gres_ros.export.tensorrt_engine import gpu_identity

    if precision == 'int8' and not calibration_dataset:
        raise ValueError('precision int8 needs calibration_dataset (a gRefCOCO-format folder)')
    export_dir, meta = find_or_export_onnx(model_dir, cache_dir, export_if_missing)
    gpu = gpu_identity(device)
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    folder, specs = plan_engines(meta, gpu, trt.__version__, precision, root, max_batch, opt_tokens)
    logger = make_logger(trt)
    inputs = _BuildInputs(
        Path(export_dir), config, Path(model_dir), device, int(workspace_mb),
        calibration_dataset, int(calibration_images),
    )  # fmt: skip
    engines = {}
    for spec in specs:
        path = folder / f'{spec.graph}.engine'
        engine, reason = None, 'forced rebuild' if force_rebuild else rebuild_reason(path, spec)
        if reason is None:  # a valid cache is only read: a read-only cache folder is fine
            engine, reason = _load(trt, logger, path, device)
        if engine is None:
            if not build_if_missing:
                raise RuntimeError(
                    f'no usable TensorRT engine for {spec.graph} ({reason}); run '
                    f'`poa-gres build-engine {model_dir}` or allow build_if_missing'
                )
            ensure_writable_dir(folder, 'TensorRT engine cache')  # clear error before building
            with exclusive_lock(folder / '.build.lock'):
                if not force_rebuild and rebuild_reason(path, spec) is None:
                    engine, _ = _load(trt, logger, path, device)  # built by another process
                if engine is None:
                    engine = _build(trt, logger, spec, path, reason, inputs)
        _log.info(
            'engine %s I/O tensors:\n%s',
            spec.graph,
            format_io_table(engine_io_table(engine.engine, trt)),
        )
        engines[spec.graph] = engine
    info = (
        f'TensorRT {trt.__version__}, {precision}, {gpu["gpu_name"]} '
        f'(sm {gpu["compute_capability"]}), engines in {folder}'
    )
    return engines, info


def _load(trt, logger, path: Path, device: str):
    """(TrtEngine, None) or (None, why it cannot be used)."""
    try:
        engine = TrtEngine(trt, path.read_bytes(), device, logger)
    except (RuntimeError, OSError) as exc:
        return None, f'{path} does not load here ({exc})'
    _log.info('loaded cached TensorRT engine %s', path)
    return engine, None


@dataclass(frozen=True)
class _BuildInputs:
    """What an engine build needs besides its spec."""

    export_dir: Path
    config: POAConfig
    model_dir: Path
    device: str
    workspace_mb: int
    calibration_dataset: str | os.PathLike | None
    calibration_images: int


def _build(trt, logger, spec, path: Path, reason: str, inputs: _BuildInputs):
    _log.warning(
        'building the TensorRT %s engine (%s) on %s, %s: this can take several minutes '
        '(longer on a Jetson); it is cached in %s',
        spec.graph,
        reason,
        spec.gpu_name,
        spec.precision,
        path.parent,
    )
    calibrator = None
    if spec.precision == 'int8' and spec.graph == VISION_GRAPH:
        calibrator = _calibrator(trt, inputs, path)
    t0 = time.perf_counter()
    data = build_engine(
        inputs.export_dir / GRAPH_FILES[spec.graph], spec, inputs.workspace_mb << 20, calibrator
    )
    build_s = time.perf_counter() - t0
    engine = TrtEngine(trt, data, inputs.device, logger)
    save_engine(
        path,
        data,
        spec,
        {
            'build_s': round(build_s, 1),
            'built_unix_s': round(time.time(), 1),
            'onnx_dir': str(inputs.export_dir),
            'io_tensors': engine_io_table(engine.engine, trt),
        },
    )
    return engine


def _calibrator(trt, inputs: _BuildInputs, engine_path: Path):
    from poa_gres_ros.export.calibration import calibration_batches, make_calibrator
    from poa_gres_ros.export.onnx_export import ort_cpu_session
    from poa_gres_ros.export.wrappers import TEXT_GRAPH
    from poa_gres_ros.modeling.text_encoder import load_tokenizer

    text = ort_cpu_session(inputs.export_dir / GRAPH_FILES[TEXT_GRAPH])
    tokenizer = load_tokenizer(inputs.config.text, inputs.model_dir)
    dataset, count = inputs.calibration_dataset, inputs.calibration_images
    batches = calibration_batches(dataset, inputs.config, tokenizer, text, count)
    _log.info('INT8 calibration on %d images from %s', len(batches), dataset)
    return make_calibrator(trt, batches, Path(engine_path).with_suffix('.calib'), inputs.device)
