"""One instance of every custom message with every field set to a non-default value.

Used by the two-process round-trip test: support/publish_samples.py publishes these, the
test process builds them again and compares what arrives. Floats are exactly representable
in float32 so equality is exact after serialisation.
"""

from __future__ import annotations

SAMPLE_TOPICS = {
    'GresPhrase': 'samples/gres_phrase',
    'GresInstance3D': 'samples/gres_instance_3d',
    'GresInstance': 'samples/gres_instance',
    'GresInstances': 'samples/gres_instances',
    'AudioData': 'samples/audio_data',
}

INSTRUCTION = 'the red mug and the duck ü on the left'  # non-ASCII on purpose


def _header(sec=1700000000, nanosec=123456789, frame='camera_color_optical_frame'):
    from std_msgs.msg import Header

    h = Header()
    h.stamp.sec, h.stamp.nanosec, h.frame_id = sec, nanosec, frame
    return h


def _mono8(width, height, header, seed):
    from sensor_msgs.msg import Image

    img = Image()
    img.header = header
    img.height, img.width, img.encoding, img.is_bigendian, img.step = (
        height,
        width,
        'mono8',
        1,
        width,
    )
    img.data = bytes((seed + 37 * i) % 256 for i in range(width * height))
    return img


def phrase(text='red mug', start=4, end=11):
    from poa_gres_ros.msg import GresPhrase

    return GresPhrase(text=text, char_start=start, char_end=end)


def geometry(idx=0):
    """A GresInstance3D with every field set (values exact in float32 / float64)."""
    from geometry_msgs.msg import Point, Quaternion, Vector3

    from poa_gres_ros.msg import GresInstance3D

    return GresInstance3D(
        valid=True,
        centroid=Point(x=0.125 + idx, y=-0.0625, z=0.75),
        box_center=Point(x=0.125 + idx, y=-0.05, z=0.8),
        box_size=Vector3(x=0.08, y=0.06, z=0.1),
        orientation=Quaternion(x=0.5, y=-0.5, z=0.5, w=0.5),
        orientation_valid=True,
        principal_extent=Vector3(x=0.1, y=0.05, z=0.02),
        num_points=1234 + idx,
        missing_depth_fraction=0.125,
    )


def instance(idx=3, header=None):
    from sensor_msgs.msg import RegionOfInterest

    from poa_gres_ros.msg import GresInstance

    header = header or _header()
    roi = RegionOfInterest(x_offset=17, y_offset=29, width=6, height=5, do_rectify=True)
    return GresInstance(
        id=idx,
        relevance=0.875,
        phrase=phrase(),
        phrase_index=2,
        bbox=roi,
        mask=_mono8(6, 5, header, seed=idx),
        area_px=23,
        centroid_x_px=19.5,
        centroid_y_px=31.25,
        geometry=geometry(idx),
    )


def instances():
    from builtin_interfaces.msg import Time

    from poa_gres_ros.msg import GresInstances

    h = _header()
    return GresInstances(
        header=h,
        instruction=INSTRUCTION,
        instruction_id=42,
        instruction_stamp=Time(sec=1700000001, nanosec=5),
        truncated=True,
        phrases=[phrase(), phrase('the duck ü', 16, 26)],
        no_target=True,
        no_target_probability=0.625,
        instances=[instance(0, h), instance(1, h)],
        mask=_mono8(8, 4, h, seed=9),
        model_name='tabletop',
        backend='onnxruntime',
        inference_time_ms=12.5,
        depth_status=GresInstances.DEPTH_INVALID,
        depth_detail='depth encoding rgb8 is not supported',
        depth_stamp=Time(sec=1700000000, nanosec=100000000),
    )


def audio_data():
    from poa_gres_ros.msg import AudioData

    return AudioData(
        header=_header(frame='mic'),
        sample_rate=16000,
        channels=2,
        sample_format='S16LE',
        data=bytes(range(256)) * 4,
    )


def build_all() -> dict:
    """{type name: message} for every custom message type."""
    return {
        'GresPhrase': phrase(),
        'GresInstance3D': geometry(),
        'GresInstance': instance(),
        'GresInstances': instances(),
        'AudioData': audio_data(),
    }


def unset_fields(msg, prefix='') -> list[str]:
    """Names of fields (recursively) that still hold their default value (0, '', [], False)."""
    out = []
    defaults = type(msg)()
    for name in msg.get_fields_and_field_types():
        value, default = getattr(msg, name), getattr(defaults, name)
        if hasattr(value, 'get_fields_and_field_types'):
            out += unset_fields(value, f'{prefix}{name}.')
        elif isinstance(value, list) and value and hasattr(value[0], 'get_fields_and_field_types'):
            out += unset_fields(value[-1], f'{prefix}{name}[-1].')
        elif _same(value, default):
            out.append(prefix + name)
    return out


def _same(a, b) -> bool:
    try:
        return (
            bool(a == b) if not hasattr(a, '__len__') else (len(a) == len(b) and list(a) == list(b))
        )
    except (TypeError, ValueError):
        return False
