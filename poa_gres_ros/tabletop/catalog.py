"""What a tabletop scene is made of: object types, the colour palette, size classes, nouns.

Every asset comes from ``pybullet_data`` (installed with the pybullet wheel), so nothing is
downloaded. Sizes below are the axis-aligned extents measured with ``p.getAABB`` at
``globalScaling=1`` (pybullet 3.2.7); ``base_scale`` brings each type to a real-world size of
about 5-25 cm, so that at 0.5-1.0 m from a 640x480 camera with a 45-60 degree vertical field
of view every object spans at least ~20 px.

Nouns are the words expressions use. Each noun names a *noun class*: a set of object types.
Most classes hold one type; two are hypernyms: ``ball`` covers ``sphere`` and ``soccer_ball``,
and ``block`` covers ``cube`` and ``jenga`` (the two plain prisms of the catalogue), so "the
ball" / "the block" is only said when exactly one object of either type is visible, and "all
the blocks" means every cube and every jenga block. Every word (a whole noun string) belongs
to exactly one class, so the text never names two different things with the same word:
"block" is the hypernym, "cube" / "box" only a cube, "jenga block" / "jenga piece" only a jenga
block, "brick" / "lego block" only a lego brick (a modifier narrows the head noun, as people
do). Size words never apply to a hypernym (``facts.sizable``).

``HELD_OUT_SYNONYMS`` are extra nouns that only the test split's expressions use (never
train, val or test_comp), to measure how the model copes with words it was not trained on.

Compositional split: the pairs in ``HELD_OUT_PAIRS`` (colour x object type) never occur in the
train, val and test scenes; ``test_comp`` scenes contain them and its expressions mention them.
"""

from __future__ import annotations

from dataclasses import dataclass

RANDOM_SHAPE_COUNT = 1000
"""``pybullet_data/random_urdfs`` holds 000 ... 999 (random convex-part shapes, ~10 cm)."""


@dataclass(frozen=True)
class ObjectType:
    """One kind of object.

    Attributes:
        key: identifier, also the COCO category name (e.g. ``'mug'``).
        urdf: path relative to ``pybullet_data.getDataPath()``; ``{shape}`` is replaced by a
            random-shape index for ``random_urdfs``.
        base_scale: ``globalScaling`` that gives the 'normal' real size.
        extent_m: (x, y, z) AABB extent at ``base_scale``, in metres (used for placement).
        keep_texture: keep the mesh texture and tint it (soccer ball patches, domino pips);
            otherwise the texture is removed so the palette colour is the object's colour.
        max_per_scene: upper bound of instances in one scene.
        sizes: whether the small/big size classes apply (False: always 'normal').
        size_words: whether expressions may compare sizes of this type ("the big duck",
            "the biggest cube"); False for random shapes, whose meshes differ in size.
    """

    key: str
    urdf: str
    base_scale: float
    extent_m: tuple[float, float, float]
    keep_texture: bool = False
    max_per_scene: int = 4
    sizes: bool = True
    size_words: bool = True


OBJECT_TYPES: dict[str, ObjectType] = {
    t.key: t
    for t in (
        ObjectType('mug', 'objects/mug.urdf', 0.9, (0.079, 0.115, 0.095)),
        ObjectType('duck', 'duck_vhacd.urdf', 1.0, (0.091, 0.085, 0.066)),
        ObjectType('teddy', 'teddy_vhacd.urdf', 1.0, (0.084, 0.101, 0.071)),
        ObjectType('lego', 'lego/lego.urdf', 2.0, (0.068, 0.068, 0.050)),
        ObjectType('jenga', 'jenga/jenga.urdf', 0.7, (0.105, 0.035, 0.021)),
        ObjectType('domino', 'domino/domino.urdf', 1.8, (0.011, 0.046, 0.091), keep_texture=True),
        ObjectType('cube', 'cube_small.urdf', 1.0, (0.05, 0.05, 0.05)),
        ObjectType('sphere', 'sphere_small.urdf', 1.0, (0.06, 0.06, 0.06)),
        ObjectType(
            'soccer_ball',
            'soccerball.urdf',
            0.1,
            (0.1, 0.1, 0.1),
            keep_texture=True,
            max_per_scene=2,
        ),
        ObjectType(
            'tray',
            'tray/traybox.urdf',
            0.4,
            (0.24, 0.24, 0.056),
            max_per_scene=1,
            sizes=False,
            size_words=False,
        ),
        ObjectType(
            'shape',
            'random_urdfs/{shape:03d}/{shape:03d}.urdf',
            1.0,
            (0.1, 0.12, 0.04),
            size_words=False,
        ),
    )
}
TYPE_KEYS: tuple[str, ...] = tuple(OBJECT_TYPES)
"""Object types in category-id order (COCO category id = index + 1)."""


def category_id(type_key: str) -> int:
    """COCO category id (1-based) of an object type; ValueError for an unknown key."""
    try:
        return TYPE_KEYS.index(type_key) + 1
    except ValueError:
        raise ValueError(f'unknown object type {type_key!r}; known: {TYPE_KEYS}') from None


