"""Names of the ways to run the model, shared by the backends, the engine builder, the CLI and
the node's parameters (no torch, no ROS).

- :data:`BACKENDS`: the inference backends (``'auto'`` is not one: it chooses among them in
  ``AUTO_ORDER``, see ``inference/backends/base.py``);
- :data:`PRECISIONS`: numeric precisions; TensorRT builds all three (int8 with calibration
  data), ONNX Runtime runs fp32 and fp16, torch fp32.
"""

from __future__ import annotations

BACKENDS: tuple[str, ...] = ('torch', 'onnxruntime', 'tensorrt')
AUTO_ORDER: tuple[str, ...] = ('tensorrt', 'onnxruntime', 'torch')
PRECISIONS: tuple[str, ...] = ('fp32', 'fp16', 'int8')
