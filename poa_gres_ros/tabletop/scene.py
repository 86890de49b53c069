"""Tabletop scenes: a seeded layout (``SceneSpec``) and its settled simulation (``TabletopScene``).

``sample_scene_spec(seed)`` is pure numpy: the objects, colours, sizes and drop poses of a scene.
``TabletopScene(spec)`` loads it into its own pybullet DIRECT client, lets the objects fall and
settle (``stepSimulation`` until they rest), removes any that left the table, and keeps the
client open so the same settled scene can be rendered from many camera poses (``render``).
The same seed gives the same scene, in any process and in any order of scenes, because every
scene starts from ``resetSimulation`` with deterministic contact-pair ordering.

Composition modes (``composition=``): ``'exclude'`` (train/val/test: no object has a colour x
type pair of ``catalog.HELD_OUT_PAIRS``), ``'require'`` (test_comp: one to three objects carry
a held-out pair, the rest is drawn as usual) and ``'any'`` (no constraint).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from poa_gres_ros.tabletop.camera import TABLE_TOP_Z_M
from poa_gres_ros.tabletop.catalog import (
    COLOUR_JITTER,
    COLOURS,
    HELD_OUT_PAIRS,
    NORMAL_SIZE,
    OBJECT_TYPES,
    PALETTE,
    RANDOM_SHAPE_COUNT,
    SIZE_CLASSES,
    TYPE_KEYS,
)
from poa_gres_ros.tabletop.textures import TABLE_TEXTURES, draw_table_surface, texture_file

COMPOSITIONS = ('exclude', 'require', 'any')
TABLE_HALF_XY_M = (0.75, 0.5)
"""Half extents of the table top (``table/table.urdf``: 1.5 m x 1.0 m)."""
TYPE_WEIGHTS = {k: (0.5 if k == 'tray' else 1.0) for k in TYPE_KEYS}
"""Relative frequency of each type when an object is drawn outside the scene's theme."""
FLOOR_COLOURS = (
    (0.55, 0.55, 0.58),
    (0.35, 0.37, 0.42),
    (0.62, 0.58, 0.5),
    (0.3, 0.3, 0.3),
    (0.72, 0.7, 0.66),
    (0.45, 0.36, 0.28),
)
"""Floor (seen past the table edge from low viewpoints): grey, blue-grey, beige, dark, light,
brown."""
SETTLE_MAX_STEPS = 960
"""At most 4 s of simulated time (240 Hz) to settle; usually 120-360 steps."""


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a scene before simulation.

    Attributes:
        type_key: key of ``catalog.OBJECT_TYPES``.
        colour: palette name; rgba: (4,) the jittered colour actually rendered, in [0, 1].
        size_class: 'small', 'big' or 'normal'; scale: ``globalScaling``.
        drop_xyz_m: spawn position, metres; yaw_rad, roll_rad: spawn orientation.
        shape_index: file index for the 'shape' type (random_urdfs), else -1.
    """

    type_key: str
    colour: str
    rgba: tuple[float, float, float, float]
    size_class: str
    scale: float
    drop_xyz_m: tuple[float, float, float]
    yaw_rad: float
    roll_rad: float = 0.0
    shape_index: int = -1


@dataclass(frozen=True)
class SceneSpec:
    """A complete scene layout, deterministic for ``(seed, composition)``.

    ``table_texture`` is a ``textures.TABLE_TEXTURES`` name, tinted by ``table_rgba``.
    """

    seed: int
    composition: str
    objects: tuple[ObjectSpec, ...]
    table_rgba: tuple[float, float, float, float]
    floor_rgba: tuple[float, float, float, float]
    table_texture: str = 'wood'


def _pick_colour(rng, type_key, used, composition) -> str:
    for _ in range(100):
        if used and rng.random() < 0.35:
            distinct = sorted(set(used))
            colour = distinct[int(rng.integers(len(distinct)))]
        else:
            colour = COLOURS[int(rng.integers(len(COLOURS)))]
        if composition == 'exclude' and (colour, type_key) in HELD_OUT_PAIRS:
            continue
        return colour
    raise RuntimeError(f'no admissible colour for {type_key}')  # unreachable with the catalog


def _draw_types(rng, n, forced) -> list[str]:
    types = list(forced)
    theme = list(rng.choice(TYPE_KEYS, size=int(rng.integers(2, 6)), replace=False))
    theme += [t for t in forced if t not in theme]
    w = np.array([TYPE_WEIGHTS[k] for k in TYPE_KEYS])
    while len(types) < n:
        pool = theme if rng.random() < 0.75 else TYPE_KEYS
        pw = np.array([TYPE_WEIGHTS[k] for k in pool])
        t = (
            str(rng.choice(pool, p=pw / pw.sum()))
            if pool is theme
            else str(rng.choice(TYPE_KEYS, p=w / w.sum()))
        )
        if types.count(t) < OBJECT_TYPES[t].max_per_scene:
            types.append(t)
    return types


def sample_scene_spec(seed: int, composition: str = 'exclude', n_objects: int | None = None):
    """Draw the layout of one scene.

    Args:
        seed: non-negative int; the scene is a pure function of (seed, composition, n_objects).
        composition: 'exclude' | 'require' | 'any' (module docstring).
        n_objects: 2 to 10 objects, or None to draw uniformly from 2..10.

    Returns:
        SceneSpec. Raises ValueError for a negative seed, an unknown composition or
        n_objects outside [2, 10].
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if composition not in COMPOSITIONS:
        raise ValueError(f'composition must be one of {COMPOSITIONS}, got {composition!r}')
    rng = np.random.default_rng([int(seed), 0])
    n = int(rng.integers(2, 11)) if n_objects is None else int(n_objects)
    if not 2 <= n <= 10:
        raise ValueError(f'n_objects must be in [2, 10], got {n_objects}')
    forced_pairs: list[tuple[str, str]] = []
    if composition == 'require':
        pairs = sorted(HELD_OUT_PAIRS)
        k = 1 if n < 4 or rng.random() < 0.5 else 2
        forced_pairs = [pairs[i] for i in rng.choice(len(pairs), size=k, replace=False)]
        if n >= 4 and rng.random() < 0.3:  # a second instance: "the two green mugs", ordinals
            forced_pairs.append(forced_pairs[0])
    types = _draw_types(rng, n, [t for _, t in forced_pairs])
    used: list[str] = []
    drafts = []
    for i, t in enumerate(types):
        colour = (
            forced_pairs[i][0] if i < len(forced_pairs) else _pick_colour(rng, t, used, composition)
        )
        used.append(colour)
        rgb = np.clip(
            np.array(PALETTE[colour]) + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, 3), 0, 1
        )
        otype = OBJECT_TYPES[t]
        size = str(rng.choice(sorted(SIZE_CLASSES))) if otype.sizes else NORMAL_SIZE
        rel = float(rng.uniform(*SIZE_CLASSES[size])) if otype.sizes else 1.0
        shape = int(rng.integers(RANDOM_SHAPE_COUNT)) if t == 'shape' else -1
        roll = math.pi / 2 if t == 'domino' and rng.random() < 0.7 else 0.0
        drafts.append((t, colour, tuple(float(v) for v in rgb) + (1.0,), size, rel, shape, roll))
    # Place the tray first so that later objects can land in it.
    drafts.sort(key=lambda d: d[0] != 'tray')
    objects = _place(rng, n, drafts)
    texture, table_rgba = draw_table_surface(rng)
    floor = FLOOR_COLOURS[int(rng.integers(len(FLOOR_COLOURS)))]
    return SceneSpec(int(seed), composition, tuple(objects), table_rgba, floor + (1.0,), texture)


