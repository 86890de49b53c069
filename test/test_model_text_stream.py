"""The decoder's text stream stays text (docs/method.md#text-stream).

For real instructions, the final-layer text tokens of one sentence must stay distinct words
(mean pairwise cosine clearly below 1) and different sentences must keep different sentence
features. The check runs on the tiny and the tabletop configurations at initialisation, where
the earlier post-norm text update had already collapsed every sentence to one vector, and on
the shipped model. The earlier design is built too, to show the check catches the collapse.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from poa_gres_ros.core.model_presets import get_preset
from poa_gres_ros.modeling import build_model
from poa_gres_ros.modeling.text_encoder import tokenize

SHIPPED = Path(__file__).resolve().parents[1] / 'models' / 'tabletop'
SENTENCES = [
    'pick up the red mug left of the tray',
    'could you hand me the second duck from the right',
    'all the green cubes and the yellow ball',
    'the purple teddy bear',
]
LEGACY = {  # the text stream before the fix: no LayerNorm on the tokens, post-norm update
    'decoder.text_norm': False,
    'decoder.text_update_gate': False,
    'heads.poa_stop_grad_text': False,
}


def _pairwise_mean_cos(x: torch.Tensor) -> float:
    """x (K, C) -> mean cosine over the K (K - 1) ordered pairs."""
    x = torch.nn.functional.normalize(x.float(), dim=-1)
    sim = x @ x.T
    k = x.shape[0]
    return float((sim.sum() - sim.diagonal().sum()) / (k * (k - 1)))


def _cosines(text: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    within = [_pairwise_mean_cos(text[b][mask[b]]) for b in range(text.shape[0])]
    m = mask[..., None].to(text.dtype)
    sentence = (text * m).sum(1) / m.sum(1)
    return sum(within) / len(within), _pairwise_mean_cos(sentence)


def text_stream_cosines(model) -> dict[str, tuple[float, float]]:
    """(mean token cosine within a sentence, mean sentence-feature cosine across sentences) of
    the text encoder's output ('encoder') and of the final decoder layer ('decoder'), on
    SENTENCES and a random image."""
    tok = tokenize(model.tokenizer, SENTENCES, model.config.text.max_tokens)
    h, w = model.config.input.size_hw
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = model(
            torch.randn(len(SENTENCES), 3, h, w, generator=g),
            tok.input_ids,
            tok.attention_mask,
            aux_outputs=False,
        )
        encoder = model.encode_text(tok.input_ids, tok.attention_mask)
    mask = tok.attention_mask.bool()
    return {'encoder': _cosines(encoder, mask), 'decoder': _cosines(out.text_features, mask)}


def _assert_text_stays_text(cos: dict, name: str) -> None:
    """The decoder's tokens may become a little more alike than the encoder's, never one
    vector: within a sentence at most 0.15 above the encoder and below 0.8; across sentences
    at most halfway from the encoder's cosine to 1 (one vector for every sentence) and below
    0.97. Training moves sentence features closer than the encoder's (shipped model: 0.39
    against 0.25) while the collapse this guards against sits at 1."""
    (w_enc, a_enc), (w_dec, a_dec) = cos['encoder'], cos['decoder']
    assert w_dec < min(0.8, w_enc + 0.15), f'{name}: tokens collapsed {cos}'
    assert a_dec < min(0.97, a_enc + 0.5 * (1.0 - a_enc)), f'{name}: sentences look alike {cos}'


@pytest.mark.parametrize('preset', ['tiny', 'tabletop'])
def test_text_tokens_stay_distinct_at_initialisation(preset):
    torch.manual_seed(0)
    _assert_text_stays_text(text_stream_cosines(build_model(get_preset(preset))), preset)


def test_the_check_catches_the_earlier_collapse():
    torch.manual_seed(0)
    model = build_model(get_preset('tabletop').with_overrides(LEGACY))
    cos = text_stream_cosines(model)
    assert cos['decoder'][0] > 0.95 > cos['encoder'][0], cos
    with pytest.raises(AssertionError, match='collapsed'):
        _assert_text_stays_text(cos, 'earlier design')


@pytest.mark.skipif(not (SHIPPED / 'config.json').is_file(), reason='no models/tabletop')
def test_shipped_model_text_stream():
    from poa_gres_ros.modeling import load_model

    model = load_model(SHIPPED)
    assert model.config.decoder.text_norm, 'the shipped model predates the text-stream fix'
    _assert_text_stays_text(text_stream_cosines(model), 'shipped')
