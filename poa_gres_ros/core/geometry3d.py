"""Lift instance masks to 3D with an aligned depth image and pinhole intrinsics (numpy only).

Frame and units: the camera optical frame of the colour image (REP 103: x right, y down, z
forward), metres. Pixel (u, v) = (column, row) has its centre at integer coordinates (the
OpenCV / ``sensor_msgs/CameraInfo`` convention), so a pixel with depth z back-projects to

    x = (u - cx) * z / fx,    y = (v - cy) * z / fy,    z = z

(docs/geometry3d.md#frame-and-units).

Depth conventions (docs/geometry3d.md#inputs-and-pairing): ``16UC1`` in millimetres (RealSense;
0 = no depth), ``32FC1`` in metres (ZED; NaN, +-inf and 0 = no depth). :func:`decode_depth`
turns either into float32 metres with NaN where there is no depth.

Per-instance geometry (:func:`lift_instance`, docs/geometry3d.md#instance-geometry): the mask is
eroded by ``erode_px`` pixels (edge pixels mix object and background depth on real sensors), its
pixels with valid depth are back-projected, points farther than ``max(4 x 1.4826 x MAD, 1 cm)``
from the median depth are rejected, and from the rest come the centroid (their mean), the
axis-aligned box (min / max), the principal axes (eigenvectors of the covariance) with the
extent along them, the point count, and the fraction of the (uneroded) mask without depth.
:func:`visible_surface` is the plain reference used for ground truth: the mean and min / max
of every mask pixel with depth, nothing eroded or rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MM_PER_M = 1000.0
ASPECT_TOLERANCE = 0.01
"""Depth and colour images whose width / height ratios differ by more than this (relative)
are not the same view: the depth is rejected instead of rescaled."""
OUTLIER_MAD_FACTOR = 4.0
MAX_PCA_POINTS = 4096
"""The principal axes come from at most this many of the points (a regular stride through
them, in raster order): enough for a 3 x 3 covariance, and bounded time for a huge mask."""
OUTLIER_FLOOR_M = 0.01
MIN_ORIENTATION_POINTS = 30
MIN_AXIS_RATIO = 1.5
"""The major axis is defined when the largest covariance eigenvalue is at least this times the
second (a disc seen face on has no major axis)."""


@dataclass(frozen=True)
class PinholeIntrinsics:
    """Pinhole intrinsics of the colour camera, in pixels, for a ``width_px`` x ``height_px``
    image (distortion is not modelled: use rectified images, ``CameraInfo.k`` of a rectified
    or undistorted stream)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width_px: int
    height_px: int

    @classmethod
    def from_k(cls, k, width_px: int, height_px: int) -> PinholeIntrinsics:
        """From a row-major 3 x 3 K (9 numbers, ``CameraInfo.k``) and the image size.

        Raises:
            ValueError: K is all zeros (an uncalibrated camera), has a non-finite entry,
                fx or fy <= 0, or the size is not positive.
        """
        kk = np.asarray(k, np.float64).reshape(-1)
        if kk.size != 9:
            raise ValueError(f'K must have 9 entries, got {kk.size}')
        if not np.all(np.isfinite(kk)):
            raise ValueError(f'K has non-finite entries: {kk.tolist()}')
        if not np.any(kk):
            raise ValueError('K is all zeros: the camera is not calibrated (CameraInfo.k)')
        fx, fy, cx, cy = kk[0], kk[4], kk[2], kk[5]
        if fx <= 0 or fy <= 0:
            raise ValueError(f'K has fx = {fx}, fy = {fy}: focal lengths must be > 0')
        if width_px <= 0 or height_px <= 0:
            raise ValueError(f'CameraInfo size {width_px}x{height_px} is not positive')
        return cls(float(fx), float(fy), float(cx), float(cy), int(width_px), int(height_px))

    def scaled_to(self, width_px: int, height_px: int) -> PinholeIntrinsics:
        """The same camera at another resolution (binning / resizing; pixel centres at
        integers, so ``c' = (c + 0.5) s - 0.5``).

        Raises:
            ValueError: the aspect ratios differ by more than :data:`ASPECT_TOLERANCE`.
        """
        if (width_px, height_px) == (self.width_px, self.height_px):
            return self
        _check_aspect((self.height_px, self.width_px), (height_px, width_px), 'CameraInfo')
        sx, sy = width_px / self.width_px, height_px / self.height_px
        return PinholeIntrinsics(
            self.fx * sx,
            self.fy * sy,
            (self.cx + 0.5) * sx - 0.5,
            (self.cy + 0.5) * sy - 0.5,
            int(width_px),
            int(height_px),
        )


