"""Carrier phrases: the words around the referring phrases ("could you get ...?").

A carrier (wrapper) is a template with one ``{}`` slot for the referring phrase(s): "pick up
{}", "could you hand me {}?", "{} please", "where is {}". Carriers never contain a word that
refers (no noun, colour, size, ordinal or relation word: test_tabletop_language checks it
against the catalogue and ``language``), so a carrier never changes what an instruction
refers to; the phrase spans of a sentence always index the phrases inside the slot.

Styles and their share of sentences in every split (``STYLE_WEIGHTS``): a bare phrase
("the red mug"), an imperative ("grab the red mug", "pick the red mug up"), a polite request
("please hand me ...", "could you get ...?", "... for me please"), a statement of need
("i need ...", "i would like ..."), a question ("where is ...?"). Questions end with "?" in
``P_QUESTION_MARK`` of the draws, other sentences with "." in ``P_PERIOD``.

``HELD_OUT_CARRIERS`` are used only in the test split (``P_HELD_OUT_CARRIER`` of its
sentences), never in train / val / test_comp, to measure phrasing generalisation.

All lists are module-level data (the speech vocabulary is built from them).
"""

from __future__ import annotations

import numpy as np

VERBS: tuple[str, ...] = (
    'pick up',
    'grab',
    'take',
    'get',
    'fetch',
    'find',
    'locate',
    'show me',
    'point at',
    'point to',
    'look at',
    'highlight',
    'segment',
    'select',
    'touch',
    'give me',
    'hand me',
    'pass me',
    'bring me',
    'get me',
)
"""Imperative verbs followed by the phrase ("grab {}")."""
SPLIT_VERBS: tuple[str, ...] = ('pick {} up', 'hand {} to me', 'give {} to me')
"""Verbs whose particle or complement follows the phrase."""
POLITE_PREFIXES: tuple[str, ...] = (
    'please',
    'could you',
    'can you',
    'would you',
    'will you',
    'could you please',
    'can you please',
    'would you please',
)
POLITE_SUFFIXES: tuple[str, ...] = ('please', 'for me', 'for me please')
NEED_FORMS: tuple[str, ...] = ('i need {}', 'i want {}', 'i would like {}', 'i need you to get {}')
QUESTION_FORMS = {False: ('where is {}',), True: ('where are {}',)}
"""Questions by number of the phrase (plural: several things are meant)."""
BARE_FORMS: tuple[str, ...] = ('{}', '{} please')
STYLE_WEIGHTS = {'bare': 0.2, 'imperative': 0.37, 'polite': 0.28, 'need': 0.08, 'question': 0.07}
P_QUESTION_MARK = 0.4
P_PERIOD = 0.08
HELD_OUT_CARRIERS: tuple[str, ...] = (
    'can i have {}',
    'i am looking for {}',
    'would you mind grabbing {}',
)
P_HELD_OUT_CARRIER = 0.15
QUESTION_STARTS = ('could you', 'can you', 'would you', 'will you', 'where', 'can i')


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def suffixes_for(verb: str) -> tuple[str, ...]:
    """Polite suffixes that fit ``verb`` (no "hand me the mug for me")."""
    return ('please',) if 'me' in verb.split() else POLITE_SUFFIXES


def all_carriers(plural: bool | None = None, held_out: bool = False) -> list[str]:
    """Every carrier template without final punctuation (for tests and vocabularies).

    ``plural``: None gives both 'where is' and 'where are'; ``held_out`` adds the test-only
    carriers.
    """
    verbs = [f'{v} {{}}' for v in VERBS] + list(SPLIT_VERBS)
    out = list(BARE_FORMS) + verbs
    out += [f'{p} {v}' for p in POLITE_PREFIXES for v in verbs]
    out += [f'{v} {s}' for v in verbs for s in suffixes_for(v)]
    out += list(NEED_FORMS)
    for pl in (False, True) if plural is None else (plural,):
        out += list(QUESTION_FORMS[pl])
    if held_out:
        out += list(HELD_OUT_CARRIERS)
    return out


def draw_carrier(
    rng: np.random.Generator, *, plural: bool, allow_where: bool = True, held_out: bool = False
) -> tuple[str, bool]:
    """One carrier template with its final punctuation, and whether it is a held-out one.

    Args:
        rng: the stream to draw from (deterministic).
        plural: the phrase refers to several things ("where are").
        allow_where: False avoids "where are every mug".
        held_out: the test split: draw a held-out carrier with ``P_HELD_OUT_CARRIER``.
    Returns:
        (template with one ``{}``, held_out_used).
    """
    if held_out and rng.random() < P_HELD_OUT_CARRIER:
        return _punctuate(rng, _pick(rng, HELD_OUT_CARRIERS)), True
    styles = [s for s in STYLE_WEIGHTS if allow_where or s != 'question']
    w = np.array([STYLE_WEIGHTS[s] for s in styles])
    style = styles[int(rng.choice(len(styles), p=w / w.sum()))]
    if style == 'bare':
        t = _pick(rng, BARE_FORMS)
    elif style == 'need':
        t = _pick(rng, NEED_FORMS)
    elif style == 'question':
        t = _pick(rng, QUESTION_FORMS[plural])
    else:
        verb = _pick(rng, SPLIT_VERBS) if rng.random() < 0.1 else f'{_pick(rng, VERBS)} {{}}'
        t = verb
        if style == 'polite':
            if rng.random() < 0.7:
                t = f'{_pick(rng, POLITE_PREFIXES)} {verb}'
            else:
                t = f'{verb} {_pick(rng, suffixes_for(verb))}'
    return _punctuate(rng, t), False


def _punctuate(rng, t: str) -> str:
    if t.startswith(QUESTION_STARTS):
        return t + '?' if rng.random() < P_QUESTION_MARK else t
    return t + '.' if rng.random() < P_PERIOD else t


def word_count(text: str) -> int:
    """Words plus final punctuation marks (each is a token of its own)."""
    return len(text.split()) + sum(text.count(c) for c in '?.')


def carrier_parts(held_out: bool = False) -> dict[str, tuple[str, ...]]:
    """The carriers cut into what a speech grammar needs, without punctuation.

    Returns ``{'polite': ..., 'leads': ..., 'endings': ..., 'split': ...}``: ``polite`` the
    prefixes of a request ("could you", "please"), ``leads`` what directly precedes the
    phrases ("hand me", "i would like", "where is"), ``endings`` what follows them ("please",
    "for me please"), ``split`` the verbs around the phrases as (before, after) pairs
    (("pick", "up"), ("hand", "to me")). Every carrier of ``all_carriers(held_out=held_out)``
    is ``[polite] lead {} [ending]``, ``[polite] {} [ending]`` or ``[polite] before {} after
    [ending]``.
    """
    polite = set(POLITE_PREFIXES)
    split = [tuple(x.strip() for x in v.split('{}')) for v in SPLIT_VERBS]
    leads, endings = set(), set()
    for t in all_carriers(held_out=held_out):
        before, after = (x.strip() for x in t.split('{}'))
        for p in sorted(polite, key=len, reverse=True):
            if before.startswith(p + ' '):
                before = before[len(p) + 1 :]
                break
        for b, a in split:
            if before == b and (after == a or after.startswith(a + ' ')):
                before, after = '', after[len(a) :].strip()
        if before:
            leads.add(before)
        if after:
            endings.add(after)
    return {
        'polite': tuple(sorted(polite)),
        'leads': tuple(sorted(leads)),
        'endings': tuple(sorted(endings)),
        'split': tuple(sorted(split)),
    }
