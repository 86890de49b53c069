"""sensor_msgs/Image and CompressedImage to (H, W, 3) uint8 RGB, without cv_bridge.

ROS 2's cv_bridge is not installable from pip, and the PyPI ``cv-bridge`` is a broken ROS 1
repackaging, so the node converts images itself. What goes wrong with camera images in the
field, and what this module does about it:

- row padding: V4L2 cameras pad rows to 4/16/64-byte multiples, and a reader that takes
  ``width * channels`` per row shears the picture, so rows are read with ``step``;
- a malformed frame (sizes that do not add up, an unknown encoding) raises
  :class:`ImageConversionError` (a ValueError) naming the encoding and the bad field; the node
  catches it per frame and keeps running instead of dying on one bad message;
- 16-bit images (mono16, 16UC1 depth, 16-bit Bayer and colour) are scaled to 8 bits *before*
  any colour conversion (converting first gives garbage);
- every yuv422 name is mapped explicitly (ROS ``yuv422`` is UYVY, ``yuv422_yuy2`` is YUYV;
  Jazzy's ``uyvy`` / ``yuyv`` aliases too): drivers differ in which label they put on which
  byte order, and a wrong mapping swaps the colours.

Encodings follow ``sensor_msgs/image_encodings.hpp``. ``8UC3`` / ``8UC4`` are read in
OpenCV's channel order (BGR / BGRA), which is what ``cv_bridge.cv2_to_imgmsg`` produces for a
3- or 4-channel OpenCV image; ``8UC1`` is mono8 and ``16UC1`` (depth in mm) is read as mono16.
16 -> 8 bit scaling is ``v >> 8`` (the same 1/256 factor cv_bridge uses for 16 -> 8 bit).
Bayer patterns map to OpenCV's codes as cv_bridge does (ROS ``rggb`` = OpenCV ``BayerBG``:
OpenCV names the pattern by the second row's second and third pixels).

Pure functions take the message fields, so they are testable without ROS; the ``*_msg``
wrappers only read fields off a message.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


class ImageConversionError(ValueError):
    """A frame that cannot be converted: unsupported encoding, bad sizes or undecodable data."""


@dataclass(frozen=True)
class _Layout:
    channels: int  # interleaved channels per pixel in the buffer (2 for yuv422: 4 bytes / 2 px)
    bytes_per_channel: int  # 1 or 2
    kind: str  # 'rgb', 'bgr', 'rgba', 'bgra', 'mono', 'yuv', 'bayer'
    cv_code: int | None = None  # cv2.cvtColor code to RGB (yuv, bayer)


_BAYER_CODES = {  # ROS pattern -> OpenCV code (cv_bridge's mapping)
    'rggb': cv2.COLOR_BayerBG2RGB,
    'bggr': cv2.COLOR_BayerRG2RGB,
    'gbrg': cv2.COLOR_BayerGR2RGB,
    'grbg': cv2.COLOR_BayerGB2RGB,
}

ENCODINGS: dict[str, _Layout] = {
    'rgb8': _Layout(3, 1, 'rgb'),
    'bgr8': _Layout(3, 1, 'bgr'),
    'rgba8': _Layout(4, 1, 'rgba'),
    'bgra8': _Layout(4, 1, 'bgra'),
    'rgb16': _Layout(3, 2, 'rgb'),
    'bgr16': _Layout(3, 2, 'bgr'),
    'rgba16': _Layout(4, 2, 'rgba'),
    'bgra16': _Layout(4, 2, 'bgra'),
    'mono8': _Layout(1, 1, 'mono'),
    'mono16': _Layout(1, 2, 'mono'),
    '8UC1': _Layout(1, 1, 'mono'),
    '8UC3': _Layout(3, 1, 'bgr'),
    '8UC4': _Layout(4, 1, 'bgra'),
    '16UC1': _Layout(1, 2, 'mono'),
    'yuv422': _Layout(2, 1, 'yuv', cv2.COLOR_YUV2RGB_UYVY),
    'uyvy': _Layout(2, 1, 'yuv', cv2.COLOR_YUV2RGB_UYVY),
    'yuv422_yuy2': _Layout(2, 1, 'yuv', cv2.COLOR_YUV2RGB_YUY2),
    'yuyv': _Layout(2, 1, 'yuv', cv2.COLOR_YUV2RGB_YUY2),
}
for _pattern, _code in _BAYER_CODES.items():
    ENCODINGS[f'bayer_{_pattern}8'] = _Layout(1, 1, 'bayer', _code)
    ENCODINGS[f'bayer_{_pattern}16'] = _Layout(1, 2, 'bayer', _code)

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(sorted(ENCODINGS))


def _nbytes(data) -> int:
    return memoryview(data).nbytes


def _to8(arr: np.ndarray) -> np.ndarray:
    """uint16 -> uint8 by ``v >> 8`` (1/256, as cv_bridge); uint8 unchanged."""
    if arr.dtype == np.uint8:
        return arr
    return (arr >> 8).astype(np.uint8)


def image_to_rgb(
    encoding: str, height: int, width: int, step: int, is_bigendian: bool, data
) -> np.ndarray:
    """Convert raw sensor_msgs/Image fields to an RGB image.

    Args:
        encoding: one of :data:`SUPPORTED_ENCODINGS` (sensor_msgs image_encodings names).
        height, width: image size in pixels, both >= 1.
        step: bytes per row including padding, >= width * bytes per pixel.
        is_bigendian: byte order of 16-bit samples (ignored for 8-bit encodings).
        data: buffer of exactly ``height * step`` bytes (bytes, array.array('B'), numpy, ...).

    Returns:
        (height, width, 3) uint8 RGB in [0, 255]. For rgb8 this is a read-only zero-copy view
        on ``data`` (rows may be strided when ``step`` is padded); other encodings return a
        new C-contiguous array. Copy before writing.

    Raises:
        ImageConversionError (a ValueError): unsupported encoding, zero size, ``step`` too
            small, ``len(data) != height * step``, odd width for yuv422, odd size for Bayer.
    """
    layout = ENCODINGS.get(encoding)
    if layout is None:
        raise ImageConversionError(
            f'unsupported image encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}'
        )
    if height <= 0 or width <= 0:
        raise ImageConversionError(f'zero-size {encoding} image ({width}x{height}); dropped')
    row_bytes = width * layout.channels * layout.bytes_per_channel
    if layout.kind == 'yuv':
        row_bytes = width * 2
        if width % 2:
            raise ImageConversionError(f'{encoding} image needs an even width, got {width}')
    if layout.kind == 'bayer' and (width < 2 or height < 2):
        raise ImageConversionError(f'{encoding} image must be at least 2x2, got {width}x{height}')
    if step < row_bytes:
        raise ImageConversionError(
            f'{encoding} image {width}x{height}: step {step} < {row_bytes} bytes per row'
        )
    nbytes = _nbytes(data)
    if nbytes != height * step:
        raise ImageConversionError(
            f'{encoding} image {width}x{height}: len(data) = {nbytes} != height * step = '
            f'{height} * {step} = {height * step}'
        )
    buf = np.frombuffer(data, dtype=np.uint8).reshape(height, step)[:, :row_bytes]
    if layout.bytes_per_channel == 2:
        dtype = np.dtype('>u2' if is_bigendian else '<u2')
        pix = buf.view(dtype).astype(np.uint16, copy=False)  # rows may start unaligned: fine
    else:
        pix = buf
    if layout.kind == 'yuv':
        return cv2.cvtColor(np.ascontiguousarray(pix.reshape(height, width, 2)), layout.cv_code)
    if layout.kind == 'bayer':
        rgb = cv2.cvtColor(np.ascontiguousarray(pix.reshape(height, width)), layout.cv_code)
        return _to8(rgb)
    pix = _to8(pix.reshape(height, width, layout.channels))
    if layout.kind == 'rgb':
        if layout.bytes_per_channel == 1:  # a view on the message buffer: never write through
            pix = pix.view()
            pix.flags.writeable = False
        return pix
    if layout.kind == 'mono':
        return cv2.cvtColor(np.ascontiguousarray(pix[..., 0]), cv2.COLOR_GRAY2RGB)
    code = {
        'bgr': cv2.COLOR_BGR2RGB,
        'rgba': cv2.COLOR_RGBA2RGB,
        'bgra': cv2.COLOR_BGRA2RGB,
    }[layout.kind]
    return cv2.cvtColor(np.ascontiguousarray(pix), code)


_COMPRESSED_DEPTH_HEADER_BYTES = 12  # compressed_depth_image_transport ConfigHeader


def compressed_to_rgb(fmt: str, data) -> np.ndarray:
    """Decode sensor_msgs/CompressedImage fields to RGB.

    Args:
        fmt: the message's ``format``: ``jpeg``, ``png``, or image_transport's
            ``"<enc>; jpeg compressed bgr8"``-style strings, or ``"16UC1; compressedDepth png"``
            (a 12-byte header, then a 16-bit PNG).
        data: the compressed bytes.

    Returns:
        (H, W, 3) uint8 RGB. Colour payloads are taken as BGR (what cv2.imencode and
        image_transport's compressed plugin store) unless ``fmt`` says ``compressed rgb8``;
        grey payloads are replicated to 3 channels; 16-bit payloads are scaled by ``>> 8``.

    Raises:
        ImageConversionError: empty or undecodable data.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    lower = fmt.lower()
    if 'compresseddepth' in lower:
        raw = raw[_COMPRESSED_DEPTH_HEADER_BYTES:]
    if raw.size == 0:
        raise ImageConversionError(f'empty CompressedImage (format {fmt!r}); dropped')
    img = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageConversionError(
            f'could not decode CompressedImage of format {fmt!r} ({raw.size} bytes)'
        )
    img = _to8(img)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[0], img.shape[1]), cv2.COLOR_GRAY2RGB)
    payload_is_rgb = 'compressed rgb' in lower
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_RGBA2RGB if payload_is_rgb else cv2.COLOR_BGRA2RGB)
    return img if payload_is_rgb else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def image_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB; see :func:`image_to_rgb`."""
    return image_to_rgb(
        msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian), msg.data
    )


def compressed_msg_to_rgb(msg) -> np.ndarray:
    """sensor_msgs/CompressedImage -> (H, W, 3) uint8 RGB; see :func:`compressed_to_rgb`."""
    return compressed_to_rgb(msg.format, msg.data)
