"""Export of the POA model to ONNX and TensorRT engines (build artefacts, never committed).

- ``wrappers``: the two export wrapper modules with named inputs and outputs (text encoder;
  vision backbone + pixel decoder + transformer decoder + heads) and the pinned opset (18).
- ``onnx_export``: ``export_onnx`` (dynamo exporter, onnx.checker, parity against torch,
  ``metadata.json``); ``poa-gres export`` is its CLI.
- ``onnx_artifacts``: ``find_or_export_onnx``: the model folder's ``onnx/`` or the cache, exported
  on first use, corrupt/mismatched exports detected by hashes.
- ``parity``: torch versus ONNX Runtime comparison at written tolerances.
- ``artifacts``: the artefact folder (``POA_GRES_CACHE_DIR``), content keys, atomic writes,
  locks and the writable-folder check.
- ``tensorrt_engine``: TensorRT 10 engine builder, cache keys and rebuild decisions
  (``tensorrt`` imported only inside functions); ``calibration``: INT8 calibration data.

Heavy libraries (onnx, onnxruntime, tensorrt) are imported inside functions where they are
optional, so importing this package never needs TensorRT.
"""
