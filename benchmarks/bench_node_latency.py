"""End-to-end latency through ROS versus the bare predictor, on the same frames.

    python benchmarks/bench_node_latency.py                       # shipped tabletop model
    poa-gres init-model --preset tabletop --out /tmp/tabletop_init
    python benchmarks/bench_node_latency.py --model /tmp/tabletop_init --frames 40
    python benchmarks/bench_node_latency.py --backend torch --num-threads 1

Both paths run the same backend with the same thread count (``--backend``, default
onnxruntime, what the node's 'auto' picks on a CPU; ``--num-threads``, default 0 = the
backend's default, passed to the node as its ``num_threads`` parameter), so the only
difference between them is ROS. For each frame (640x480 rgb8 by default), interleaved so
that both paths see the same machine load: (a) ``Predictor.predict`` in this process; (b)
publish the frame to gres_node (a real process, config/gres.yaml) and wait for its
/gres/instances result: publish -> result received, one frame in flight at a time (no
drops). Prints p50/p90 of both, the node's own
inference time, the ratio ROS p50 / bare p50 and the per-frame overhead (median of end to
end / the node's own model time for that frame; target: <= 1.10 at 640x480). The ROS path
adds serialisation, Fast DDS transport both ways (LARGE_DATA), image conversion, message
building and the result's deserialisation here. Images go reliable (image_qos:=reliable).

The bare predictor runs in a worker thread, as in the node (its inference callback runs on an
executor thread): on a loaded 2-core machine torch's two OpenMP threads in the *main* thread
spin against each other and run 5-20x slower than in a worker thread (measured here: tiny
model 222 ms vs 12 ms p50, tabletop preset ~5 s vs ~0.8 s per frame), so a main-thread
baseline would flatter the node. ``--bare-main-thread`` measures that baseline instead.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
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
    ap.add_argument('--bare-main-thread', action='store_true', help='baseline in main thread')
    ap.add_argument('--backend', default='onnxruntime', help='backend of both paths')
    ap.add_argument('--num-threads', type=int, default=0, help='threads of both (0: default)')
    args = ap.parse_args()
    H.isolate_ros()

    from poa_gres_ros.inference import Predictor, resolve_model_dir

    model_dir = str(resolve_model_dir(args.model))
    log = Path(tempfile.mkdtemp(prefix='bench_node_')) / 'gres_node.log'
    # Reliable both ways: best-effort frames above ~0.5 MB are dropped now and then by Fast DDS,
    # and one lost frame would stall this one-frame-in-flight measurement.
    same = ['-p', f'backend:={args.backend}', '-p', f'num_threads:={args.num_threads}']
    node = H.NodeUnderTest(model_dir, log, ['-p', 'image_qos:=reliable', *same])
    client = H.Client(reliable_images=True)
    threads = {'num_threads': args.num_threads} if args.num_threads > 0 else {}
    bare = Predictor.from_model_dir(model_dir, backend=args.backend, **threads)
    bare.set_instruction(args.instruction)
    imgs = H.frames(args.frames + args.warmup, args.height, args.width)
    try:
        client.instruct(args.instruction)
        H.wait_until_answering(client, node, imgs[0])
        bare_ms, ros_ms, node_ms = [], [], []
        worker = ThreadPoolExecutor(max_workers=1)
        for i, rgb in enumerate(imgs):
            t0 = time.perf_counter()
            if args.bare_main_thread:
                bare.predict(rgb)
            else:
                worker.submit(bare.predict, rgb).result()
            t_bare = (time.perf_counter() - t0) * 1e3
            stamp = (10 + i) * H.NS_PER_S
            msg = H.image_msg(rgb, stamp)  # built before timing: a camera hands it over ready
            t_pub = client.publish(msg)
            if not client.wait_for(stamp, 60.0):
                raise RuntimeError(
                    f'no result for frame {i} (got {sorted(client.arrivals)}); log: {log}'
                )
            t_arrival, result = client.arrivals[stamp]
            if i >= args.warmup:
                bare_ms.append(t_bare)
                ros_ms.append((t_arrival - t_pub) * 1e3)
                node_ms.append(result.inference_time_ms)
        t_end = time.monotonic() + 3.0  # the node's /diagnostics of the measured frames
        while time.monotonic() < t_end:
            client.spin(0.1)
        diag = dict(client.last_diag)
    finally:
        code, stop_s = node.stop()
        client.close()
    p = H.percentile
    ratio = p(ros_ms, 50) / p(bare_ms, 50)
    # The same ratio per frame, inside one process pair: end-to-end over the node's own model
    # time for that frame. Robust to load changes between frames on a shared machine.
    per_frame = p([r / m for r, m in zip(ros_ms, node_ms)], 50)
    print(f'machine: {platform.processor() or platform.machine()}, '
          f'{__import__("os").cpu_count()} CPUs; model {model_dir}; '
          f'{args.width}x{args.height} rgb8; {len(bare_ms)} frames per path; both on '
          f'{bare.backend_name}, num_threads {args.num_threads or "default"}')  # fmt: skip
    print(f'{"path":<44}{"p50 ms":>10}{"p90 ms":>10}')
    where = 'main thread' if args.bare_main_thread else 'worker thread'
    for name, vals in ((f'bare Predictor.predict ({where})', bare_ms),
                       ('node: inference_time_ms', node_ms),
                       ('ROS end-to-end (publish->result)', ros_ms)):  # fmt: skip
        print(f'{name:<44}{p(vals, 50):>10.1f}{p(vals, 90):>10.1f}')
    if diag:
        print(f'node internals (last 10 s, /diagnostics): receipt->published p50 '
              f'{float(diag["latency_receipt_ms_p50"]):.1f} ms, model p50 '
              f'{float(diag["latency_inference_ms_p50"]):.1f} ms')  # fmt: skip
    print(f'ratio ROS p50 / bare p50 = {ratio:.3f}')
    print(f'per-frame overhead: median(end-to-end / node model time) = {per_frame:.3f} (target '
          f'<= 1.10: {"met" if per_frame <= 1.10 else "NOT met"}); node exit status {code} '
          f'after {stop_s:.2f} s of SIGINT')  # fmt: skip
    return 0


if __name__ == '__main__':
    sys.exit(main())
