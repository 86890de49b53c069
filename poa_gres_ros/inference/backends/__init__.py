"""Inference backends behind one interface, registered by name in ``base.BACKEND_MODULES``.

- ``base``: the ``Backend`` interface, the registry, 'auto' selection and the warm-up.
- ``torch_backend``: PyTorch eager, the reference.
- ``onnxruntime_backend``: the two exported ONNX graphs in ONNX Runtime sessions.
- ``tensorrt_backend``: the two graphs as TensorRT engines.
- ``tensorrt_runtime``: one deserialized engine called with named torch tensors.
"""

from poa_gres_ros.inference.backends.base import Backend, backend_available, create_backend

__all__ = ['Backend', 'backend_available', 'create_backend']
