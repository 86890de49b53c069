"""The node's ROS-free parts and its files: parameters table vs config/gres.yaml, settings,
single slot, statistics, throttling, the launch file and its pip stand-in (`poa-gres node`)."""

from __future__ import annotations

import ast
import threading
import types
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.ros  # node_params imports rcl_interfaces

ROOT = Path(__file__).resolve().parents[1]


def test_gres_yaml_lists_every_parameter_with_its_default():
    from poa_gres_ros.core.node_settings import SPECS

    doc = yaml.safe_load((ROOT / 'config' / 'gres.yaml').read_text())
    params = doc['/**']['ros__parameters']
    assert set(params) == set(SPECS)
    for name, spec in SPECS.items():
        assert params[name] == spec.default, name
        assert type(params[name]) is type(spec.default), f'{name}: YAML type differs'


def test_descriptors_carry_ranges_and_read_only():
    from poa_gres_ros.ros.node_params import descriptor

    d = descriptor('relevance_threshold')
    assert not d.read_only and d.floating_point_range[0].to_value == 1.0
    assert descriptor('max_instances').integer_range[0].from_value == 1
    for name in ('model_dir', 'backend', 'device', 'precision', 'engine_cache_dir'):
        assert descriptor(name).read_only, name
    assert 'onnxruntime' in descriptor('backend').description


@pytest.mark.parametrize(
    ('name', 'value', 'needle'),
    [
        ('backend', 'tensorflow', 'not one of'),
        ('image_qos', 'best_effort', 'not one of'),
        ('mask_threshold', 1.5, 'outside'),
        ('model_dir', '  ', 'empty'),
    ],
)
def test_check_value_reasons(name, value, needle):
    from poa_gres_ros.core.node_settings import check_value

    assert needle in check_value(name, value)
    assert check_value('use_sim_time', True) is None


def test_settings_update_uses_incoming_values_only():
    from poa_gres_ros.core.node_settings import DYNAMIC, SPECS, NodeSettings

    s = NodeSettings.from_values({k: v.default for k, v in SPECS.items()})
    assert set(s.values()) == DYNAMIC  # every dynamic parameter is in the snapshot, nothing else
    s2 = s.updated({'relevance_threshold': 0.8, 'max_instances': 3, 'model_dir': 'ignored'})
    assert (s2.thresholds.relevance, s2.thresholds.max_instances) == (0.8, 3)
    assert s.thresholds.relevance == 0.5  # immutable snapshot: frames in flight keep theirs
    with pytest.raises(ValueError, match='max_instances'):
        s.updated({'max_instances': 0})


def test_latest_slot_newest_wins_and_counts_drops():
    from poa_gres_ros.ros.node_stats import LatestSlot

    slot = LatestSlot()
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.take() == 3 and slot.take() is None