def _place(rng, n, drafts) -> list[ObjectSpec]:
    """Drop positions: rejection sampling in a region that grows with n, 8% stacked."""
    hx, hy = 0.10 + 0.02 * n, 0.08 + 0.015 * n
    cx, cy = rng.uniform(-0.05, 0.05, size=2)
    placed: list[tuple[float, float, float, float]] = []  # x, y, radius, top z
    out = []
    for t, colour, rgba, size, rel, shape, roll in drafts:
        otype = OBJECT_TYPES[t]
        ex, ey, ez = (e * rel for e in otype.extent_m)
        radius = 0.5 * math.hypot(ex, ey) * 0.8
        x = y = 0.0
        base_z = TABLE_TOP_Z_M
        if placed and t != 'tray' and rng.random() < 0.08:  # stack on an earlier object
            px, py, _, ptop = placed[int(rng.integers(len(placed)))]
            x, y = px + rng.uniform(-0.01, 0.01), py + rng.uniform(-0.01, 0.01)
            base_z = ptop
        else:
            for _ in range(40):
                x, y = cx + rng.uniform(-hx, hx), cy + rng.uniform(-hy, hy)
                # The tray (radius > 0.1 m) is no obstacle: objects may land in it.
                if all(
                    math.hypot(x - px, y - py) >= radius + pr or pr > 0.1
                    for px, py, pr, _ in placed
                ):
                    break
        z = base_z + 0.5 * ez + 0.01  # ez >= the rolled domino's height too
        placed.append((x, y, radius, z + 0.5 * ez))
        out.append(
            ObjectSpec(
                t,
                colour,
                rgba,
                size,
                otype.base_scale * rel,
                (float(x), float(y), float(z)),
                float(rng.uniform(-math.pi, math.pi)),
                roll,
                shape,
            )
        )
    return out


