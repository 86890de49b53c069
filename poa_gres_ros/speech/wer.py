"""Word error rate: word-level Levenshtein distance after case and punctuation normalisation.

WER = (S + D + I) / N over a corpus: substitutions, deletions and insertions of the minimum
edit alignment, divided by the number of reference words (the standard ASR definition, e.g.
NIST sclite; jiwer computes the same). Normalisation: lower case, every character other than
a-z, 0-9 and the apostrophe becomes a space, then split on whitespace, so "Pick up, the red
mug." and "pick up the red mug" are equal.
"""

from __future__ import annotations

import re

_NON_WORD = re.compile(r"[^a-z0-9']+")


def normalise_words(text: str) -> list[str]:
    """``'Pick up, the RED mug.'`` -> ``['pick', 'up', 'the', 'red', 'mug']``."""
    return [w.strip("'") for w in _NON_WORD.sub(' ', text.lower()).split() if w.strip("'")]


def word_errors(reference: str, hypothesis: str) -> int:
    """Minimum number of word substitutions + deletions + insertions (after normalising)."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def corpus_wer(references: list[str], hypotheses: list[str]) -> tuple[int, int, float]:
    """Pairwise errors summed over the corpus -> (errors, reference words, WER in [0, inf)).

    Raises ValueError if the lists differ in length or there are no reference words.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f'{len(references)} references but {len(hypotheses)} hypotheses')
    errors = sum(word_errors(r, h) for r, h in zip(references, hypotheses, strict=True))
    words = sum(len(normalise_words(r)) for r in references)
    if words == 0:
        raise ValueError('references hold no words')
    return errors, words, errors / words