def test_latest_slot_under_threads_loses_nothing_uncounted():
    from poa_gres_ros.ros.node_stats import LatestSlot

    slot, taken, drops = LatestSlot(), [], [0]
    lock = threading.Lock()

    def producer():
        for i in range(2000):
            if slot.put(i):
                with lock:
                    drops[0] += 1

    def consumer():
        for _ in range(3000):
            item = slot.take()
            if item is not None:
                taken.append(item)

    threads = [threading.Thread(target=producer), threading.Thread(target=consumer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rest = slot.take()
    assert len(taken) + drops[0] + (rest is not None) == 2000


def test_stats_snapshot_percentiles_and_counters():
    from poa_gres_ros.ros.node_stats import NodeStats, stamp_latency_ms

    st = NodeStats(window_s=60.0)
    for ms in range(1, 101):
        st.count('received')
        st.record(float(ms), None if ms % 2 else float(ms) + 1, 5.0)
    st.count('dropped_stale', 7)
    snap = st.snapshot()
    assert snap['processed'] == 100 and snap['dropped_stale'] == 7 and snap['received'] == 100
    assert snap['latency_receipt_ms_p50'] == pytest.approx(50.5)
    assert snap['latency_receipt_ms_max'] == 100.0
    assert snap['latency_stamp_ms_max'] == 101.0  # only frames with a stamp
    assert snap['input_rate_hz'] == pytest.approx(100 / 60)
    st.reset()
    assert st.snapshot()['processed'] == 0
    assert stamp_latency_ms(2_000_000_000, 1, 500_000_000) == 500.0
    assert stamp_latency_ms(5, 0, 0) is None


def test_keyed_throttle_is_per_key_and_counts():
    from poa_gres_ros.ros.node_stats import KeyedThrottle

    th = KeyedThrottle(period_s=3600)
    assert th.ready('convert:yuv444') == (True, 0)
    assert th.ready('convert:yuv444') == (False, 0)
    assert th.ready('convert:32FC1') == (True, 0)  # another encoding is reported on its own
    th.period_s = 0.0
    assert th.ready('convert:yuv444') == (True, 1)


def _launch_tree():
    return ast.parse((ROOT / 'launch' / 'gres.launch.py').read_text())


def _launch_literal(name):
    for node in ast.walk(_launch_tree()):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f'{name} not found in gres.launch.py')


def test_launch_file_parses_and_declares_the_issue_arguments():
    tree = _launch_tree()
    funcs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert 'generate_launch_description' in funcs
    args = _launch_literal('ARGUMENTS')
    assert set(args) == {'namespace', 'params_file', 'image_topic', 'depth_topic',
                         'camera_info_topic', 'use_sim_time', 'log_level', 'node_log_level',
                         'model_dir', 'backend', 'speech', 'speech_params_file'}  # fmt: skip
    assert args['speech'][0] == 'false' and args['image_topic'][0] == '/camera/image_raw'
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    names = {getattr(c.func, 'id', getattr(c.func, 'attr', '')) for c in calls}
    assert not names & {'ExecuteProcess', 'system', 'Popen', 'run', 'eval', 'exec'}  # no effects


def test_launch_file_references_existing_executables_and_configs():
    strings = {n.value for n in ast.walk(_launch_tree()) if isinstance(n, ast.Constant)}
    assert {'gres_node', 'gres.yaml'} <= strings
    assert (ROOT / 'scripts' / 'gres_node').stat().st_mode & 0o111
    assert (ROOT / 'config' / 'gres.yaml').is_file()
    assert {'speech_node', 'speech.yaml'} <= strings
    assert (ROOT / 'scripts' / 'speech_node').stat().st_mode & 0o111
    assert (ROOT / 'config' / 'speech.yaml').is_file()


def test_node_verb_mirrors_the_launch_arguments():
    import argparse

    from poa_gres_ros.ros.launch_commands import node_commands
    from poa_gres_ros.tools import node as verb

    parser = argparse.ArgumentParser()
    verb.add_arguments(parser)
    cli = {a.dest for a in parser._actions} - {'help', 'dry_run'}
    launch_args = _launch_literal('ARGUMENTS')
    assert cli == set(launch_args)
    defaults = parser.parse_args([])
    for name, (default, _) in launch_args.items():
        if default is not None:
            assert getattr(defaults, name) == default, name
    args = types.SimpleNamespace(**dict(vars(defaults), namespace='robot1', model_dir='/m'))
    (cmd,) = node_commands(verb.node_launch(args))
    assert cmd[1].endswith('gres_node') and '--params-file' in cmd
    assert cmd.index('-p', cmd.index('--params-file')) > cmd.index('--params-file')
    for expected in ('__ns:=/robot1', 'model_dir:=/m', 'image:=/camera/image_raw',
                     'depth:=/camera/aligned_depth_to_color/image_raw',
                     'camera_info:=/camera/camera_info'):  # fmt: skip
        assert expected in cmd
    assert not any(c.startswith('backend:=') for c in cmd)  # empty: from the file
    assert cmd.count('--log-level') == 1  # node_log_level '' = log_level for every logger
    args = types.SimpleNamespace(**dict(vars(args), node_log_level='debug', speech='true'))
    gres, speech = node_commands(verb.node_launch(args))
    assert gres[gres.index('--log-level') + 1] == 'info'  # rcl, rmw: as before
    assert 'robot1.gres_node:=debug' in gres and 'robot1.speech_node:=debug' in speech
    assert speech[speech.index('--params-file') + 1].endswith('speech.yaml')
    assert not any('instruction/spoken' in c for c in speech)  # relative already: no remap
