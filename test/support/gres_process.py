"""Helpers for the GRES node process tests: model folders, starting the node, a probe.

Model folders are real: the model developer's tiny preset, randomly initialised with a fixed
seed and saved with ``save_model`` (a few MB, seconds). The node runs as a real process
(scripts/gres_node with config/gres.yaml) and talks to the test process over Fast DDS.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NS_PER_S = 1_000_000_000

# Thresholds that make a random tiny model answer deterministically: every query is kept
# (relevance > 0), never no-target (probability > 1 is impossible); masks stay image-dependent.
KEEP_ALL = ['-p', 'relevance_threshold:=0.0', '-p', 'no_target_threshold:=1.0']


def make_model(
    path: Path, size_hw: tuple[int, int] | None = None, seed: int = 0, no_target_bias: float = 0.0
) -> Path:
    """Save the tiny preset (input ``size_hw`` if given) with seed ``seed`` to ``path``.

    ``no_target_bias`` > 0 makes the no-target head certain: its last linear layer gets zero
    weights and biases (-b, +b), so p(no-target) = sigmoid(2 b) for every image and text (a
    real model folder whose forward pass answers "nothing referred", as a trained model does
    for a no-target instruction).
    """
    import torch

    from poa_gres_ros.core.model_presets import get_preset
    from poa_gres_ros.modeling.build import build_model
    from poa_gres_ros.modeling.io import save_model

    cfg = get_preset('tiny')
    if size_hw is not None:
        cfg.input.size_hw = tuple(size_hw)
    torch.manual_seed(seed)
    model = build_model(cfg)
    if no_target_bias:
        last = [m for m in model.no_target_head.modules() if isinstance(m, torch.nn.Linear)][-1]
        with torch.no_grad():
            last.weight.zero_()
            last.bias.copy_(torch.tensor([-no_target_bias, no_target_bias]))
    save_model(model, path)
    return path


def start_gres(
    spawn, model_dir, *ros_args, namespace='', name='gres_node', node_name='', stop_timeout_s=10.0
):
    """Start scripts/gres_node with config/gres.yaml, ``model_dir`` and extra ``--ros-args``
    (e.g. ``'-p', 'autostart:=false'``); images remapped from /camera/image_raw; backend
    torch (the default 'auto' would export each test's model to ONNX first).
    ``node_name`` renames the node: tests that call its services use a name of their own, so
    a client cannot match the services of the previous test's node while discovery still
    lists them."""
    argv = ['python', 'scripts/gres_node', '--ros-args', '--params-file', 'config/gres.yaml',
            '-p', f'model_dir:={model_dir}', '-r', 'image:=/camera/image_raw',
            '-p', 'diagnostics_period_s:=0.5', '-p', 'backend:=torch',
            *ros_args]  # fmt: skip
    if namespace:
        argv += ['-r', f'__ns:=/{namespace}']
    if node_name:
        argv += ['-r', f'__node:={node_name}']
    return spawn(argv, name=name, stop_timeout_s=stop_timeout_s)


def call(node, client, request, timeout_s=30.0, proc=None):
    """Call a service and spin until the answer (AssertionError on timeout/crash)."""
    from support.ros_waits import spin_until

    assert spin_until(node, client.service_is_ready, timeout_s, proc), (
        f'service {client.srv_name} never appeared'
        + (f'\n{proc.log()[-3000:]}' if proc is not None else '')
    )
    future = client.call_async(request)
    assert spin_until(node, future.done, timeout_s, proc), f'{client.srv_name}: no answer'
    return future.result()


class Lifecycle:
    """Client of ``<node>/get_state`` and ``<node>/change_state``."""

    def __init__(self, node, fqn='/gres_node', proc=None):
        from lifecycle_msgs.srv import ChangeState, GetState

        self.node, self.proc = node, proc
        self._get = node.create_client(GetState, f'{fqn}/get_state')
        self._change = node.create_client(ChangeState, f'{fqn}/change_state')

    def state(self) -> str:
        from lifecycle_msgs.srv import GetState

        return call(self.node, self._get, GetState.Request(), proc=self.proc).current_state.label

    def change(self, transition_id: int, timeout_s=60.0) -> bool:
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        req = ChangeState.Request(transition=Transition(id=transition_id))
        return call(self.node, self._change, req, timeout_s, self.proc).success

    def wait_for(self, label: str, timeout_s=90.0) -> bool:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.state() == label:
                return True
            time.sleep(0.2)
        return False

    def close(self):
        self.node.destroy_client(self._get)
        self.node.destroy_client(self._change)


class Probe:
    """Publishers of instruction and images, subscribers of the node's outputs.

    Call :meth:`close` at the end of a test: the transient-local instruction publisher would
    otherwise replay its last instruction to nodes of later tests.
    """

    def __init__(self, node, namespace='', image_qos=None):
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CompressedImage, Image
        from std_msgs.msg import Bool, String

        from poa_gres_ros.msg import GresInstances
        from poa_gres_ros.ros.qos import INSTRUCTION_QOS, RESULT_QOS

        p = f'/{namespace}' if namespace else ''
        self.node = node
        self.results: list = []
        self.no_target: list = []
        self.masks: list = []
        self.diagnostics: list = []
        qos = image_qos or qos_profile_sensor_data
        self.instruction_qos = INSTRUCTION_QOS
        self._pubs = [
            node.create_publisher(String, f'{p}/instruction', INSTRUCTION_QOS),
            node.create_publisher(Image, '/camera/image_raw', qos),
            node.create_publisher(CompressedImage, '/camera/image_raw/compressed', qos),
        ]
        self._subs = [
            node.create_subscription(
                GresInstances, f'{p}/gres/instances', self.results.append, RESULT_QOS
            ),  # fmt: skip
            node.create_subscription(
                Bool, f'{p}/gres/no_target', self.no_target.append, RESULT_QOS
            ),  # fmt: skip
            node.create_subscription(Image, f'{p}/gres/mask', self.masks.append, RESULT_QOS),
            node.create_subscription(
                DiagnosticArray, '/diagnostics', self.diagnostics.append, 10
            ),  # fmt: skip
        ]

    def instruct(self, text: str):
        from std_msgs.msg import String

        self._pubs[0].publish(String(data=text))

    def publish(self, msg):
        from sensor_msgs.msg import CompressedImage

        self._pubs[2 if isinstance(msg, CompressedImage) else 1].publish(msg)

    def result_for(self, stamp_ns: int):
        for r in self.results:
            if r.header.stamp.sec * NS_PER_S + r.header.stamp.nanosec == stamp_ns:
                return r
        return None

    def request(self, msg, timeout_s=60.0, proc=None, resend_s=1.0):
        """Publish image ``msg`` (resent every ``resend_s`` until matched) and return the
        result with its header stamp, or None after ``timeout_s``."""
        from support.ros_waits import spin_until

        stamp = msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.publish(msg)
            if spin_until(self.node, lambda: self.result_for(stamp) is not None, resend_s, proc):
                return self.result_for(stamp)
        return None

    def last_status(self, name_part=': inference'):
        """The newest DiagnosticStatus of our node as (level, message, {key: value})."""
        for arr in reversed(self.diagnostics):
            for st in arr.status:
                if name_part in st.name:
                    return st.level, st.message, {kv.key: kv.value for kv in st.values}
        return None

    def close(self):
        for pub in self._pubs:
            self.node.destroy_publisher(pub)
        for sub in self._subs:
            self.node.destroy_subscription(sub)


def image_msg(fields_or_rgb, stamp_ns: int, encoding='rgb8', frame_id='camera'):
    """A sensor_msgs/Image from an (H, W, 3) uint8 RGB array or from encoder fields."""
    import numpy as np

    from support.image_encoders import encode, to_msg

    if isinstance(fields_or_rgb, np.ndarray):
        fields_or_rgb = encode(fields_or_rgb, encoding)
    return to_msg(fields_or_rgb, stamp_ns=stamp_ns, frame_id=frame_id)


def mask_array(img_msg):
    """mono8 sensor_msgs/Image -> (H, W) uint8."""
    import numpy as np

    return np.frombuffer(bytes(img_msg.data), np.uint8).reshape(img_msg.height, img_msg.step)


def set_params(node, fqn: str, proc=None, **values):
    """Set parameters of node ``fqn`` over /set_parameters; returns the SetParametersResults."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = node.create_client(SetParameters, f'{fqn}/set_parameters')
    try:
        req = SetParameters.Request(
            parameters=[Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]
        )
        return call(node, client, req, proc=proc).results
    finally:
        node.destroy_client(client)


@pytest.fixture(scope='session')
def tiny_model(tmp_path_factory):
    """One tiny model folder per test session (shared by every module that imports this)."""
    path = tmp_path_factory.getbasetemp() / 'models' / 'tiny'
    if not (path / 'config.json').exists():
        make_model(path)
    return path


@pytest.fixture(scope='session')
def no_target_model(tmp_path_factory):
    """The tiny model with a certain no-target head: p(no-target) = sigmoid(20) for all."""
    path = tmp_path_factory.getbasetemp() / 'models' / 'tiny_no_target'
    if not (path / 'config.json').exists():
        make_model(path, no_target_bias=10.0)
    return path
