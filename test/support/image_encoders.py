"""Test-side encoders: one RGB picture -> the raw fields of a sensor_msgs/Image in any encoding.

Independent of poa_gres_ros.conversions.image_msgs (written from the image_encodings
definitions, with OpenCV only for RGB -> YUV 4:2:2), so the converter is checked against a
second implementation, not against itself.
"""

from __future__ import annotations

import cv2
import numpy as np

BAYER_OFFSETS = {  # pattern -> (row, col) of R and of B in the 2x2 cell; G elsewhere
    'rggb': ((0, 0), (1, 1)),
    'bggr': ((1, 1), (0, 0)),
    'gbrg': ((1, 0), (0, 1)),
    'grbg': ((0, 1), (1, 0)),
}


def tile_picture(height: int = 48, width: int = 64, block: int = 8, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 RGB of random flat-coloured ``block`` x ``block`` tiles (so chroma
    subsampling and Bayer interpolation are exact inside each tile)."""
    rng = np.random.default_rng(seed)
    tiles = rng.integers(0, 256, size=(-(-height // block), -(-width // block), 3), dtype=np.uint8)
    return np.repeat(np.repeat(tiles, block, 0), block, 1)[:height, :width].copy()


def grey_picture(height: int = 48, width: int = 64, seed: int = 1) -> np.ndarray:
    """(H, W, 3) uint8 RGB with R == G == B (what a mono camera can show exactly)."""
    g = tile_picture(height, width, seed=seed)[..., 0]
    return np.repeat(g[..., None], 3, axis=2)


def _bayer(rgb: np.ndarray, pattern: str) -> np.ndarray:
    (ry, rx), (by, bx) = BAYER_OFFSETS[pattern]
    out = rgb[..., 1].copy()
    out[ry::2, rx::2] = rgb[ry::2, rx::2, 0]
    out[by::2, bx::2] = rgb[by::2, bx::2, 2]
    return out


def pixels(rgb: np.ndarray, encoding: str) -> np.ndarray:
    """The picture as (H, W, C) samples of ``encoding`` (uint8 or uint16, native order)."""
    # 8 -> 16 bit so that v >> 8 gives v back; a low byte unlike the high byte, so that a
    # reader with the wrong byte order gets different values.
    low = np.random.default_rng(7).integers(0, 256, rgb.shape, dtype=np.uint16)
    wide = rgb.astype(np.uint16) * 256 + np.where(low == rgb, (low + 1) % 256, low)
    table = {
        'rgb8': lambda: rgb,
        'bgr8': lambda: rgb[..., ::-1],
        '8UC3': lambda: rgb[..., ::-1],
        'rgba8': lambda: np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)]),
        'bgra8': lambda: np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 7, np.uint8)]),
        '8UC4': lambda: np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 7, np.uint8)]),
        'rgb16': lambda: wide,
        'bgr16': lambda: wide[..., ::-1],
        'rgba16': lambda: np.dstack([wide, np.full(rgb.shape[:2], 9, np.uint16)]),
        'bgra16': lambda: np.dstack([wide[..., ::-1], np.full(rgb.shape[:2], 9, np.uint16)]),
        'mono8': lambda: rgb[..., :1],
        '8UC1': lambda: rgb[..., :1],
        'mono16': lambda: wide[..., :1],
        '16UC1': lambda: wide[..., :1],
        'yuv422': lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY),
        'uyvy': lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_UYVY),
        'yuv422_yuy2': lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2),
        'yuyv': lambda: cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_YUY2),
    }
    for pattern in BAYER_OFFSETS:
        table[f'bayer_{pattern}8'] = lambda p=pattern: _bayer(rgb, p)[..., None]
        table[f'bayer_{pattern}16'] = lambda p=pattern: _bayer(wide, p)[..., None]
    return np.ascontiguousarray(table[encoding]())


def encode(rgb: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False) -> dict:
    """Raw sensor_msgs/Image fields for ``rgb`` in ``encoding`` with ``pad`` bytes of row
    padding (filled with 0xAB so a reader that ignores ``step`` gets visibly wrong pixels)."""
    px = pixels(rgb, encoding)
    if px.dtype == np.uint16:
        px = px.astype('>u2' if big_endian else '<u2')
    h, w = rgb.shape[:2]
    row = px.reshape(h, -1).view(np.uint8)
    step = row.shape[1] + pad
    buf = np.full((h, step), 0xAB, np.uint8)
    buf[:, : row.shape[1]] = row
    return {
        'encoding': encoding,
        'height': h,
        'width': w,
        'step': step,
        'is_bigendian': bool(big_endian),
        'data': buf.tobytes(),
    }


def to_msg(fields: dict, stamp_ns: int = 0, frame_id: str = 'camera'):
    """A sensor_msgs/Image from :func:`encode` output (imports ROS: ROS tests only)."""
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(int(stamp_ns), 1_000_000_000)
    msg.header.frame_id = frame_id
    msg.encoding = fields['encoding']
    msg.height, msg.width, msg.step = fields['height'], fields['width'], fields['step']
    msg.is_bigendian = int(fields['is_bigendian'])
    msg.data = fields['data']
    return msg
