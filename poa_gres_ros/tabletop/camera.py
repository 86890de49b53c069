"""Camera poses, intrinsics and lighting for rendering tabletop scenes.

Conventions:
- World frame: z up, the table top centred at (0, 0, ``TABLE_TOP_Z_M``); metres.
- ``CameraPose.K``: pinhole intrinsics in the OpenCV / ROS ``CameraInfo`` convention (pixel
  (u, v) has its centre at integer coordinates, u = column, v = row). ``fx = fy = (H / 2) /
  tan(fov_y / 2)`` (square pixels, ``computeProjectionMatrixFOV`` with aspect W / H). The
  principal point is where TinyRenderer actually puts the optical axis, measured with a sphere
  on the axis (its mask is symmetric about column W / 2 and row H / 2 - 1; see
  test_tabletop_scene): ``cx = W / 2``, ``cy = H / 2 - 1``, not the ideal (W - 1) / 2,
  (H - 1) / 2 of an exact OpenGL frustum (the renderer samples pixel corners and flips rows).
- ``CameraPose.T_world_camera``: 4x4 pose of the optical frame (x right, y down, z forward,
  REP 103 ``*_optical_frame``) in the world frame, so ``p_world = T @ [p_cam, 1]``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

TABLE_TOP_Z_M = 0.626
"""Height of the top of ``pybullet_data/table/table.urdf`` loaded at the origin (AABB max z)."""


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    n = float(np.linalg.norm(v))
    if not n > 1e-12:
        raise ValueError(f'zero-length vector {v.tolist()}')
    return v / n


@dataclass(frozen=True)
class CameraPose:
    """A pinhole camera looking at the table.

    Attributes:
        eye_xyz_m: camera centre in the world frame, metres.
        target_xyz_m: point the optical axis passes through, metres.
        up_xyz: world direction that appears up in the image (need not be orthogonal).
        fov_y_deg: vertical field of view in degrees, in (0, 180).
        width_px, height_px: image size (default 640 x 480).
        near_m, far_m: clipping planes of the render.
    """

    eye_xyz_m: tuple[float, float, float]
    target_xyz_m: tuple[float, float, float]
    up_xyz: tuple[float, float, float] = (0.0, 0.0, 1.0)
    fov_y_deg: float = 55.0
    width_px: int = 640
    height_px: int = 480
    near_m: float = 0.02
    far_m: float = 6.0

    def __post_init__(self):
        if not 0.0 < self.fov_y_deg < 180.0:
            raise ValueError(f'fov_y_deg must be in (0, 180), got {self.fov_y_deg}')
        if self.width_px < 8 or self.height_px < 8:
            raise ValueError(f'image size {self.width_px}x{self.height_px} too small (>= 8 px)')
        if not 0.0 < self.near_m < self.far_m:
            raise ValueError(f'need 0 < near_m < far_m, got {self.near_m}, {self.far_m}')
        axis = np.subtract(self.target_xyz_m, self.eye_xyz_m)
        if np.linalg.norm(np.cross(_unit(axis), _unit(self.up_xyz))) < 1e-6:
            raise ValueError('up_xyz is parallel to the viewing direction; pick another up')

    @property
    def K(self) -> np.ndarray:  # noqa: N802 - the standard symbol
        """(3, 3) float64 intrinsics, OpenCV convention (see module docstring)."""
        f = 0.5 * self.height_px / math.tan(math.radians(self.fov_y_deg) / 2.0)
        cx, cy = self.width_px / 2.0, self.height_px / 2.0 - 1.0  # measured, module docstring
        return np.array([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])

    @property
    def T_world_camera(self) -> np.ndarray:  # noqa: N802 - the standard symbol
        """(4, 4) float64 pose of the optical frame (x right, y down, z forward) in the world."""
        z = _unit(np.subtract(self.target_xyz_m, self.eye_xyz_m))
        x = _unit(np.cross(z, self.up_xyz))
        y = np.cross(z, x)
        T = np.eye(4)
        T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, y, z, self.eye_xyz_m
        return T

    def project(self, points_xyz_m) -> np.ndarray:
        """Project world points (N, 3) metres to pixels (N, 2) ``(u, v)``, OpenCV convention.

        Points behind the camera get NaN.
        """
        pts = np.atleast_2d(np.asarray(points_xyz_m, dtype=np.float64))
        T_cw = np.linalg.inv(self.T_world_camera)
        cam = pts @ T_cw[:3, :3].T + T_cw[:3, 3]
        uvw = cam @ self.K.T
        with np.errstate(divide='ignore', invalid='ignore'):
            uv = uvw[:, :2] / uvw[:, 2:3]
        uv[cam[:, 2] <= 0] = np.nan
        return uv

    def view_matrix(self) -> list[float]:
        """pybullet view matrix (16 floats, column-major), from ``computeViewMatrix``."""
        import pybullet as p

        return list(p.computeViewMatrix(self.eye_xyz_m, self.target_xyz_m, self.up_xyz))

    def projection_matrix(self) -> list[float]:
        """pybullet projection matrix (16 floats) from ``computeProjectionMatrixFOV``."""
        import pybullet as p

        aspect = self.width_px / self.height_px
        return list(p.computeProjectionMatrixFOV(self.fov_y_deg, aspect, self.near_m, self.far_m))

    def lerp(self, other: CameraPose, t: float) -> CameraPose:
        """Linear interpolation towards ``other`` (t = 0 -> self, 1 -> other) of eye, target,
        up and field of view; image size and clipping come from ``self``. For smooth camera
        paths (e.g. a 10 Hz stream over one scene)."""

        def mix(a, b):
            return tuple(float(x) for x in (1.0 - t) * np.asarray(a) + t * np.asarray(b))

        return CameraPose(
            mix(self.eye_xyz_m, other.eye_xyz_m),
            mix(self.target_xyz_m, other.target_xyz_m),
            mix(self.up_xyz, other.up_xyz),
            float((1.0 - t) * self.fov_y_deg + t * other.fov_y_deg),
            self.width_px,
            self.height_px,
            self.near_m,
            self.far_m,
        )

    def to_dict(self) -> dict:
        """JSON-ready dict of the fields plus ``K`` (3x3) and ``T_world_camera`` (4x4)."""
        d = asdict(self)
        d['K'] = np.round(self.K, 6).tolist()
        d['T_world_camera'] = np.round(self.T_world_camera, 6).tolist()
        return d


def orbit_pose(
    look_at_xyz_m,
    distance_m: float,
    azimuth_deg: float,
    elevation_deg: float,
    *,
    roll_deg: float = 0.0,
    fov_y_deg: float = 55.0,
    width_px: int = 640,
    height_px: int = 480,
) -> CameraPose:
    """A camera on a sphere around ``look_at_xyz_m`` (metres) looking at it.

    Azimuth is measured in the world xy plane from +x towards +y; elevation above the table
    plane (90 = straight down, excluded); roll turns the image about the optical axis.
    """
    if not 0.0 < elevation_deg < 89.5:
        raise ValueError(f'elevation_deg must be in (0, 89.5), got {elevation_deg}')
    if distance_m <= 0:
        raise ValueError(f'distance_m must be > 0, got {distance_m}')
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    c = np.asarray(look_at_xyz_m, dtype=np.float64)
    eye = c + distance_m * np.array(
        [math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)]
    )
    z = _unit(c - eye)
    up0 = _unit(np.cross(np.cross(z, [0.0, 0.0, 1.0]), z))  # world up made orthogonal to z
    r = math.radians(roll_deg)
    up = math.cos(r) * up0 + math.sin(r) * np.cross(z, up0)
    return CameraPose(
        tuple(float(v) for v in eye),
        tuple(float(v) for v in c),
        tuple(float(v) for v in up),
        float(fov_y_deg),
        width_px,
        height_px,
    )


REFERENCE_HFOV_DEG = 69.4
"""Horizontal field of view of the colour camera that ``framing_distance_m`` refers to (an
Intel RealSense D435 at 16:9)."""
RESOLUTIONS: tuple[tuple[int, int, float], ...] = (
    (640, 480, 0.40),  # VGA 4:3: PrimeSense / Xtion / Kinect v1 heads, RealSense 4:3 modes
    (848, 480, 0.20),  # RealSense D4xx native 16:9
    (960, 540, 0.12),  # qHD 16:9 (Kinect v2 / ZED streams scaled by half)
    (1280, 720, 0.08),  # HD 720p
    (640, 360, 0.15),  # nHD 16:9 (compressed or scaled robot streams)
    (424, 240, 0.05),  # RealSense low-bandwidth mode
)
"""Image sizes (width, height, probability) a dataset view is rendered at; the model resizes
to its own input. Mean pixel count: about 1.24x 640x480."""


@dataclass(frozen=True)
class CameraRanges:
    """Ranges of the sampled robot-like viewpoints (uniform in each range).

    A camera on a robot head, a wrist or a stand looking down at a table, in metres and
    degrees: the horizontal field of view is drawn from ``hfov_deg`` (55 degrees: PrimeSense /
    narrow webcams, 69: RealSense D435, 90: Azure Kinect wide colour); the distance to the
    look-at point is the ``framing_distance_m`` of a 69.4 degree camera scaled so that the
    table region keeps about the same share of the image (``draw_orbit``), clipped to
    ``distance_m``; elevation above the table plane (pitch) from ``elevation_deg``, raised
    where needed so that the camera is at least ``min_height_m`` above the table top; any
    azimuth; roll about the optical axis; the look-at point within ``look_at_jitter_m`` of the
    objects' centre (objects are not always centred). The vertical field of view follows from
    the horizontal one and the aspect ratio of the drawn resolution (``resolutions``).
    """

    distance_m: tuple[float, float] = (0.35, 1.5)
    framing_distance_m: tuple[float, float] = (0.5, 1.15)
    elevation_deg: tuple[float, float] = (25.0, 80.0)
    min_height_m: float = 0.22
    azimuth_deg: tuple[float, float] = (0.0, 360.0)
    hfov_deg: tuple[float, float] = (55.0, 90.0)
    roll_deg: tuple[float, float] = (-5.0, 5.0)
    look_at_jitter_m: float = 0.06
    resolutions: tuple[tuple[int, int, float], ...] = RESOLUTIONS

    def draw_resolution(self, rng: np.random.Generator) -> tuple[int, int]:
        """(width_px, height_px) drawn with the probabilities of ``resolutions``."""
        p = np.array([w for _, _, w in self.resolutions], dtype=np.float64)
        w, h, _ = self.resolutions[int(rng.choice(len(p), p=p / p.sum()))]
        return int(w), int(h)


def vertical_fov_deg(hfov_deg: float, width_px: int, height_px: int) -> float:
    """Vertical field of view (degrees) of square-pixel images with horizontal ``hfov_deg``."""
    t = math.tan(math.radians(hfov_deg) / 2.0) * height_px / width_px
    return math.degrees(2.0 * math.atan(t))


def draw_orbit(
    rng: np.random.Generator,
    look_at_xyz_m,
    ranges: CameraRanges | None = None,
    width_px: int = 640,
    height_px: int = 480,
) -> dict:
    """Draw a viewpoint (``CameraRanges``); returns the keyword arguments of ``orbit_pose``
    (``look_at_xyz_m`` (3,) m, ``distance_m``, ``azimuth_deg``, ``elevation_deg``,
    ``roll_deg``, ``fov_y_deg``, ``width_px``, ``height_px``). Deterministic for ``rng``."""
    r = ranges or CameraRanges()
    c = np.asarray(look_at_xyz_m, dtype=np.float64).copy()
    c[:2] += rng.uniform(-r.look_at_jitter_m, r.look_at_jitter_m, size=2)
    hfov = float(rng.uniform(*r.hfov_deg))
    scale = math.tan(math.radians(REFERENCE_HFOV_DEG) / 2.0) / math.tan(math.radians(hfov) / 2.0)
    dist = float(np.clip(rng.uniform(*r.framing_distance_m) * scale, *r.distance_m))
    lo, hi = r.elevation_deg
    lo = max(lo, math.degrees(math.asin(min(1.0, r.min_height_m / dist))))
    elevation = float(rng.uniform(min(lo, hi), hi))
    return dict(
        look_at_xyz_m=c,
        distance_m=dist,
        azimuth_deg=float(rng.uniform(*r.azimuth_deg)),
        elevation_deg=elevation,
        roll_deg=float(rng.uniform(*r.roll_deg)),
        fov_y_deg=vertical_fov_deg(hfov, width_px, height_px),
        width_px=width_px,
        height_px=height_px,
    )


def sample_camera_pose(
    rng: np.random.Generator,
    look_at_xyz_m,
    ranges: CameraRanges | None = None,
    width_px: int = 640,
    height_px: int = 480,
) -> CameraPose:
    """Draw a viewpoint looking at ``look_at_xyz_m`` (3,) metres (``draw_orbit``);
    deterministic for ``rng``."""
    kw = draw_orbit(rng, look_at_xyz_m, ranges, width_px, height_px)
    c = kw.pop('look_at_xyz_m')
    d = kw.pop('distance_m')
    az = kw.pop('azimuth_deg')
    el = kw.pop('elevation_deg')
    return orbit_pose(c, d, az, el, **kw)


@dataclass(frozen=True)
class Lighting:
    """Parameters of pybullet's TinyRenderer light (``getCameraImage`` keyword arguments).

    Attributes:
        direction_xyz: direction towards the light (world frame).
        colour_rgb: light colour, each channel in [0, 1].
        ambient, diffuse, specular: Phong coefficients (``lightAmbientCoeff`` ...).
        shadow: render shadows (about 1.6x the render time).
    """

    direction_xyz: tuple[float, float, float] = (0.3, 0.4, 1.0)
    colour_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.6
    diffuse: float = 0.45
    specular: float = 0.1
    shadow: bool = True

    def render_kwargs(self) -> dict:
        """Keyword arguments for ``getCameraImage``."""
        return dict(
            lightDirection=list(self.direction_xyz),
            lightColor=list(self.colour_rgb),
            lightAmbientCoeff=self.ambient,
            lightDiffuseCoeff=self.diffuse,
            lightSpecularCoeff=self.specular,
            shadow=int(self.shadow),
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LightingRanges:
    """Ranges of the sampled light (uniform in each range).

    ``elevation_deg`` / any azimuth: direction towards the light (low sun through a window to
    a ceiling lamp); ``intensity``: ambient + diffuse coefficient (dim to bright room, within
    what a camera's auto exposure brings back to a usable image); ``ambient_share``: ambient
    part of it (hard directional to diffuse light); ``colour_temperature_k``: warm tungsten
    (2700 K) to overcast daylight (7500 K), of which ``white_balance_residual`` survives the
    camera's auto white balance; ``specular``; ``p_shadow``: share of lights with shadows.
    """

    elevation_deg: tuple[float, float] = (20.0, 88.0)
    intensity: tuple[float, float] = (0.6, 1.4)
    ambient_share: tuple[float, float] = (0.35, 0.7)
    colour_temperature_k: tuple[float, float] = (2700.0, 7500.0)
    white_balance_residual: float = 0.4
    specular: tuple[float, float] = (0.0, 0.35)
    p_shadow: float = 0.5


def black_body_rgb(temperature_k: float) -> tuple[float, float, float]:
    """RGB in [0, 1] (max channel 1) of a black body at ``temperature_k`` (1000-40000 K).

    Tanner Helland's fit to the CIE 1964 10-degree colour matching functions, as used by
    image editors for colour temperature; documented in docs/tabletop.md.
    """
    t = float(np.clip(temperature_k, 1000.0, 40000.0)) / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = (
        99.4708025861 * math.log(t) - 161.1195681661
        if t <= 66
        else 288.1221695283 * (t - 60) ** -0.0755148492
    )
    if t >= 66:
        b = 255.0
    elif t <= 19:
        b = 0.0
    else:
        b = 138.5177312231 * math.log(t - 10) - 305.0447927307
    rgb = np.clip([r, g, b], 0.0, 255.0)
    return tuple(float(v) for v in rgb / rgb.max())


def sample_lighting(rng: np.random.Generator, ranges: LightingRanges | None = None) -> Lighting:
    """Draw a light within ``ranges`` (default ``LightingRanges()``); deterministic for ``rng``.

    The light colour is the black-body colour of the drawn temperature, moved towards white by
    ``1 - white_balance_residual``; ambient = intensity x share, diffuse = intensity x (1 -
    share).
    """
    r = ranges or LightingRanges()
    az = rng.uniform(0.0, 2 * math.pi)
    el = math.radians(rng.uniform(*r.elevation_deg))
    direction = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    body = np.asarray(black_body_rgb(rng.uniform(*r.colour_temperature_k)))
    colour = 1.0 - r.white_balance_residual * (1.0 - body)
    intensity = rng.uniform(*r.intensity)
    share = rng.uniform(*r.ambient_share)
    return Lighting(
        tuple(float(v) for v in direction),
        tuple(float(v) for v in colour),
        float(intensity * share),
        float(intensity * (1.0 - share)),
        float(rng.uniform(*r.specular)),
        bool(rng.random() < r.p_shadow),
    )
