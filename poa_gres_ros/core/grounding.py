"""Phrase grounding: the instruction span each kept instance answers.

Method: docs/method.md#phrase-grounding.

InstAlign defines no explicit spans; the phrase of query i is its token attention R_i
(docs/method.md#phrase-object-alignment). Showing the tokens with ``R > 1/|V|`` is the usual
reading; this module turns that into a contiguous character span with a documented rule:

1. Content tokens: real tokens with a non-empty character range in the tokenizer's offsets, so
   [CLS], [SEP] and padding (offsets (0, 0)) are excluded. ``n`` = their number.
2. R is renormalised over the content tokens: ``r_t = R_t / sum_content R`` (R may give mass to
   [CLS]/[SEP] when the model keeps them in V).
3. A token passes when ``r_t > scale / n`` (``scale`` = 1: more than a uniform share).
4. Tokens are grouped into words by the fast tokenizer's ``word_ids`` (WordPiece pieces of one
   word share an id; without word ids, tokens whose character ranges touch form a word). A word
   passes when any of its tokens passes; its mass is the sum of its tokens' r.
5. The seed is the word with the largest mass; if it does not pass (attention is uniform) the
   instance has no phrase (None).
6. The span grows from the seed to neighbouring words while they pass; up to ``max_gap_words``
   non-passing words are bridged when a passing word follows (default 0: strictly contiguous).
   Words made only of punctuation are trimmed from both ends.
7. The span is ``text[start_of_first_word:end_of_last_word]`` in Python ``str`` indices (the fast
   tokenizer's offsets are code-point indices, so non-ASCII text works).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from poa_gres_ros.core.results import PhraseSpan


@dataclass(frozen=True)
class GroundingRule:
    """Parameters of the span rule in the module docstring.

    Attributes:
        scale: a token passes when its renormalised attention > scale / n (>= 0).
        max_gap_words: non-passing words bridged inside a span (>= 0).
    """

    scale: float = 1.0
    max_gap_words: int = 0

    def __post_init__(self):
        if self.scale < 0 or self.max_gap_words < 0:
            raise ValueError('GroundingRule.scale and max_gap_words must be >= 0')


@dataclass(frozen=True)
class _Word:
    start: int
    end: int
    tokens: tuple[int, ...]


def _words(
    offsets: Sequence[tuple[int, int]], word_ids: Sequence[int | None] | None
) -> list[_Word]:
    groups: list[list[int]] = []
    last_key = object()
    for j, (s, e) in enumerate(offsets):
        if e <= s:
            last_key = object()
            continue
        if word_ids is not None and word_ids[j] is not None:
            key = ('id', word_ids[j])
        else:
            key = None
        joined = groups and (
            (key is not None and key == last_key)
            or (key is None and word_ids is None and offsets[groups[-1][-1]][1] == s)
        )
        if joined:
            groups[-1].append(j)
        else:
            groups.append([j])
        last_key = key
    return [
        _Word(min(offsets[j][0] for j in g), max(offsets[j][1] for j in g), tuple(g))
        for g in groups
    ]


def _is_punct(text: str) -> bool:
    return bool(text) and all(unicodedata.category(c).startswith('P') for c in text)


def ground_phrase(
    text: str,
    offsets: Sequence[tuple[int, int]],
    token_attention,
    word_ids: Sequence[int | None] | None = None,
    rule: GroundingRule = GroundingRule(),
) -> PhraseSpan | None:
    """Span of ``text`` that one query attends to.

    Args:
        text: the instruction as tokenized.
        offsets: L (char_start, char_end) per token, (0, 0) for special tokens and padding.
        token_attention: (L,) array-like, R_i of the query (>= 0).
        word_ids: L word indices from the fast tokenizer (None entries for special tokens), or
            None to group by touching offsets.
        rule: GroundingRule.
    Returns:
        PhraseSpan or None (no content tokens, zero attention, or uniform attention).
    Raises:
        ValueError: lengths of offsets, token_attention and word_ids differ.
    """
    att = np.asarray(token_attention, dtype=np.float64).reshape(-1)
    if len(offsets) != att.shape[0] or (word_ids is not None and len(word_ids) != len(offsets)):
        raise ValueError(
            f'offsets ({len(offsets)}), token_attention ({att.shape[0]}) and '
            f'word_ids must have the same length'
        )
    words = _words(offsets, word_ids)
    content = [j for w in words for j in w.tokens]
    if not content:
        return None
    total = float(att[content].sum())
    if not total > 0:
        return None
    r = att / total
    tau = rule.scale / len(content)
    passes = [any(r[j] > tau for j in w.tokens) for w in words]
    mass = [float(r[list(w.tokens)].sum()) for w in words]
    seed = int(np.argmax(mass))
    if not passes[seed]:
        return None
    lo = hi = seed
    for step in (-1, 1):
        k, gap, edge = seed + step, 0, seed
        while 0 <= k < len(words):
            if passes[k]:
                edge, gap = k, 0
            else:
                gap += 1
                if gap > rule.max_gap_words:
                    break
            k += step
        if step < 0:
            lo = edge
        else:
            hi = edge
    while lo < hi and _is_punct(text[words[lo].start : words[lo].end]):
        lo += 1
    while hi > lo and _is_punct(text[words[hi].start : words[hi].end]):
        hi -= 1
    start, end = words[lo].start, words[hi].end
    return PhraseSpan(text=text[start:end], char_start=start, char_end=end)


def ground_phrases(
    text: str,
    offsets: Sequence[tuple[int, int]],
    token_attention,
    word_ids: Sequence[int | None] | None = None,
    rule: GroundingRule = GroundingRule(),
) -> list[PhraseSpan | None]:
    """``ground_phrase`` for every row of ``token_attention`` (N, L); returns N spans."""
    att = np.asarray(token_attention)
    if att.ndim != 2:
        raise ValueError(f'token_attention must be (N, L), got shape {att.shape}')
    return [ground_phrase(text, offsets, row, word_ids, rule) for row in att]