def quiet_client():
    """A new pybullet DIRECT client (``BulletClient``), keeping pybullet's C-level
    "argv[0]=" line off stdout (the import-time build banner is buffered where we cannot
    reach it and still appears once)."""
    import os
    import sys

    fd, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stdout.flush()
        os.dup2(devnull, 1)
        import pybullet as p
        from pybullet_utils.bullet_client import BulletClient

        return BulletClient(connection_mode=p.DIRECT)
    finally:
        os.dup2(fd, 1)
        os.close(fd)
        os.close(devnull)


@dataclass(frozen=True)
class SceneObject:
    """An object of a settled scene.

    Attributes:
        index: position in ``TabletopScene.objects`` (stable id within the scene).
        spec: the ObjectSpec it was built from (type, colour, size class, scale).
        body_uid: pybullet body unique id (what the segmentation buffer holds).
        centre_xyz_m: centre of its axis-aligned bounding box after settling, metres.
        aabb_min_m, aabb_max_m: that box, metres.
    """

    index: int
    spec: ObjectSpec
    body_uid: int
    centre_xyz_m: tuple[float, float, float]
    aabb_min_m: tuple[float, float, float]
    aabb_max_m: tuple[float, float, float]

    @property
    def type_key(self) -> str:
        return self.spec.type_key

    @property
    def colour(self) -> str:
        return self.spec.colour

    @property
    def size_class(self) -> str:
        return self.spec.size_class


