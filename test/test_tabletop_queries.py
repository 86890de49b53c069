"""Ground-truth rules of tabletop expressions on hand-built views (exact, no rendering)."""

from __future__ import annotations

import numpy as np
import pytest

from poa_gres_ros.tabletop.catalog import HELD_OUT_PAIRS
from poa_gres_ros.tabletop.expressions import TEMPLATES, candidate_queries, generate_referrals
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
    query_from_dict,
)

from support.tabletop_worlds import box_at, obj, world

RED_MUG = Unique(Filter('mug', 'red'))


def facts(objs):
    scene, view = world(objs)
    return Facts(scene, view)


def test_unique_single_ambiguous_and_no_target():
    f = facts([obj('mug', 'red', box_at(100)), obj('mug', 'blue', box_at(300))])
    assert RED_MUG.resolve(f) == {0}
    assert Unique(Filter('mug')).resolve(f) is None  # two mugs: "the mug" is ambiguous
    assert Unique(Filter('mug', 'green')).resolve(f) == frozenset()  # no-target
    assert Unique(Filter('teddy')).resolve(f) == frozenset()
    assert Group(Filter('mug')).resolve(f) == {0, 1}
    assert Group(Filter('mug'), 3).resolve(f) is None  # "the three mugs" with two


def test_hidden_or_sliver_objects_block_expressions():
    # A red mug outside the image: "the red mug" is neither no-target nor the visible one.
    f = facts([obj('mug', 'red', None), obj('mug', 'blue', box_at(300))])
    assert RED_MUG.resolve(f) is None
    # A 10x10 px sliver of a second red mug makes "the red mug" ambiguous.
    f = facts([obj('mug', 'red', box_at(100)), obj('mug', 'red', (400, 400, 410, 410))])
    assert not f.in_view[1].well_visible
    assert RED_MUG.resolve(f) is None
    assert Group(Filter(None, 'red')).resolve(f) is None
    # A hidden *blue* mug does not disturb the red one.
    f = facts([obj('mug', 'red', box_at(100)), obj('mug', 'blue', None)])
    assert RED_MUG.resolve(f) == {0}


def test_left_right_use_image_x_with_margin():
    tray = Unique(Filter('tray'))
    f = facts(
        [
            obj('duck', 'yellow', box_at(100)),
            obj('tray', 'red', box_at(320)),
            obj('duck', 'green', box_at(520)),
        ]
    )
    assert Relation(Filter('duck'), 'left_of', tray).resolve(f) == {0}
    assert Relation(Filter('duck'), 'right_of', tray).resolve(f) == {2}
    assert Relation(Filter('duck'), 'left_of', tray, 0).resolve(f) is None  # one duck, not all
    # A duck 20 px from the tray's centroid (< 25.6 px margin) makes the relation ambiguous.
    f = facts(
        [
            obj('duck', 'yellow', box_at(100)),
            obj('tray', 'red', box_at(320)),
            obj('duck', 'green', box_at(340, cy=100)),
        ]
    )
    assert Relation(Filter('duck'), 'left_of', tray).resolve(f) is None


def test_ordinals_need_clear_gaps():
    blocks = [obj('jenga', 'red', box_at(x)) for x in (100, 200, 300, 400)]
    f = facts(blocks)
    assert Ordinal(Filter('jenga'), 2, 'left').resolve(f) == {1}
    assert Ordinal(Filter('jenga'), 2, 'right').resolve(f) == {2}
    assert Ordinal(Filter('jenga'), 1, 'right').resolve(f) == {3}
    f = facts([obj('jenga', 'red', box_at(x)) for x in (100, 200, 215, 400)])
    assert Ordinal(Filter('jenga'), 2, 'left').resolve(f) is None  # 15 px from its neighbour
    assert Ordinal(Filter('jenga'), 1, 'left').resolve(f) == {0}
    with pytest.raises(ValueError):
        Ordinal(Filter('jenga'), 1, 'top')


def test_size_words_need_contrast_and_apparent_size():
    big, small = box_at(100, half=30), box_at(400, half=15)
    f = facts(
        [
            obj('duck', 'red', big, size='big', scale=1.4),
            obj('duck', 'blue', small, size='small', scale=0.8),
        ]
    )
    assert Unique(Filter('duck', size='big')).resolve(f) == {0}
    assert Superlative(Filter('duck'), 'smallest').resolve(f) == {1}
    # The big duck looks no larger (far away): size words are not used.
    f = facts(
        [
            obj('duck', 'red', box_at(100, half=15), size='big', scale=1.4),
            obj('duck', 'blue', box_at(400, half=15), size='small', scale=0.8),
        ]
    )
    assert Unique(Filter('duck', size='big')).resolve(f) is None
    assert Superlative(Filter('duck'), 'biggest').resolve(f) is None
    # Random shapes differ in mesh size: no size words at all.
    f = facts(
        [
            obj('shape', 'red', big, size='big', scale=1.4),
            obj('shape', 'blue', small, size='small', scale=0.8),
        ]
    )
    assert Unique(Filter('shape', size='big')).resolve(f) is None
    assert Superlative(Filter('shape'), 'biggest').resolve(f) is None
    # Size words never make a no-target expression.
    assert Unique(Filter('duck', size='big')).resolve(facts([obj('mug', 'red', big)])) is None


