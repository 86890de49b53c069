"""Inference backends (torch here; ONNX Runtime and TensorRT plug in via base.BACKEND_MODULES)."""

from poa_gres_ros.inference.backends.base import Backend, backend_available, create_backend

__all__ = ['Backend', 'backend_available', 'create_backend']
