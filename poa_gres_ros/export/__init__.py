"""Export of the POA model to ONNX and TensorRT engines (architecture.md §4 rules 6-7).

- ``wrappers``: the two export wrapper modules with named inputs and outputs (text encoder;
  vision backbone + pixel decoder + transformer decoder + heads) and the pinned opset.
- ``onnx_export``: ``export_onnx`` (dynamo exporter, onnx.checker, parity against torch,
  ``metadata.json``) and ``find_or_export_onnx`` (model folder ``onnx/`` or the cache).
- ``parity``: torch versus ONNX Runtime comparison at written tolerances.
- ``cache``: cache folder, hashing and the writable-folder check shared by ONNX and engines.
- ``tensorrt_engine``: TensorRT 10 engine builder (imports ``tensorrt`` only inside functions).

Heavy libraries (onnx, onnxruntime, tensorrt) are imported inside functions so that importing
this package never needs them.
"""
