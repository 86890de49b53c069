"""The tabletop command vocabulary: Whisper domain prompt and a JSGF grammar for pocketsphinx.

One word list feeds both recognisers, so they agree on what the robot understands, and the
list comes from the tabletop data generator that the model learnt from: nouns and their
synonyms and the colours from ``tabletop.catalog``, the size, superlative, ordinal, number
and relation words from ``tabletop.language``, the words around a referring expression
("could you", "hand me", "where is", "for me please") from ``tabletop.carriers`` (a word the
generator gains flows in here; the test split's held-out synonyms and carriers are included,
since a user may say them). What the generator's templates write around those lists ("on the
far left", "as well as") is :data:`TEMPLATE_WORDS` below; a test samples the generator and names
any word the grammar lacks. :data:`EXTRA_COMMANDS` and :data:`EXTRA_RELATIONS` add what a
person says to a robot around a referring expression ("put the mug on the tray") that the
generator never writes.

JSGF: W3C Java Speech Grammar Format 1.0 (https://www.w3.org/TR/jsgf/), as read by
pocketsphinx 5 (``Decoder.set_jsgf_string``). Words missing from pocketsphinx's
``cmudict-en-us.dict`` get pronunciations from :data:`EXTRA_PRONUNCIATIONS` (CMU/ARPAbet
phones, written by hand after the dictionary's entries for similar words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from poa_gres_ros.tabletop import carriers, catalog, language
from poa_gres_ros.tabletop.facts import SIDES


def _flat(groups) -> tuple[str, ...]:
    """Distinct phrases of an iterable of phrase tuples, in first-seen order."""
    return tuple(dict.fromkeys(p for g in groups for p in g))


TEMPLATE_WORDS = {
    'determiners': ('the', 'all', 'all the', 'every', 'both', 'the two'),
    'ordinal': ('first',),
    'generic_phrases': ('everything',),
    'joiners': ('and', 'as well as', 'that is'),
}
"""Words of ``tabletop.language``'s templates that are not in its word lists."""
EXTRA_COMMANDS: tuple[str, ...] = ('put', 'move', 'place', 'hand me', 'bring me')
EXTRA_RELATIONS: tuple[str, ...] = ('on', 'on top of', 'to')

_CARRIERS = carriers.carrier_parts(held_out=True)
POLITE: tuple[str, ...] = _CARRIERS['polite']
"""Request prefixes ("please", "could you")."""
VERBS: tuple[str, ...] = _flat((_CARRIERS['leads'], EXTRA_COMMANDS))
"""What directly precedes the referring expression ("hand me", "i would like", "where is")."""
ENDINGS: tuple[str, ...] = _CARRIERS['endings']
"""What follows it ("please", "for me please")."""
SPLIT_VERBS: tuple[tuple[str, str], ...] = _CARRIERS['split']
"""Verbs around it: ("pick", "up") for "pick the mug up"."""
DETERMINERS: tuple[str, ...] = _flat(
    (
        TEMPLATE_WORDS['determiners'],
        *((f'the {n}', f'all {n}') for n in language.NUMBER_WORDS.values()),
    )
)
COLOURS: tuple[str, ...] = catalog.COLOURS
SIZES: tuple[str, ...] = _flat(
    (
        *language.SIZE_WORDS.values(),
        *language.SUPERLATIVE_WORDS.values(),
        TEMPLATE_WORDS['ordinal'],
        language.ORDINAL_WORDS.values(),
        (f'{side}most' for side in SIDES),
        SIDES,
    )
)
NOUNS: tuple[str, ...] = _flat(
    (
        *((*n.singular, *n.plural) for n in catalog.NOUN_CLASSES.values()),
        *((*sg, *pl) for sg, pl in catalog.HELD_OUT_SYNONYMS.values()),
        catalog.GENERIC_SINGULAR,
        catalog.GENERIC_PLURAL,
        TEMPLATE_WORDS['generic_phrases'],
    )
)
TAILS: tuple[str, ...] = _flat(
    (
        *((f'on the far {s}', f'on the {s}', f'from the {s}') for s in SIDES),
        (f'{o} from the {s}' for o in language.ORDINAL_WORDS.values() for s in SIDES),
    )
)
"""What follows a noun in an ordinal phrase ("the mug on the far left", "the cup second from
the right")."""
RELATIONS: tuple[str, ...] = _flat(
    (
        *language.RELATION_WORDS.values(),
        ('closest to',),
        (f'that is {r}' for g in language.RELATION_WORDS.values() for r in g),
        TEMPLATE_WORDS['joiners'][:2],
        EXTRA_RELATIONS,
    )
)

# Pronunciations for words that cmudict-en-us.dict (pocketsphinx 5.1.1) lacks.
EXTRA_PRONUNCIATIONS: dict[str, str] = {
    'jenga': 'JH EH NG G AH',
    'teddies': 'T EH D IY Z',
    'legos': 'L EH G OW Z',
    'leftmost': 'L EH F T M OW S T',
    'rightmost': 'R AY T M OW S T',
    'duckie': 'D AH K IY',
}


@dataclass
class Vocabulary:
    """Word classes of the command language (each entry may be a multi-word phrase)."""

    polite: tuple[str, ...] = POLITE
    verbs: tuple[str, ...] = VERBS
    endings: tuple[str, ...] = ENDINGS
    split_verbs: tuple[tuple[str, str], ...] = SPLIT_VERBS
    determiners: tuple[str, ...] = DETERMINERS
    colours: tuple[str, ...] = COLOURS
    sizes: tuple[str, ...] = SIZES
    nouns: tuple[str, ...] = NOUNS
    tails: tuple[str, ...] = TAILS
    relations: tuple[str, ...] = RELATIONS
    extra_pronunciations: dict[str, str] = field(default_factory=lambda: dict(EXTRA_PRONUNCIATIONS))

    def words(self) -> list[str]:
        """Every distinct single word of the vocabulary, sorted."""
        phrases = (
            *self.polite,
            *self.verbs,
            *self.endings,
            *(w for pair in self.split_verbs for w in pair),
            *self.determiners,
            *self.colours,
            *self.sizes,
            *self.nouns,
            *self.tails,
            *self.relations,
        )
        return sorted({w for p in phrases for w in p.split()})


