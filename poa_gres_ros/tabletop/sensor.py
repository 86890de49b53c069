"""What a real robot camera does to the rendered image: exposure, focus, noise, compression.

The renderer gives clean, sharp, noise-free pixels. A robot camera adds, per frame:
an exposure / gain error and a tone curve (``exposure``, ``gamma``), defocus or slight motion
blur (Gaussian, ``blur_sigma_px``, in ``p_blur`` of the views), sensor noise (Gaussian,
``noise_sigma``, in 8-bit digital numbers) and, on robots that stream
``image_transport`` "compressed" images, JPEG compression (``jpeg_quality``, in ``p_jpeg`` of
the views). ``SensorEffects.apply`` does this in that order; masks and ground truth are not
affected (objects do not move).

Ranges (``SensorRanges``) stay mild enough that the colour words remain true: exposure
0.85-1.15, gamma 0.9-1.1, noise 0-4 DN, blur 0.4-1.2 px in 30 % of the views, JPEG quality
55-95 in 30 % of the views. The effects are drawn from their own seeded stream, so a view's
image is a pure function of its seed (``dataset``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SensorRanges:
    """Ranges of the sampled camera effects (module docstring; uniform in each range)."""

    exposure: tuple[float, float] = (0.85, 1.15)
    gamma: tuple[float, float] = (0.9, 1.1)
    noise_sigma: tuple[float, float] = (0.0, 4.0)
    p_blur: float = 0.3
    blur_sigma_px: tuple[float, float] = (0.4, 1.2)
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (55, 95)


@dataclass(frozen=True)
class SensorEffects:
    """One frame's camera effects.

    Attributes:
        exposure: gain on [0, 1] intensities; gamma: exponent of the tone curve (1 = none).
        blur_sigma_px: Gaussian blur sigma in pixels (0 = sharp).
        noise_sigma: Gaussian noise sigma in 8-bit digital numbers (0 = none).
        jpeg_quality: JPEG quality 1-100 of a compress/decompress cycle (0 = none).
        noise_seed: seed of the noise pattern.
    """

    exposure: float = 1.0
    gamma: float = 1.0
    blur_sigma_px: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int = 0
    noise_seed: int = 0

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The (H, W, 3) uint8 RGB image as the camera would deliver it (a new array).

        Raises:
            ValueError: ``rgb`` is not (H, W, 3) uint8.
        """
        import cv2

        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'need (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}')
        x = rgb.astype(np.float32) / 255.0
        if self.exposure != 1.0 or self.gamma != 1.0:
            x = np.clip(x * self.exposure, 0.0, 1.0) ** self.gamma
        if self.blur_sigma_px > 0:
            x = cv2.GaussianBlur(x, (0, 0), self.blur_sigma_px)
        x = x * 255.0
        if self.noise_sigma > 0:
            noise = np.random.default_rng(self.noise_seed).standard_normal(x.shape, np.float32)
            x = x + self.noise_sigma * noise
        out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
        if self.jpeg_quality > 0:
            ok, buf = cv2.imencode(
                '.jpg', out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(self.jpeg_quality)]
            )
            if not ok:
                raise RuntimeError('JPEG encoding failed')
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def sample_sensor(rng: np.random.Generator, ranges: SensorRanges | None = None) -> SensorEffects:
    """Draw one frame's effects within ``ranges``; deterministic for ``rng``."""
    r = ranges or SensorRanges()
    exposure = float(rng.uniform(*r.exposure))
    gamma = float(rng.uniform(*r.gamma))
    noise = float(rng.uniform(*r.noise_sigma))
    blur = float(rng.uniform(*r.blur_sigma_px)) if rng.random() < r.p_blur else 0.0
    jpeg = int(rng.integers(r.jpeg_quality[0], r.jpeg_quality[1] + 1))
    jpeg = jpeg if rng.random() < r.p_jpeg else 0
    return SensorEffects(
        round(exposure, 4),
        round(gamma, 4),
        round(blur, 4),
        round(noise, 4),
        jpeg,
        int(rng.integers(2**31)),
    )
