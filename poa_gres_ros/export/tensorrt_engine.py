"""TensorRT 10 engine builder, cache keys and rebuild decisions.

An engine only runs on the GPU model, compute capability and TensorRT version it was built
with, so engines are built on the target and cached under a key of all of them; a mismatch
is rebuilt with the reason logged, never loaded and never a crash.

Stages (each logged): parse the ONNX graph with ``trt.OnnxParser`` into a network (explicit
batch is the only mode in TensorRT 10, so ``create_network(0)``), log every I/O tensor (name,
shape, dtype, mode), add one optimisation profile (batch 1/1/max_batch, text length
1/opt_tokens/max_tokens, image size fixed), set the precision flags and the workspace pool limit,
``build_serialized_network``, deserialize once to log the engine's I/O tensors, write the engine
and a metadata JSON beside it.

Precision: 'fp32'; 'fp16' (``BuilderFlag.FP16``: TensorRT may pick FP16 kernels, I/O stays
FP32); 'int8' = FP16 + ``BuilderFlag.INT8`` with an ``IInt8EntropyCalibrator2`` fed from a
dataset (``export.calibration``), vision graph only (the text encoder runs once per instruction
and stays FP16). Why implicit calibration and not explicit (Q/DQ) quantisation: explicit
quantisation needs Q/DQ nodes in the ONNX graph, i.e. NVIDIA ModelOpt in the export, which cannot
be installed or validated here; the calibrator path needs nothing but TensorRT and works on every
TensorRT 10.x (JetPack 6 ships 10.3), where it is deprecated (since 10.1) but supported.
TensorRT 11 removed ``BuilderFlag.FP16/INT8``: there this module builds 'fp32' only and says so.

Cache: ``<cache>/engines/<gpu>-sm<cc>-trt<ver>-<precision>-<H>x<W>-<key>/<graph>.engine`` +
``<graph>.json``; ``<key>`` hashes GPU name, compute capability, TensorRT version, precision,
input size, the ONNX SHA-256 of both graphs and the profile. ``rebuild_reason`` says why a
cached engine cannot be used (missing, other GPU/TensorRT/precision/ONNX, corrupt file); the
backend then rebuilds instead of crashing. ``tensorrt`` is imported only inside functions.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from poa_gres_ros.core.inference_options import PRECISIONS
from poa_gres_ros.export.artifacts import (
    canonical_json,
    file_sha256,
    key_hash,
    read_metadata,
    slug,
    write_bytes_atomic,
    write_json_atomic,
)
from poa_gres_ros.export.wrappers import BATCH_DIM, TOKENS_DIM, VISION_GRAPH

ENGINE_FORMAT = 'poa_gres_ros.trt_engine/1'
MIN_TENSORRT_MAJOR = 10
_log = logging.getLogger(__name__)


@dataclass
class EngineSpec:
    """Everything that makes an engine different (all of it is in the cache key).

    Attributes:
        graph: 'text_encoder' or 'vision_decoder'. onnx_sha256: of the graph file.
        gpu_name, compute_capability ('8.7'), tensorrt_version ('10.3.0'), precision.
        input_size_hw: the export's image size. profile: {input: [min, opt, max] shapes}.
    """

    graph: str
    onnx_sha256: str
    gpu_name: str
    compute_capability: str
    tensorrt_version: str
    precision: str
    input_size_hw: list[int]
    profile: dict[str, list[list[int]]] = field(default_factory=dict)

    def fields(self) -> dict:
        return {'format': ENGINE_FORMAT, **asdict(self)}


def tensorrt_major(version: str) -> int:
    """Major version of a TensorRT version string ('10.3.0.30' -> 10); 0 if unparsable."""
    try:
        return int(str(version).split('.')[0])
    except ValueError:
        return 0


def gpu_identity(device: str = 'cuda:0') -> dict:
    """{'gpu_name', 'compute_capability'} of a CUDA device (via torch).

    Raises:
        RuntimeError: no CUDA device with that index.
    """
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(f'no CUDA GPU visible to torch {torch.__version__}')
    idx = torch.device(device).index or 0
    if idx >= torch.cuda.device_count():
        raise RuntimeError(f'{device}: only {torch.cuda.device_count()} CUDA device(s)')
    major, minor = torch.cuda.get_device_capability(idx)
    return {'gpu_name': torch.cuda.get_device_name(idx), 'compute_capability': f'{major}.{minor}'}


def profile_shapes(
    inputs: list[dict], max_batch: int, opt_tokens: int, max_tokens: int
) -> dict[str, list[list[int]]]:
    """Optimisation-profile shapes of a graph's inputs from its ONNX input table.

    Args:
        inputs: [{'name', 'shape'}] with ints or the dim names 'batch' / 'tokens' (the
            export's metadata ``graphs[g]['inputs']``).
        max_batch: >= 1. opt_tokens: text length TensorRT tunes for, in [1, max_tokens].
    Returns:
        {name: [min_shape, opt_shape, max_shape]}; batch 1/1/max_batch, tokens
        1/opt_tokens/max_tokens, fixed dims unchanged.
    Raises:
        ValueError: bad limits or a dynamic dimension this module does not know.
    """
    if max_batch < 1 or not 1 <= opt_tokens <= max_tokens:
        raise ValueError(
            f'need max_batch >= 1 and 1 <= opt_tokens <= max_tokens, got {max_batch}, '
            f'{opt_tokens}, {max_tokens}'
        )
    ranges = {BATCH_DIM: (1, 1, max_batch), TOKENS_DIM: (1, opt_tokens, max_tokens)}
    out = {}
    for entry in inputs:
        mins, opts, maxs = [], [], []
        for dim in entry['shape']:
            if isinstance(dim, int):
                lo = mid = hi = dim
            elif dim in ranges:
                lo, mid, hi = ranges[dim]
            else:
                raise ValueError(f'input {entry["name"]}: unknown dynamic dimension {dim!r}')
            mins.append(lo)
            opts.append(mid)
            maxs.append(hi)
        out[entry['name']] = [mins, opts, maxs]
    return out


def engine_dir(cache_root: str | os.PathLike, specs: list[EngineSpec]) -> Path:
    """Cache folder of the engines of one model/GPU/TensorRT/precision (module docstring)."""
    s = specs[0]
    h, w = s.input_size_hw
    key = key_hash({'engines': [sp.fields() for sp in specs]})
    name = (
        f'{slug(s.gpu_name, 24)}-sm{s.compute_capability.replace(".", "")}-'
        f'trt{s.tensorrt_version}-{s.precision}-{h}x{w}-{key}'
    )
    return Path(cache_root) / 'engines' / name


def rebuild_reason(engine_path: str | os.PathLike, spec: EngineSpec) -> str | None:
    """Why the cached engine at ``engine_path`` cannot be used for ``spec``; None if it can.

    Reads ``<engine>.json`` beside it: missing or unreadable metadata, any differing field
    (TensorRT version, GPU, compute capability, precision, input size, ONNX hash, profile) or an
    engine file whose SHA-256 differs from the recorded one (truncated or corrupt copy).
    """
    engine_path = Path(engine_path)
    meta_path = engine_path.with_suffix('.json')
    if not engine_path.is_file():
        return f'no engine at {engine_path}'
    meta, why = read_metadata(meta_path)
    if meta is None:
        return why
    for key, want in spec.fields().items():
        if canonical_json(meta.get(key)) != canonical_json(want):
            return f'{key} is {meta.get(key)!r} in {meta_path}, need {want!r}'
    if file_sha256(engine_path) != meta.get('engine_sha256'):
        return f'{engine_path} is corrupt (SHA-256 differs from {meta_path})'
    return None


def format_io_table(rows: list[dict]) -> str:
    """Text table of I/O tensors: rows of {'name', 'mode', 'shape', 'dtype'}."""
    lines = [f'{"mode":<7} {"name":<16} {"dtype":<8} shape']
    for r in rows:
        lines.append(f'{r["mode"]:<7} {r["name"]:<16} {r["dtype"]:<8} {list(r["shape"])}')
    return '\n'.join(lines)


def onnx_io_table(graph_info: dict) -> list[dict]:
    """I/O rows from an export's ``metadata['graphs'][g]`` (dynamic dims shown as -1, as
    TensorRT shows them)."""
    rows = []
    for mode, key in (('INPUT', 'inputs'), ('OUTPUT', 'outputs')):
        for v in graph_info[key]:
            shape = [d if isinstance(d, int) else -1 for d in v['shape']]
            rows.append({'name': v['name'], 'mode': mode, 'shape': shape, 'dtype': v['dtype']})
    return rows


def engine_io_table(engine, trt) -> list[dict]:
    """I/O rows of a deserialized ICudaEngine (name-based API: num_io_tensors,
    get_tensor_name, get_tensor_mode, get_tensor_shape, get_tensor_dtype)."""
    rows = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = engine.get_tensor_mode(name)
        rows.append(
            {
                'name': name,
                'mode': 'INPUT' if mode == trt.TensorIOMode.INPUT else 'OUTPUT',
                'shape': list(engine.get_tensor_shape(name)),
                'dtype': str(engine.get_tensor_dtype(name)).rsplit('.', 1)[-1],
            }
        )
    return rows


def make_logger(trt):
    """A ``trt.ILogger`` that forwards TensorRT messages to Python logging (one instance per
    process: TensorRT requires the logger to outlive builders and runtimes)."""
    global _TRT_LOGGER
    if _TRT_LOGGER is None:
        levels = {
            trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
            trt.ILogger.Severity.ERROR: logging.ERROR,
            trt.ILogger.Severity.WARNING: logging.WARNING,
            trt.ILogger.Severity.INFO: logging.DEBUG,
            trt.ILogger.Severity.VERBOSE: logging.DEBUG,
        }

        class _Logger(trt.ILogger):
            def __init__(self):
                trt.ILogger.__init__(self)

            def log(self, severity, msg):
                _log.log(levels.get(severity, logging.INFO), 'TensorRT: %s', msg)

        _TRT_LOGGER = _Logger()
    return _TRT_LOGGER


_TRT_LOGGER = None


def build_engine(
    onnx_path: str | os.PathLike,
    spec: EngineSpec,
    workspace_bytes: int = 1 << 30,
    calibrator=None,
) -> bytes:
    """Build a serialized engine from an ONNX file (TensorRT 10 Python API).

    Args:
        onnx_path: the graph. spec: precision and profile (``profile_shapes``).
        workspace_bytes: ``IBuilderConfig.set_memory_pool_limit(WORKSPACE, ...)``; keep it
            small on Jetson (shared CPU/GPU memory).
        calibrator: an ``IInt8EntropyCalibrator2`` (``calibration.make_calibrator``), required
            for precision 'int8'.
    Returns:
        The serialized engine (bytes).
    Raises:
        RuntimeError: parse errors (each listed), unsupported precision on this TensorRT / GPU,
            or a failed build (TensorRT's log has the cause, often too little GPU memory).
    """
    import tensorrt as trt

    if spec.precision not in PRECISIONS:
        raise ValueError(f'precision={spec.precision!r}; use one of {PRECISIONS}')
    logger = make_logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, 'rb') as fh:
        ok = parser.parse(fh.read(), str(onnx_path))
    if not ok:
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f'TensorRT cannot parse {onnx_path}: ' + ' | '.join(errors))
    net_rows = [
        {
            'name': t.name,
            'mode': mode,
            'shape': list(t.shape),
            'dtype': str(t.dtype).rsplit('.')[-1],
        }
        for mode, tensors in (
            ('INPUT', [network.get_input(i) for i in range(network.num_inputs)]),
            ('OUTPUT', [network.get_output(i) for i in range(network.num_outputs)]),
        )
        for t in tensors
    ]
    _log.info('network %s from %s:\n%s', spec.graph, onnx_path, format_io_table(net_rows))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    profile = builder.create_optimization_profile()
    for name, (lo, mid, hi) in spec.profile.items():
        profile.set_shape(name, lo, mid, hi)
    config.add_optimization_profile(profile)
    _set_precision(trt, config, builder, spec, calibrator)
    t0 = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(
            f'TensorRT failed to build the {spec.graph} engine (see the TensorRT errors above; '
            'a common cause is too little free GPU memory: lower workspace_mb, close other GPU '
            'processes, or build with precision fp32)'
        )
    _log.warning('built %s engine in %.0f s', spec.graph, time.perf_counter() - t0)
    return bytes(serialized)


def _set_precision(trt, config, builder, spec: EngineSpec, calibrator) -> None:
    if spec.precision == 'fp32':
        return
    if not hasattr(trt.BuilderFlag, 'FP16'):
        raise RuntimeError(
            f'TensorRT {trt.__version__} has no BuilderFlag.FP16/INT8 (removed in TensorRT 11 '
            'in favour of strongly typed networks); use precision fp32, or TensorRT 10.x'
        )
    config.set_flag(trt.BuilderFlag.FP16)
    if spec.precision == 'int8' and spec.graph == VISION_GRAPH:
        if calibrator is None:
            raise RuntimeError('precision int8 needs a calibration dataset (calibration_dataset)')
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        calib_profile = builder.create_optimization_profile()
        for name, (_, _, hi) in spec.profile.items():
            shape = [1] + list(hi[1:])  # calibration batches: batch 1, full text length
            calib_profile.set_shape(name, shape, shape, shape)
        config.set_calibration_profile(calib_profile)


def save_engine(engine_path: str | os.PathLike, data: bytes, spec: EngineSpec, extra: dict) -> None:
    """Write the engine, then its metadata JSON (fields of ``spec``, engine SHA-256, ``extra``
    such as the build time and I/O table); metadata last, so a crash leaves no valid pair."""
    import hashlib

    engine_path = Path(engine_path)
    write_bytes_atomic(engine_path, data)
    meta = {**spec.fields(), 'engine_sha256': hashlib.sha256(data).hexdigest(), **extra}
    write_json_atomic(engine_path.with_suffix('.json'), meta)
