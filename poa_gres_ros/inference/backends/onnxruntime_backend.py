"""ONNX Runtime backend: the two exported graphs (``export/wrappers.py``) in two sessions.

Providers: ``device='cpu'`` -> CPUExecutionProvider; ``device='cuda[:N]'`` -> the TensorRT
execution provider when this ONNX Runtime build has it (``use_tensorrt_provider``; engines cached
under the cache root), then CUDAExecutionProvider, then CPU for unsupported nodes. The session
that results is checked: asking for CUDA and getting only CPU is logged as a warning.

The ONNX files come from ``export.onnx_artifacts.find_or_export_onnx``: the model folder's
``onnx/`` (``poa-gres export``) or the cache, exported there on first use (logged, with the
time taken). Nothing happens at import. IO binding is not used: on CPU it saves nothing, and
on CUDA the TensorRT backend is the fast path.

Thread spinning is off by default (``spin_wait=False``): ONNX Runtime's worker threads otherwise
busy-wait between operators, which on a robot computer shared with drivers and other nodes
burns CPU and makes the frame slower. Measured on the 2-core development machine under load
(tabletop vision graph, 2 threads): spinning 1222 ms wall / 540 ms CPU per frame, not spinning
699 ms wall / 286 ms CPU. On an idle, dedicated CPU ``spin_wait=True`` can save a few percent.

Thread count: always set explicitly (``intra_op_threads``, default the CPUs this process may
run on). Left at 0, ONNX Runtime picks the physical core count *and pins* its worker threads
to cores; on a computer shared with other processes a pinned worker cannot move to an idle
core while another process holds its own, and every parallel operator waits for it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.export.wrappers import (
    GRAPH_FILES,
    TEXT_GRAPH,
    TEXT_OUTPUT_NAME,
    VISION_GRAPH,
    VISION_OUTPUT_NAMES,
)
from poa_gres_ros.inference.backends.base import Backend

OPT_LEVELS = ('disable', 'basic', 'extended', 'all')
_log = logging.getLogger(__name__)


def _device_index(device: str) -> int:
    _, _, idx = str(device).partition(':')
    return int(idx) if idx else 0


def providers_for(
    device: str,
    available: list[str],
    use_tensorrt_provider: bool = True,
    trt_cache_dir: str | None = None,
    fp16: bool = False,
) -> list:
    """ONNX Runtime ``providers`` list for a device.

    Args:
        device: 'cpu' or 'cuda[:N]'. available: ``onnxruntime.get_available_providers()``.
        use_tensorrt_provider: put TensorrtExecutionProvider first when available (CUDA only).
        trt_cache_dir: engine cache folder of the TensorRT provider. fp16: its FP16 mode.
    Raises:
        ValueError: unknown device. RuntimeError: CUDA asked for but this ONNX Runtime has no
            CUDAExecutionProvider (install onnxruntime-gpu).
    """
    dev = str(device)
    if dev == 'cpu':
        return ['CPUExecutionProvider']
    if not dev.startswith('cuda'):
        raise ValueError(f"device {device!r}: use 'cpu' or 'cuda[:N]'")
    if 'CUDAExecutionProvider' not in available:
        raise RuntimeError(
            f'device {device!r} needs CUDAExecutionProvider, but this onnxruntime has only '
            f'{available}; install onnxruntime-gpu or use device cpu'
        )
    idx = _device_index(dev)
    out: list = []
    if use_tensorrt_provider and 'TensorrtExecutionProvider' in available:
        opts = {'device_id': idx, 'trt_fp16_enable': bool(fp16)}
        if trt_cache_dir:
            opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(trt_cache_dir))
        out.append(('TensorrtExecutionProvider', opts))
    out.append(('CUDAExecutionProvider', {'device_id': idx}))
    out.append('CPUExecutionProvider')
    return out


class OnnxRuntimeBackend(Backend):
    """Backend on two ``onnxruntime.InferenceSession``s.

    Args:
        config: POAConfig of the model. export_dir: folder with both graphs + metadata.json.
        metadata: that folder's metadata. device: 'cpu' or 'cuda[:N]'.
        intra_op_threads: threads per session (None = :func:`usable_cpus`; never ONNX
            Runtime's own default, which pins threads to cores).
        graph_optimization: one of OPT_LEVELS ('all' = every fusion incl. layout changes).
        use_tensorrt_provider, trt_cache_dir, fp16: see ``providers_for``.
        spin_wait: let worker threads busy-wait between operators (module docstring).
    Raises:
        RuntimeError: a session cannot be created (the message names the file and says to
            delete or re-export it).
    """

    name = 'onnxruntime'

    def __init__(
        self,
        config: POAConfig,
        export_dir: Path,
        metadata: dict,
        device: str = 'cpu',
        intra_op_threads: int | None = None,
        graph_optimization: str = 'all',
        use_tensorrt_provider: bool = True,
        trt_cache_dir: str | None = None,
        fp16: bool = False,
        spin_wait: bool = False,
    ):
        import onnxruntime as ort

        super().__init__(config, device)
        if graph_optimization not in OPT_LEVELS:
            raise ValueError(f'graph_optimization={graph_optimization!r}; use one of {OPT_LEVELS}')
        if intra_op_threads is not None and int(intra_op_threads) < 1:
            raise ValueError(f'intra_op_threads={intra_op_threads} must be >= 1 (or None)')
        self.export_dir = Path(export_dir)
        self.metadata = metadata
        self.intra_op_threads = int(intra_op_threads or usable_cpus())
        self.graph_optimization = graph_optimization
        self.spin_wait = bool(spin_wait)
        levels = dict(
            zip(
                OPT_LEVELS,
                (
                    ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
                    ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                    ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                    ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                ),
            )
        )
        providers = providers_for(
            device, ort.get_available_providers(), use_tensorrt_provider, trt_cache_dir, fp16
        )
        self.sessions = {}
        for graph in (TEXT_GRAPH, VISION_GRAPH):
            opts = ort.SessionOptions()
            opts.graph_optimization_level = levels[graph_optimization]
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.inter_op_num_threads = 1
            opts.intra_op_num_threads = self.intra_op_threads  # explicit: no core pinning
            opts.add_session_config_entry(
                'session.intra_op.allow_spinning', '1' if spin_wait else '0'
            )
            path = self.export_dir / GRAPH_FILES[graph]
            try:
                sess = ort.InferenceSession(str(path), opts, providers=providers)
            except Exception as exc:  # ORT raises Fail / InvalidGraph / NoSuchFile ...
                raise RuntimeError(
                    f'ONNX Runtime {ort.__version__} cannot load {path} ({exc}); delete '
                    f'{self.export_dir} to re-export it, or run `poa-gres export`'
                ) from exc
            self.sessions[graph] = sess
        active = self.sessions[VISION_GRAPH].get_providers()
        self.providers = active
        if str(device).startswith('cuda') and 'CUDAExecutionProvider' not in active:
            _log.warning('asked for %s but ONNX Runtime runs on %s', device, active)

    def encode_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {
            'input_ids': np.ascontiguousarray(input_ids, np.int64),
            'attention_mask': np.ascontiguousarray(attention_mask, np.int64),
        }
        return self.sessions[TEXT_GRAPH].run([TEXT_OUTPUT_NAME], feeds)[0]

    def run_vision(
        self, images: np.ndarray, text_features: np.ndarray, text_mask: np.ndarray
    ) -> dict[str, np.ndarray]:
        feeds = {
            'images': np.ascontiguousarray(images, np.float32),
            'text_features': np.ascontiguousarray(text_features, np.float32),
            'text_mask': np.ascontiguousarray(text_mask, np.int64),
        }
        outs = self.sessions[VISION_GRAPH].run(list(VISION_OUTPUT_NAMES), feeds)
        return dict(zip(VISION_OUTPUT_NAMES, outs))

    def describe(self) -> str:
        import onnxruntime as ort

        threads = self.intra_op_threads
        return (
            f'onnxruntime {ort.__version__} on {self.device} ({", ".join(self.providers)}), '
            f'{threads} threads, spin-wait {"on" if self.spin_wait else "off"}, optimisation '
            f'{self.graph_optimization}, graphs in '
            f'{self.export_dir}'
        )

    def close(self) -> None:
        self.sessions = {}
        self.closed = True


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; os.cpu_count() where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available(device: str) -> tuple[bool, str]:
    """(usable, reason): onnxruntime imports and has the provider ``device`` needs."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        return False, f'onnxruntime is not installed ({exc})'
    have = ort.get_available_providers()
    if str(device).startswith('cuda') and 'CUDAExecutionProvider' not in have:
        return False, f'onnxruntime {ort.__version__} has no CUDAExecutionProvider ({have})'
    return True, f'onnxruntime {ort.__version__} ({", ".join(have)})'


def create(
    model_dir: Path,
    config: POAConfig,
    device: str,
    *,
    cache_dir: str | None = None,
    export_if_missing: bool = True,
    intra_op_threads: int | None = None,
    graph_optimization: str = 'all',
    use_tensorrt_provider: bool = True,
    precision: str = 'fp32',
    spin_wait: bool = False,
    num_threads: int | None = None,
) -> OnnxRuntimeBackend:
    """Find (or export, see ``find_or_export_onnx``) the ONNX files and open the sessions.

    Args:
        cache_dir: cache root (default ``export.artifacts.default_cache_dir()``).
        export_if_missing: export into the cache when no valid export exists.
        precision: 'fp32', or 'fp16' for the TensorRT execution provider only.
        spin_wait: busy-waiting worker threads (off by default, see the module docstring).
        num_threads: the backends' common name for ``intra_op_threads`` (used when that is
            None).
    Raises:
        RuntimeError: no valid export / export failed / a session cannot be created.
        ValueError: a bad option value.
    """
    from poa_gres_ros.export.artifacts import default_cache_dir
    from poa_gres_ros.export.onnx_artifacts import find_or_export_onnx

    if precision not in ('fp32', 'fp16'):
        raise ValueError(f"precision={precision!r}; onnxruntime supports 'fp32' or 'fp16'")
    if intra_op_threads is None:
        intra_op_threads = num_threads
    export_dir, meta = find_or_export_onnx(model_dir, cache_dir, export_if_missing)
    trt_cache = Path(cache_dir or default_cache_dir()) / 'ort_trt_engines'
    backend = OnnxRuntimeBackend(
        config,
        export_dir,
        meta,
        device,
        intra_op_threads,
        graph_optimization,
        use_tensorrt_provider,
        str(trt_cache),
        precision == 'fp16',
        spin_wait,
    )
    return backend
