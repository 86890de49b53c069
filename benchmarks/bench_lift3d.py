"""What the 3D lifting adds to gres_node's per-frame time, at 640x480 with 10 instances.

    python benchmarks/bench_lift3d.py                      # shipped model, data/demo_bag
    python benchmarks/bench_lift3d.py --frames 40 --backend torch

For each frame of a tabletop bag with depth (640x480 rgb8 + 16UC1; rendered with
``make-bag`` into ``--bag`` if missing), interleaved so both parts see the same machine load:

- **2D** (what the node does per frame today): ``ros.frame_processor.FrameProcessor.run``, i.e.
  image conversion, ``Predictor.predict`` and the /gres/instances message (rclpy classes),
  with relevance_threshold 0 and max_instances 10 so every frame has 10 real instance masks;
- **3D** (what ``enable_3d`` adds, ``ros.depth_input.DepthInput.fill`` without the ROS
  plumbing): depth decoding and checks, CameraInfo intrinsics, the lifting of the 10 masks
  (``core.geometry3d.lift_instances``) and their GresInstance3D messages;
- and, separately, the lazy outputs built only for subscribers: the PointCloud2 and the
  MarkerArray.

Both run in one worker thread, as in the node (its inference callback runs on an executor
thread; torch / ONNX Runtime threads in the main thread of a loaded machine run much slower,
see bench_node_latency.py). Prints medians and p90 of each part and the ratio
median(3D) / median(2D) (target <= 0.05).
"""

from __future__ import annotations

import argparse
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def _frames(bag: Path, n: int):
    """(rgb8 Image msg, depth msg, CameraInfo msg, instruction) as rclpy messages."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    from poa_gres_ros.bag.timeline import BagTimeline
    from poa_gres_ros.conversions.result_msgs import stamp_ns

    tl = BagTimeline.open(bag)
    if 'depth' not in tl.topics:
        raise SystemExit(f'{bag} has no depth topic: render one with poa-gres make-bag')
    text = {f.stamp_ns: f.instruction.text for f in tl.frames if f.instruction is not None}
    by_stamp: dict[int, dict] = {}
    for role, _, _, _, raw, _ in tl.raw_messages(['image', 'depth', 'camera_info']):
        cls = CameraInfo if role == 'camera_info' else Image
        msg = deserialize_message(raw, cls)
        by_stamp.setdefault(stamp_ns(msg.header.stamp), {})[role] = msg
    out = []
    for stamp, parts in sorted(by_stamp.items()):
        if len(parts) == 3 and stamp in text:
            out.append((parts['image'], parts['depth'], parts['camera_info'], text[stamp]))
    step = max(1, len(out) // n)
    return out[::step][:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', default='tabletop', help='model folder or installed name')
    ap.add_argument('--backend', default='auto', help='auto, onnxruntime, torch, tensorrt')
    ap.add_argument('--bag', default='data/demo_bag', help='bag with depth (made if missing)')
    ap.add_argument('--frames', type=int, default=20, help='measured frames')
    ap.add_argument('--instances', type=int, default=10, help='instances per frame')
    args = ap.parse_args()

    from poa_gres_ros.conversions.depth3d import depth_inputs, geometry_msg
    from poa_gres_ros.core.geometry3d import lift_instances
    from poa_gres_ros.core.thresholds import Thresholds
    from poa_gres_ros.inference import Predictor, resolve_model_dir
    from poa_gres_ros.ros import geometry_viz
    from poa_gres_ros.ros.frame_processor import Frame, FrameProcessor
    from poa_gres_ros.ros.instruction_state import Instruction, InstructionState
    from poa_gres_ros.ros.result_msgs import rclpy_message_class

    bag = Path(args.bag)
    if not (bag / 'metadata.yaml').exists():
        from poa_gres_ros.bag.make_bag import BagSpec, make_bag

        print(f'rendering {bag} (1 scene, 640x480, 16UC1 depth)')
        make_bag(bag, BagSpec(scenes=1, seconds_per_scene=4.0))
    frames = _frames(bag, args.frames)
    th = Thresholds(relevance=0.0, no_target=1.0, max_instances=args.instances)
    pool = ThreadPoolExecutor(1)  # the node's inference runs on an executor thread
    predictor = pool.submit(
        Predictor.from_model_dir, resolve_model_dir(args.model), backend=args.backend,
        thresholds=th,
    ).result()  # fmt: skip
    proc = FrameProcessor(predictor, InstructionState(0.0), print)
    ids: dict[str, Instruction] = {}

    def two_d(img, text):
        instr = ids.setdefault(text, Instruction(len(ids) + 1, text, 0))
        return proc.run(Frame(img, instr, time.monotonic(), 'image'), th)

    def three_d(out, depth_msg, info_msg):
        res = out.result
        depth_m, intr = depth_inputs(depth_msg, info_msg, (res.mask.height, res.mask.width))
        boxes = [(b.x_offset, b.y_offset, b.x_offset + b.width, b.y_offset + b.height)
                 for b in (i.bbox for i in res.instances)]  # fmt: skip
        geos = lift_instances([i.mask for i in out.prediction.instances], depth_m, intr, boxes)
        for inst, geo in zip(res.instances, geos):
            inst.geometry = geometry_msg(geo, rclpy_message_class)
        return geos

    def lazy(out, geos):
        ids_ = [i.id for i in out.result.instances]
        geometry_viz.point_cloud(out.result.header, geos, ids_)
        geometry_viz.markers(out.result.header, out.result, geos)

    def timed(fn, *a):
        t0 = time.perf_counter()
        r = fn(*a)
        return r, (time.perf_counter() - t0) * 1e3

    img, depth_msg, info_msg, text = frames[0]  # warm-up: model, imports, caches
    for _ in range(2):
        out = pool.submit(two_d, img, text).result()
        pool.submit(lazy, out, pool.submit(three_d, out, depth_msg, info_msg).result()).result()
    t2, t3, tl, n_inst, n_valid = [], [], [], [], []
    for img, depth_msg, info_msg, text in frames:
        out, ms2 = pool.submit(timed, two_d, img, text).result()
        geos, ms3 = pool.submit(timed, three_d, out, depth_msg, info_msg).result()
        _, msl = pool.submit(timed, lazy, out, geos).result()
        t2.append(ms2)
        t3.append(ms3)
        tl.append(msl)
        n_inst.append(len(geos))
        n_valid.append(sum(g.valid for g in geos))
    pool.shutdown()
    predictor.close()

    def row(name, v):
        return f'{name:<44} p50 {np.median(v):8.2f} ms   p90 {np.percentile(v, 90):8.2f} ms'

    h, w = frames[0][0].height, frames[0][0].width
    print(f'{platform.node()}: {len(frames)} frames {w}x{h}, model {args.model} '
          f'({predictor.backend_name}), instances per frame {min(n_inst)}-{max(n_inst)} '
          f'(valid 3D: {min(n_valid)}-{max(n_valid)})')  # fmt: skip
    print(row('2D: convert + predict + result message', t2))
    print(row('3D: depth + lifting + GresInstance3D (enable_3d)', t3))
    print(row('lazy: PointCloud2 + MarkerArray (subscribed)', tl))
    ratio = np.median(t3) / np.median(t2)
    print(f'3D / 2D per-frame time (p50): {ratio:.4f}  ({ratio * 100:.2f} %, target <= 5 %)')
    print(f'3D + lazy outputs / 2D (p50): {(np.median(t3) + np.median(tl)) / np.median(t2):.4f}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
