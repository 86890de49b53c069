"""Live replay over real processes: ``poa-gres replay --live`` starts (or connects to) a real
gres_node, publishes the bag over Fast DDS, records the results and scores them.

Tolerance against the offline replay of the same frames: the live metrics are compared with
offline metrics recomputed over exactly the frames the node answered (frames it dropped, by
its single-slot buffer or in transport, have no result, so there is nothing to compare; which
frames drop depends on timing). On those frames both runs execute the same Predictor with
the same model and thresholds on the same pixels, so results are expected to be identical;
the stated tolerance (per-frame IoU within 0.01 with the same outcome, cIoU / gIoU within
0.5 points) only allows for floating-point summation order of multi-threaded CPU kernels,
which can flip pixels whose probability lies within ~1e-6 of the mask threshold.
"""

from __future__ import annotations

import json

import pytest

from poa_gres_ros.core.metrics import GresEvaluator, GresSampleResult
from poa_gres_ros.core.thresholds import Thresholds

from support.bags import (  # noqa: F401  (fixtures: bags, model)
    MAPPING,
    TEDDY,
    bags,
    keep_all_params,
    looped_bag,
    mapped_bag,
    model,
    offline_records,
    poa_gres,
    small_bag,
)
from support.gres_process import ROOT, tiny_model  # noqa: F401  (fixture)

pytestmark = pytest.mark.ros
KEEP_ALL = Thresholds(relevance=0.0, no_target=1.0)


def _check_against_offline(report: dict, offline: dict) -> None:
    """Per-frame and summary agreement within the module's tolerance."""
    frames = [json.loads(line) for line in report['_frames']]
    assert frames, 'the node answered no frame'
    ev = GresEvaluator()
    for r in frames:
        ref = offline[r['index']]
        assert r['outcome'] == ref['outcome'], r['index']
        assert r['iou'] == pytest.approx(ref['iou'], abs=0.01), r['index']
        ev.add_result(GresSampleResult(ref['intersection_px'], ref['union_px'], ref['iou'],
                                       ref['outcome'], ref['expr_type']))  # fmt: skip
    # 3D: the node paired every answered frame with its depth image and lifted the same masks
    assert {r['depth'] for r in frames} == {'ok'}
    for r in frames:
        ref = offline[r['index']]
        assert len(r.get('errors_3d') or []) == len(ref.get('errors_3d') or []), r['index']
        for got, want in zip(r.get('errors_3d') or [], ref.get('errors_3d') or []):
            if want['centroid_error_mm'] is None or got['centroid_error_mm'] is None:
                assert abs((got['iou'] or 0) - 0.5) < 0.01 or (
                    got['centroid_error_mm'] == want['centroid_error_mm']
                ), (r['index'], got, want)  # only a match right at the IoU bar may differ
            else:
                assert got['centroid_error_mm'] == pytest.approx(
                    want['centroid_error_mm'], abs=1.0
                ), r['index']
    ref_summary = ev.summary()
    for t in ('all', 'single', 'multi', 'no_target'):
        got, want = report['metrics'][t], ref_summary[t]
        assert got['count'] == want['count']
        for key in ('cIoU', 'gIoU'):
            if want[key] is None:
                assert got[key] is None
            else:
                assert got[key] == pytest.approx(want[key], abs=0.5), (t, key)


def _drops_explained(live: dict) -> None:
    """Every published frame is answered or dropped for a counted reason."""
    d = live['drops']
    assert d['answered'] + d['dropped'] == d['published']
    reasons = ('not_received_by_node', 'dropped_single_slot', 'no_instruction', 'rejected',
               'errors', 'results_not_received')  # fmt: skip
    assert d['dropped'] == sum(d[k] for k in reasons), d


def _read(out):
    report = json.loads((out / 'report.json').read_text())
    report['_frames'] = (out / 'frames.jsonl').read_text().splitlines()
    return report


def test_live_replay_of_a_looped_bag_with_clock_matches_offline(bags, model, tmp_path):  # noqa: F811
    looped, mdir, params = bags.looped, model.dir, model.params
    out = tmp_path / 'live'
    res = poa_gres('replay', looped, '--live', '--clock', '--model', mdir,
                   '--params-file', params, '--out', out)  # fmt: skip
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert 'end-to-end latency p50' in res.stdout and 'dropped' in res.stdout
    report = _read(out)
    live = report['live']
    assert live['node']['started'] and live['node']['exit_code'] == 0
    assert live['settings']['clock'] is True
    assert report['bag']['stamp_jumps_back'] == 1
    assert live['drops']['published'] == 60 and live['instructions_published'] == 5
    assert live['unmatched_results'] == 0 and live['wrong_instruction'] == 0
    _drops_explained(live)
    e2e = live['e2e_latency_ms']
    assert e2e['count'] == live['drops']['answered'] and 0 < e2e['p50'] <= e2e['p99']
    frames = [json.loads(line) for line in report['_frames']]
    for r in frames:  # each loop's results carry that loop's instruction
        assert (r['result_instruction'] == TEDDY) == (r['loop'] == 1) == (r['index'] >= 30)
    offline, _ = offline_records(looped, mdir, KEEP_ALL)
    _check_against_offline(report, offline)


