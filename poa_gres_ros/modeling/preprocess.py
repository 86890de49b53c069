"""Image preprocessing shared by training, the predictor and the export wrappers.

docs/method.md#input-and-preprocessing: resize to the network input without keeping the aspect
ratio (ReLA resizes to 480 x 480), then ``(rgb - mean) / std`` in the 0-255 scale. The numpy
path uses ``cv2.resize(INTER_LINEAR)``; the torch path uses ``F.interpolate(bilinear,
align_corners=False)``, which samples the same pixel centres (differences are rounding-level).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from poa_gres_ros.core.model_config import InputConfig, POAConfig


def _input_cfg(cfg: POAConfig | InputConfig) -> InputConfig:
    return cfg.input if isinstance(cfg, POAConfig) else cfg


def check_image(image_rgb) -> tuple[int, int]:
    """Validate an RGB image and return its (H, W).

    Raises:
        TypeError: not a numpy array or not uint8. ValueError: not (H, W, 3) with H, W >= 1.
    """
    if not isinstance(image_rgb, np.ndarray):
        raise TypeError(
            f'image must be a numpy array (H, W, 3) uint8 RGB, got {type(image_rgb).__name__}'
        )
    if image_rgb.dtype != np.uint8:
        raise TypeError(f'image must be uint8 (0-255 RGB), got {image_rgb.dtype}')
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or min(image_rgb.shape[:2]) < 1:
        raise ValueError(f'image must have shape (H, W, 3) RGB, got {image_rgb.shape}')
    return int(image_rgb.shape[0]), int(image_rgb.shape[1])


def preprocess_image(image_rgb: np.ndarray, cfg: POAConfig | InputConfig) -> torch.Tensor:
    """Resize and normalise one image for the network.

    Args:
        image_rgb: (H, W, 3) uint8 RGB, any size.
        cfg: model config (uses ``input.size_hw``, ``pixel_mean``, ``pixel_std``).
    Returns:
        (3, h, w) float32 tensor, (h, w) = ``cfg.input.size_hw``.
    Raises:
        TypeError / ValueError: see ``check_image``.
    """
    import cv2

    check_image(image_rgb)
    icfg = _input_cfg(cfg)
    h, w = icfg.size_hw
    img = image_rgb
    if img.shape[:2] != (h, w):
        img = cv2.resize(np.ascontiguousarray(img), (w, h), interpolation=cv2.INTER_LINEAR)
    mean = np.asarray(icfg.pixel_mean, np.float32)
    inv_std = 1.0 / np.asarray(icfg.pixel_std, np.float32)
    x = (img.astype(np.float32) - mean) * inv_std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def preprocess_batch(images: torch.Tensor, cfg: POAConfig | InputConfig) -> torch.Tensor:
    """Torch twin of ``preprocess_image`` for batches (stays on the images' device).

    Args:
        images: (B, 3, H, W) RGB, uint8 or float in the 0-255 scale.
    Returns:
        (B, 3, h, w) float32.
    Raises:
        TypeError: not a tensor. ValueError: wrong shape.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f'images must be a torch.Tensor (B, 3, H, W), got {type(images).__name__}')
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f'images must have shape (B, 3, H, W) RGB, got {tuple(images.shape)}')
    icfg = _input_cfg(cfg)
    x = images.float()
    if tuple(x.shape[-2:]) != tuple(icfg.size_hw):
        x = F.interpolate(x, size=tuple(icfg.size_hw), mode='bilinear', align_corners=False)
    mean = torch.tensor(icfg.pixel_mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(icfg.pixel_std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
