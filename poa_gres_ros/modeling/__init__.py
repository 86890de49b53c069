"""The InstAlign / POA model in pure PyTorch (no ROS): one module family per file.

from poa_gres_ros.modeling import build_model, load_model, save_model
model = build_model('tiny')                  # or a POAConfig; presets: core/model_presets.py
out = model(images, input_ids, attention_mask)   # POAOutput (modeling/outputs.py)

The method these modules implement is docs/method.md.

- ``poa_model``: ``POAModel``, the whole network.
- ``backbone_swin``, ``backbone_efficientnet``, ``backbone_tiny``: visual backbones.
- ``text_encoder``: the text encoder and tokenizer.
- ``pixel_decoder``: the multi-scale deformable-attention pixel decoder.
- ``transformer_decoder``: the text-conditioned masked-attention decoder.
- ``heads``: mask, relevance, phrase alignment, aggregation and no-target heads.
- ``outputs``: the typed outputs.
- ``common``: shared building blocks (MLP, attention, position embeddings).
- ``preprocess``: image preprocessing shared with training and export.
- ``build``: builders and the registry of named variants.
- ``io``: model folders (safetensors, no pickle).
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