def _check_aspect(src_hw, dst_hw, what: str) -> None:
    a = src_hw[1] / src_hw[0]
    b = dst_hw[1] / dst_hw[0]
    if abs(a - b) > ASPECT_TOLERANCE * b:
        raise ValueError(
            f'{what} is {src_hw[1]}x{src_hw[0]} but the colour image is {dst_hw[1]}x{dst_hw[0]}: '
            'different aspect ratios, so it is not aligned to the colour image (use the depth '
            'registered to colour, e.g. aligned_depth_to_color)'
        )


def decode_depth(
    data, encoding: str, height: int, width: int, step: int, is_bigendian: bool = False
) -> np.ndarray:
    """Raw depth image bytes -> (height, width) float32 metres, NaN where there is no depth.

    Args:
        data: the image bytes (``sensor_msgs/Image.data``), ``height * step`` long.
        encoding: '16UC1' / 'mono16' (uint16 millimetres, 0 = none) or '32FC1' (float32
            metres; NaN, +-inf and 0 = none).
        step: bytes per row (row padding is skipped); is_bigendian: the data's byte order.
    Raises:
        ValueError: another encoding, or sizes that do not match the data.
    """
    if encoding in ('16UC1', 'mono16'):
        dtype, scale = np.dtype('>u2' if is_bigendian else '<u2'), 1.0 / MM_PER_M
    elif encoding == '32FC1':
        dtype, scale = np.dtype('>f4' if is_bigendian else '<f4'), None
    else:
        raise ValueError(
            f'depth encoding {encoding!r} is not supported: use 16UC1 (millimetres) or 32FC1 '
            '(metres)'
        )
    buf = np.frombuffer(memoryview(data).cast('B'), np.uint8)
    if height <= 0 or width <= 0 or step < width * dtype.itemsize or buf.size != height * step:
        raise ValueError(
            f'depth image {width}x{height} {encoding}: step {step}, {buf.size} bytes (expected '
            f'height * step = {height * step} and step >= {width * dtype.itemsize})'
        )
    rows = buf.reshape(height, step)[:, : width * dtype.itemsize]
    raw = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    if scale is not None:
        out = raw.astype(np.float32) * np.float32(scale)
        out[raw == 0] = np.nan
        return out
    out = raw.astype(np.float32)
    out[~np.isfinite(out) | (out <= 0)] = np.nan
    return out


