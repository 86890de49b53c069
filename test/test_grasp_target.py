"""examples/grasp_target.py against gres_node on a bag: every result gets a PoseStamped with
its stamp, the highest-relevance instance's centroid and axes in the camera frame, and an
empty answer when the result is no-target."""

from __future__ import annotations

import pytest

from support.bags import (  # noqa: F401  (fixtures)
    bags,
    keep_all_params,
    looped_bag,
    mapped_bag,
    model,
    poa_gres,
    small_bag,
)
from support.gres_process import NS_PER_S, ROOT, set_params, tiny_model  # noqa: F401
from support.ros_waits import spin_until

pytestmark = pytest.mark.ros
FRAME_ID = 'tabletop_camera_optical_frame'


def _stamp(msg) -> int:
    return msg.header.stamp.sec * NS_PER_S + msg.header.stamp.nanosec


def _replay(ros_node, bag, params, out):
    """Play ``bag`` into the running node (poa-gres replay --live --connect) while this
    process spins ``ros_node`` (so the test's subscriptions get every message)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(poa_gres, 'replay', bag, '--live', '--connect', '--params-file',
                          params, '--out', out)  # fmt: skip
        while not job.done():
            spin_until(ros_node, job.done, 0.5)
        res = job.result()
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]


def test_grasp_target_follows_the_node_on_a_bag(ros_node, spawn, bags, model, tmp_path):  # noqa: F811
    from geometry_msgs.msg import PoseStamped

    from poa_gres_ros.msg import GresInstances
    from poa_gres_ros.ros.qos import RESULT_QOS

    node = spawn(['python', ROOT / 'scripts' / 'gres_node', '--ros-args', '--params-file',
                  model.params, '-p', f'model_dir:={model.dir}', '-r', 'image:=/camera/image_raw',
                  '-p', 'enable_3d:=true', '-r', 'depth:=/camera/aligned_depth_to_color/image_raw',
                  '-r', 'camera_info:=/camera/camera_info'], name='gres_node')  # fmt: skip
    example = spawn(['python', ROOT / 'examples' / 'grasp_target.py'], name='grasp_target')
    results, targets = [], []
    subs = [
        ros_node.create_subscription(GresInstances, '/gres/instances', results.append, RESULT_QOS),
        ros_node.create_subscription(PoseStamped, '/grasp_target', targets.append, RESULT_QOS),
    ]
    try:
        assert spin_until(ros_node, lambda: ros_node.count_publishers('/grasp_target') > 0, 60,
                          example), example.log()  # fmt: skip
        _replay(ros_node, bags.small, model.params, tmp_path / 'targets')

        def answered():
            return {_stamp(t) for t in targets} >= {_stamp(r) for r in results}

        assert spin_until(ros_node, answered, 20.0, example), example.log()[-2000:]
        assert len(results) >= 5  # the node answered (drops allowed: single slot)
        by_stamp = {_stamp(t): t for t in targets}
        with_target = 0
        for res in results:
            pose = by_stamp[_stamp(res)]
            usable = [i for i in res.instances if i.geometry.valid]
            assert res.depth_status == GresInstances.DEPTH_OK, res.depth_detail
            if not usable:
                assert pose.header.frame_id == ''
                continue
            best = max(usable, key=lambda i: i.relevance)
            g = best.geometry
            assert pose.header.frame_id == FRAME_ID == res.header.frame_id
            p = pose.pose.position
            assert (p.x, p.y, p.z) == (g.centroid.x, g.centroid.y, g.centroid.z)
            q = pose.pose.orientation
            want = g.orientation if g.orientation_valid else None
            assert (q.x, q.y, q.z, q.w) == (
                (want.x, want.y, want.z, want.w) if want else (0.0, 0.0, 0.0, 1.0)
            )
            assert 0.2 < p.z < 3.0  # a tabletop object in front of the camera, metres
            with_target += 1
        assert with_target >= len(results) // 2

        # no-target results (every image, with the threshold at 0) get the empty answer
        ok = set_params(ros_node, '/gres_node', node, no_target_threshold=0.0)
        assert all(r.successful for r in ok)
        results.clear()
        targets.clear()
        _replay(ros_node, bags.small, model.params, tmp_path / 'empty')
        assert spin_until(ros_node, answered, 20.0, example), example.log()[-2000:]
        assert len(results) >= 5
        by_stamp = {_stamp(t): t for t in targets}
        for res in results:
            assert res.no_target
            pose = by_stamp[_stamp(res)]
            q = pose.pose.orientation
            assert pose.header.frame_id == '' and (q.x, q.y, q.z, q.w) == (0.0, 0.0, 0.0, 0.0)
        assert 'empty grasp target: no target' in example.log()
    finally:
        for s in subs:
            ros_node.destroy_subscription(s)
