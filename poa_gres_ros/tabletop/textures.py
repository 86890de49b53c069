"""Table-top surfaces: textures and colours of the table, drawn per scene.

A surface is a texture name from ``TABLE_TEXTURES`` and an RGB tint that multiplies it
(pybullet ``changeVisualShape(rgbaColor=...)``):

- ``wood``: the stock ``pybullet_data/table/table.png`` (light wood), tinted with one of
  ``WOOD_TINTS`` (natural, oak, walnut, dark stain);
- ``plain``: no texture (laminate, painted or plastic top), one of ``TABLE_COLOURS``;
- ``grain`` (procedural wood grain), ``speckle`` (granite / terrazzo laminate), ``weave``
  (tablecloth or fabric mat): grey-level textures made here, tinted with one of
  ``TABLE_COLOURS``.

Colours are those of real tables and stay unsaturated, so no table looks like a palette
colour the expressions name (``catalog.PALETTE``). Each tint is scaled by a brightness
factor in ``TABLE_BRIGHTNESS``.

The procedural textures are pure functions of their name (fixed seeds), 768 x 512 px for the
1.5 m x 1.0 m top (about 2 mm per texel). They are written once per process as PNG files into
a temporary folder (pybullet loads textures from files) that is removed at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np

TABLE_TEXTURES: dict[str, float] = {
    'wood': 0.3,
    'plain': 0.25,
    'grain': 0.15,
    'speckle': 0.15,
    'weave': 0.15,
}
"""Texture name -> probability."""
TABLE_COLOURS: dict[str, tuple[float, float, float]] = {
    'white': (0.95, 0.95, 0.93),
    'light_grey': (0.76, 0.76, 0.76),
    'grey': (0.55, 0.55, 0.56),
    'dark_grey': (0.32, 0.32, 0.34),
    'black': (0.16, 0.16, 0.17),
    'beige': (0.92, 0.86, 0.72),
    'light_wood': (0.88, 0.74, 0.55),
    'dark_wood': (0.52, 0.37, 0.26),
    'blue_grey': (0.56, 0.61, 0.68),
}
WOOD_TINTS: dict[str, tuple[float, float, float]] = {
    'natural': (1.0, 1.0, 1.0),
    'oak': (0.92, 0.84, 0.74),
    'walnut': (0.62, 0.5, 0.42),
    'dark_stain': (0.42, 0.34, 0.3),
}
TABLE_BRIGHTNESS = (0.88, 1.05)
TEXTURE_SIZE_PX = (768, 512)
"""(width, height) of the procedural textures."""

_DIR: str | None = None


def draw_table_surface(rng: np.random.Generator) -> tuple[str, tuple[float, float, float, float]]:
    """(texture name, RGBA tint) of one table, deterministic for ``rng``."""
    names = list(TABLE_TEXTURES)
    p = np.array([TABLE_TEXTURES[n] for n in names])
    texture = names[int(rng.choice(len(names), p=p / p.sum()))]
    tints = WOOD_TINTS if texture == 'wood' else TABLE_COLOURS
    keys = sorted(tints)
    tint = np.asarray(tints[keys[int(rng.integers(len(keys)))]])
    rgb = np.clip(tint * rng.uniform(*TABLE_BRIGHTNESS), 0.0, 1.0)
    return texture, tuple(float(v) for v in rgb) + (1.0,)


def _smooth_noise(rng, h, w, cells) -> np.ndarray:
    import cv2

    small = rng.random((max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def texture_image(name: str) -> np.ndarray:
    """(512, 768, 3) uint8 grey-level texture ``name`` ('grain' | 'speckle' | 'weave').

    Raises:
        ValueError: not a procedural texture.
    """
    w, h = TEXTURE_SIZE_PX
    rng = np.random.default_rng(sorted(TABLE_TEXTURES).index(name) if name in TABLE_TEXTURES else 0)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if name == 'grain':
        warp = 1.5 * _smooth_noise(rng, h, w, 96) + 0.15 * _smooth_noise(rng, h, w, 12)
        rings = 0.5 + 0.5 * np.sin(2 * np.pi * (y / 11.0 + warp))
        v = 0.84 + 0.09 * rings + 0.05 * _smooth_noise(rng, h, w, 3)
    elif name == 'speckle':
        v = 0.84 + 0.08 * _smooth_noise(rng, h, w, 48)
        dots = rng.random((h, w))
        v = np.where(dots < 0.06, v - 0.3 * rng.random((h, w)), v)
        v = np.where(dots > 0.97, v + 0.12, v)
    elif name == 'weave':
        cross = 0.5 + 0.25 * (np.sin(2 * np.pi * x / 5.0) + np.sin(2 * np.pi * y / 5.0))
        v = 0.8 + 0.12 * cross + 0.06 * _smooth_noise(rng, h, w, 32)
    else:
        raise ValueError(f'no procedural texture {name!r}; choose grain, speckle or weave')
    grey = (255.0 * np.clip(v, 0.0, 1.0)).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def texture_file(name: str) -> str:
    """Path of the PNG of procedural texture ``name`` (written on first use per process)."""
    global _DIR
    import cv2

    if _DIR is None:
        _DIR = tempfile.mkdtemp(prefix='poa_tabletop_textures_')
        atexit.register(shutil.rmtree, _DIR, True)
    path = os.path.join(_DIR, f'{name}.png')
    if not os.path.exists(path):
        if not cv2.imwrite(path, texture_image(name)):
            raise RuntimeError(f'could not write texture {path}')
    return path
