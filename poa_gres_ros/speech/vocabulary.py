"""The tabletop command vocabulary: Whisper domain prompt and a JSGF grammar for pocketsphinx.

One word list feeds both recognisers, so they agree on what the robot understands. The words
are those of the tabletop referring expressions (objects of the simulated table scenes:
mug/cup, duck, teddy, lego brick/block, jenga block, domino, cube, sphere/ball, tray, soccer
ball; colours; sizes; spatial relations; quantifiers such as "both" and "all").

JSGF: W3C Java Speech Grammar Format 1.0 (https://www.w3.org/TR/jsgf/), as read by
pocketsphinx 5 (``Decoder.set_jsgf_string``). Words missing from pocketsphinx's
``cmudict-en-us.dict`` get pronunciations from :data:`EXTRA_PRONUNCIATIONS` (CMU/ARPAbet
phones, written by hand after the dictionary's entries for similar words).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# fmt: off
VERBS: tuple[str, ...] = (
    'pick up', 'grab', 'take', 'get', 'give me', 'hand me', 'bring me', 'show me', 'find',
    'point at', 'put', 'move', 'place', 'push', 'select', 'segment', 'touch',
)
DETERMINERS: tuple[str, ...] = (
    'the', 'a', 'an', 'all', 'all the', 'both', 'both the', 'every', 'each', 'two', 'three',
)
COLOURS: tuple[str, ...] = (
    'red', 'green', 'blue', 'yellow', 'orange', 'purple', 'pink', 'white', 'black', 'brown',
    'gray', 'grey',
)
SIZES: tuple[str, ...] = (
    'big', 'small', 'large', 'little', 'tall', 'short', 'biggest', 'smallest', 'largest',
    'tallest', 'leftmost', 'rightmost', 'closest', 'nearest', 'middle',
)
NOUNS: tuple[str, ...] = (
    'mug', 'mugs', 'cup', 'cups', 'duck', 'ducks', 'rubber duck', 'rubber ducks', 'teddy',
    'teddies', 'teddy bear', 'teddy bears', 'lego brick', 'lego bricks', 'lego block',
    'lego blocks', 'lego', 'legos', 'jenga block', 'jenga blocks', 'brick', 'bricks', 'block',
    'blocks', 'domino', 'dominoes', 'cube', 'cubes', 'sphere', 'spheres', 'ball', 'balls',
    'soccer ball', 'soccer balls', 'tray', 'trays', 'object', 'objects', 'thing', 'things',
    'toy', 'toys', 'one', 'ones', 'table',
)
RELATIONS: tuple[str, ...] = (
    'left of', 'right of', 'to the left of', 'to the right of', 'on the left of',
    'on the right of', 'next to', 'near', 'beside', 'behind', 'in front of', 'on', 'on top of',
    'in', 'inside', 'under', 'between', 'closest to', 'nearest to', 'farthest from', 'above',
    'below', 'with', 'and',
)
# fmt: on

# Pronunciations for words that cmudict-en-us.dict (pocketsphinx 5.1.1) lacks.
EXTRA_PRONUNCIATIONS: dict[str, str] = {
    'jenga': 'JH EH NG G AH',
    'teddies': 'T EH D IY Z',
    'legos': 'L EH G OW Z',
    'leftmost': 'L EH F T M OW S T',
    'rightmost': 'R AY T M OW S T',
}


@dataclass
class Vocabulary:
    """Word classes of the command language (each entry may be a multi-word phrase)."""

    verbs: tuple[str, ...] = VERBS
    determiners: tuple[str, ...] = DETERMINERS
    colours: tuple[str, ...] = COLOURS
    sizes: tuple[str, ...] = SIZES
    nouns: tuple[str, ...] = NOUNS
    relations: tuple[str, ...] = RELATIONS
    extra_pronunciations: dict[str, str] = field(default_factory=lambda: dict(EXTRA_PRONUNCIATIONS))

    def words(self) -> list[str]:
        """Every distinct single word of the vocabulary, sorted."""
        phrases = (
            *self.verbs,
            *self.determiners,
            *self.colours,
            *self.sizes,
            *self.nouns,
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
"""Default Whisper prompt words (the same lists are in config/speech.yaml ``prompt.*``)."""


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
    Large-Scale Weak Supervision", §3.8; openai-whisper's ``--initial_prompt``), which biases
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

        <command> = [<verb>] <phrase> [<relation> <phrase>]
        <phrase>  = [<det>] [<size>] [<colour>] <noun>

    Kept this small on purpose: a Kleene star over relations or extra phrase shapes made
    pocketsphinx 3-10x slower (search space) without fewer word errors on the fixtures.

    Raises ValueError for a word that is not lower-case ASCII letters/apostrophes.
    """
    v = vocab or Vocabulary()
    rules = {
        'verb': _alternatives(v.verbs),
        'det': _alternatives(v.determiners),
        'colour': _alternatives(v.colours),
        'size': _alternatives(v.sizes),
        'noun': _alternatives(v.nouns),
        'relation': _alternatives(v.relations),
    }
    lines = [
        '#JSGF V1.0;',
        f'grammar {name};',
        'public <command> = [<verb>] <phrase> [<relation> <phrase>];',
        '<phrase> = [<det>] [<size>] [<colour>] <noun>;',
    ]
    lines += [f'<{k}> = {alts};' for k, alts in rules.items()]
    return '\n'.join(lines) + '\n'