def align_depth(depth_m: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Rescale an aligned depth image to the colour size by nearest neighbour (depth is never
    interpolated: averaging across an object edge invents points between object and
    background).

    Args:
        depth_m: (h, w) float32 metres (NaN = none). size_hw: the colour image (H, W).
    Returns:
        (H, W) float32 (``depth_m`` itself when the sizes already match).
    Raises:
        ValueError: the aspect ratios differ (:data:`ASPECT_TOLERANCE`).
    """
    h, w = depth_m.shape
    if (h, w) == tuple(size_hw):
        return depth_m
    _check_aspect((h, w), size_hw, 'the depth image')
    rows = np.minimum(((np.arange(size_hw[0]) + 0.5) * h / size_hw[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(size_hw[1]) + 0.5) * w / size_hw[1]).astype(np.intp), w - 1)
    return depth_m[rows[:, None], cols[None, :]]


def backproject(us, vs, z_m, intr: PinholeIntrinsics) -> np.ndarray:
    """Pixels with depth -> (N, 3) float32 points in the optical frame, metres (module
    docstring formula).

    Args:
        us, vs: (N,) pixel columns and rows (integers or floats, centres at integers).
        z_m: (N,) depth along the optical axis, metres.
    """
    z = np.asarray(z_m, np.float32)
    out = np.empty((z.size, 3), np.float32)
    out[:, 0] = (np.asarray(us, np.float32) - np.float32(intr.cx)) * z / np.float32(intr.fx)
    out[:, 1] = (np.asarray(vs, np.float32) - np.float32(intr.cy)) * z / np.float32(intr.fy)
    out[:, 2] = z
    return out


def backproject_rows(us, vs, z_m, intr: PinholeIntrinsics) -> np.ndarray:
    """:func:`backproject` as (3, N) float32 rows x, y, z (each row contiguous, so per-axis
    statistics run over contiguous memory)."""
    z = np.asarray(z_m, np.float32)
    out = np.empty((3, z.size), np.float32)
    np.multiply(np.asarray(us, np.float32) - np.float32(intr.cx), z, out=out[0])
    out[0] *= np.float32(1.0 / intr.fx)
    np.multiply(np.asarray(vs, np.float32) - np.float32(intr.cy), z, out=out[1])
    out[1] *= np.float32(1.0 / intr.fy)
    out[2] = z
    return out


@dataclass
class Instance3D:
    """3D geometry of one instance in the camera optical frame, metres.

    Attributes:
        valid: at least ``min_points`` points with depth were found; else the geometry fields
            are NaN and ``points_m`` is empty.
        centroid_m: (3,) float64; box_min_m, box_max_m: (3,) float64 axis-aligned box corners.
        rotation: (3, 3) float64, columns = principal axes (major, middle, minor), right
            handed, minor axis towards the camera, major axis with x >= 0.
        orientation_valid: the major axis is defined (:data:`MIN_AXIS_RATIO`).
        principal_extent_m: (3,) float64 extent of the points along the three axes.
        num_points: points used; missing_depth_fraction: mask pixels without depth / mask
            pixels, in [0, 1] (1 for an empty mask).
        xyz_m: (3, N) float32 the points used, as rows x, y, z (``points_m`` is the (N, 3)
            view).
    """

    valid: bool
    centroid_m: np.ndarray
    box_min_m: np.ndarray
    box_max_m: np.ndarray
    rotation: np.ndarray
    orientation_valid: bool
    principal_extent_m: np.ndarray
    num_points: int
    missing_depth_fraction: float
    xyz_m: np.ndarray = field(repr=False)

    @property
    def points_m(self) -> np.ndarray:
        """(N, 3) float32 view of the points used."""
        return self.xyz_m.T

    @property
    def box_center_m(self) -> np.ndarray:
        """(3,) centre of the axis-aligned box."""
        return 0.5 * (self.box_min_m + self.box_max_m)

    @property
    def box_size_m(self) -> np.ndarray:
        """(3,) side lengths of the axis-aligned box."""
        return self.box_max_m - self.box_min_m

    def quaternion_xyzw(self) -> np.ndarray:
        """(4,) unit quaternion (x, y, z, w) of :attr:`rotation` (identity when invalid)."""
        if not self.valid:
            return np.array([0.0, 0.0, 0.0, 1.0])
        from scipy.spatial.transform import Rotation

        return Rotation.from_matrix(self.rotation).as_quat()


def _invalid(missing: float, n: int = 0) -> Instance3D:
    nan3 = np.full(3, np.nan)
    return Instance3D(
        False, nan3, nan3.copy(), nan3.copy(), np.eye(3), False, nan3.copy(), n, missing,
        np.empty((3, 0), np.float32),
    )  # fmt: skip


def _principal_axes(xyz: np.ndarray, centroid: np.ndarray):
    """Rotation (columns = axes by decreasing variance, sign rule of Instance3D), whether the
    major axis is defined, and the extent along each axis, from (3, N) points. The covariance
    uses at most :data:`MAX_PCA_POINTS` points (a regular stride through them)."""
    n = xyz.shape[1]
    sub = xyz[:, :: max(1, -(-n // MAX_PCA_POINTS))].astype(np.float64) - centroid[:, None]
    # einsum, not matmul: BLAS would wake its thread pool for a 3 x 3 result (slow on a busy CPU)
    cov = np.einsum('in,jn->ij', sub, sub) / max(1, sub.shape[1] - 1)
    evals, evecs = np.linalg.eigh(cov)  # ascending
    evals, evecs = evals[::-1], evecs[:, ::-1]
    e1, e3 = evecs[:, 0], evecs[:, 2]
    if e3 @ centroid > 0:  # minor axis (surface normal of a flat patch) towards the camera
        e3 = -e3
    if e1[0] < 0 or (e1[0] == 0 and e1[1] < 0):
        e1 = -e1
    rot = np.stack([e1, np.cross(e3, e1), e3], axis=1)
    ok = n >= MIN_ORIENTATION_POINTS and evals[0] >= MIN_AXIS_RATIO * max(evals[1], 1e-12)
    proj = np.einsum('ji,jn->in', rot.astype(np.float32), xyz)  # (3, N), contiguous rows
    return rot, bool(ok), (proj.max(axis=1) - proj.min(axis=1)).astype(np.float64)


def _from_points(xyz: np.ndarray, centroid: np.ndarray, missing: float) -> Instance3D:
    rot, ok, extent = _principal_axes(xyz, centroid)
    return Instance3D(
        True, centroid, xyz.min(axis=1).astype(np.float64), xyz.max(axis=1).astype(np.float64),
        rot, ok, extent, int(xyz.shape[1]), float(missing), xyz,
    )  # fmt: skip


def _crop_box(mask: np.ndarray):
    rows, cols = mask.any(axis=1), mask.any(axis=0)
    ys, xs = np.flatnonzero(rows), np.flatnonzero(cols)
    if ys.size == 0:
        return None
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def lift_instance(
    mask: np.ndarray,
    depth_m: np.ndarray,
    intr: PinholeIntrinsics,
    *,
    erode_px: int = 2,
    min_points: int = 10,
    box_xyxy: tuple[int, int, int, int] | None = None,
) -> Instance3D:
    """Robust 3D geometry of one instance (docs/geometry3d.md#instance-geometry).

    Args:
        mask: (H, W) bool instance mask at the colour resolution.
        depth_m: (H, W) float32 depth in metres aligned to the colour image, NaN = none
            (:func:`decode_depth`, :func:`align_depth`).
        intr: intrinsics for (H, W).
        erode_px: erosion radius in pixels (a 3 x 3 square, this many times); skipped when
            the eroded mask would keep fewer than ``min_points`` pixels with depth.
        min_points: fewer valid points than this gives an invalid result.
        box_xyxy: the mask's tight box (x0, y0, x1, y1), x1/y1 exclusive, if known (saves a
            pass over the frame).
    Raises:
        ValueError: mask and depth shapes differ from each other or from ``intr``.
    """
    if mask.shape != depth_m.shape or mask.shape != (intr.height_px, intr.width_px):
        raise ValueError(
            f'mask {mask.shape}, depth {depth_m.shape} and intrinsics '
            f'({intr.height_px}, {intr.width_px}) must have one size'
        )
    box = box_xyxy if box_xyxy is not None else _crop_box(mask)
    if box is None or box[2] <= box[0] or box[3] <= box[1]:
        return _invalid(1.0)
    x0, y0, x1, y1 = box
    crop = mask[y0:y1, x0:x1]
    dcrop = depth_m[y0:y1, x0:x1]
    has = ~np.isnan(dcrop)
    area = int(np.count_nonzero(crop))
    if area == 0:
        return _invalid(1.0)
    good = crop & has
    missing = 1.0 - np.count_nonzero(good) / area
    if erode_px > 0:
        import cv2

        pad = np.pad(crop.view(np.uint8), erode_px)  # box-border pixels erode like any edge
        er = cv2.erode(pad, np.ones((3, 3), np.uint8), iterations=int(erode_px))
        eroded = er[erode_px:-erode_px, erode_px:-erode_px].view(bool) & has
        if np.count_nonzero(eroded) >= min_points:
            good = eroded
    vs, us = np.nonzero(good)
    if vs.size < min_points:
        return _invalid(missing, int(vs.size))
    z = dcrop[vs, us]
    med = np.median(z)
    dev = np.abs(z - med)
    keep = dev <= max(OUTLIER_MAD_FACTOR * 1.4826 * float(np.median(dev)), OUTLIER_FLOOR_M)
    n_keep = int(np.count_nonzero(keep))
    if n_keep < min_points:
        return _invalid(missing, n_keep)
    if n_keep < z.size:
        us, vs, z = us[keep], vs[keep], z[keep]
    xyz = backproject_rows(us + x0, vs + y0, z, intr)
    return _from_points(xyz, xyz.mean(axis=1, dtype=np.float64), missing)


def visible_surface(
    mask: np.ndarray, depth_m: np.ndarray, intr: PinholeIntrinsics, min_points: int = 1
) -> Instance3D:
    """The reference geometry of a visible surface: every mask pixel with depth, centroid =
    mean, box = min / max, no erosion or outlier rejection (ground truth from a renderer's
    exact mask and depth, docs/geometry3d.md#ground-truth). Same arguments as
    :func:`lift_instance`."""
    if mask.shape != depth_m.shape:
        raise ValueError(f'mask {mask.shape} and depth {depth_m.shape} differ in size')
    area = int(np.count_nonzero(mask))
    if area == 0:
        return _invalid(1.0)
    good = mask & ~np.isnan(depth_m)
    vs, us = np.nonzero(good)
    missing = 1.0 - vs.size / area
    if vs.size < max(1, min_points):
        return _invalid(missing, int(vs.size))
    xyz = backproject_rows(us, vs, depth_m[vs, us], intr)
    return _from_points(xyz, xyz.mean(axis=1, dtype=np.float64), missing)


def lift_instances(masks, depth_m, intr, boxes=None, **kwargs) -> list[Instance3D]:
    """:func:`lift_instance` for each (H, W) bool mask of ``masks`` (optional tight boxes)."""
    boxes = boxes if boxes is not None else [None] * len(masks)
    return [lift_instance(m, depth_m, intr, box_xyxy=b, **kwargs) for m, b in zip(masks, boxes)]


def centroid_error_mm(a: Instance3D, b: Instance3D) -> float:
    """Euclidean distance between two centroids in millimetres (NaN if either is invalid)."""
    if not (a.valid and b.valid):
        return math.nan
    return float(np.linalg.norm(a.centroid_m - b.centroid_m) * MM_PER_M)
