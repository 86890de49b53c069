"""Inference: the Predictor facade, backends and model-folder lookup.

- ``predictor``: ``Predictor`` (instruction cache, single and batched prediction; results
  from ``core.postprocess``).
- ``backends``: torch, ONNX Runtime and TensorRT behind one interface.
- ``engine_artifacts``: find or build the TensorRT engines of a model on this GPU.
- ``model_dirs``: a model folder from a path or a name.

from poa_gres_ros.inference import Predictor
p = Predictor.from_model_dir('tabletop')
p.set_instruction('the red mug and the duck on the left')
pred = p.predict(image_rgb)          # GresPrediction at the image's resolution
preds = p.predict_batch([img_a, img_b], texts=['a cup', 'the duck'])   # one per image
"""

from poa_gres_ros.inference.model_dirs import model_search_dirs, resolve_model_dir
from poa_gres_ros.inference.predictor import InstructionInfo, Predictor

__all__ = [
    'InstructionInfo',
    'Predictor',
    'model_search_dirs',
    'resolve_model_dir',
]
