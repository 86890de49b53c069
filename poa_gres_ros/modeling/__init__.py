"""The InstAlign / POA model in pure PyTorch (no ROS): one module family per file.

from poa_gres_ros.modeling import build_model, load_model, save_model
model = build_model('tiny')                  # or a POAConfig; see core/model_config.py
out = model(images, input_ids, attention_mask)   # POAOutput (modeling/outputs.py)
"""

from poa_gres_ros.modeling.build import MODEL_REGISTRY, build_model
from poa_gres_ros.modeling.io import load_model, save_model
from poa_gres_ros.modeling.outputs import POALayerOutput, POAOutput
from poa_gres_ros.modeling.poa_model import POAModel

__all__ = [
    'MODEL_REGISTRY',
    'POALayerOutput',
    'POAModel',
    'POAOutput',
    'build_model',
    'load_model',
    'save_model',
]
