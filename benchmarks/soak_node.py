"""Overload soak: a 30 Hz camera into gres_node for minutes; latency and memory over time.

    python benchmarks/soak_node.py                          # 10 minutes, shipped tabletop model
    python benchmarks/soak_node.py --duration-s 120 --model /tmp/tabletop_init

Publishes 640x480 rgb8 frames at ``--rate-hz`` (default 30, faster than the model on CPU, so
the node must drop stale frames) to gres_node running as a real process with
config/gres.yaml. For every result, the end-to-end latency is publish -> result received
(matched by header stamp). Every ``--window-s`` it prints the window's latency p50 / p99,
frames received / processed / dropped (from /diagnostics) and the node's resident memory
(VmRSS). The summary compares the first and last windows. Targets: p99 <= 2 x p50;
memory growth <= 5 % (RSS at the end vs after the first window, i.e. after the model and
the middleware have settled). ``--reliable`` publishes and subscribes images reliably
(image_qos:=reliable): with the default best-effort subscription Fast DDS drops about half of
the 640x480 frames in transport (counted as 'lost').
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import node_harness as H  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--model', default='tabletop', help='model folder or installed name')
    ap.add_argument('--duration-s', type=float, default=600.0, help='soak length in seconds')
    ap.add_argument('--rate-hz', type=float, default=30.0, help='camera rate')
    ap.add_argument('--window-s', type=float, default=30.0, help='report period')
    ap.add_argument('--height', type=int, default=480)
    ap.add_argument('--width', type=int, default=640)
    ap.add_argument('--reliable', action='store_true', help='image_qos reliable both ways')
    args = ap.parse_args()
    H.isolate_ros()

    from poa_gres_ros.inference import resolve_model_dir

    model_dir = str(resolve_model_dir(args.model))
    log = Path(tempfile.mkdtemp(prefix='soak_node_')) / 'gres_node.log'
    extra = ['-p', 'image_qos:=reliable'] if args.reliable else []
    node = H.NodeUnderTest(model_dir, log, extra)
    client = H.Client(reliable_images=args.reliable)

    imgs = H.frames(8, args.height, args.width)
    windows = []
    try:
        client.instruct('the red mug and the duck on the left')
        H.wait_until_answering(client, node, imgs[0])
        sent: dict[int, float] = {}
        period = 1.0 / args.rate_hz
        t_start = time.monotonic()
        t_next, t_window, k = t_start, t_start, 0
        window_lat: list[float] = []
        seen: set[int] = set()
        print(f'soak: {args.duration_s:.0f} s at {args.rate_hz:.0f} Hz, {args.width}x'
              f'{args.height}, model {model_dir}; node log {log}')  # fmt: skip
        print(f'{"t_s":>6}{"p50_ms":>9}{"p99_ms":>9}{"results":>9}{"recv":>7}{"proc":>7}'
              f'{"drop":>7}{"lost":>7}{"rss_MiB":>9}')  # fmt: skip
        while time.monotonic() - t_start < args.duration_s:
            now = time.monotonic()
            if now >= t_next:
                stamp = time.time_ns()  # wall clock: the node's stamp latency is valid too
                sent[stamp] = client.publish(H.image_msg(imgs[k % len(imgs)], stamp))
                k += 1
                t_next += period
                if now - t_next > 1.0:  # this process fell behind: do not burst to catch up
                    t_next = now + period
            client.spin(max(0.0, min(t_next - time.monotonic(), 0.005)))
            for stamp, (t_arr, _msg) in list(client.arrivals.items()):
                if stamp in sent and stamp not in seen:
                    seen.add(stamp)
                    window_lat.append((t_arr - sent.pop(stamp)) * 1e3)
            client.arrivals.clear()
            if now - t_window >= args.window_s:
                t_window = now
                d = client.last_diag
                row = (now - t_start, H.percentile(window_lat, 50), H.percentile(window_lat, 99),
                       len(window_lat), d.get('received', '?'), d.get('processed', '?'),
                       d.get('dropped_stale', '?'), d.get('lost_in_transport', '?'),
                       node.rss_mb())  # fmt: skip
                windows.append(row)
                print(f'{row[0]:>6.0f}{row[1]:>9.1f}{row[2]:>9.1f}{row[3]:>9}{row[4]:>7}'
                      f'{row[5]:>7}{row[6]:>7}{row[7]:>7}{row[8]:>9.1f}', flush=True)  # fmt: skip
                window_lat = []
                stale = [s for s, t in sent.items() if time.perf_counter() - t > 30]
                for s in stale:  # dropped frames never get a result: forget them
                    sent.pop(s)
    finally:
        code, stop_s = node.stop()
        client.close()
    if len(windows) < 2:
        print('too short for a summary: run for at least two windows')
        return 0
    p50s = [w[1] for w in windows]
    p99s = [w[2] for w in windows]
    rss0, rss1 = windows[0][8], windows[-1][8]
    growth = (rss1 - rss0) / rss0 * 100.0
    worst = max(p99 / p50 for p50, p99 in zip(p50s, p99s))
    print(f'summary: latency p50 {min(p50s):.1f}-{max(p50s):.1f} ms, p99 {min(p99s):.1f}-'
          f'{max(p99s):.1f} ms, worst window p99/p50 = {worst:.2f} (target <= 2: '
          f'{"met" if worst <= 2 else "NOT met"}); RSS {rss0:.1f} -> {rss1:.1f} MiB '
          f'({growth:+.2f} %, target <= 5 %: {"met" if growth <= 5 else "NOT met"}); '
          f'node exit status {code} after {stop_s:.2f} s of SIGINT')  # fmt: skip
    return 0


if __name__ == '__main__':
    sys.exit(main())
