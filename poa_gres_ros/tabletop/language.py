"""Words for queries: several templates per meaning, synonyms, carriers, phrase spans.

``realize(query, rng)`` turns a query (``queries``) into one English instruction plus the
character span of each referring phrase (one per Union part, else one). Paraphrases come from
drawing again: synonyms (mug/cup, block/cube hypernym, big/large, "left of"/"to the left of",
"near"/"next to"), several templates per meaning ("the leftmost mug" / "the mug on the far
left") and a carrier around the phrases (``carriers``: "pick up ...", "could you get ...?",
"... please", "where is ..."). Text is lower case ASCII; only a final "?" or "." and the ", "
between phrases are punctuation. ``MAX_WORDS`` (words plus punctuation marks) keeps it within
20 MiniLM tokens with [CLS]/[SEP] (checked by the tests with the real tokenizer).

With ``held_out=True`` (the test split) the words may also come from
``catalog.HELD_OUT_SYNONYMS`` and ``carriers.HELD_OUT_CARRIERS``; such sentences are marked
``Sentence.held_out``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poa_gres_ros.tabletop.carriers import draw_carrier, word_count
from poa_gres_ros.tabletop.catalog import (
    GENERIC_PLURAL,
    GENERIC_SINGULAR,
    HELD_OUT_SYNONYMS,
    NOUN_CLASSES,
)
from poa_gres_ros.tabletop.queries import (
    Filter,
    Group,
    Ordinal,
    Relation,
    Superlative,
    Union,
    Unique,
)

MAX_WORDS = 14
SIZE_WORDS = {'big': ('big', 'large'), 'small': ('small', 'little')}
SUPERLATIVE_WORDS = {'biggest': ('biggest', 'largest'), 'smallest': ('smallest', 'tiniest')}
RELATION_WORDS = {
    'left_of': ('left of', 'to the left of', 'on the left of'),
    'right_of': ('right of', 'to the right of', 'on the right of'),
    'near': ('near', 'next to', 'close to', 'beside'),
    'in': ('in', 'inside'),
}
ORDINAL_WORDS = {2: 'second', 3: 'third', 4: 'fourth'}
NUMBER_WORDS = {2: 'two', 3: 'three', 4: 'four', 5: 'five', 6: 'six'}
P_HELD_OUT_SYNONYM = 0.2
"""Test split: share of the nouns of a class with held-out synonyms that use one."""


@dataclass(frozen=True)
class Sentence:
    """An instruction and its referring phrases.

    Attributes:
        text: the instruction.
        spans: one (char_start, char_end) per phrase, ``text[s:e]`` is the phrase; in the
            order of ``queries.phrase_sets``.
        held_out: a held-out synonym or carrier (test split only) is used.
    """

    text: str
    spans: tuple[tuple[int, int], ...]
    held_out: bool = False

    def phrases(self) -> list[str]:
        return [self.text[s:e] for s, e in self.spans]


class _Words:
    """Draws words from one stream and remembers whether a held-out word was used."""

    def __init__(self, rng: np.random.Generator, held_out: bool):
        self.rng, self.held_out, self.used_held_out = rng, held_out, False

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def random(self) -> float:
        return float(self.rng.random())

    def noun(self, noun: str | None, plural: bool, after_colour: bool = False) -> str:
        if noun is None:
            opts = GENERIC_PLURAL if plural else GENERIC_SINGULAR
            if plural and not after_colour:
                opts = tuple(w for w in opts if w != 'ones')
            return self.pick(opts)
        cls = NOUN_CLASSES[noun]
        opts = cls.plural if plural else cls.singular
        extra = HELD_OUT_SYNONYMS.get(noun, ((), ()))[int(plural)] if self.held_out else ()
        if extra and self.random() < P_HELD_OUT_SYNONYM:
            self.used_held_out = True
            return self.pick(extra)
        return self.pick(opts)


def _nominal(w: _Words, f: Filter, plural: bool = False) -> str:
    """'[size] [colour] noun' without determiner, e.g. 'big red mugs'."""
    words = []
    if f.size:
        words.append(w.pick(SIZE_WORDS[f.size]))
    if f.colour:
        words.append(f.colour)
    words.append(w.noun(f.noun, plural, after_colour=f.colour is not None))
    return ' '.join(words)


def _group(w: _Words, q: Group) -> str:
    f, n = q.filter, q.count
    if n is None:
        opts = ['all the {pl}', 'all {pl}', 'every {sg}']
        if f.noun is None and f.colour and f.size is None:
            opts.append('everything {c}')
    elif n == 2:
        opts = ['both {pl}', 'the two {pl}', 'both of the {pl}']
    else:
        opts = ['the {n} {pl}', 'all {n} {pl}']
    t = w.pick(opts)  # draw only the nouns the template uses (held-out marking)
    return t.format(
        pl=_nominal(w, f, True) if '{pl}' in t else '',
        sg=_nominal(w, f, False) if '{sg}' in t else '',
        c=f.colour,
        n=NUMBER_WORDS.get(n or 0, str(n)),
    )


def _ordinal(w: _Words, q: Ordinal, n_candidates: int) -> str:
    sg, side = _nominal(w, q.filter), q.side
    if q.rank == 1:
        opts = [
            f'the {side}most {sg}',
            f'the {sg} on the far {side}',
            f'the first {sg} from the {side}',
        ]
        if n_candidates == 2:
            opts += [f'the {sg} on the {side}', f'the {side} {sg}']
        return w.pick(opts)
    o = ORDINAL_WORDS[q.rank]
    return w.pick([f'the {o} {sg} from the {side}', f'the {sg} {o} from the {side}'])


def _relation(w: _Words, q: Relation) -> str:
    anchor = _phrase(w, q.anchor, 0)
    rel = w.pick(RELATION_WORDS[q.relation])
    f = q.filter
    if q.count is None:
        the = f'the {_nominal(w, f)}'
        return w.pick([f'{the} {rel} {anchor}', f'{the} that is {rel} {anchor}'])
    if q.count == 0:
        opts = ['all the {pl} {rel} {anchor}', 'every {sg} {rel} {anchor}']
        if f.noun is None and f.colour is None:
            opts.append('everything {rel} {anchor}')
        t = w.pick(opts)  # draw only the nouns the template uses (held-out marking)
        return t.format(
            pl=_nominal(w, f, True) if '{pl}' in t else '',
            sg=_nominal(w, f, False) if '{sg}' in t else '',
            rel=rel,
            anchor=anchor,
        )
    pl = _nominal(w, f, True)
    n = NUMBER_WORDS.get(q.count, str(q.count))
    opts = [f'the {n} {pl} {rel} {anchor}']
    if q.relation == 'near':
        opts.append(f'the {n} {pl} closest to {anchor}')
    return w.pick(opts)


def _phrase(w: _Words, query, n_candidates: int) -> str:
    if isinstance(query, Unique):
        return f'the {_nominal(w, query.filter)}'
    if isinstance(query, Group):
        return _group(w, query)
    if isinstance(query, Superlative):
        adj = w.pick(SUPERLATIVE_WORDS[query.which])
        return f'the {adj} {_nominal(w, query.filter)}'
    if isinstance(query, Ordinal):
        return _ordinal(w, query, n_candidates)
    if isinstance(query, Relation):
        return _relation(w, query)
    raise TypeError(f'no wording for {type(query).__name__}')


def phrase_text(
    query, rng: np.random.Generator, n_candidates: int = 0, held_out: bool = False
) -> str:
    """One wording of a single-phrase query (not Union). ``n_candidates``: how many objects
    match the filter in the view (lets two-object ordinals say 'the mug on the left');
    ``held_out``: held-out synonyms may be used (test split)."""
    return _phrase(_Words(rng, held_out), query, n_candidates)


def is_plural(query) -> bool:
    """Whether the instruction refers to several things (for 'where is' / 'where are')."""
    if isinstance(query, Union | Group):
        return True
    return isinstance(query, Relation) and query.count is not None


def realize(
    query,
    rng: np.random.Generator,
    n_candidates: int = 0,
    tries: int = 6,
    *,
    held_out: bool = False,
) -> Sentence | None:
    """Word ``query`` as an instruction: phrases, joined by ", " / " and ", in a carrier.

    Returns a Sentence, or None if every draw in ``tries`` has phrases longer than
    ``MAX_WORDS``; a carrier that would exceed it is replaced by the bare phrases.
    ``held_out``: the test split's extra words (module docstring). Deterministic for ``rng``.
    """
    w = _Words(rng, held_out)
    parts = query.parts if isinstance(query, Union) else (query,)
    for _ in range(tries):
        w.used_held_out = False
        texts = [_phrase(w, p, n_candidates) for p in parts]
        if len(texts) == 1:
            joiners = ['']
        elif len(texts) == 2:
            joiners = ['', ' and '] if w.random() < 0.8 else ['', ' as well as ']
        else:
            joiners = [''] + [', '] * (len(texts) - 2) + [' and ']
        body, spans = '', []
        for j, t in zip(joiners, texts):
            body += j
            spans.append((len(body), len(body) + len(t)))
            body += t
        if word_count(body) > MAX_WORDS:
            continue
        carrier, held = draw_carrier(
            rng,
            plural=is_plural(query),
            allow_where=not texts[0].startswith('every'),
            held_out=held_out,
        )
        before, after = carrier.split('{}')
        text = before + body + after
        if word_count(text) > MAX_WORDS:
            text, before, held = body, '', False
        shift = len(before)
        return Sentence(
            text,
            tuple((a + shift, b + shift) for a, b in spans),
            held or w.used_held_out,
        )
    return None
