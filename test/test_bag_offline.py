"""make-bag and offline replay on real bags (rosbags mcap and sqlite3) with a real tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from poa_gres_ros.core.instance_metrics import InstanceEvaluator, gt_phrases_of
from poa_gres_ros.core.metrics import GresEvaluator
from poa_gres_ros.core.results import PhraseSpan
from poa_gres_ros.core.thresholds import Thresholds

from support.bags import (  # noqa: F401  (fixtures: bags, model, small_bag)
    MAPPING,
    SMALL,
    TEDDY,
    bags,
    keep_all_params,
    looped_bag,
    mapped_bag,
    model,
    offline_records,
    one_torch_thread,
    plain_typestore,
    poa_gres,
    read_all,
    small_bag,
)
from support.gres_process import tiny_model  # noqa: F401  (fixture)

KEEP_ALL = Thresholds(relevance=0.0, no_target=1.0)
FRAMES = 30  # 2 scenes x 1.5 s x 10 Hz


def test_make_bag_topics_counts_and_message_contents(bags):  # noqa: F811
    from poa_gres_ros.bag.make_bag import read_spec

    small = bags.small

    ts = plain_typestore()
    msgs = read_all(small)
    count = {t: sum(m[0] == t for m in msgs) for t in {m[0] for m in msgs}}
    depth_topic = '/camera/aligned_depth_to_color/image_raw'
    assert count == {'/camera/image_raw': FRAMES, '/camera/camera_info': FRAMES,
                     depth_topic: FRAMES, '/instruction': 4, '/gres/ground_truth': FRAMES,
                     '/gres/ground_truth/objects': FRAMES}  # fmt: skip
    assert read_spec(small)['width_px'] == 160
    images = [ts.deserialize_cdr(m[3], m[1]) for m in msgs if m[0] == '/camera/image_raw']
    stamps = [im.header.stamp.sec * 10**9 + im.header.stamp.nanosec for im in images]
    assert np.all(np.diff(stamps) == 100_000_000)  # 10 Hz
    assert {(im.encoding, im.width, im.height, im.step) for im in images} == {
        ('rgb8', 160, 120, 480)
    }
    assert len({bytes(im.data) for im in images}) == FRAMES  # the camera moves: every frame differs
    info = ts.deserialize_cdr(next(m[3] for m in msgs if m[0] == '/camera/camera_info'),
                              'sensor_msgs/msg/CameraInfo')  # fmt: skip
    K = np.asarray(info.k).reshape(3, 3)  # noqa: N806
    assert K[0, 0] == K[1, 1] > 0 and (K[0, 2], K[1, 2]) == (80.0, 59.0)  # tabletop.camera
    assert np.allclose(np.asarray(info.p).reshape(3, 4)[:, :3], K)
    texts = [ts.deserialize_cdr(m[3], m[1]).data for m in msgs if m[0] == '/instruction']
    by_stamp = {}
    for m in msgs:
        if m[0] == '/gres/ground_truth':
            gt = ts.deserialize_cdr(m[3], m[1])
            by_stamp[gt.header.stamp.sec * 10**9 + gt.header.stamp.nanosec] = gt
    assert sorted(by_stamp) == stamps  # one ground truth per image, same header stamp
    kinds = set()
    for gt in by_stamp.values():
        assert gt.instruction in texts and gt.header.frame_id == images[0].header.frame_id
        assert gt.no_target == (len(gt.instances) == 0)
        kinds.add('no_target' if gt.no_target else 'multi' if len(gt.instances) > 1 else 'single')
        union = np.zeros((120, 160), bool)
        for inst in gt.instances:  # masks cropped to their box (GresInstance.msg)
            b = inst.bbox
            assert (inst.mask.width, inst.mask.height) == (b.width, b.height)
            crop = np.asarray(inst.mask.data).reshape(b.height, b.width) > 0
            assert crop.sum() == inst.area_px > 0 and inst.relevance == 1.0
            assert gt.instruction[inst.phrase.char_start : inst.phrase.char_end] == inst.phrase.text
            union[b.y_offset : b.y_offset + b.height, b.x_offset : b.x_offset + b.width] |= crop
        merged = np.asarray(gt.mask.data).reshape(120, 160) > 0
        assert np.array_equal(union, merged)
    assert kinds == {'single', 'multi', 'no_target'}


def test_make_bag_depth_is_the_renderers_and_3d_truth_is_its_visible_surface(bags):  # noqa: F811
    """Depth (16UC1 mm) and CameraInfo come from the renderer; each true instance's geometry
    is the visible surface of its mask (recomputed here from the bag's own depth and K with a
    plain pinhole formula), and the simulator pose per instance sits behind that surface."""
    ts = plain_typestore()
    msgs = read_all(bags.small)

    def of(topic):
        out = {}
        for m in msgs:
            if m[0] == topic:
                msg = ts.deserialize_cdr(m[3], m[1])
                out[msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec] = msg
        return out

    depth, info, gts, objs = (of(t) for t in (
        '/camera/aligned_depth_to_color/image_raw', '/camera/camera_info', '/gres/ground_truth',
        '/gres/ground_truth/objects'))  # fmt: skip
    assert sorted(depth) == sorted(info) == sorted(gts) == sorted(objs)
    checked = 0
    for stamp, gt in gts.items():
        d = depth[stamp]
        assert (d.encoding, d.width, d.height, d.step, d.is_bigendian) == (
            '16UC1',
            160,
            120,
            320,
            0,
        )
        assert d.header.frame_id == gt.header.frame_id
        mm = np.frombuffer(bytes(d.data), '<u2').reshape(120, 160)
        assert 300 < np.median(mm[mm > 0]) < 2000  # a table 0.3-2 m away, millimetres
        assert gt.depth_status == 1 and len(objs[stamp].poses) == len(gt.instances)
        K = np.asarray(info[stamp].k).reshape(3, 3)  # noqa: N806
        for inst, pose in zip(gt.instances, objs[stamp].poses):
            b = inst.bbox
            crop = np.asarray(inst.mask.data).reshape(b.height, b.width) > 0
            vs, us = np.nonzero(crop)
            us, vs = us + b.x_offset, vs + b.y_offset
            z = mm[vs, us] / 1000.0
            assert (z > 0).all()  # every visible object pixel has depth
            pts = np.stack([(us - K[0, 2]) * z / K[0, 0], (vs - K[1, 2]) * z / K[1, 1], z], 1)
            g = inst.geometry
            c = np.array([g.centroid.x, g.centroid.y, g.centroid.z])
            assert g.valid and g.num_points == len(z) and g.missing_depth_fraction == 0.0
            assert np.linalg.norm(pts.mean(0) - c) < 0.001  # 1 mm depth quantisation
            assert np.allclose([g.box_size.x, g.box_size.y], np.ptp(pts[:, :2], 0), atol=2e-3)
            p = np.array([pose.position.x, pose.position.y, pose.position.z])
            assert 0.005 < np.linalg.norm(p - c) < 0.1
            # the centre lies deeper than the nearest visible surface point: a convex
            # object's point nearest the camera is on its visible side (a steep camera
            # sees the top, whose mean depth can exceed the centre's z)
            assert np.linalg.norm(p) > np.linalg.norm(pts, axis=1).min()
            checked += 1
    assert checked >= 20


def test_make_bag_is_deterministic_across_storage_plugins_and_workers(bags, tmp_path):  # noqa: F811
    from poa_gres_ros.bag.make_bag import BagSpec, make_bag

    small = bags.small

    other = tmp_path / 'again'
    make_bag(other, BagSpec(**SMALL), storage='sqlite3', workers=2)
    assert list((other).glob('*.db3'))
    assert read_all(other) == read_all(small)


def test_offline_replay_equals_direct_evaluation(bags, model, tmp_path):  # noqa: F811
    """The CLI's metrics equal GresEvaluator and InstanceEvaluator over the same frames with
    the Predictor called directly and the bag decoded here with plain rosbags (own pairing, own
    mask and phrase decoding)."""
    from poa_gres_ros.inference import Predictor

    small, mdir, params = bags.small, model.dir, model.params
    out = tmp_path / 'report'
    res = poa_gres('replay', small, '--model', mdir, '--params-file', params, '--threads', '1',
                   '--out', out)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / 'report.json').read_text())
    assert 'cIoU' in res.stdout and str(out / 'report.md') in res.stdout
    assert 'instances: recall' in res.stdout
    assert '### Instances' in (out / 'report.md').read_text()
    assert report['frames_run'] == report['frames_scored'] == FRAMES
    assert report['bag']['counts'] == {'image': FRAMES, 'camera_info': FRAMES, 'depth': FRAMES,
                                       'instruction': 4, 'ground_truth': FRAMES,
                                       'gt_objects': FRAMES}  # fmt: skip
    assert len(report['per_instruction']) == 4
    assert sum(r['frames_scored'] for r in report['per_instruction']) == FRAMES
    assert len((out / 'frames.jsonl').read_text().splitlines()) == FRAMES
    for fig in ('latency_hist.png', 'per_instruction.png', 'overlays.png'):
        assert (out / fig).stat().st_size > 1000
    g = report['geometry_3d']  # the lifting on the exact masks and the rendered depth
    assert g['frames_with_depth'] == FRAMES and g['true_instances'] >= 20
    assert g['gt_mask_lift_error_mm']['count'] == g['true_instances']
    assert 0.0 < g['gt_mask_lift_error_mm']['median'] < 10.0
    assert '## 3D (camera optical frame)' in (out / 'report.md').read_text()

    ts = plain_typestore()
    msgs = read_all(small)
    instructions = [(t, ts.deserialize_cdr(raw, ty).data) for tp, ty, t, raw in msgs
                    if tp == '/instruction']  # fmt: skip
    gts = {}
    for tp, ty, _, raw in msgs:
        if tp == '/gres/ground_truth':
            gt = ts.deserialize_cdr(raw, ty)
            masks, spans, hw = [], [], (gt.mask.height, gt.mask.width)
            for i in gt.instances:
                b = i.bbox
                full = np.zeros(hw, bool)
                crop = np.asarray(i.mask.data).reshape(b.height, b.width) > 0
                full[b.y_offset : b.y_offset + b.height, b.x_offset : b.x_offset + b.width] = crop
                masks.append(full)
                p = i.phrase
                spans.append(PhraseSpan(p.text, p.char_start, p.char_end) if p.text else None)
            union = np.logical_or.reduce(masks) if masks else np.zeros(hw, bool)
            gts[(gt.header.stamp.sec, gt.header.stamp.nanosec)] = (
                union,
                gt.no_target,
                len(gt.instances),
                np.asarray(masks, bool).reshape(-1, *hw),
                gt_phrases_of(spans),
            )
    predictor = Predictor.from_model_dir(mdir, thresholds=KEEP_ALL)
    ev, iv = GresEvaluator(), InstanceEvaluator()
    with one_torch_thread():
        for tp, ty, t, raw in msgs:
            if tp != '/camera/image_raw':
                continue
            img = ts.deserialize_cdr(raw, ty)
            predictor.set_instruction([text for lt, text in instructions if lt <= t][-1])
            rgb = np.asarray(img.data, np.uint8).reshape(img.height, img.width, 3)
            pred = predictor.predict(rgb)
            mask, no_target, n, inst_masks, phrases = gts[
                (img.header.stamp.sec, img.header.stamp.nanosec)
            ]
            r = ev.add(pred.final_mask, mask, pred.no_target, no_target, n)
            iv.add([i.mask for i in pred.instances], inst_masks, r.expr_type,
                   [i.phrase for i in pred.instances], phrases)  # fmt: skip
    direct, inst = ev.summary(), iv.summary()
    assert direct['all']['count'] == FRAMES and direct['no_target']['count'] > 0
    assert inst['all']['num_gt'] >= 20 and inst['all']['num_pred'] > 0
    for t in ('all', 'single', 'multi', 'no_target'):
        for key, value in [*direct[t].items(), *inst[t].items()]:
            assert report['metrics'][t][key] == pytest.approx(value, abs=1e-9), (t, key)


def test_looped_recording_pairs_each_loop_with_its_instruction_and_truth(bags, model):  # noqa: F811
    from poa_gres_ros.bag.timeline import BagTimeline

    small, looped, mdir = bags.small, bags.looped, model.dir

    tl = BagTimeline.open(looped)
    assert tl.stamp_jumps_back == 1 and len(tl.frames) == 2 * FRAMES
    first, second = tl.frames[:FRAMES], tl.frames[FRAMES:]
    assert [f.stamp_ns for f in first] == [f.stamp_ns for f in second]
    assert {f.loop for f in first} == {0} and {f.loop for f in second} == {1}
    assert all(f.gt.instruction == f.instruction.text != TEDDY for f in first)
    assert all(f.gt.no_target and f.instruction.text == TEDDY for f in second)
    assert [f.instruction.seq for f in second] == [5] * FRAMES

    ref, _ = offline_records(small, mdir, KEEP_ALL)
    got, res = offline_records(looped, mdir, KEEP_ALL)
    keys = ('instruction', 'outcome', 'iou', 'intersection_px', 'union_px', 'expr_type')
    for i in range(FRAMES):  # the first loop scores exactly as the bag it was recorded from
        assert {k: got[i][k] for k in keys} == {k: ref[i][k] for k in keys}
    assert all(got[i]['expr_type'] == 'no_target' and got[i]['loop'] == 1
               for i in range(FRAMES, 2 * FRAMES))  # fmt: skip
    assert res.summary()['no_target']['count'] == FRAMES + ref_no_target(ref)


def ref_no_target(records) -> int:
    return sum(r['expr_type'] == 'no_target' for r in records.values())


def test_bag_from_another_robot_replays_through_a_topic_mapping(bags, model, tmp_path):  # noqa: F811
    small, mapped = bags.small, bags.mapped
    mdir, params = model.dir, model.params
    res = poa_gres('replay', mapped, '--model', mdir, '--out', tmp_path / 'x')
    assert res.returncode == 2
    assert "no image topic '/camera/image_raw'" in res.stderr
    assert '/zed/left/image_rect_color [sensor_msgs/msg/Image]' in res.stderr
    assert '--topic image=' in res.stderr

    args = [a for role, topic in MAPPING.items() for a in ('--topic', f'{role}={topic}')]
    out = tmp_path / 'mapped'
    res = poa_gres('replay', mapped, *args, '--model', mdir, '--params-file',
                   params, '--threads', '1', '--out', out)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads((out / 'report.json').read_text())
    assert report['bag']['other_topics'] == ['/zed/imu/data']
    assert report['bag']['topics'] == MAPPING
    ref, ref_res = offline_records(small, mdir, KEEP_ALL)
    assert report['frames_scored'] == FRAMES
    assert report['metrics'] == json.loads(
        json.dumps(ref_res.summary())
    )  # bgr8 + padding: same pixels
    # 32FC1 metres with row padding (ZED) gives the 3D errors of 16UC1 millimetres (RealSense)
    got, want = report['geometry_3d'], _geometry_3d(ref_res)
    assert got['frames_with_depth'] == want['frames_with_depth'] == FRAMES
    for key in ('centroid_error_mm', 'gt_mask_lift_error_mm'):
        for stat in ('count', 'median', 'p90'):
            assert got[key][stat] == pytest.approx(want[key][stat], abs=1e-3), (key, stat)
    assert got['sim_distance_mm']['count'] == 0  # the mapped bag has no object poses


def _geometry_3d(result):
    from poa_gres_ros.bag.report import build_report

    return build_report(result, [], {})['geometry_3d']


def test_topic_map_and_live_matching_rules():
    from poa_gres_ros.bag import messages as M
    from poa_gres_ros.bag.live_eval import match_outputs
    from poa_gres_ros.bag.timeline import parse_topic_map

    assert parse_topic_map(['image=/zed/left/image_rect_color']) == {
        'image': '/zed/left/image_rect_color'
    }
    for bad in (['image:/x'], ['camera=/x'], ['image=relative']):
        with pytest.raises(ValueError, match='--topic'):
            parse_topic_map(bad)

    class Msg:  # the fields matching reads
        def __init__(self, ns, inference_ms=10.0):
            self.header = type('H', (), {'stamp': M.time_msg(ns)})()
            self.inference_time_ms = inference_ms

    stamps = {0: 100, 1: 200, 2: 100, 3: 200}  # a loop: frames 2, 3 repeat the stamps of 0, 1
    published = [(0, 0.0), (1, 0.1), (2, 1.0), (3, 1.1)]
    outputs = [(0.05, Msg(100)), (1.05, Msg(100)), (1.3, Msg(200)), (1.4, Msg(300))]
    matched, unmatched = match_outputs(published, outputs, stamps)
    assert [(i, t) for i, t, _ in matched] == [(0, 0.05), (2, 1.05), (3, 1.3)]
    assert unmatched == 1  # stamp 300 was never published
    # frame 1's result took 1.2 s to compute: it arrives after frame 3 (same stamp) was
    # published, but began before it, so it is frame 1's; frame 3's own result comes later
    outputs = [(0.05, Msg(100)), (1.05, Msg(100)), (1.3, Msg(200, 1200.0)), (1.5, Msg(200))]
    matched, unmatched = match_outputs(published, outputs, stamps)
    assert [(i, t) for i, t, _ in matched] == [(0, 0.05), (2, 1.05), (1, 1.3), (3, 1.5)]
    assert unmatched == 0
