"""Export wrapper modules: the two graphs the exported backends run, with named inputs and
outputs (segment-anything's ``SamOnnxModel`` pattern).

Graph ``text_encoder``: ``input_ids (B, L) int64, attention_mask (B, L) int64 ->
text_features (B, L, D_text) float32`` (``POAModel.encode_text``, the raw encoder state).

Graph ``vision_decoder``: ``images (B, 3, H, W) float32 normalised, text_features
(B, L, D_text) float32, text_mask (B, L) int64`` -> the ``VISION_OUTPUT_NAMES`` of
``POAModel.vision_outputs``: 'mask_logits' (B, N, H/4, W/4), 'relevance' (B, N) in [0, 1],
'token_attention' (B, N, L), 'merged_mask' (B, H/4, W/4) in (0, 1), 'no_target_prob' (B,).

The text length L and the batch B are dynamic; the image size (H, W) is fixed per export (the
model config's ``input.size_hw``; the predictor resizes every frame to it) and recorded in the
export's metadata. Splitting the graphs lets the predictor encode an instruction once and run
only the vision graph per frame.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from poa_gres_ros.modeling.poa_model import VISION_OUTPUT_NAMES, POAModel

# Opset 18 is the dynamo exporter's native opset in torch 2.13 (no version conversion pass)
# and covers everything the graphs use (GridSample-16, LayerNormalization-17, reductions with
# axes as inputs); TensorRT 10's ONNX parser and ONNX Runtime >= 1.14 read it.
OPSET = 18
TEXT_GRAPH = 'text_encoder'
VISION_GRAPH = 'vision_decoder'
GRAPHS = (TEXT_GRAPH, VISION_GRAPH)
GRAPH_FILES = {TEXT_GRAPH: 'text_encoder.onnx', VISION_GRAPH: 'vision_decoder.onnx'}
TEXT_INPUT_NAMES = ('input_ids', 'attention_mask')
TEXT_OUTPUT_NAME = 'text_features'
VISION_INPUT_NAMES = ('images', 'text_features', 'text_mask')
INPUT_NAMES = {TEXT_GRAPH: TEXT_INPUT_NAMES, VISION_GRAPH: VISION_INPUT_NAMES}
OUTPUT_NAMES = {TEXT_GRAPH: (TEXT_OUTPUT_NAME,), VISION_GRAPH: VISION_OUTPUT_NAMES}
# Names of the dynamic dimensions in the exported graphs (ONNX dim_param).
BATCH_DIM = 'batch'
TOKENS_DIM = 'tokens'
MAX_EXPORT_BATCH = 64


class TextEncoderExport(nn.Module):
    """``text_encoder`` graph: ``forward(input_ids (B, L) int64, attention_mask (B, L) int64)
    -> text_features (B, L, D_text) float32``."""

    input_names = TEXT_INPUT_NAMES
    output_names = (TEXT_OUTPUT_NAME,)

    def __init__(self, model: POAModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.model.encode_text(input_ids, attention_mask)


class VisionDecoderExport(nn.Module):
    """``vision_decoder`` graph: ``forward(images, text_features, text_mask)`` -> tuple in
    ``VISION_OUTPUT_NAMES`` order (shapes in the module docstring)."""

    input_names = VISION_INPUT_NAMES
    output_names = VISION_OUTPUT_NAMES

    def __init__(self, model: POAModel):
        super().__init__()
        self.model = model

    def forward(self, images: Tensor, text_features: Tensor, text_mask: Tensor):
        out = self.model.vision_outputs(images, text_features, text_mask)
        return tuple(out[name] for name in VISION_OUTPUT_NAMES)


def example_tokens(batch: int, length: int, vocab_lo: int = 1000, vocab_hi: int = 2000, seed=0):
    """Deterministic token ids and a right-padded mask: (B, L) int64 each. Row b has
    ``length - b`` real tokens (at least 2: [CLS] and [SEP] positions are real)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(vocab_lo, vocab_hi, (batch, length), generator=gen)
    mask = torch.ones(batch, length, dtype=torch.long)
    for b in range(batch):
        n = max(2, length - b)
        mask[b, n:] = 0
        ids[b, n:] = 0
    return ids, mask


def example_images(batch: int, size_hw: tuple[int, int], seed: int = 0) -> Tensor:
    """(B, 3, H, W) float32, standard normal (the scale of normalised images)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, *size_hw, generator=gen)


def dynamic_shapes(graph: str, max_tokens: int) -> dict:
    """``torch.onnx.export(dynamic_shapes=...)`` of one graph: batch in [1, 64], tokens in
    [1, max_tokens]; the image size stays static."""
    batch = torch.export.Dim(BATCH_DIM, min=1, max=MAX_EXPORT_BATCH)
    tokens = torch.export.Dim(TOKENS_DIM, min=1, max=max_tokens)
    bl = {0: batch, 1: tokens}
    if graph == TEXT_GRAPH:
        return {'input_ids': bl, 'attention_mask': bl}
    if graph == VISION_GRAPH:
        return {'images': {0: batch}, 'text_features': bl, 'text_mask': bl}
    raise ValueError(f'unknown graph {graph!r}; use one of {GRAPHS}')