def test_live_mapped_bag_into_a_running_node(ros_node, spawn, bags, model, tmp_path):  # noqa: F811
    mapped, mdir, params = bags.mapped, model.dir, model.params
    from std_msgs.msg import String

    from poa_gres_ros.ros.qos import INSTRUCTION_QOS

    from support.ros_waits import spin_until

    proc = spawn(['python', ROOT / 'scripts' / 'gres_node', '--ros-args', '--params-file',
                  params, '-p', f'model_dir:={mdir}', '-r', f'image:={MAPPING["image"]}',
                  '-p', 'enable_3d:=true', '-r', f'depth:={MAPPING["depth"]}',
                  '-r', f'camera_info:={MAPPING["camera_info"]}'], name='gres_node')  # fmt: skip
    pub = ros_node.create_publisher(String, '/instruction', INSTRUCTION_QOS)
    try:  # an earlier instruction: the node's ids for the bag's instructions start at 2
        assert spin_until(ros_node, lambda: pub.get_subscription_count() > 0, 120, proc)
        pub.publish(String(data='something said before the bag'))
        args = [a for role, topic in MAPPING.items() for a in ('--topic', f'{role}={topic}')]
        out = tmp_path / 'live'
        res = poa_gres('replay', mapped, '--live', '--connect', *args, '--params-file',
                       params, '--out', out)  # fmt: skip
    finally:
        ros_node.destroy_publisher(pub)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    report = _read(out)
    live = report['live']
    assert not live['node']['started'] and live['settings']['image_topic'] == MAPPING['image']
    assert live['instruction_id_offset'] == 1 and live['wrong_instruction'] == 0
    assert live['node_counters']['instructions'] == 4  # counted from before the replay
    assert live['drops']['published'] == 30
    _drops_explained(live)
    offline, _ = offline_records(mapped, mdir, KEEP_ALL, MAPPING)
    _check_against_offline(report, offline)
    assert proc.alive()


@pytest.mark.slow
def test_demo_script_end_to_end(model, tmp_path):  # noqa: F811
    """scripts/run_demo.sh renders the demo bag, runs the node live and prints the summary
    (with the tiny model: the shipped one may not be in this checkout)."""
    import os
    import subprocess

    bag, out = tmp_path / 'demo_bag', tmp_path / 'report'
    res = subprocess.run(['bash', str(ROOT / 'scripts' / 'run_demo.sh'), '--model', str(model.dir),
                          '--bag', str(bag), '--out', str(out), '--domain-id',
                          os.environ['ROS_DOMAIN_ID']], capture_output=True, text=True,
                         timeout=600, cwd=ROOT)  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    for text in ('rendering the demo bag', 'live replay of', 'cIoU', 'end-to-end latency p50',
                 '240 published', 'report.md', 'time:'):  # fmt: skip
        assert text in res.stdout, text
    report = json.loads((out / 'report.json').read_text())
    assert report['bag']['frames'] == 240 and report['bag']['instructions'] == 6
    assert sorted(p.name for p in bag.iterdir()) == ['demo_bag.mcap', 'metadata.yaml']
    assert not (bag.parent / '.demo_bag.partial').exists()
    assert {r['expr_type'] for r in report['per_instruction']} == {'single', 'multi', 'no_target'}
    assert report['live']['drops']['answered'] > 0
    # Under /clock the node binds each image to the instruction current at its header stamp
    # (docs/binding.md), however late the frame reaches it: no result may name another one.
    frames = [json.loads(line) for line in (out / 'frames.jsonl').read_text().splitlines()]
    assert len(frames) == report['live']['drops']['answered']
    keys = ('index', 'instruction_ordinal', 'result_instruction_id', 'wrong_instruction')
    wrong = [{k: f[k] for k in keys} for f in frames if f['wrong_instruction']]
    node_log = (out / 'node.log').read_text() if (out / 'node.log').exists() else ''
    assert report['live']['wrong_instruction'] == 0, (wrong, report['live'], node_log[-3000:])
    assert not wrong


def test_live_replay_with_a_model_that_does_not_load_fails_fast(bags, model, tmp_path):  # noqa: F811
    """The node's autostart fails: the replay stops at once with exit status 3 and the node's
    reason, instead of waiting for the start-up timeout."""
    import shutil

    bad = tmp_path / 'bad_model'
    shutil.copytree(model.dir, bad)
    cfg = json.loads((bad / 'config.json').read_text())
    cfg['decoder']['num_queries'] += 3  # weights no longer fit the config
    (bad / 'config.json').write_text(json.dumps(cfg))
    res = poa_gres('replay', bags.small, '--live', '--model', bad, '--out', tmp_path / 'r',
                   '--startup-timeout', '170', timeout_s=150)  # fmt: skip
    assert res.returncode == 3, res.stdout[-2000:] + res.stderr[-3000:]
    assert 'autostart failed' in res.stderr and 'does not match' in res.stderr
    assert 'activate failed' in (tmp_path / 'r' / 'node.log').read_text()
