"""Hand-built tabletop views for exact tests of the expression rules (no rendering).

``world([...])`` makes real ``SceneObject``s and a real ``RenderedView`` whose instance map holds
the given boxes, so ``Facts`` sees exactly the centroids, areas and 3D centres a test states.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from poa_gres_ros.tabletop.camera import TABLE_TOP_Z_M, Lighting, orbit_pose
from poa_gres_ros.tabletop.render import RenderedView, describe_visibility
from poa_gres_ros.tabletop.scene import ObjectSpec, SceneObject

W, H = 640, 480


def obj(type_key, colour, box=None, *, size='small', scale=1.0, xy=(0.0, 0.0), half=0.03):
    """One object: box (x0, y0, x1, y1) px in the view (None: not visible), table xy in m."""
    return dict(type=type_key, colour=colour, box=box, size=size, scale=scale, xy=xy, half=half)


def world(objs):
    """(scene, view) with the objects drawn in list order (later boxes occlude earlier)."""
    objects = []
    imap = np.full((H, W), -1, dtype=np.int16)
    for i, o in enumerate(objs):
        spec = ObjectSpec(
            o['type'], o['colour'], (1, 0, 0, 1), o['size'], o['scale'], (0.0, 0.0, 0.0), 0.0
        )
        x, y = o['xy']
        h = o['half']
        centre = (x, y, TABLE_TOP_Z_M + h)
        objects.append(
            SceneObject(
                i,
                spec,
                100 + i,
                centre,
                (x - h, y - h, TABLE_TOP_Z_M),
                (x + h, y + h, TABLE_TOP_Z_M + 2 * h),
            )
        )
        if o['box'] is not None:
            x0, y0, x1, y1 = o['box']
            imap[y0:y1, x0:x1] = i
    scene = SimpleNamespace(objects=tuple(objects))
    pose = orbit_pose((0, 0, TABLE_TOP_Z_M), 0.8, 0.0, 50.0)
    view = RenderedView(
        np.zeros((H, W, 3), np.uint8),
        imap,
        np.zeros((H, W), np.float32),
        pose,
        Lighting(),
        describe_visibility(imap),
    )
    return scene, view


def box_at(cx, cy=240, half=15):
    """A (2 half)^2 px box centred at (cx, cy)."""
    return (cx - half, cy - half, cx + half, cy + half)