PROMPT_VERBS: tuple[str, ...] = ('pick up', 'grab', 'give me', 'hand me')
PROMPT_NOUNS: tuple[str, ...] = (
    'mug',
    'cup',
    'duck',
    'teddy',
    'lego brick',
    'jenga block',
    'domino',
    'cube',
    'sphere',
    'ball',
    'soccer ball',
    'tray',
)
PROMPT_COLOURS: tuple[str, ...] = ('red', 'green', 'blue', 'yellow')
PROMPT_SIZES: tuple[str, ...] = ('biggest', 'smallest')
PROMPT_RELATIONS: tuple[str, ...] = ('left of', 'right of', 'next to')
"""Default Whisper prompt words, chosen on a dev set (test/data/speech/README.md); every one is
a word of the vocabulary (tested); ``speech_node`` parameters ``prompt.*`` override them."""


def _clean(words) -> list[str]:
    return [' '.join(w.split()) for w in words if w and w.strip()]


def build_prompt(
    verbs=PROMPT_VERBS,
    nouns=PROMPT_NOUNS,
    colours=PROMPT_COLOURS,
    sizes=PROMPT_SIZES,
    relations=PROMPT_RELATIONS,
) -> str:
    """Whisper ``initial_prompt`` made of domain words, in short command-like sentences.

    Verbs are paired with the first nouns ("Pick up the mug. Grab the cup."), the other
    nouns follow as "The lego brick, the jenga block, ...", then colours, sizes ("The
    biggest, the smallest.") and relations. Whisper conditions its decoder on the prompt as
    if it were the preceding transcript (Radford et al. 2022, "Robust Speech Recognition via
    Large-Scale Weak Supervision", section 3.8; openai-whisper's ``--initial_prompt``), which biases
    it towards these words and spellings. This form was chosen on a separate espeak dev set
    over a plain comma list and descriptive sentences (test/data/speech/README.md).
    Returns '' when every list is empty.
    """
    verbs, nouns = _clean(verbs), _clean(nouns)
    colours, sizes, relations = _clean(colours), _clean(sizes), _clean(relations)
    parts = [f'{v[0].upper()}{v[1:]} the {n}.' for v, n in zip(verbs, nouns, strict=False)]
    rest = nouns[len(parts) :]
    if rest:
        parts.append('The ' + ', '.join(f'the {n}' for n in rest)[4:] + '.')
    if colours:
        text = ', '.join(colours)
        parts.append(f'{text[0].upper()}{text[1:]}.')
    if sizes:
        parts.append('The ' + ', '.join(f'the {s}' for s in sizes)[4:] + '.')
    if relations:
        text = ', '.join(relations)
        parts.append(f'{text[0].upper()}{text[1:]}.')
    return ' '.join(parts)


_JSGF_TOKEN = re.compile(r"^[a-z][a-z']*$")


def _alternatives(phrases: tuple[str, ...]) -> str:
    for p in phrases:
        for w in p.split():
            if not _JSGF_TOKEN.match(w):
                raise ValueError(f'vocabulary word {w!r} (in {p!r}) must be lower-case letters')
    return ' | '.join(sorted(set(phrases)))


def jsgf_grammar(vocab: Vocabulary | None = None, name: str = 'tabletop') -> str:
    """A JSGF command grammar over ``vocab`` (default: this module's lists).

    Shape (optional parts in brackets)::

        <command> = [<polite>] ([<verb>] <body> | <split-before> <body> <split-after>)
                    [<ending>]
        <body>    = <phrase> [<relation> <phrase>]
        <phrase>  = [<det>] [<size>] [<colour>] <noun> [<tail>]

    where a split verb's two parts stay paired ("pick ... up", "hand ... to me").

    Kept this small on purpose: a Kleene star over relations or extra phrase shapes made
    pocketsphinx 3-10x slower (search space) without fewer word errors on the fixtures.

    Raises ValueError for a word that is not lower-case ASCII letters/apostrophes.
    """
    v = vocab or Vocabulary()
    rules = {
        'polite': _alternatives(v.polite),
        'verb': _alternatives(v.verbs),
        'ending': _alternatives(v.endings),
        'det': _alternatives(v.determiners),
        'colour': _alternatives(v.colours),
        'size': _alternatives(v.sizes),
        'noun': _alternatives(v.nouns),
        'tail': _alternatives(v.tails),
        'relation': _alternatives(v.relations),
    }
    lines = [
        '#JSGF V1.0;',
        f'grammar {name};',
        'public <command> = [<polite>] ([<verb>] <body> | <split>) [<ending>];',
        '<body> = <phrase> [<relation> <phrase>];',
        '<phrase> = [<det>] [<size>] [<colour>] <noun> [<tail>];',
    ]
    if v.split_verbs:
        split = ' | '.join(f'{b} <body> {a}' for b, a in sorted(set(v.split_verbs)))
        _alternatives(tuple(w for pair in v.split_verbs for w in pair))  # checks the words
        lines.append(f'<split> = {split};')
    else:
        lines[2] = lines[2].replace(' | <split>', '')
    lines += [f'<{k}> = {alts};' for k, alts in rules.items()]
    return '\n'.join(lines) + '\n'