@dataclass
class TabletopScene:
    """A settled scene held in a pybullet DIRECT client (owned unless one is passed in).

    Use as a context manager or call ``close()``. ``objects`` holds the objects still on the
    table after settling (those that fell off are removed and listed in ``dropped``).

    Raises:
        RuntimeError: pybullet cannot load an asset (broken pybullet_data install).
        ValueError: the spec names an unknown table texture.
    """

    spec: SceneSpec
    client: object = None
    objects: tuple[SceneObject, ...] = field(init=False, default=())
    dropped: tuple[ObjectSpec, ...] = field(init=False, default=())
    settle_steps: int = field(init=False, default=0)

    def __post_init__(self):
        import pybullet_data

        if self.spec.table_texture not in TABLE_TEXTURES:
            raise ValueError(
                f'unknown table texture {self.spec.table_texture!r}; known: {list(TABLE_TEXTURES)}'
            )
        self._owns_client = self.client is None
        if self._owns_client:
            self.client = quiet_client()
        c = self.client
        c.resetSimulation()
        c.setPhysicsEngineParameter(deterministicOverlappingPairs=1)
        c.setAdditionalSearchPath(pybullet_data.getDataPath())
        c.setGravity(0, 0, -9.81)
        plane = c.loadURDF('plane.urdf')
        c.changeVisualShape(plane, -1, textureUniqueId=-1, rgbaColor=self.spec.floor_rgba)
        table = c.loadURDF('table/table.urdf', [0, 0, 0])
        texture = self.spec.table_texture
        if texture == 'wood':  # the URDF's own texture
            c.changeVisualShape(table, -1, rgbaColor=self.spec.table_rgba)
        else:
            tex = -1 if texture == 'plain' else c.loadTexture(texture_file(texture))
            c.changeVisualShape(table, -1, textureUniqueId=tex, rgbaColor=self.spec.table_rgba)
        uids = [self._load(o) for o in self.spec.objects]
        self.settle_steps = self._settle(uids)
        kept, dropped = [], []
        for o, uid in zip(self.spec.objects, uids):
            lo, hi = c.getAABB(uid)
            centre = [(a + b) / 2 for a, b in zip(lo, hi)]
            on_table = (
                hi[2] > TABLE_TOP_Z_M + 0.005
                and abs(centre[0]) < TABLE_HALF_XY_M[0]
                and abs(centre[1]) < TABLE_HALF_XY_M[1]
            )
            if not on_table:
                c.removeBody(uid)
                dropped.append(o)
                continue
            kept.append(SceneObject(len(kept), o, uid, tuple(centre), tuple(lo), tuple(hi)))
        self.objects, self.dropped = tuple(kept), tuple(dropped)

    def _load(self, o: ObjectSpec) -> int:
        c = self.client
        otype = OBJECT_TYPES[o.type_key]
        path = otype.urdf.format(shape=o.shape_index) if o.shape_index >= 0 else otype.urdf
        orn = c.getQuaternionFromEuler([o.roll_rad, 0.0, o.yaw_rad])
        try:
            uid = c.loadURDF(path, o.drop_xyz_m, orn, globalScaling=o.scale)
        except Exception as exc:  # pybullet raises a bare error type for a missing file
            msg = f'pybullet could not load {path}: {exc}; reinstall pybullet'
            raise RuntimeError(msg) from exc
        if otype.keep_texture:
            c.changeVisualShape(uid, -1, rgbaColor=o.rgba)
        else:
            c.changeVisualShape(uid, -1, textureUniqueId=-1, rgbaColor=o.rgba)
        c.changeDynamics(
            uid,
            -1,
            lateralFriction=0.9,
            rollingFriction=0.002,
            spinningFriction=0.002,
            linearDamping=0.2,
            angularDamping=0.3,
        )
        return uid

    def _settle(self, uids) -> int:
        c = self.client
        steps = 0
        while steps < SETTLE_MAX_STEPS:
            for _ in range(60):
                c.stepSimulation()
            steps += 60
            speed = max(max(np.linalg.norm(v) for v in c.getBaseVelocity(u)) for u in uids)
            if steps >= 120 and speed < 0.01:
                break
        return steps

    def by_uid(self) -> dict[int, SceneObject]:
        """Map pybullet body uid -> object."""
        return {o.body_uid: o for o in self.objects}

    def centre_xyz_m(self) -> np.ndarray:
        """(3,) mean of the object centres, on the table top (a natural camera look-at point)."""
        if not self.objects:
            return np.array([0.0, 0.0, TABLE_TOP_Z_M])
        c = np.mean([o.centre_xyz_m for o in self.objects], axis=0)
        return np.array([c[0], c[1], TABLE_TOP_Z_M])

    def render(self, pose, lighting=None):
        """Render the scene from ``pose`` (CameraPose); see ``render.render_view``."""
        from poa_gres_ros.tabletop.render import render_view

        return render_view(self, pose, lighting)

    def close(self) -> None:
        """Disconnect the pybullet client if this scene created it."""
        if self._owns_client and self.client is not None:
            self.client.disconnect()
            self.client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_scene(seed: int, composition: str = 'exclude', client=None) -> TabletopScene:
    """Sample the layout for ``seed`` and settle it (see ``sample_scene_spec``)."""
    return TabletopScene(sample_scene_spec(seed, composition), client)
