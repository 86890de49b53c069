"""The speech vocabulary comes from the tabletop generator: every word the generator can say is
in the pocketsphinx grammar, and the catalogue's colours and nouns are its colours and nouns."""

from __future__ import annotations

import itertools
import re

import numpy as np

from poa_gres_ros.speech import vocabulary
from poa_gres_ros.tabletop import carriers, catalog, language
from poa_gres_ros.tabletop.facts import RELATIONS, SIDES, Filter
from poa_gres_ros.tabletop.queries import (
    MAX_RANK,
    SUPERLATIVES,
    Group,
    Ordinal,
    Relation,
    Superlative,
    Union,
    Unique,
)


def _grammar_words() -> set[str]:
    body = vocabulary.jsgf_grammar().split('\n', 2)[2]  # after the header lines
    return set(re.findall(r"(?<![<\w])[a-z][a-z']*(?![\w>])", body))


def _filters():
    nouns = [*catalog.NOUN_CLASSES, None]
    for noun, colour in itertools.product(nouns, [*catalog.COLOURS, None]):
        for size in [*catalog.SIZE_CLASSES, None] if noun else [None]:
            yield Filter(noun, colour, size)


def _queries():
    anchor = Unique(Filter('tray'))
    for f in _filters():
        yield Unique(f)
        yield from (Group(f, n) for n in (None, 2, 3, *language.NUMBER_WORDS))
        if f.noun:
            yield from (Superlative(f, which) for which in SUPERLATIVES)
        for side, rank in itertools.product(SIDES, range(1, MAX_RANK + 1)):
            yield Ordinal(f, rank, side)
        for rel, count in itertools.product(RELATIONS, (None, 0, 2, 3)):
            yield Relation(f, rel, anchor, count)
    yield Union((Unique(Filter('mug', 'red')), Unique(Filter('duck'))))
    yield Union(tuple(Unique(Filter(n)) for n in ('cube', 'sphere', 'tray')))


def test_the_grammar_covers_every_word_the_generator_says():
    grammar = _grammar_words()
    said: set[str] = set()
    rng = np.random.default_rng(0)
    for query in _queries():
        for n_candidates in (2, 3):
            for _ in range(6):
                sentence = language.realize(query, rng, n_candidates, tries=1, held_out=True)
                if sentence is not None:
                    said.update(re.findall(r"[a-z][a-z']*", sentence.text))
    assert len(said) > 100  # the sampling reached the whole template space
    missing = sorted(said - grammar)
    assert not missing, f'generator words missing from the speech grammar: {missing}'


def test_colours_and_nouns_are_the_catalogues():
    v = vocabulary.Vocabulary()
    assert set(v.colours) == set(catalog.COLOURS)
    assert not {'grey', 'gray', 'brown'} & set(v.words())  # left out of the palette on purpose
    for noun in catalog.NOUN_CLASSES.values():
        assert set(noun.singular + noun.plural) <= set(v.nouns)
    for noun, (sg, pl) in catalog.HELD_OUT_SYNONYMS.items():
        assert set(sg + pl) <= set(v.nouns), noun
    assert set(carriers.VERBS) <= set(v.verbs) and set(carriers.POLITE_PREFIXES) <= set(v.polite)
    assert {'please', 'for me please'} <= set(v.endings) and ('pick', 'up') in v.split_verbs


def test_the_whisper_prompt_uses_vocabulary_words():
    words = set(vocabulary.Vocabulary().words())
    for group in (
        vocabulary.PROMPT_VERBS,
        vocabulary.PROMPT_NOUNS,
        vocabulary.PROMPT_COLOURS,
        vocabulary.PROMPT_SIZES,
        vocabulary.PROMPT_RELATIONS,
    ):
        for phrase in group:
            assert set(phrase.split()) <= words, phrase
