"""Choose referring expressions with exact ground truth for one rendered view.

``candidate_queries(scene, view)`` lists every query of every template type whose answer the
view determines exactly (``queries`` rules). ``generate_referrals`` draws a balanced set from
them: first an expression type by ``TYPE_MIX`` (single / multi / no_target), then a template by
``TEMPLATE_WEIGHTS``, then a query (informative ones, where the extra words are needed to single
out the target, are preferred), and words it 1-2 times (paraphrases). With ``require_pairs``
(test_comp) only queries naming one of those colour x type pairs are kept; with
``forbid_pairs`` (train/val/test) no query may name one, not even as a no-target.

Template types (``template``) and their expression type (``expr_type``):
single: category ("the duck"), colour_category ("the red mug"), colour ("the green one"),
size_category ("the big duck"), superlative ("the biggest cube"), ordinal ("the second block
from the right", "the leftmost mug"), relation ("the duck left of the tray", "the cube near
the mug", "the duck in the tray"); multi: group_category ("both ducks", "all the mugs"),
group_colour ("all the green objects"), group_colour_category ("the two red cubes"),
group_size ("all the small dice"), group_relation ("the two cubes near the mug", "everything
in the tray"), multi_phrase ("the red mug and the yellow duck"); no_target: nt_category ("the
teddy bear" with no teddy in the scene), nt_colour_category ("the purple teddy" when teddies
are there but none is purple), nt_colour ("the pink object"), nt_group ("all the purple
ducks").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poa_gres_ros.tabletop.catalog import COLOURS, NOUN_CLASSES
from poa_gres_ros.tabletop.language import Sentence, realize
from poa_gres_ros.tabletop.queries import (
    Facts,
    Filter,
    Group,
    Ordinal,
    Relation,
    Superlative,
    Union,
    Unique,
    mentioned_pairs,
    phrase_sets,
)

TEMPLATES: dict[str, str] = {
    'category': 'single',
    'colour_category': 'single',
    'colour': 'single',
    'size_category': 'single',
    'superlative': 'single',
    'ordinal': 'single',
    'relation': 'single',
    'group_category': 'multi',
    'group_colour': 'multi',
    'group_colour_category': 'multi',
    'group_size': 'multi',
    'group_relation': 'multi',
    'multi_phrase': 'multi',
    'nt_category': 'no_target',
    'nt_colour_category': 'no_target',
    'nt_colour': 'no_target',
    'nt_group': 'no_target',
}
EXPR_TYPES = ('single', 'multi', 'no_target')
TYPE_MIX = {'single': 0.46, 'multi': 0.36, 'no_target': 0.18}
"""Draw probabilities; views without multi-target candidates shift the realised mix to
about 48 / 31 / 21 % of sentences (measured)."""
TEMPLATE_WEIGHTS = {
    'category': 0.7,
    'colour_category': 1.2,
    'colour': 0.8,
    'size_category': 0.8,
    'superlative': 0.8,
    'ordinal': 1.2,
    'relation': 1.4,
    'group_category': 1.0,
    'group_colour': 1.0,
    'group_colour_category': 0.8,
    'group_size': 0.3,
    'group_relation': 0.8,
    'multi_phrase': 1.2,
    'nt_category': 1.0,
    'nt_colour_category': 1.6,
    'nt_colour': 0.7,
    'nt_group': 0.5,
}
REFS_PER_VIEW = (6, 8)
"""Inclusive range of referrals drawn per view (fewer when the view offers fewer)."""
P_SECOND_SENTENCE = 0.5
"""Probability that a referral gets a second, differently worded sentence."""


@dataclass(frozen=True)
class Candidate:
    """A query valid in a view: its referent set per phrase and a sampling weight."""

    query: object
    template: str
    phrase_targets: tuple[frozenset[int], ...]
    weight: float = 1.0
    n_candidates: int = 0

    @property
    def targets(self) -> frozenset[int]:
        return frozenset().union(*self.phrase_targets)


@dataclass(frozen=True)
class Referral:
    """One ref: meaning, type, referents (scene-object indices) and its sentences.

    Attributes:
        query: the meaning (``queries``); template / expr_type: see module docstring.
        targets: referred object indices (empty for no-target).
        phrase_targets: referents of each phrase, aligned with every sentence's ``spans``.
        sentences: 1-2 wordings.
    """

    query: object
    template: str
    expr_type: str
    targets: frozenset[int]
    phrase_targets: tuple[frozenset[int], ...]
    sentences: tuple[Sentence, ...]


def _add(out, facts, query, template, weight=1.0, n=0, want=None):
    sets = phrase_sets(query, facts)
    if sets is None:
        return
    total = frozenset().union(*sets)
    kind = TEMPLATES[template]
    if (
        (kind == 'no_target') != (not total)
        or (kind == 'single' and len(total) != 1)
        or (kind == 'multi' and len(total) < 2)
        or (want is not None and len(total) != want)
    ):
        return
    out.setdefault(template, []).append(Candidate(query, template, tuple(sets), weight, n))


def candidate_queries(scene, view) -> dict[str, list[Candidate]]:
    """All valid queries of the view, grouped by template type (deterministic order)."""
    facts = Facts(scene, view)
    objs = [scene.objects[i] for i in view.well_visible()]
    nouns = sorted({k for k, c in NOUN_CLASSES.items() for o in objs if o.type_key in c.types})
    colours = sorted({o.colour for o in objs})
    pairs = sorted(
        {(k, o.colour) for k in nouns for o in objs if o.type_key in NOUN_CLASSES[k].types}
    )
    count = {k: len(facts.candidates(Filter(k)) or []) for k in nouns}
    out: dict[str, list[Candidate]] = {}
    for k in nouns:
        _add(out, facts, Unique(Filter(k)), 'category')
        _add(out, facts, Group(Filter(k)), 'group_category')
        for size in ('small', 'big'):
            _add(out, facts, Unique(Filter(k, size=size)), 'size_category')
            _add(out, facts, Group(Filter(k, size=size)), 'group_size')
    for k, c in pairs:
        informative = 1.0 if count[k] >= 2 else 0.4
        _add(out, facts, Unique(Filter(k, c)), 'colour_category', informative)
        _add(out, facts, Group(Filter(k, c)), 'group_colour_category')
    for c in colours:
        _add(out, facts, Unique(Filter(None, c)), 'colour')
        _add(out, facts, Group(Filter(None, c)), 'group_colour')
    # Superlatives and ordinals over a noun, a colour + noun, or anything.
    for f in [Filter(k) for k in nouns] + [Filter(k, c) for k, c in pairs] + [Filter()]:
        n = len(facts.candidates(f) or [])
        if n < 2:
            continue
        if f.noun is not None:
            for which in ('biggest', 'smallest'):
                _add(out, facts, Superlative(f, which), 'superlative')
        for side in ('left', 'right'):
            for rank in range(1, min(3, n - 1) + 1):
                _add(out, facts, Ordinal(f, rank, side), 'ordinal', 1.0, n)
    _relations(out, facts, nouns, pairs)
    _no_targets(out, facts, scene, nouns, colours)
    return out


def _anchor_for(facts, obj) -> Unique | None:
    for f in (Filter(_noun_of(obj)), Filter(_noun_of(obj), obj.colour)):
        q = Unique(f)
        if q.resolve(facts) == frozenset([obj.index]):
            return q
    return None


def _noun_of(obj) -> str:
    return obj.type_key  # every type has its own noun class with the same key


def _relations(out, facts, nouns, pairs) -> None:
    for a in facts.well_visible_objects():
        anchor = _anchor_for(facts, a)
        if anchor is None:
            continue
        rels = ('left_of', 'right_of', 'near') + (('in',) if a.type_key == 'tray' else ())
        filters = [Filter(k) for k in nouns] + [Filter(k, c) for k, c in pairs]
        if a.type_key == 'tray':
            filters.append(Filter())
        for f in filters:
            if f.colour is None and f.noun and a.type_key in NOUN_CLASSES[f.noun].types:
                continue  # no "the ball near the sphere": the anchor is one of the kind
            plain = Unique(f).resolve(facts)
            weight = 0.3 if plain is not None and len(plain) == 1 else 1.0
            for rel in rels:
                _add(out, facts, Relation(f, rel, anchor), 'relation', weight)
            _add(out, facts, Relation(f, 'near', anchor, 2), 'group_relation')
            for rel in rels[:2] + rels[3:]:
                _add(out, facts, Relation(f, rel, anchor, 0), 'group_relation')


def _no_targets(out, facts, scene, nouns, colours) -> None:
    in_scene_colours = {o.colour for o in scene.objects}
    for k in NOUN_CLASSES:
        _add(out, facts, Unique(Filter(k)), 'nt_category')
    for k in nouns:
        for c in COLOURS:
            weight = 1.0 if c in in_scene_colours else 0.5
            _add(out, facts, Unique(Filter(k, c)), 'nt_colour_category', weight)
            _add(out, facts, Group(Filter(k, c)), 'nt_group', weight)
    for c in COLOURS:
        _add(out, facts, Unique(Filter(None, c)), 'nt_colour')


def _allowed(cand: Candidate, require_pairs, forbid_pairs) -> bool:
    named = mentioned_pairs(cand.query)
    if forbid_pairs and named & set(forbid_pairs):
        return False
    return not require_pairs or bool(named & set(require_pairs))


def _weighted(rng, items, weights):
    w = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _union(rng, pool: dict[str, list[Candidate]]) -> Candidate | None:
    """A multi_phrase candidate from 2-3 disjoint single/group candidates of the view."""
    parts_pool = [
        c
        for t, cs in pool.items()
        if TEMPLATES[t] != 'no_target' and t != 'multi_phrase'
        for c in cs
        if not isinstance(c.query, Union)
    ]
    if len(parts_pool) < 2:
        return None
    k = 3 if rng.random() < 0.2 else 2
    for _ in range(10):
        idx = rng.choice(len(parts_pool), size=min(k, len(parts_pool)), replace=False)
        parts = [parts_pool[int(i)] for i in idx]
        sets = [p.targets for p in parts]
        if sum(len(s) for s in sets) == len(frozenset().union(*sets)):
            q = Union(tuple(p.query for p in parts))
            return Candidate(q, 'multi_phrase', tuple(sets))
    return None


def _state_count(cand: Candidate, rng) -> Candidate:
    """Half of the groups of 2-3 say their number ("both mugs", "the three cubes")."""
    q = cand.query
    n = len(cand.targets)
    if isinstance(q, Group) and q.count is None and 2 <= n <= 3 and rng.random() < 0.5:
        return Candidate(
            Group(q.filter, n), cand.template, cand.phrase_targets, cand.weight, cand.n_candidates
        )
    return cand


def generate_referrals(
    scene,
    view,
    rng: np.random.Generator,
    *,
    n_refs: int | None = None,
    require_pairs=None,
    forbid_pairs=None,
    type_mix: dict[str, float] | None = None,
    held_out_phrasing: bool = False,
) -> list[Referral]:
    """Draw referrals for one view (see module docstring); deterministic for ``rng``.

    Args:
        scene, view: a TabletopScene and one of its RenderedViews.
        n_refs: number to draw (default uniform in ``REFS_PER_VIEW``); fewer if the view
            lacks distinct valid queries.
        require_pairs / forbid_pairs: iterables of (colour, type key) pairs.
        type_mix: probabilities of 'single' / 'multi' / 'no_target' (default ``TYPE_MIX``).
        held_out_phrasing: also use the held-out synonyms and carriers (the test split;
            ``language``); such sentences have ``Sentence.held_out``.
    """
    mix = type_mix or TYPE_MIX
    pool = {
        t: [c for c in cs if _allowed(c, require_pairs, forbid_pairs)]
        for t, cs in candidate_queries(scene, view).items()
    }
    n = int(rng.integers(REFS_PER_VIEW[0], REFS_PER_VIEW[1] + 1)) if n_refs is None else n_refs
    refs: list[Referral] = []
    seen_q, seen_text = set(), set()
    for _ in range(4 * n):
        if len(refs) >= n:
            break
        avail = {t: cs for t, cs in pool.items() if cs}
        types = [
            e
            for e in EXPR_TYPES
            if any(TEMPLATES[t] == e for t in avail) or (e == 'multi' and len(avail) > 0)
        ]
        if not types:
            break
        etype = _weighted(rng, types, [mix.get(e, 0.0) + 1e-9 for e in types])
        temps = [
            t
            for t in TEMPLATE_WEIGHTS
            if TEMPLATES[t] == etype and (t in avail or (t == 'multi_phrase' and avail))
        ]
        if not temps:
            continue
        template = _weighted(rng, temps, [TEMPLATE_WEIGHTS[t] for t in temps])
        if template == 'multi_phrase':
            cand = _union(rng, avail)
            if cand is None or not _allowed(cand, require_pairs, forbid_pairs):
                continue
        else:
            cs = avail[template]
            cand = _weighted(rng, cs, [c.weight for c in cs])
        key = (template, cand.query)
        if key in seen_q:
            continue
        seen_q.add(key)
        cand = _state_count(cand, rng)
        sentences = []
        for _ in range(2 if rng.random() < P_SECOND_SENTENCE else 1):
            s = realize(cand.query, rng, cand.n_candidates, held_out=held_out_phrasing)
            if s is not None and s.text not in seen_text:
                seen_text.add(s.text)
                sentences.append(s)
        if sentences:
            refs.append(
                Referral(
                    cand.query,
                    template,
                    TEMPLATES[template],
                    cand.targets,
                    cand.phrase_targets,
                    tuple(sentences),
                )
            )
    return refs
