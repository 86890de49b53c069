"""Attribute filters and what one rendered view tells about them (``Filter``, ``Facts``).

``Facts(scene, view)`` answers the questions the query rules of ``queries`` ask: which objects
match a filter in the scene and in the view, whether they are well visible (``render``
visibility rule), their centroids, apparent sizes and distances. The rules and thresholds are
documented in ``queries``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poa_gres_ros.tabletop.catalog import NOUN_CLASSES, OBJECT_TYPES, SIZE_CLASSES

LR_MARGIN_FRAC = 0.04
NEAR_RATIO = 0.6
NEAR_MAX_M = 0.25
SUPERLATIVE_SCALE_RATIO = 1.25
APPARENT_SIZE_RATIO = 1.1
RELATIONS = ('left_of', 'right_of', 'near', 'in')
SIDES = ('left', 'right')


def sizable(noun: str | None) -> bool:
    """Whether sizes of things named ``noun`` may be compared (rules in ``queries``)."""
    if noun is None:
        return False
    types = NOUN_CLASSES[noun].types
    return len(types) == 1 and all(OBJECT_TYPES[t].size_words for t in types)


@dataclass(frozen=True)
class Filter:
    """Attribute filter. ``noun``: key of ``catalog.NOUN_CLASSES`` or None (any object);
    ``colour``: palette name or None; ``size``: 'small' | 'big' | None."""

    noun: str | None = None
    colour: str | None = None
    size: str | None = None

    def __post_init__(self):
        if self.noun is not None and self.noun not in NOUN_CLASSES:
            raise ValueError(f'unknown noun class {self.noun!r}')
        if self.size is not None and (self.size not in SIZE_CLASSES or self.noun is None):
            raise ValueError(f'size {self.size!r} needs a noun and must be in {SIZE_CLASSES}')

    def matches(self, obj) -> bool:
        """True when the SceneObject has the filter's attributes."""
        return (
            (self.noun is None or obj.type_key in NOUN_CLASSES[self.noun].types)
            and (self.colour is None or obj.colour == self.colour)
            and (self.size is None or obj.size_class == self.size)
        )

    def pairs(self) -> set[tuple[str, str]]:
        """(colour, object type) pairs the words name ('ball' names two types)."""
        if self.colour is None or self.noun is None:
            return set()
        return {(self.colour, t) for t in NOUN_CLASSES[self.noun].types}

    def to_dict(self) -> dict:
        return {
            k: v
            for k, v in (('noun', self.noun), ('colour', self.colour), ('size', self.size))
            if v is not None
        }


class Facts:
    """What the resolver knows about one view of one scene (TabletopScene, RenderedView)."""

    def __init__(self, scene, view):
        self.objects = scene.objects
        self.in_view = view.in_view
        self.width_px = view.pose.width_px
        self.diag_px = float(np.hypot(view.pose.width_px, view.pose.height_px))
        self.margin_px = LR_MARGIN_FRAC * view.pose.width_px

    def well_visible_objects(self) -> list:
        """SceneObjects that are well visible in the view, by index."""
        return [
            o
            for o in self.objects
            if o.index in self.in_view and self.in_view[o.index].well_visible
        ]

    def in_scene(self, f: Filter) -> list[int]:
        """Indices of all scene objects matching ``f``, visible or not."""
        return [o.index for o in self.objects if f.matches(o)]

    def candidates(self, f: Filter) -> list[int] | None:
        """Well-visible matches of ``f``; None if some visible match is not well visible or
        the size words do not hold unambiguously (module docstring)."""
        vis = [i for i in self.in_scene(f) if i in self.in_view]
        if any(not self.in_view[i].well_visible for i in vis):
            return None
        if f.size is not None and (not sizable(f.noun) or (vis and not self._size_words_hold(f))):
            return None
        return vis

    def _size_words_hold(self, f: Filter) -> bool:
        same = self.candidates(Filter(f.noun, f.colour))
        if not same:
            return False
        big = [self.in_view[i].diag_px for i in same if self.objects[i].size_class == 'big']
        small = [self.in_view[i].diag_px for i in same if self.objects[i].size_class == 'small']
        return bool(big and small and min(big) > APPARENT_SIZE_RATIO * max(small))

    def x(self, i: int) -> float:
        return self.in_view[i].centroid_xy_px[0]

    def image_dist(self, i: int, j: int) -> float:
        a, b = self.in_view[i].centroid_xy_px, self.in_view[j].centroid_xy_px
        return float(np.hypot(a[0] - b[0], a[1] - b[1]))

    def table_dist_m(self, i: int, j: int) -> float:
        a, b = self.objects[i].centre_xyz_m, self.objects[j].centre_xyz_m
        return float(np.hypot(a[0] - b[0], a[1] - b[1]))
