"""Replay a rosbag2 bag through the model and score it against the bag's ground truth.

    poa-gres replay data/demo_bag                         offline: Predictor on every frame
    poa-gres replay data/demo_bag --every 5 --model M     offline, every 5th frame
    poa-gres replay data/demo_bag --live                  start gres_node, play, record
    poa-gres replay BAG --live --rate 0.5 --clock         half speed, /clock + use_sim_time
    poa-gres replay BAG --live --connect                  use a gres_node that is running
    poa-gres replay robot_bag --topic image=/zed/left/image_rect_color \\
        --topic instruction=/speech/command --topic ground_truth=/labels

Offline: images are paired with the instruction active at their log time and scored with the
training evaluator (GresEvaluator, source resolution); see poa_gres_ros/bag/timeline.py for the
pairing rules, including bags whose header stamps jump backwards (looped recordings).
Live: the bag is published at its recorded timing (raw CDR), the node's /gres/instances results
are matched to the frames by header stamp and scored the same way, plus end-to-end latency
p50/p99, frames dropped (the node's single-slot buffer, transport) and results bound to the
wrong instruction; see poa_gres_ros/ros/bag_player.py and bag/live_eval.py.

Thresholds (offline) and the node's parameters (live) come from --params-file (default: the
installed config/gres.yaml), so both modes score with the same values. Writes report.json,
report.md, frames.jsonl and figures to --out. Exit status 1 when no frame produced a result,
2 on errors, 3 when a node started here failed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

VERB = 'replay'
HELP = 'replay a bag offline or into the live node and report GRES metrics and latency'


def add_arguments(parser):
    parser.add_argument('bag', help='rosbag2 folder (mcap or sqlite3)')
    parser.add_argument('--out', default=None, help='report folder (default reports/replay_*)')
    parser.add_argument('--model', default=None, help='model folder or name (default: params)')
    parser.add_argument('--backend', default=None, help='backend (default: params file)')
    parser.add_argument('--device', default='cpu', help='offline device: cpu, cuda, cuda:1')
    parser.add_argument('--params-file', default=None, help='node parameters (gres.yaml)')
    parser.add_argument(
        '--topic',
        action='append',
        default=[],
        metavar='ROLE=TOPIC',
        help='map a role (image, camera_info, instruction, ground_truth) to '
        'the bag topic that plays it (repeatable)',
    )
    parser.add_argument('--every', type=int, default=1, help='offline: every n-th frame')
    parser.add_argument('--max-frames', type=int, default=None, help='offline: at most N')
    parser.add_argument('--threads', type=int, default=None, help='offline: torch threads')
    live = parser.add_argument_group('live replay')
    live.add_argument('--live', action='store_true', help='replay into gres_node over ROS 2')
    live.add_argument('--connect', action='store_true', help='use a running node')
    live.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    live.add_argument('--clock', action='store_true', help='publish /clock, use_sim_time')
    live.add_argument('--image-qos', choices=('reliable', 'best_effort'), default='reliable')
    live.add_argument('--image-topic', default=None, help='publish images here')
    live.add_argument(
        '--node-param',
        action='append',
        default=[],
        metavar='NAME:=VALUE',
        help='extra parameter of the started node, e.g. image_qos:=auto',
    )
    live.add_argument('--node-name', default='gres_node', help='node whose diagnostics count')
    live.add_argument('--startup-timeout', type=float, default=180.0, help='seconds')


class NodeFailed(RuntimeError):
    """The gres_node started for a live replay exited or never became active."""


def _meta(args, model, backend, thresholds) -> dict:
    from dataclasses import asdict

    return {
        'model': model,
        'backend': backend,
        'thresholds': asdict(thresholds),
        'params_file': str(args.params_file),
        'command': 'poa-gres replay',
    }


def run(args) -> int:
    from poa_gres_ros.bag.report import format_summary, write_report
    from poa_gres_ros.bag.timeline import BagTimeline, parse_topic_map
    from poa_gres_ros.core.node_settings import NodeSettings, read_parameter_file
    from poa_gres_ros.ros.launch_commands import config_file

    timeline = BagTimeline.open(args.bag, parse_topic_map(args.topic))
    if args.params_file is None:
        args.params_file = str(config_file('gres.yaml'))
    values = read_parameter_file(args.params_file)
    thresholds = NodeSettings.from_values(values).thresholds
    model = args.model or values.get('model_dir', 'tabletop')
    backend = args.backend or values.get('backend', 'torch')
    out = Path(args.out or f'reports/replay_{"live" if args.live else "offline"}')
    t0 = time.perf_counter()
    if args.live:
        try:
            result = _live(args, timeline, out, model)
        except NodeFailed as exc:
            print(f'poa-gres replay: {exc}', file=sys.stderr)
            return 3
    else:
        result = _offline(args, timeline, model, backend, thresholds)
    meta = _meta(args, model, backend, thresholds)
    meta['wall_s'] = round(time.perf_counter() - t0, 2)
    paths = write_report(str(out), result, timeline.instructions, meta)
    print(format_summary(paths['report'], paths))
    node = (result.live or {}).get('node', {})
    if node.get('started') and node.get('exit_code') != 0:
        print(
            f'poa-gres replay: gres_node exited with status {node.get("exit_code")}; '
            f'log {node.get("log")}'
        )
        return 3
    return 0 if result.records else 1


def _offline(args, timeline, model, backend, thresholds):
    import torch

    from poa_gres_ros.bag.replay import replay_offline
    from poa_gres_ros.inference import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = Predictor.from_model_dir(
        model, backend=backend, device=args.device, thresholds=thresholds
    )
    try:
        predictor.warmup()  # the first frames are not slow (as in the node's activation)
        return replay_offline(
            timeline,
            predictor,
            thresholds,
            every=args.every,
            max_frames=args.max_frames,
            progress=True,
        )
    finally:
        predictor.close()


def import_player():
    """``(LiveSettings, play_live)`` from ros/bag_player.py; RuntimeError naming the fix when
    rclpy or the built messages are not importable."""
    try:
        from poa_gres_ros.ros.bag_player import LiveSettings, play_live
    except ImportError as exc:
        raise RuntimeError(
            f'live replay needs ROS 2 (rclpy) and the built poa_gres_ros messages ({exc}); '
            'run `make setup` and `source scripts/env.sh`'
        ) from None
    return LiveSettings, play_live


def _live(args, timeline, out: Path, model):
    from poa_gres_ros.bag.live_eval import evaluate_live

    LiveSettings, play_live = import_player()  # noqa: N806 - a class
    extra = []
    for item in args.node_param:
        if ':=' not in item:
            raise ValueError(f'--node-param {item!r}: use NAME:=VALUE')
        extra += ['-p', item]

    out.mkdir(parents=True, exist_ok=True)
    settings = LiveSettings(
        rate=args.rate,
        clock=args.clock,
        image_qos=args.image_qos,
        image_topic=args.image_topic,
        start_node=not args.connect,
        model=args.model or model,
        backend=args.backend,
        params_file=args.params_file,
        node_name=args.node_name,
        startup_timeout_s=args.startup_timeout,
        log_path=str(out / 'node.log'),
    )
    try:
        capture = play_live(timeline, settings)
    except RuntimeError as exc:  # the node exited, failed to start or never became active
        raise NodeFailed(str(exc)) from exc
    return evaluate_live(timeline, capture)
