"""One deserialized TensorRT engine called with named torch tensors (TensorRT 10 name-based I/O).

Used by the engine lookup (``inference/engine_artifacts.py``, which loads or builds the
engines) and by the TensorRT backend (which runs them). ``tensorrt`` itself is passed in by
the caller, so this module imports without TensorRT.
"""

from __future__ import annotations

import torch

_TORCH_DTYPES = {
    'FLOAT': torch.float32,
    'HALF': torch.float16,
    'BF16': torch.bfloat16,
    'INT32': torch.int32,
    'INT64': torch.int64,
    'INT8': torch.int8,
    'UINT8': torch.uint8,
    'BOOL': torch.bool,
}


class TrtEngine:
    """One deserialized engine with its execution context, called with named torch tensors.

    Args:
        trt: the tensorrt module. data: serialized engine. device: 'cuda:N'.
    Raises:
        RuntimeError: TensorRT cannot deserialize the engine (other version/GPU, corrupt).
    """

    def __init__(self, trt, data: bytes, device: str, logger):
        self.device = torch.device(device)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise RuntimeError('TensorRT could not deserialize the engine (see its log)')
        self.context = self.engine.create_execution_context()
        self.inputs, self.outputs, self.dtypes = [], [], {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(name)
            dt = str(self.engine.get_tensor_dtype(name)).rsplit('.', 1)[-1]
            if dt not in _TORCH_DTYPES:
                raise RuntimeError(f'engine tensor {name} has unsupported dtype {dt}')
            self.dtypes[name] = _TORCH_DTYPES[dt]
        self.stream = torch.cuda.Stream(self.device)
        self._buffers: dict[str, torch.Tensor] = {}

    def __call__(self, feeds: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """feeds: every input name -> tensor (any device/dtype; converted). Returns output
        name -> CUDA tensor (a fresh copy the caller owns).

        Raises:
            ValueError: a missing input or a shape outside the engine's profile.
            RuntimeError: execute_async_v3 failed.
        """
        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            raise ValueError(f'missing engine inputs {missing}')
        keep = []
        with torch.cuda.device(self.device):
            for name in self.inputs:
                t = feeds[name].to(self.device, self.dtypes[name]).contiguous()
                keep.append(t)
                if not self.context.set_input_shape(name, tuple(t.shape)):
                    lo, _, hi = self.engine.get_tensor_profile_shape(name, 0)
                    raise ValueError(
                        f'input {name} shape {tuple(t.shape)} is outside the engine profile '
                        f'{tuple(lo)}..{tuple(hi)}; rebuild with a larger max_batch/max_tokens'
                    )
                self.context.set_tensor_address(name, t.data_ptr())
            for name in self.outputs:
                shape = tuple(self.context.get_tensor_shape(name))
                buf = self._buffers.get(name)
                if buf is None or tuple(buf.shape) != shape:
                    buf = torch.empty(shape, dtype=self.dtypes[name], device=self.device)
                    self._buffers[name] = buf
                self.context.set_tensor_address(name, buf.data_ptr())
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError('TensorRT execute_async_v3 failed (see the TensorRT log)')
            self.stream.synchronize()
            return {n: self._buffers[n].clone() for n in self.outputs}

    def close(self) -> None:
        self._buffers.clear()
        self.context = self.engine = self.runtime = None
