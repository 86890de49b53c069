"""Words for queries: several templates per meaning, synonyms, commands, phrase spans.

``realize(query, rng)`` turns a query (``queries``) into one English instruction plus the
character span of each referring phrase (one per Union part, else one). Paraphrases come from
drawing again: synonyms (mug/cup, block/wooden block, big/large, "left of"/"to the left of",
"near"/"next to"), several templates per meaning ("the leftmost mug" / "the mug on the far
left") and optional commands ("pick up ...", "grab ...", "where is ..."). Text is lower case,
ASCII, without final punctuation; ``MAX_WORDS`` keeps it within 20 MiniLM tokens with
[CLS]/[SEP] (checked by the tests with the real tokenizer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poa_gres_ros.tabletop.catalog import GENERIC_PLURAL, GENERIC_SINGULAR, NOUN_CLASSES
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
COMMANDS = (
    'pick up',
    'grab',
    'take',
    'find',
    'show me',
    'point at',
    'segment',
    'look at',
    'get',
    'highlight',
    'give me',
)
P_NO_COMMAND = 0.3
P_PLEASE = 0.1


@dataclass(frozen=True)
class Sentence:
    """An instruction and its referring phrases.

    Attributes:
        text: the instruction.
        spans: one (char_start, char_end) per phrase, ``text[s:e]`` is the phrase; in the
            order of ``queries.phrase_sets``.
    """

    text: str
    spans: tuple[tuple[int, int], ...]

    def phrases(self) -> list[str]:
        return [self.text[s:e] for s, e in self.spans]


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _noun(rng, noun: str | None, plural: bool) -> str:
    if noun is None:
        return _pick(rng, GENERIC_PLURAL if plural else GENERIC_SINGULAR)
    cls = NOUN_CLASSES[noun]
    return _pick(rng, cls.plural if plural else cls.singular)


def _nominal(rng, f: Filter, plural: bool = False) -> str:
    """'[size] [colour] noun' without determiner, e.g. 'big red mugs'."""
    words = []
    if f.size:
        words.append(_pick(rng, SIZE_WORDS[f.size]))
    if f.colour:
        words.append(f.colour)
    words.append(_noun(rng, f.noun, plural))
    return ' '.join(words)


def _group(rng, q: Group) -> str:
    f, n = q.filter, q.count
    if n is None:
        opts = ['all the {pl}', 'all {pl}', 'every {sg}']
        if f.noun is None and f.colour and f.size is None:
            opts.append('everything {c}')
    elif n == 2:
        opts = ['both {pl}', 'the two {pl}']
    else:
        opts = ['the {n} {pl}', 'all {n} {pl}']
    return _pick(rng, opts).format(
        pl=_nominal(rng, f, True),
        sg=_nominal(rng, f, False),
        c=f.colour,
        n=NUMBER_WORDS.get(n or 0, str(n)),
    )


def _ordinal(rng, q: Ordinal, n_candidates: int) -> str:
    sg, side = _nominal(rng, q.filter), q.side
    if q.rank == 1:
        opts = [
            f'the {side}most {sg}',
            f'the {sg} on the far {side}',
            f'the first {sg} from the {side}',
        ]
        if n_candidates == 2:
            opts += [f'the {sg} on the {side}', f'the {side} {sg}']
        return _pick(rng, opts)
    o = ORDINAL_WORDS[q.rank]
    return _pick(rng, [f'the {o} {sg} from the {side}', f'the {sg} {o} from the {side}'])


def _relation(rng, q: Relation) -> str:
    anchor = phrase_text(q.anchor, rng)
    rel = _pick(rng, RELATION_WORDS[q.relation])
    f = q.filter
    if q.count is None:
        the = f'the {_nominal(rng, f)}'
        return _pick(rng, [f'{the} {rel} {anchor}', f'{the} that is {rel} {anchor}'])
    pl = _nominal(rng, f, True)
    if q.count == 0:
        opts = [f'all the {pl} {rel} {anchor}', f'every {_nominal(rng, f)} {rel} {anchor}']
        if f.noun is None and f.colour is None:
            opts.append(f'everything {rel} {anchor}')
        return _pick(rng, opts)
    n = NUMBER_WORDS.get(q.count, str(q.count))
    opts = [f'the {n} {pl} {rel} {anchor}']
    if q.relation == 'near':
        opts.append(f'the {n} {pl} closest to {anchor}')
    return _pick(rng, opts)


def phrase_text(query, rng: np.random.Generator, n_candidates: int = 0) -> str:
    """One wording of a single-phrase query (not Union). ``n_candidates``: how many objects
    match the filter in the view (lets two-object ordinals say 'the mug on the left')."""
    if isinstance(query, Unique):
        return f'the {_nominal(rng, query.filter)}'
    if isinstance(query, Group):
        return _group(rng, query)
    if isinstance(query, Superlative):
        f = query.filter
        adj = _pick(rng, SUPERLATIVE_WORDS[query.which])
        return f'the {adj} {_nominal(rng, f)}'
    if isinstance(query, Ordinal):
        return _ordinal(rng, query, n_candidates)
    if isinstance(query, Relation):
        return _relation(rng, query)
    raise TypeError(f'no wording for {type(query).__name__}')


def is_plural(query) -> bool:
    """Whether the instruction refers to several things (for 'where is' / 'where are')."""
    if isinstance(query, Union | Group):
        return True
    return isinstance(query, Relation) and query.count is not None


def realize(query, rng: np.random.Generator, n_candidates: int = 0, tries: int = 6):
    """Word ``query`` as an instruction; returns a Sentence or None if every draw in ``tries``
    exceeds ``MAX_WORDS`` words. Deterministic for ``rng``."""
    for _ in range(tries):
        parts = query.parts if isinstance(query, Union) else (query,)
        texts = [phrase_text(p, rng, n_candidates) for p in parts]
        if len(texts) == 1:
            joiners = ['']
        elif len(texts) == 2:
            joiners = ['', ' and '] if rng.random() < 0.8 else ['', ' as well as ']
        else:
            joiners = [''] + [', '] * (len(texts) - 2) + [' and ']
        if rng.random() < P_NO_COMMAND:
            prefix = ''
        else:
            cmds = COMMANDS
            if not texts[0].startswith('every'):  # no "where are every cup"
                cmds = cmds + (('where are',) if is_plural(query) else ('where is',))
            prefix = _pick(rng, cmds) + ' '
            if rng.random() < P_PLEASE and not prefix.startswith('where'):
                prefix = 'please ' + prefix
        text, spans = prefix, []
        for j, t in zip(joiners, texts):
            text += j
            spans.append((len(text), len(text) + len(t)))
            text += t
        if len(text.split()) <= MAX_WORDS:
            return Sentence(text, tuple(spans))
    return None
