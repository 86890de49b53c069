"""TensorRT backend (TensorRT 10+ Python API; CUDA GPUs incl. Jetson Orin).

``create`` finds the ONNX export (``find_or_export_onnx``), then per graph a cached engine that
matches this GPU, compute capability, TensorRT version, precision, input size, ONNX hash and
profile, or builds one (logged: this can take minutes, several on a Jetson). A mismatched or
corrupt engine, or one TensorRT refuses to deserialize, is rebuilt instead of crashing. Before
a build the cache folder is checked for writability (clear error naming it). The first TensorRT
runs are about 10x slower: the node and the predictor warm up through ``Backend.warmup``.

Runtime (``tensorrt_runtime.TrtEngine``): ``trt.Runtime.deserialize_cuda_engine``, one execution
context per engine, name-based tensor I/O (``set_input_shape``, ``set_tensor_address``) and
``execute_async_v3`` on a torch CUDA stream; device buffers are torch CUDA tensors (no pycuda).
Output buffers are reused while the shapes stay the same (one buffer per output, so GPU memory
does not grow per frame: nodes that allocate per frame run out of GPU memory after minutes).
``tensorrt`` is imported only inside functions: this module imports anywhere and ``available``
says exactly why TensorRT is not usable.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.export.wrappers import (
    TEXT_GRAPH,
    TEXT_OUTPUT_NAME,
    VISION_GRAPH,
    VISION_OUTPUT_NAMES,
)
from poa_gres_ros.inference.backends.base import Backend
from poa_gres_ros.inference.engine_artifacts import find_or_build_engines

_log = logging.getLogger(__name__)


class TensorRTBackend(Backend):
    """Backend on two TensorRT engines (text encoder, vision decoder).

    Args:
        config: POAConfig. engines: {'text_encoder': TrtEngine, 'vision_decoder': TrtEngine}.
        device: 'cuda:N'. info: text for ``describe`` (TensorRT version, precision, cache).
    """

    name = 'tensorrt'

    def __init__(self, config: POAConfig, engines: dict, device: str, info: str):
        super().__init__(config, device)
        self.engines = engines
        self.info = info

    def encode_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        out = self.engines[TEXT_GRAPH](
            {
                'input_ids': torch.as_tensor(input_ids),
                'attention_mask': torch.as_tensor(attention_mask),
            }
        )
        return out[TEXT_OUTPUT_NAME].float().cpu().numpy()

    def run_vision(self, images, text_features, text_mask) -> dict[str, np.ndarray]:
        out = self.run_vision_torch(
            torch.as_tensor(images), torch.as_tensor(text_features), torch.as_tensor(text_mask)
        )
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def run_vision_torch(self, images, text_features, text_mask) -> dict[str, torch.Tensor]:
        out = self.engines[VISION_GRAPH](
            {'images': images, 'text_features': text_features, 'text_mask': text_mask}
        )
        return {k: out[k].float().to(images.device) for k in VISION_OUTPUT_NAMES}

    def describe(self) -> str:
        return f'tensorrt on {self.device}: {self.info}'

    def close(self) -> None:
        for eng in self.engines.values():
            eng.close()
        self.engines = {}
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.closed = True


def available(device: str) -> tuple[bool, str]:
    """(usable, reason). Usable = ``tensorrt`` >= 10 imports, torch sees the CUDA device and
    ``device`` is a CUDA device. The reason lists every check that failed."""
    problems = []
    version = None
    try:
        import tensorrt as trt

        version = trt.__version__
    except (ImportError, OSError) as exc:  # OSError: libnvinfer*.so missing
        problems.append(f'tensorrt does not import ({type(exc).__name__}: {exc})')
    if version is not None:
        from poa_gres_ros.export.tensorrt_engine import MIN_TENSORRT_MAJOR, tensorrt_major

        if tensorrt_major(version) < MIN_TENSORRT_MAJOR:
            problems.append(f'TensorRT {version} is older than {MIN_TENSORRT_MAJOR}')
    if not torch.cuda.is_available():
        cuda = torch.version.cuda or 'none (CPU-only build)'
        problems.append(f'torch {torch.__version__} sees no CUDA GPU (CUDA {cuda})')
    if not str(device).startswith('cuda'):
        problems.append(f"device {device!r} is not a CUDA device (use 'cuda:0')")
    if problems:
        return False, '; '.join(problems)
    idx = torch.device(device).index or 0
    if idx >= torch.cuda.device_count():
        return False, f'{device}: only {torch.cuda.device_count()} CUDA device(s)'
    return True, f'tensorrt {version}, {torch.cuda.get_device_name(idx)}'


def create(
    model_dir: Path,
    config: POAConfig,
    device: str,
    *,
    cache_dir: str | None = None,
    precision: str = 'fp16',
    max_batch: int = 1,
    opt_tokens: int | None = None,
    workspace_mb: int = 1024,
    calibration_dataset: str | None = None,
    calibration_images: int = 64,
    export_if_missing: bool = True,
    build_if_missing: bool = True,
) -> TensorRTBackend:
    """Find or build the engines and return a warmed-up backend.

    Args:
        cache_dir: cache root (default ``export.artifacts.default_cache_dir()``).
        precision: 'fp32', 'fp16' or 'int8' (needs ``calibration_dataset``).
        max_batch: largest batch the engines take. opt_tokens: text length to tune for
            (default half of max_tokens). workspace_mb: builder workspace limit.
        calibration_dataset / calibration_images: gRefCOCO folder and images for int8.
        export_if_missing / build_if_missing: allow the ONNX export / engine build.
    Raises:
        RuntimeError: TensorRT not usable, cache not writable, build failed, or nothing cached
            and building not allowed. ValueError: bad option values.
    """
    ok, why = available(device)
    if not ok:
        raise RuntimeError(f'TensorRT is not usable: {why}')
    engines, info = find_or_build_engines(
        model_dir,
        config,
        device,
        cache_dir=cache_dir,
        precision=precision,
        max_batch=max_batch,
        opt_tokens=opt_tokens,
        workspace_mb=workspace_mb,
        calibration_dataset=calibration_dataset,
        calibration_images=calibration_images,
        export_if_missing=export_if_missing,
        build_if_missing=build_if_missing,
    )
    return TensorRTBackend(config, engines, device, info)


__all__ = ['TensorRTBackend', 'available', 'create']
