"""Render a settled scene from a camera pose: RGB, per-instance masks, depth, visibility.

Rendering uses pybullet's CPU TinyRenderer (``ER_TINY_RENDERER``), so it runs headless and
gives the same pixels for the same scene, pose and light on any machine with the same
pybullet build. Instance masks come from the segmentation buffer (``objectUniqueId`` per
pixel), i.e. they are the *visible* parts of each object after occlusion and image borders.

Visibility rule (documented threshold): an object is *well visible* in a view when its visible
mask has at least ``MIN_VISIBLE_AREA_PX`` pixels (250 px at 640x480, about a 16x16 px patch,
scaled with the image area for other sizes) and its box is at least ``MIN_BOX_SIDE_PX`` (8 px)
on each side. Expressions only ever refer to well-visible objects, and an expression is not
emitted when an object that matches its words is visible but not well visible (see
``queries``), so no expression refers to, or is confused by, a sliver. Datasets annotate only
well-visible objects (``writer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from poa_gres_ros.tabletop.camera import (
    CameraPose,
    CameraRanges,
    Lighting,
    LightingRanges,
    sample_camera_pose,
    sample_lighting,
)

MIN_VISIBLE_AREA_PX = 250
"""Minimum visible mask area at 640x480 for an object to be referable."""
MIN_BOX_SIDE_PX = 8
REFERENCE_IMAGE_AREA_PX = 640 * 480


def min_visible_area_px(width_px: int, height_px: int) -> int:
    """``MIN_VISIBLE_AREA_PX`` scaled to a ``width_px`` x ``height_px`` image."""
    return max(1, round(MIN_VISIBLE_AREA_PX * width_px * height_px / REFERENCE_IMAGE_AREA_PX))


@dataclass(frozen=True)
class ObjectInView:
    """Visible part of one scene object in one view.

    Attributes:
        index: ``SceneObject.index``.
        area_px: number of visible pixels (> 0).
        box_xyxy_px: tight box (x0, y0, x1, y1), x1/y1 exclusive.
        centroid_xy_px: mean pixel centre (x, y) of the visible mask, pixel (x, y) having its
            centre at (x + 0.5, y + 0.5) as in ``core.results.InstanceResult``.
        well_visible: the visibility rule of the module docstring holds.
    """

    index: int
    area_px: int
    box_xyxy_px: tuple[int, int, int, int]
    centroid_xy_px: tuple[float, float]
    well_visible: bool

    @property
    def diag_px(self) -> float:
        """Diagonal of the box in pixels (apparent size)."""
        x0, y0, x1, y1 = self.box_xyxy_px
        return float(np.hypot(x1 - x0, y1 - y0))


@dataclass
class RenderedView:
    """One rendered image of a scene.

    Attributes:
        rgb: (H, W, 3) uint8 RGB.
        instance_map: (H, W) int16, the ``SceneObject.index`` seen at each pixel, -1 for
            table, floor and background.
        depth_m: (H, W) float32 distance along the optical axis, metres (far plane where
            nothing was hit).
        pose: the CameraPose; lighting: the Lighting.
        in_view: ``{index: ObjectInView}`` for every object with at least one visible pixel.
    """

    rgb: np.ndarray
    instance_map: np.ndarray
    depth_m: np.ndarray
    pose: CameraPose
    lighting: Lighting
    in_view: dict[int, ObjectInView] = field(default_factory=dict)

    def mask(self, index: int) -> np.ndarray:
        """(H, W) bool visible mask of scene object ``index`` (all False if not visible)."""
        return self.instance_map == index

    def well_visible(self) -> list[int]:
        """Indices of the well-visible objects, ascending."""
        return sorted(i for i, o in self.in_view.items() if o.well_visible)


def render_view(scene, pose: CameraPose, lighting: Lighting | None = None) -> RenderedView:
    """Render ``scene`` (a TabletopScene) from ``pose`` with ``lighting`` (default Lighting()).

    Returns:
        RenderedView at ``pose.height_px`` x ``pose.width_px``.
    Raises:
        RuntimeError: the scene's pybullet client is closed.
    """
    import pybullet as p

    if scene.client is None:
        raise RuntimeError('the scene is closed; build it again to render')
    light = lighting or Lighting()
    w, h = pose.width_px, pose.height_px
    _, _, rgba, depth, seg = scene.client.getCameraImage(
        w,
        h,
        pose.view_matrix(),
        pose.projection_matrix(),
        renderer=p.ER_TINY_RENDERER,
        **light.render_kwargs(),
    )
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[:, :, :3].copy()
    seg = np.asarray(seg, dtype=np.int64).reshape(h, w)
    d = np.asarray(depth, dtype=np.float64).reshape(h, w)
    near, far = pose.near_m, pose.far_m
    depth_m = (far * near / (far - (far - near) * d)).astype(np.float32)
    instance_map = np.full((h, w), -1, dtype=np.int16)
    for uid, obj in scene.by_uid().items():
        instance_map[seg == uid] = obj.index
    view = RenderedView(rgb, instance_map, depth_m, pose, light)
    view.in_view = describe_visibility(instance_map)
    return view


def describe_visibility(instance_map: np.ndarray) -> dict[int, ObjectInView]:
    """Per-object visible area, box, centroid and the well-visible flag.

    Args:
        instance_map: (H, W) integer map of object indices, -1 = no object.
    Returns:
        ``{index: ObjectInView}`` for every index present in the map.
    """
    h, w = instance_map.shape
    min_area = min_visible_area_px(w, h)
    out = {}
    for idx in np.unique(instance_map):
        if idx < 0:
            continue
        ys, xs = np.nonzero(instance_map == idx)
        box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        ok = (
            xs.size >= min_area
            and box[2] - box[0] >= MIN_BOX_SIDE_PX
            and box[3] - box[1] >= MIN_BOX_SIDE_PX
        )
        out[int(idx)] = ObjectInView(
            int(idx), int(xs.size), box, (float(xs.mean()) + 0.5, float(ys.mean()) + 0.5), ok
        )
    return out


def sample_view(
    scene,
    rng: np.random.Generator,
    *,
    min_well_visible: int = 2,
    tries: int = 8,
    ranges: CameraRanges | None = None,
    width_px: int | None = None,
    height_px: int | None = None,
    lighting_ranges: LightingRanges | None = None,
) -> RenderedView:
    """Render ``scene`` from a random robot-like viewpoint and light.

    Draws the image size (``CameraRanges.resolutions``, unless ``width_px`` and ``height_px``
    are both given) and the light once, then up to ``tries`` camera poses, and returns the
    first view with at least ``min_well_visible`` well-visible objects (or all of the scene's
    objects if it has fewer); if none qualifies, the view with the most well-visible objects.
    Deterministic for ``rng``.

    Raises:
        ValueError: only one of ``width_px`` / ``height_px`` is given.
    """
    if (width_px is None) != (height_px is None):
        raise ValueError('give both width_px and height_px, or neither')
    r = ranges or CameraRanges()
    if width_px is None:
        width_px, height_px = r.draw_resolution(rng)
    need = min(min_well_visible, len(scene.objects))
    lighting = sample_lighting(rng, lighting_ranges)
    best = None
    for _ in range(max(1, tries)):
        pose = sample_camera_pose(rng, scene.centre_xyz_m(), r, width_px, height_px)
        view = render_view(scene, pose, lighting)
        if best is None or len(view.well_visible()) > len(best.well_visible()):
            best = view
        if len(view.well_visible()) >= need:
            return view
    return best
