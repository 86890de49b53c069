"""End-to-end latency through ROS versus the bare predictor, on the same frames.

    python benchmarks/bench_node_latency.py                       # shipped tabletop model
    poa-gres init-model --preset tabletop --out /tmp/tabletop_init
    python benchmarks/bench_node_latency.py --model /tmp/tabletop_init --frames 40

For each frame (640x480 rgb8 by default), interleaved so that both paths see the same machine
load: (a) ``Predictor.predict`` in this process; (b) publish the frame to gres_node (a real
process, config/gres.yaml) and wait for its /gres/instances result: publish -> result
received, one frame in flight at a time (no drops). Prints p50/p90 of both, the node's own
inference time, and the ratio ROS p50 / bare p50 (target: <= 1.10 at 640x480). The ROS path
adds serialisation, Fast DDS transport both ways (LARGE_DATA), image conversion, message
building and the result's deserialisation here.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import node_harness as H  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', default='tabletop', help='model folder or installed name')
    ap.add_argument('--frames', type=int, default=30, help='measured frames per path')
    ap.add_argument('--warmup', type=int, default=3, help='unmeasured frames per path')
    ap.add_argument('--height', type=int, default=480)
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--instruction', default='the red mug and the duck on the left')
    args = ap.parse_args()
    H.isolate_ros()

    from poa_gres_ros.inference import Predictor, resolve_model_dir

    model_dir = str(resolve_model_dir(args.model))
    log = Path(tempfile.mkdtemp(prefix='bench_node_')) / 'gres_node.log'
    node = H.NodeUnderTest(model_dir, log)
    client = H.Client()
    bare = Predictor.from_model_dir(model_dir)
    bare.set_instruction(args.instruction)
    imgs = H.frames(args.frames + args.warmup, args.height, args.width)
    try:
        client.instruct(args.instruction)
        H.wait_until_answering(client, node, imgs[0])
        bare_ms, ros_ms, node_ms = [], [], []
        for i, rgb in enumerate(imgs):
            t0 = time.perf_counter()
            bare.predict(rgb)
            t_bare = (time.perf_counter() - t0) * 1e3
            stamp = (10 + i) * H.NS_PER_S
            msg = H.image_msg(rgb, stamp)  # built before timing: a camera hands it over ready
            t_pub = client.publish(msg)
            if not client.wait_for(stamp, 60.0):
                raise RuntimeError(f'no result for frame {i}; log: {log}')
            t_arrival, result = client.arrivals[stamp]
            if i >= args.warmup:
                bare_ms.append(t_bare)
                ros_ms.append((t_arrival - t_pub) * 1e3)
                node_ms.append(result.inference_time_ms)
    finally:
        code, stop_s = node.stop()
        client.close()
    p = H.percentile
    ratio = p(ros_ms, 50) / p(bare_ms, 50)
    print(f'machine: {platform.processor() or platform.machine()}, '
          f'{__import__("os").cpu_count()} CPUs; model {model_dir}; '
          f'{args.width}x{args.height} rgb8; {len(bare_ms)} frames per path')  # fmt: skip
    print(f'{"path":<34}{"p50 ms":>10}{"p90 ms":>10}')
    for name, vals in (('bare Predictor.predict', bare_ms),
                       ('node: inference_time_ms', node_ms),
                       ('ROS end-to-end (publish->result)', ros_ms)):  # fmt: skip
        print(f'{name:<34}{p(vals, 50):>10.1f}{p(vals, 90):>10.1f}')
    print(f'ratio ROS p50 / bare p50 = {ratio:.3f} (target <= 1.10: '
          f'{"met" if ratio <= 1.10 else "NOT met"}); node exit status {code} after '
          f'{stop_s:.2f} s of SIGINT')  # fmt: skip
    return 0


if __name__ == '__main__':
    sys.exit(main())
