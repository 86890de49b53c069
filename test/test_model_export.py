"""The vision graph of the tiny model exports with the dynamo ONNX exporter (dynamic text
length) and ONNX Runtime matches torch. Guards the model code's exportability; the export
wrappers and backend parity tests live with the export module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poa_gres_ros.core.model_presets import get_preset
from poa_gres_ros.inference.backends.base import VISION_INPUT_NAMES, VISION_OUTPUT_NAMES
from poa_gres_ros.modeling import build_model
from poa_gres_ros.modeling.text_encoder import tokenize

onnxruntime = pytest.importorskip('onnxruntime')
pytest.importorskip('onnxscript')


class _Vision(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images, text_features, text_mask):
        out = self.model.vision_outputs(images, text_features, text_mask)
        return tuple(out[k] for k in VISION_OUTPUT_NAMES)


@pytest.mark.slow  # the dynamo export takes 10-30 s on 2 shared CPU cores
def test_tiny_vision_graph_exports_and_matches(tmp_path):
    torch.manual_seed(0)
    # exclude_special_tokens covers the boolean mask logic ORT has no Where kernel for
    model = build_model(
        get_preset('tiny').with_overrides({'heads.poa_exclude_special_tokens': True})
    )
    wrapper = _Vision(model).eval()
    x = torch.randn(1, 3, 64, 96)
    tok = tokenize(model.tokenizer, ['the red mug and the duck on the left'], 16)
    with torch.no_grad():
        text = model.encode_text(tok.input_ids, tok.attention_mask)
    length = torch.export.Dim('L', min=3, max=64)
    path = tmp_path / 'vision.onnx'
    torch.onnx.export(
        wrapper,
        (x, text, tok.attention_mask),
        str(path),
        dynamo=True,
        opset_version=18,
        input_names=list(VISION_INPUT_NAMES),
        output_names=list(VISION_OUTPUT_NAMES),
        dynamic_shapes={'images': None, 'text_features': {1: length}, 'text_mask': {1: length}},
    )
    session = onnxruntime.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    for sentence in ('the red mug and the duck on the left', 'a cup'):  # 11 and 4 tokens
        tok = tokenize(model.tokenizer, [sentence], 16)
        with torch.no_grad():
            text = model.encode_text(tok.input_ids, tok.attention_mask)
            ref = wrapper(x, text, tok.attention_mask)
        got = session.run(
            None,
            {
                'images': x.numpy(),
                'text_features': text.numpy(),
                'text_mask': tok.attention_mask.numpy(),
            },
        )
        for name, a, b in zip(VISION_OUTPUT_NAMES, got, ref):
            assert a.shape == tuple(b.shape), name
            assert np.abs(a - b.numpy()).max() < 1e-4, name