# Palette: name -> RGB in [0, 1], chosen to stay distinguishable under the sampled lighting
# (no grey/brown: they merge with white/orange and with the wood table under dim light).
PALETTE: dict[str, tuple[float, float, float]] = {
    'red': (0.85, 0.08, 0.08),
    'orange': (1.0, 0.48, 0.0),
    'yellow': (0.95, 0.85, 0.08),
    'green': (0.08, 0.62, 0.15),
    'blue': (0.08, 0.25, 0.92),
    'purple': (0.5, 0.12, 0.72),
    'pink': (1.0, 0.45, 0.72),
    'white': (0.95, 0.95, 0.95),
    'black': (0.07, 0.07, 0.07),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
COLOUR_JITTER = 0.04
"""Uniform per-channel jitter added to the palette RGB (clipped to [0, 1])."""

# Size classes: globalScaling multiplier of base_scale, sampled uniformly in the range.
# The gap (0.85 -> 1.30) makes "big" at least 1.5x "small" in linear size.
SIZE_CLASSES: dict[str, tuple[float, float]] = {'small': (0.72, 0.85), 'big': (1.30, 1.45)}
NORMAL_SIZE = 'normal'
"""Size class of types with ``sizes=False`` (never named in expressions)."""


@dataclass(frozen=True)
class NounClass:
    """A noun with its synonyms and the object types it names.

    Attributes:
        key: identifier (e.g. ``'mug'``, ``'ball'``).
        types: object type keys the noun covers.
        singular: synonyms, singular (first = canonical); plural: same order, plural.
    """

    key: str
    types: frozenset[str]
    singular: tuple[str, ...]
    plural: tuple[str, ...]


def _noun(key, types, singular, plural):
    return NounClass(key, frozenset(types), tuple(singular), tuple(plural))


NOUN_CLASSES: dict[str, NounClass] = {
    n.key: n
    for n in (
        _noun('mug', ['mug'], ['mug', 'cup', 'coffee cup'], ['mugs', 'cups', 'coffee cups']),
        _noun(
            'duck',
            ['duck'],
            ['duck', 'rubber duck', 'rubber duckie'],
            ['ducks', 'rubber ducks', 'rubber duckies'],
        ),
        _noun(
            'teddy', ['teddy'], ['teddy bear', 'teddy', 'bear'], ['teddy bears', 'teddies', 'bears']
        ),
        _noun(
            'lego',
            ['lego'],
            ['lego brick', 'brick', 'lego', 'lego block'],
            ['lego bricks', 'bricks', 'legos', 'lego blocks'],
        ),
        _noun('jenga', ['jenga'], ['jenga block', 'jenga piece'], ['jenga blocks', 'jenga pieces']),
        _noun('domino', ['domino'], ['domino', 'domino tile'], ['dominoes', 'domino tiles']),
        _noun('cube', ['cube'], ['cube', 'box'], ['cubes', 'boxes']),
        _noun('block', ['cube', 'jenga'], ['block'], ['blocks']),
        _noun('sphere', ['sphere'], ['sphere'], ['spheres']),
        _noun(
            'soccer_ball',
            ['soccer_ball'],
            ['soccer ball', 'football'],
            ['soccer balls', 'footballs'],
        ),
        _noun('ball', ['sphere', 'soccer_ball'], ['ball'], ['balls']),
        _noun('tray', ['tray'], ['tray', 'bin'], ['trays', 'bins']),
        _noun('shape', ['shape'], ['shape', 'odd shape'], ['shapes', 'odd shapes']),
    )
}
HELD_OUT_SYNONYMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    'mug': (('coffee mug',), ('coffee mugs',)),
    'duck': (('toy duck',), ('toy ducks',)),
    'teddy': (('toy bear',), ('toy bears',)),
}
"""Noun class -> (singular, plural) synonyms used only in the test split (module docstring)."""
GENERIC_SINGULAR = ('object', 'thing', 'item', 'one')
GENERIC_PLURAL = ('objects', 'things', 'items', 'ones')
"""Nouns for a filter without a noun class ("the red object", "the leftmost one", "all the
green things"); ``language`` says "ones" only after a colour ("all the red ones")."""

# Compositional split: (colour, object type) pairs absent from train/val/test scenes.
# Each colour and each type still occurs in train with other partners.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ('green', 'mug'),
        ('purple', 'duck'),
        ('red', 'cube'),
        ('blue', 'teddy'),
        ('yellow', 'jenga'),
        ('orange', 'sphere'),
    }
)


def _check_catalog() -> None:
    words: dict[str, str] = {}
    for noun in NOUN_CLASSES.values():
        if len(noun.singular) != len(noun.plural):
            raise RuntimeError(f'noun class {noun.key}: singular/plural lists differ in length')
        extra = HELD_OUT_SYNONYMS.get(noun.key, ((), ()))
        if len(extra[0]) != len(extra[1]):
            raise RuntimeError(f'held-out synonyms of {noun.key}: singular/plural differ')
        for w in noun.singular + noun.plural + extra[0] + extra[1]:
            if words.setdefault(w, noun.key) != noun.key:
                raise RuntimeError(f'noun {w!r} names two classes: {words[w]}, {noun.key}')
        for t in noun.types:
            if t not in OBJECT_TYPES:
                raise RuntimeError(f'noun class {noun.key} names unknown type {t}')
    for key in HELD_OUT_SYNONYMS:
        if key not in NOUN_CLASSES:
            raise RuntimeError(f'held-out synonyms name unknown noun class {key}')
    for w in GENERIC_SINGULAR + GENERIC_PLURAL:
        if w in words:
            raise RuntimeError(f'generic noun {w!r} is also the noun of class {words[w]}')
    for colour, t in HELD_OUT_PAIRS:
        if colour not in PALETTE or t not in OBJECT_TYPES:
            raise RuntimeError(f'held-out pair ({colour}, {t}) is not in the catalog')


_check_catalog()
