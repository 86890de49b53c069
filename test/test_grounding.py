"""Phrase spans from constructed attention matrices (core/grounding.py rule)."""

from __future__ import annotations

import numpy as np
import pytest

from poa_gres_ros.core.grounding import GroundingRule, ground_phrase, ground_phrases
from poa_gres_ros.core.model_presets import get_preset
from poa_gres_ros.modeling.text_encoder import load_tokenizer, tokenize


@pytest.fixture(scope='module')
def tok():
    return load_tokenizer(get_preset('tabletop').text)  # MiniLM's uncased WordPiece


def _encode(tok, text):
    t = tokenize(tok, [text], 32)
    tokens = tok.convert_ids_to_tokens(t.input_ids[0].tolist())
    return t.offsets[0], t.word_ids[0], tokens


def _attention(tokens, weights: dict, rest: float = 0.01):
    """R over tokens: weights keyed by token string (first occurrence) or token index, rest
    elsewhere; [CLS]/[SEP] get a lot of mass to check that it is ignored."""
    att = np.full(len(tokens), rest)
    for key, w in weights.items():
        att[key if isinstance(key, int) else tokens.index(key)] = w
    att[0] = att[-1] = 0.5
    return att / att.sum()


def test_two_instances_get_different_spans(tok):
    text = 'the red mug and the duck on the left'
    offsets, word_ids, tokens = _encode(tok, text)
    assert tokens[0] == '[CLS]' and tokens[-1] == '[SEP]' and len(tokens) == 11
    mug = _attention(tokens, {'red': 0.3, 'mug': 0.4})
    duck = _attention(tokens, {'duck': 0.3, 'on': 0.15, 8: 0.12, 'left': 0.25})  # 8: 3rd 'the'
    spans = ground_phrases(text, offsets, np.stack([mug, duck]), word_ids)
    assert spans[0].text == 'red mug' and (spans[0].char_start, spans[0].char_end) == (4, 11)
    assert spans[1].text == 'duck on the left'
    assert text[spans[1].char_start : spans[1].char_end] == 'duck on the left'
    assert spans[0] != spans[1]


def test_contiguous_run_stops_at_a_weak_word_unless_bridged(tok):
    text = 'the red mug and the duck on the left'
    offsets, word_ids, tokens = _encode(tok, text)
    att = _attention(tokens, {'duck': 0.4, 'left': 0.3})
    assert ground_phrase(text, offsets, att, word_ids).text == 'duck'
    bridged = ground_phrase(text, offsets, att, word_ids, GroundingRule(max_gap_words=2))
    assert bridged.text == 'duck on the left'


def test_uniform_or_empty_attention_gives_no_phrase(tok):
    text = 'a cup'
    offsets, word_ids, tokens = _encode(tok, text)
    uniform = np.ones(len(tokens)) / len(tokens)
    assert ground_phrase(text, offsets, uniform, word_ids) is None
    only_special = np.zeros(len(tokens))
    only_special[0] = only_special[-1] = 0.5
    assert ground_phrase(text, offsets, only_special, word_ids) is None
    with pytest.raises(ValueError, match='same length'):
        ground_phrase(text, offsets, uniform[:-1], word_ids)


def test_word_pieces_form_one_word(tok):
    text = 'grab the espresso cup'
    offsets, word_ids, tokens = _encode(tok, text)
    pieces = [t for t in tokens if t.startswith('##')]
    assert pieces, f'expected a multi-piece word in {tokens}'
    j = tokens.index(pieces[0])  # a continuation piece of a word
    att = np.full(len(tokens), 0.01)
    att[j] = 0.9
    span = ground_phrase(text, offsets, att, word_ids)
    start = text.rfind(' ', 0, offsets[j][0]) + 1
    end = text.find(' ', offsets[j][1])
    assert span.text == text[start : end if end >= 0 else len(text)]
    # without word ids, touching offsets group the pieces the same way
    assert ground_phrase(text, offsets, att, None) == span


def test_punctuation_is_trimmed(tok):
    text = 'the mug, and the duck'
    offsets, word_ids, tokens = _encode(tok, text)
    att = _attention(tokens, {'mug': 0.4, ',': 0.3})
    assert ground_phrase(text, offsets, att, word_ids).text == 'mug'


@pytest.mark.parametrize(
    'text,target,expected',
    [
        ('prends la tasse rouge à gauche', (5, 6), 'tasse rouge'),  # ta ##sse | rouge
        ('the café crème mug', (2, 3), 'café crème'),  # accents stripped by the uncased tokenizer
        ('把红色的杯子给我', (2, 3), '红色'),  # one token per CJK character ([UNK] or not)
        ('pick the 🦆 duck', (3, 4), '🦆 duck'),  # an astral code point is one str index
    ],
)
def test_non_ascii_offsets_are_str_indices(tok, text, target, expected):
    offsets, word_ids, tokens = _encode(tok, text)
    att = np.full(len(tokens), 0.01)
    att[list(target)] = 0.4
    span = ground_phrase(text, offsets, att, word_ids)
    assert span.text == expected
    assert text[span.char_start : span.char_end] == expected
