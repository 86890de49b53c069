"""Image conversion without cv_bridge: every encoding, padding, byte order, bad frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from poa_gres_ros.conversions.image_msgs import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
)

from support.image_encoders import BAYER_OFFSETS, encode, grey_picture, tile_picture

EXACT_COLOUR = ['rgb8', 'bgr8', '8UC3', 'rgba8', 'bgra8', '8UC4', 'rgb16', 'bgr16', 'rgba16',
                'bgra16']  # fmt: skip
MONO = ['mono8', '8UC1', 'mono16', '16UC1']
YUV = ['yuv422', 'uyvy', 'yuv422_yuy2', 'yuyv']
BAYER = [f'bayer_{p}{b}' for p in BAYER_OFFSETS for b in (8, 16)]


def _convert(fields):
    return image_to_rgb(**fields)


def test_every_supported_encoding_is_tested():
    assert sorted(EXACT_COLOUR + MONO + YUV + BAYER) == sorted(SUPPORTED_ENCODINGS)


@pytest.mark.parametrize('encoding', EXACT_COLOUR)
@pytest.mark.parametrize('pad', [0, 3, 64])
@pytest.mark.parametrize('big_endian', [False, True])
def test_colour_encodings_equal_rgb8(encoding, pad, big_endian):
    rgb = tile_picture()
    out = _convert(encode(rgb, encoding, pad=pad, big_endian=big_endian))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize('encoding', MONO)
@pytest.mark.parametrize('pad', [0, 1, 32])
@pytest.mark.parametrize('big_endian', [False, True])
def test_mono_encodings_equal_rgb8_of_the_grey_picture(encoding, pad, big_endian):
    grey = grey_picture()
    out = _convert(encode(grey, encoding, pad=pad, big_endian=big_endian))
    np.testing.assert_array_equal(out, _convert(encode(grey, 'rgb8')))


def test_big_endian_mono16_is_not_read_as_little_endian():
    grey = grey_picture()
    fields = encode(grey, 'mono16', big_endian=True)
    wrong = dict(fields, is_bigendian=False)
    assert not np.array_equal(_convert(wrong), grey)
    np.testing.assert_array_equal(_convert(fields), grey)


def test_mono16_scales_before_colour_conversion():
    """16-bit values end up as v >> 8 in all three channels."""
    values = np.array([[0, 255, 256, 4095, 65535, 32768]], np.uint16)
    fields = {
        'encoding': 'mono16',
        'height': 1,
        'width': 6,
        'step': 12,
        'is_bigendian': False,
        'data': values.astype('<u2').tobytes(),
    }
    out = _convert(fields)
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 15, 255, 128])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


@pytest.mark.parametrize('encoding', YUV)
@pytest.mark.parametrize('pad', [0, 6])
def test_yuv422_variants_match_rgb8_within_rounding(encoding, pad):
    rgb = tile_picture()
    out = _convert(encode(rgb, encoding, pad=pad))
    assert np.abs(out.astype(int) - rgb).max() <= 4  # YUV 8-bit rounding, tiles are 2px-aligned


def test_yuv422_byte_orders_are_not_interchangeable():
    """UYVY bytes labelled as YUYV give visibly different colours."""
    rgb = tile_picture()
    fields = encode(rgb, 'yuv422')  # UYVY bytes
    mislabelled = _convert(dict(fields, encoding='yuv422_yuy2'))
    assert np.abs(mislabelled.astype(int) - rgb).mean() > 20


@pytest.mark.parametrize('encoding', BAYER)
@pytest.mark.parametrize('pad', [0, 10])
@pytest.mark.parametrize('big_endian', [False, True])
def test_bayer_matches_rgb8_inside_flat_tiles(encoding, pad, big_endian):
    rgb = tile_picture(block=8)
    out = _convert(encode(rgb, encoding, pad=pad, big_endian=big_endian))
    inner = np.zeros(rgb.shape[:2], bool)  # tile interiors, 2 px from every tile edge
    for off in range(2, 6):
        inner[off::8] = True
    inner &= np.tile(np.isin(np.arange(rgb.shape[1]) % 8, range(2, 6)), (rgb.shape[0], 1))
    np.testing.assert_array_equal(out[inner], rgb[inner])


@pytest.mark.parametrize('pattern', list(BAYER_OFFSETS))
def test_bayer_pattern_mapping_on_a_flat_colour(pattern):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[...] = (200, 100, 30)
    out = _convert(encode(rgb, f'bayer_{pattern}8'))
    np.testing.assert_array_equal(out[2:6, 2:6], rgb[2:6, 2:6])


def test_rgb8_is_a_read_only_zero_copy_view():
    rgb = tile_picture()
    fields = encode(rgb, 'rgb8')
    buf = bytearray(fields['data'])
    out = image_to_rgb('rgb8', fields['height'], fields['width'], fields['step'], False, buf)
    assert np.shares_memory(out, np.frombuffer(buf, np.uint8))
    assert not out.flags.writeable
    padded = encode(rgb, 'rgb8', pad=16)
    out = image_to_rgb(**dict(padded, data=bytearray(padded['data'])))
    assert out.strides[0] == padded['step']
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize(
    ('change', 'needle'),
    [
        ({'encoding': '32FC1'}, "'32FC1'"),
        ({'encoding': 'jpeg'}, "'jpeg'"),
        ({'height': 0, 'data': b''}, 'zero-size'),
        ({'width': 0, 'step': 0, 'data': b''}, 'zero-size'),
        ({'step': 10}, 'step 10'),
        ({'data': bytes(100)}, 'len(data) = 100'),
    ],
)
def test_bad_frames_raise_a_clear_error(change, needle):
    fields = dict(encode(tile_picture(), 'rgb8'), **change)
    with pytest.raises(ImageConversionError, match=r'.*') as info:
        _convert(fields)
    assert needle in str(info.value)
    assert isinstance(info.value, ValueError)


def test_padding_is_not_sheared():
    """Row padding: a reader that ignored step would shift every row by the padding."""
    rgb = tile_picture(height=16, width=30)
    fields = encode(rgb, 'bgr8', pad=2)
    sheared = np.frombuffer(fields['data'][: 16 * 30 * 3], np.uint8).reshape(16, 30, 3)
    assert not np.array_equal(sheared[..., ::-1], rgb)
    np.testing.assert_array_equal(_convert(fields), rgb)


def test_odd_width_yuv_and_tiny_bayer_are_rejected():
    with pytest.raises(ImageConversionError, match='even width'):
        image_to_rgb('yuv422', 2, 3, 6, False, bytes(12))
    with pytest.raises(ImageConversionError, match='at least 2x2'):
        image_to_rgb('bayer_rggb8', 1, 4, 4, False, bytes(4))


@pytest.mark.parametrize('ext', ['.png', '.jpg'])
def test_compressed_colour(ext):
    rgb = tile_picture(block=16)
    ok, buf = cv2.imencode(
        ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 98]
    )
    assert ok
    out = compressed_to_rgb(f'rgb8; {ext[1:]} compressed bgr8', buf.tobytes())
    err = np.abs(out.astype(int) - rgb).mean()
    swapped = np.abs(out.astype(int) - rgb[..., ::-1]).mean()
    assert err < 8 and swapped > 4 * err  # right channel order; JPEG (4:2:0) loss is small
    if ext == '.png':
        np.testing.assert_array_equal(out, rgb)


def test_compressed_rgb_payload_and_grey_and_depth():
    rgb = tile_picture()
    _, buf = cv2.imencode('.png', rgb)  # RGB bytes stored as-is
    np.testing.assert_array_equal(compressed_to_rgb('rgb8; png compressed rgb8', buf), rgb)
    grey = grey_picture()
    _, buf = cv2.imencode('.png', grey[..., 0])
    np.testing.assert_array_equal(compressed_to_rgb('png', buf), grey)
    _, buf = cv2.imencode('.png', grey[..., 0].astype(np.uint16) * 257)
    depth = bytes(12) + buf.tobytes()
    np.testing.assert_array_equal(compressed_to_rgb('16UC1; compressedDepth png', depth), grey)


def test_compressed_garbage_and_empty_raise():
    with pytest.raises(ImageConversionError, match="'jpeg'"):
        compressed_to_rgb('jpeg', b'not a jpeg at all')
    with pytest.raises(ImageConversionError, match='empty'):
        compressed_to_rgb('png', b'')


@pytest.mark.ros
def test_msg_wrappers_read_the_fields():
    from sensor_msgs.msg import CompressedImage

    from poa_gres_ros.conversions.image_msgs import compressed_msg_to_rgb, image_msg_to_rgb

    from support.image_encoders import to_msg

    rgb = tile_picture()
    msg = to_msg(encode(rgb, 'mono16', pad=4, big_endian=True))
    np.testing.assert_array_equal(image_msg_to_rgb(msg), rgb[..., :1].repeat(3, 2))
    cmsg = CompressedImage(format='png')
    cmsg.data = cv2.imencode('.png', cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    np.testing.assert_array_equal(compressed_msg_to_rgb(cmsg), rgb)
