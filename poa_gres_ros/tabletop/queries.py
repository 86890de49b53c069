"""Meaning of referring expressions and their ground truth in one rendered view.

A query is what an expression means (``Unique(Filter(noun='mug', colour='red'))`` for "the red
mug"); ``query.resolve(facts)`` gives the exact set of scene-object indices it refers to in a
view, the empty set for a no-target expression, or ``None`` when the view does not determine
the answer unambiguously (then no expression with this meaning may be emitted for the view).
Wording lives in ``language``; choosing queries for a view in ``expressions``. Because the
meaning is separate from the words and from the view, a moving camera (bag maker) can keep one
instruction and re-resolve it per frame.

Rules (all in image space unless stated; W = image width):
- Referable objects are the *well-visible* ones (``render`` module). If an object that matches
  a filter is visible but not well visible, every query over that filter is ambiguous (None).
- No target: only ``Unique``/``Group`` over a filter that matches **no object of the scene**
  (not even hidden ones) resolve to the empty set; size words are never used for no-target.
- Size words are only used for nouns of one object type whose ``size_words`` is True (not
  'ball', which spans two types, nor random shapes).
- Size classes ("the big duck"): the noun must be given, both classes must be visible for that
  noun, and every big one must look at least 1.1x larger (box diagonal, px) than every small one.
- Superlatives ("the biggest cube"): the extreme object's 3D scale beats the runner-up by
  ``SUPERLATIVE_SCALE_RATIO`` and its box diagonal is also the extreme one by 1.1x.
- Left/right = x of the visible-mask centroid as the camera sees it (image x grows to the
  right), never the world or the robot frame. "A left of B": x_A <= x_B - M; "right of":
  x_A >= x_B + M; M = ``LR_MARGIN_FRAC`` x W (25.6 px at 640). A candidate within M of the
  anchor makes the relation ambiguous. Ordinals ("the second block from the right") need M
  between the target's centroid x and its neighbours'.
- Near ("the cube near the mug"): the nearest candidate to the anchor, nearer than
  ``NEAR_RATIO`` x the next one both in image distance (centroids) and in table-plane distance
  (3D centres), and within ``NEAR_MAX_M`` on the table.
- In ("the duck in the tray"): the candidate's 3D centre lies inside the tray's box shrunk by
  1.5 cm; candidates within 2 cm outside the box edge make it ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from poa_gres_ros.tabletop.facts import (
    APPARENT_SIZE_RATIO,
    NEAR_MAX_M,
    NEAR_RATIO,
    RELATIONS,
    SIDES,
    SUPERLATIVE_SCALE_RATIO,
    Facts,
    Filter,
    sizable,
)

SUPERLATIVES = ('biggest', 'smallest')
MAX_RANK = 4

__all__ = [
    'Facts',
    'Filter',
    'Group',
    'Ordinal',
    'Relation',
    'Superlative',
    'Union',
    'Unique',
    'mentioned_pairs',
    'phrase_sets',
    'query_from_dict',
]

# --- queries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unique:
    """ "the F": exactly one well-visible match; empty set when nothing in the scene matches."""

    filter: Filter

    def resolve(self, facts: Facts) -> frozenset[int] | None:
        vis = facts.candidates(self.filter)
        if vis is None:
            return None
        if len(vis) == 1:
            return frozenset(vis)
        if not vis and not facts.in_scene(self.filter) and self.filter.size is None:
            return frozenset()
        return None

    def filters(self) -> list[Filter]:
        return [self.filter]

    def to_dict(self) -> dict:
        return {'kind': 'unique', 'filter': self.filter.to_dict()}


@dataclass(frozen=True)
class Group:
    """ "all the F" / "both F" / "the three F": all of at least two matches (``count`` = the
    number the words state, None = unstated); empty set when nothing in the scene matches."""

    filter: Filter
    count: int | None = None

    def resolve(self, facts: Facts) -> frozenset[int] | None:
        vis = facts.candidates(self.filter)
        if vis is None:
            return None
        if len(vis) >= 2 and self.count in (None, len(vis)):
            return frozenset(vis)
        if (
            not vis
            and self.count is None
            and not facts.in_scene(self.filter)
            and self.filter.size is None
        ):
            return frozenset()
        return None

    def filters(self) -> list[Filter]:
        return [self.filter]

    def to_dict(self) -> dict:
        return {'kind': 'group', 'filter': self.filter.to_dict(), 'count': self.count}


@dataclass(frozen=True)
class Superlative:
    """ "the biggest / smallest F" among at least two matches (``which``: 'biggest'|'smallest')."""

    filter: Filter
    which: str

    def __post_init__(self):
        if self.which not in SUPERLATIVES:
            raise ValueError(f'which must be one of {SUPERLATIVES}, got {self.which!r}')

    def resolve(self, facts: Facts) -> frozenset[int] | None:
        vis = facts.candidates(self.filter)
        if not vis or len(vis) < 2 or not sizable(self.filter.noun):
            return None
        sign = 1.0 if self.which == 'biggest' else -1.0
        by_scale = sorted(vis, key=lambda i: -sign * facts.objects[i].spec.scale)
        s0, s1 = (facts.objects[i].spec.scale for i in by_scale[:2])
        if max(s0, s1) < SUPERLATIVE_SCALE_RATIO * min(s0, s1):
            return None
        t = by_scale[0]
        d_t = facts.in_view[t].diag_px
        for i in by_scale[1:]:
            d = facts.in_view[i].diag_px
            if (sign > 0 and not d_t > APPARENT_SIZE_RATIO * d) or (
                sign < 0 and not d > APPARENT_SIZE_RATIO * d_t
            ):
                return None
        return frozenset([t])

    def filters(self) -> list[Filter]:
        return [self.filter]

    def to_dict(self) -> dict:
        return {'kind': 'superlative', 'filter': self.filter.to_dict(), 'which': self.which}


@dataclass(frozen=True)
class Ordinal:
    """ "the rank-th F from the side" (rank 1 = leftmost / rightmost), at least two matches."""

    filter: Filter
    rank: int
    side: str

    def __post_init__(self):
        if self.side not in SIDES or not 1 <= self.rank <= MAX_RANK:
            raise ValueError(
                f'need side in {SIDES} and rank in [1, {MAX_RANK}], got {self.side!r}, {self.rank}'
            )

    def resolve(self, facts: Facts) -> frozenset[int] | None:
        vis = facts.candidates(self.filter)
        if not vis or len(vis) < max(2, self.rank):
            return None
        order = sorted(vis, key=facts.x, reverse=self.side == 'right')
        xs = [facts.x(i) for i in order]
        k = self.rank - 1
        for a, b in ((k - 1, k), (k, k + 1)):
            if 0 <= a and b < len(xs) and abs(xs[b] - xs[a]) < facts.margin_px:
                return None
        return frozenset([order[k]])

    def filters(self) -> list[Filter]:
        return [self.filter]

    def to_dict(self) -> dict:
        return {
            'kind': 'ordinal',
            'filter': self.filter.to_dict(),
            'rank': self.rank,
            'side': self.side,
        }


def _side(facts: Facts, rel: str, c: int, a: int) -> bool | None:
    """Whether candidate c stands in relation rel ('left_of'|'right_of'|'in') to anchor a;
    None when it is too close to call."""
    if rel in ('left_of', 'right_of'):
        dx = facts.x(c) - facts.x(a)
        if abs(dx) < facts.margin_px:
            return None
        return (dx < 0) == (rel == 'left_of')
    anchor = facts.objects[a]
    if anchor.type_key != 'tray':
        return None
    x, y, _ = facts.objects[c].centre_xyz_m
    lo, hi = anchor.aabb_min_m, anchor.aabb_max_m
    inside = lo[0] + 0.015 < x < hi[0] - 0.015 and lo[1] + 0.015 < y < hi[1] - 0.015
    outside = not (lo[0] - 0.02 < x < hi[0] + 0.02 and lo[1] - 0.02 < y < hi[1] + 0.02)
    return True if inside else (False if outside else None)


def _nearest(facts: Facts, cands: list[int], a: int, k: int) -> list[int] | None:
    """The k candidates nearest to anchor a if they are clearly nearer (NEAR_RATIO) than the
    rest in both image and table distance and within NEAR_MAX_M; else None."""
    if len(cands) < k + 1:
        return None
    by_img = sorted(cands, key=lambda c: facts.image_dist(c, a))
    by_tab = sorted(cands, key=lambda c: facts.table_dist_m(c, a))
    if set(by_img[:k]) != set(by_tab[:k]):
        return None
    for dist, order in ((facts.image_dist, by_img), (facts.table_dist_m, by_tab)):
        if dist(order[k - 1], a) > NEAR_RATIO * dist(order[k], a):
            return None
    if facts.table_dist_m(by_tab[k - 1], a) > NEAR_MAX_M:
        return None
    return by_img[:k]


@dataclass(frozen=True)
class Relation:
    """ "the F <rel> <anchor>" (one target), or with ``count`` "the two F near <anchor>" /
    "all the F in <anchor>" (``count`` >= 2 or 0 = all, at least two)."""

    filter: Filter
    relation: str
    anchor: Unique
    count: int | None = None  # None: single target; 0: all; n >= 2: exactly n

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise ValueError(f'relation must be one of {RELATIONS}, got {self.relation!r}')
        if self.count is not None and (self.count < 0 or self.count == 1):
            raise ValueError(f'count must be None, 0 or >= 2, got {self.count}')

    def resolve(self, facts: Facts) -> frozenset[int] | None:
        a = self.anchor.resolve(facts)
        if not a:
            return None
        (a,) = a
        vis = facts.candidates(self.filter)
        if vis is None:
            return None
        vis = [c for c in vis if c != a]
        if not vis:
            return None
        if self.relation == 'near':
            if self.count == 0:
                return None
            got = _nearest(facts, vis, a, self.count or 1)
            return None if got is None else frozenset(got)
        sides = [_side(facts, self.relation, c, a) for c in vis]
        if any(s is None for s in sides):
            return None
        hits = frozenset(c for c, s in zip(vis, sides) if s)
        if self.count is None:
            return hits if len(hits) == 1 else None
        return hits if len(hits) >= 2 and self.count in (0, len(hits)) else None

    def filters(self) -> list[Filter]:
        return [self.filter, self.anchor.filter]

    def to_dict(self) -> dict:
        return {
            'kind': 'relation',
            'filter': self.filter.to_dict(),
            'relation': self.relation,
            'anchor': self.anchor.to_dict(),
            'count': self.count,
        }


@dataclass(frozen=True)
class Union:
    """Several phrases ("the red mug and the yellow duck"): each part must refer to at least
    one object and the parts must not overlap."""

    parts: tuple

    def __post_init__(self):
        if len(self.parts) < 2 or any(isinstance(p, Union) for p in self.parts):
            raise ValueError('a Union needs at least two parts, none of them a Union')

    def resolve(self, facts: Facts) -> frozenset[int] | None:
        sets = self.phrase_sets(facts)
        return None if sets is None else frozenset().union(*sets)

    def phrase_sets(self, facts: Facts) -> list[frozenset[int]] | None:
        sets = [p.resolve(facts) for p in self.parts]
        if any(not s for s in sets):
            return None
        if sum(len(s) for s in sets) != len(frozenset().union(*sets)):
            return None
        return sets

    def filters(self) -> list[Filter]:
        return [f for p in self.parts for f in p.filters()]

    def to_dict(self) -> dict:
        return {'kind': 'union', 'parts': [p.to_dict() for p in self.parts]}


def phrase_sets(query, facts: Facts) -> list[frozenset[int]] | None:
    """Referent set of each phrase of ``query`` (one per Union part, else one), or None."""
    if isinstance(query, Union):
        return query.phrase_sets(facts)
    s = query.resolve(facts)
    return None if s is None else [s]


def mentioned_pairs(query) -> set[tuple[str, str]]:
    """All (colour, object type) pairs the query's words name, anchors included."""
    out: set[tuple[str, str]] = set()
    for f in query.filters():
        out |= f.pairs()
    return out


def query_from_dict(d: dict):
    """Inverse of ``to_dict`` (for queries stored in a dataset or a bag); ValueError if bad."""

    def flt(x):
        return Filter(x.get('noun'), x.get('colour'), x.get('size'))

    kind = d.get('kind')
    if kind == 'unique':
        return Unique(flt(d['filter']))
    if kind == 'group':
        return Group(flt(d['filter']), d.get('count'))
    if kind == 'superlative':
        return Superlative(flt(d['filter']), d['which'])
    if kind == 'ordinal':
        return Ordinal(flt(d['filter']), int(d['rank']), d['side'])
    if kind == 'relation':
        return Relation(
            flt(d['filter']), d['relation'], query_from_dict(d['anchor']), d.get('count')
        )
    if kind == 'union':
        return Union(tuple(query_from_dict(p) for p in d['parts']))
    raise ValueError(f'unknown query kind {kind!r}')