def test_near_and_in_tray():
    mug = Unique(Filter('mug'))
    objs = [
        obj('mug', 'red', box_at(300), xy=(0.0, 0.0)),
        obj('cube', 'red', box_at(360), xy=(0.06, 0.0)),
        obj('cube', 'blue', box_at(560), xy=(0.3, 0.0)),
    ]
    assert Relation(Filter('cube'), 'near', mug).resolve(facts(objs)) == {1}
    objs[2] = obj('cube', 'blue', box_at(230), xy=(-0.07, 0.0))  # about as near: ambiguous
    assert Relation(Filter('cube'), 'near', mug).resolve(facts(objs)) is None
    tray = Unique(Filter('tray'))
    objs = [
        obj('tray', 'white', box_at(300, half=60), xy=(0.0, 0.0), half=0.12),
        obj('duck', 'red', box_at(300), xy=(0.02, 0.01)),
        obj('duck', 'blue', box_at(520), xy=(0.3, 0.0)),
    ]
    assert Relation(Filter('duck'), 'in', tray).resolve(facts(objs)) == {1}
    assert Relation(Filter(), 'in', tray, 0).resolve(facts(objs)) is None  # only one inside


def test_union_phrases_disjoint_and_non_empty():
    f = facts(
        [
            obj('mug', 'red', box_at(100)),
            obj('duck', 'yellow', box_at(300)),
            obj('duck', 'green', box_at(500)),
        ]
    )
    q = Union((RED_MUG, Group(Filter('duck'))))
    assert phrase_sets(q, f) == [{0}, {1, 2}]
    assert q.resolve(f) == {0, 1, 2}
    assert Union((RED_MUG, Unique(Filter('teddy')))).resolve(f) is None  # absent phrase
    assert Union((Group(Filter(None, 'red')), RED_MUG)).resolve(f) is None  # overlap
    with pytest.raises(ValueError):
        Union((RED_MUG,))


def test_query_dict_round_trip_and_pairs():
    qs = [
        RED_MUG,
        Group(Filter(None, 'green'), 2),
        Superlative(Filter('cube'), 'biggest'),
        Ordinal(Filter('jenga', 'yellow'), 2, 'right'),
        Relation(Filter('duck'), 'near', Unique(Filter('mug', 'green')), 2),
        Union((RED_MUG, Unique(Filter('duck', size='big')))),
    ]
    for q in qs:
        assert query_from_dict(q.to_dict()) == q
    assert mentioned_pairs(qs[4]) == {('green', 'mug')}
    assert mentioned_pairs(Unique(Filter('ball', 'orange'))) == {
        ('orange', 'sphere'),
        ('orange', 'soccer_ball'),
    }
    with pytest.raises(ValueError):
        query_from_dict({'kind': 'nonsense'})
    with pytest.raises(ValueError):
        Filter('unicorn')


def _busy_world():
    return world(
        [
            obj('mug', 'green', box_at(80), xy=(-0.3, 0.0)),
            obj('mug', 'red', box_at(180), xy=(-0.2, 0.0)),
            obj('duck', 'purple', box_at(280), xy=(-0.1, 0.0)),
            obj('duck', 'yellow', box_at(380, half=25), size='big', scale=1.4, xy=(0.0, 0.0)),
            obj('cube', 'red', box_at(480), xy=(0.1, 0.0)),
            obj('tray', 'white', box_at(580), xy=(0.2, 0.0)),
        ]
    )


def test_every_candidate_matches_its_template_type():
    scene, view = _busy_world()
    f = Facts(scene, view)
    cands = candidate_queries(scene, view)
    assert {'single', 'multi', 'no_target'} <= {TEMPLATES[t] for t in cands}
    for template, cs in cands.items():
        for c in cs:
            assert c.query.resolve(f) == c.targets
            kind = TEMPLATES[template]
            assert (
                (len(c.targets) == 1)
                if kind == 'single'
                else (len(c.targets) >= 2 if kind == 'multi' else not c.targets)
            )
            if kind == 'no_target':  # names nothing present in the scene
                for flt in c.query.filters():
                    assert not any(flt.matches(o) for o in scene.objects)


def test_pair_rules_forbid_and_require():
    scene, view = _busy_world()  # holds a green mug, a purple duck, a red cube (held out)
    for seed in range(5):
        refs = generate_referrals(
            scene, view, np.random.default_rng(seed), forbid_pairs=HELD_OUT_PAIRS
        )
        assert refs and all(not mentioned_pairs(r.query) & HELD_OUT_PAIRS for r in refs)
        refs = generate_referrals(
            scene, view, np.random.default_rng(seed), require_pairs=HELD_OUT_PAIRS
        )
        assert refs and all(mentioned_pairs(r.query) & HELD_OUT_PAIRS for r in refs)


def test_referrals_are_deterministic_and_distinct():
    scene, view = _busy_world()
    a = generate_referrals(scene, view, np.random.default_rng(3))
    b = generate_referrals(scene, view, np.random.default_rng(3))
    assert [r.sentences for r in a] == [r.sentences for r in b]
    texts = [s.text for r in a for s in r.sentences]
    assert len(texts) == len(set(texts)) and 6 <= len(a) <= 8
