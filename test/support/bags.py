"""Fixtures and helpers of the bag tests: real bags written with rosbags, real model folders.

- ``small_bag``: ``poa-gres make-bag``'s library call, 2 scenes x 1.5 s at 10 Hz, 160 x 120,
  two instructions per scene (30 frames, 4 instructions), mcap.
- ``looped_bag``: a recording of that bag played twice in a loop, written with plain rosbags:
  the second pass repeats the images with the *same header stamps* (so stamps jump backwards
  once) at later log times, and the operator then said one no-target instruction, so its
  ground truth is no-target: a replay that paired frames with the other loop's instruction or
  ground truth would show it.
- ``mapped_bag``: the small bag as another robot records it, written with plain rosbags
  (sqlite3): bgr8 images with row padding on /zed/left/image_rect_color, instructions on
  /robot/speech_command, ground truth on /eval/labels, camera info on /zed/left/camera_info,
  depth as 32FC1 metres with row padding on /zed/depth/depth_registered (the ZED
  convention), no ground-truth object poses, and an unrelated IMU topic.
- ``keep_all_params``: config/gres.yaml with thresholds that make the random tiny model
  answer with image-dependent masks (every query kept, never no-target).
- ``bags`` (.small, .looped, .mapped) and ``model`` (.dir: the tiny model, .params: that file)
  bundle them for the tests.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.gres_process import tiny_model  # noqa: F401  (fixture used below)

ROOT = Path(__file__).resolve().parents[2]
TEDDY = 'the purple teddy bear'
MAPPING = {
    'image': '/zed/left/image_rect_color',
    'camera_info': '/zed/left/camera_info',
    'instruction': '/robot/speech_command',
    'ground_truth': '/eval/labels',
    'depth': '/zed/depth/depth_registered',
}
MAPPED_PAD_BYTES = 16
SMALL = dict(seed=0, scenes=2, seconds_per_scene=1.5, instructions_per_scene=2, width_px=160,
             height_px=120)  # fmt: skip


def plain_typestore():
    """A rosbags Kilted type store with the package's messages registered by hand from
    msg/*.msg (what any rosbags user does), not through poa_gres_ros.bag."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    ts = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for p in sorted((ROOT / 'msg').glob('*.msg')):
        types.update(get_types_from_msg(p.read_text(), f'poa_gres_ros/msg/{p.stem}'))
    ts.register(types)
    return ts


def read_all(bag: Path):
    """[(topic, msgtype, log_ns, raw bytes)] of a bag in rosbags' order."""
    from rosbags.highlevel import AnyReader

    with AnyReader([bag], default_typestore=plain_typestore()) as r:
        return [(c.topic, c.msgtype, t, bytes(raw)) for c, t, raw in r.messages()]


@pytest.fixture(scope='session')
def small_bag(tmp_path_factory):
    from poa_gres_ros.bag.make_bag import BagSpec, make_bag

    path = tmp_path_factory.getbasetemp() / 'bags' / 'small'
    if not (path / 'metadata.yaml').exists():
        make_bag(path, BagSpec(**SMALL))
    return path


@pytest.fixture(scope='session')
def looped_bag(small_bag, tmp_path_factory):
    from rosbags.rosbag2 import Writer

    path = tmp_path_factory.getbasetemp() / 'bags' / 'looped'
    if (path / 'metadata.yaml').exists():
        return path
    ts = plain_typestore()
    msgs = read_all(small_bag)
    span = msgs[-1][2] - msgs[0][2] + 100_000_000
    with Writer(path, version=9) as w:
        conns = {}
        for topic, msgtype, _, _ in msgs:
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=ts)
        for topic, _, t, raw in msgs:
            w.write(conns[topic], t, raw)
        first_img = min(t for topic, _, t, _ in msgs if topic == '/camera/image_raw')
        teddy = ts.serialize_cdr(ts.types['std_msgs/msg/String'](data=TEDDY),
                                 'std_msgs/msg/String')  # fmt: skip
        w.write(conns['/instruction'], first_img + span - 50_000_000, teddy)
        for topic, _, t, raw in msgs:
            if topic == '/instruction':
                continue
            if topic == '/gres/ground_truth':
                raw = _no_target_gt(ts, raw)
            w.write(conns[topic], t + span, raw)
    return path


def _no_target_gt(ts, raw: bytes) -> bytes:
    gt = ts.deserialize_cdr(raw, 'poa_gres_ros/msg/GresInstances')
    gt.instruction, gt.instruction_id, gt.no_target = TEDDY, 5, True
    gt.no_target_probability, gt.instances, gt.phrases = 1.0, [], []
    gt.mask.data = np.zeros_like(gt.mask.data)
    return bytes(ts.serialize_cdr(gt, 'poa_gres_ros/msg/GresInstances'))


@pytest.fixture(scope='session')
def mapped_bag(small_bag, tmp_path_factory):
    from rosbags.rosbag2 import StoragePlugin, Writer

    path = tmp_path_factory.getbasetemp() / 'bags' / 'mapped'
    if (path / 'metadata.yaml').exists():
        return path
    ts = plain_typestore()
    rename = {'/camera/image_raw': MAPPING['image'], '/camera/camera_info':
              MAPPING['camera_info'], '/instruction': MAPPING['instruction'],
              '/gres/ground_truth': MAPPING['ground_truth'],
              '/camera/aligned_depth_to_color/image_raw': MAPPING['depth']}  # fmt: skip
    msgs = [m for m in read_all(small_bag) if m[0] in rename]
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        conns = {}
        for topic, msgtype, _, _ in msgs:
            if rename[topic] not in conns:
                conns[rename[topic]] = w.add_connection(rename[topic], msgtype, typestore=ts)
        imu = w.add_connection('/zed/imu/data', 'sensor_msgs/msg/Imu', typestore=ts)
        imu_raw = ts.serialize_cdr(ts.types['sensor_msgs/msg/Imu'](
            header=ts.types['std_msgs/msg/Header'](
                stamp=ts.types['builtin_interfaces/msg/Time'](sec=1, nanosec=0), frame_id='imu'),
            orientation=ts.types['geometry_msgs/msg/Quaternion'](x=0.0, y=0.0, z=0.0, w=1.0),
            orientation_covariance=np.zeros(9), angular_velocity=_vec(ts),
            angular_velocity_covariance=np.zeros(9), linear_acceleration=_vec(ts),
            linear_acceleration_covariance=np.zeros(9)), 'sensor_msgs/msg/Imu')  # fmt: skip
        for topic, _, t, raw in msgs:
            if topic == '/camera/image_raw':
                raw = _bgr8_padded(ts, raw)
                w.write(imu, t - 1_000_000, imu_raw)
            elif topic == '/camera/aligned_depth_to_color/image_raw':
                raw = _32fc1_padded(ts, raw)
            w.write(conns[rename[topic]], t, raw)
    return path


def _vec(ts):
    return ts.types['geometry_msgs/msg/Vector3'](x=0.0, y=0.0, z=9.81)


def _bgr8_padded(ts, raw: bytes) -> bytes:
    img = ts.deserialize_cdr(raw, 'sensor_msgs/msg/Image')
    rgb = np.asarray(img.data, np.uint8).reshape(img.height, img.width, 3)
    step = img.width * 3 + MAPPED_PAD_BYTES
    rows = np.zeros((img.height, step), np.uint8)
    rows[:, : img.width * 3] = rgb[:, :, ::-1].reshape(img.height, -1)
    img.encoding, img.step, img.data = 'bgr8', step, rows.reshape(-1)
    return bytes(ts.serialize_cdr(img, 'sensor_msgs/msg/Image'))


def _32fc1_padded(ts, raw: bytes) -> bytes:
    """16UC1 millimetres -> 32FC1 metres (NaN for no depth) with row padding."""
    img = ts.deserialize_cdr(raw, 'sensor_msgs/msg/Image')
    mm = np.frombuffer(bytes(img.data), '<u2').reshape(img.height, img.width)
    m = np.where(mm > 0, mm / 1000.0, np.nan).astype('<f4')
    step = img.width * 4 + MAPPED_PAD_BYTES
    rows = np.zeros((img.height, step), np.uint8)
    rows[:, : img.width * 4] = m.view(np.uint8).reshape(img.height, -1)
    img.encoding, img.step, img.data = '32FC1', step, rows.reshape(-1)
    return bytes(ts.serialize_cdr(img, 'sensor_msgs/msg/Image'))


@pytest.fixture(scope='session')
def keep_all_params(tmp_path_factory):
    """config/gres.yaml with relevance_threshold 0, no_target_threshold 1, backend torch."""
    text = (ROOT / 'config' / 'gres.yaml').read_text()
    text = text.replace('relevance_threshold: 0.5', 'relevance_threshold: 0.0')
    text = text.replace('no_target_threshold: 0.5', 'no_target_threshold: 1.0')
    text = text.replace("backend: 'auto'", "backend: 'torch'")  # no ONNX export per test model
    assert 'relevance_threshold: 0.0' in text and 'no_target_threshold: 1.0' in text
    assert "backend: 'torch'" in text
    path = tmp_path_factory.getbasetemp() / 'keep_all.yaml'
    path.write_text(text)
    return path


@pytest.fixture(scope='session')
def bags(small_bag, looped_bag, mapped_bag):
    from types import SimpleNamespace

    return SimpleNamespace(small=small_bag, looped=looped_bag, mapped=mapped_bag)


@pytest.fixture(scope='session')
def model(tiny_model, keep_all_params):  # noqa: F811
    from types import SimpleNamespace

    return SimpleNamespace(dir=tiny_model, params=keep_all_params)


def poa_gres(*args, timeout_s: float = 300.0) -> subprocess.CompletedProcess:
    """Run ``poa-gres ARGS`` as a real process (own process group, killed with its children
    on timeout). Returns the CompletedProcess with text stdout/stderr."""
    argv = [sys.executable, '-m', 'poa_gres_ros.tools.cli', *map(str, args)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True, env=dict(os.environ))  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f'poa-gres {" ".join(map(str, args))} timed out:\n{out[-3000:]}\n{err[-3000:]}')
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@contextlib.contextmanager
def one_torch_thread():
    """torch intra-op threads = 1 inside the block (restored after). The tiny model is all
    small ops: on 2 cores shared with another busy process, 2 OpenMP threads made it about
    50x slower (412 ms vs 8 ms per frame, measured), 1 thread does not. The CLI runs get
    ``--threads 1`` for the same reason, so both sides compute identically."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def offline_records(bag, model_dir, thresholds, topics=None):
    """In-process offline replay (1 torch thread): ({frame index: record}, ReplayResult)."""
    from poa_gres_ros.bag.replay import replay_offline
    from poa_gres_ros.bag.timeline import BagTimeline
    from poa_gres_ros.inference import Predictor

    predictor = Predictor.from_model_dir(model_dir, thresholds=thresholds)
    try:
        with one_torch_thread():
            res = replay_offline(BagTimeline.open(bag, topics), predictor, thresholds)
    finally:
        predictor.close()
    return {r['index']: r for r in res.records}, res
