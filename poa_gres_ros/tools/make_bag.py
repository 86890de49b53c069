"""Render tabletop scenes into a rosbag2 bag: a 10 Hz camera stream with instructions and
ground truth (the input of ``poa-gres replay`` and of the demo).

    poa-gres make-bag --out data/demo_bag
    poa-gres make-bag --out /tmp/small --scenes 2 --seconds-per-scene 2 --width 320 --height 240
    poa-gres make-bag --out bags/long --scenes 10 --storage sqlite3 --workers 2

Topics: /camera/image_raw (sensor_msgs/Image rgb8), /camera/camera_info,
/camera/aligned_depth_to_color/image_raw (the renderer's depth, 16UC1 mm or 32FC1 m),
/instruction (std_msgs/String, several per scene: single-target, multi-target and no-target
expressions), /gres/ground_truth (poa_gres_ros/GresInstances with the true instances and their
visible-surface 3D), /gres/ground_truth/objects (geometry_msgs/PoseArray, the simulator's
object poses). The bag is a pure function of the arguments (same seed, same messages). See
poa_gres_ros/bag/make_bag.py and docs/geometry3d.md.
"""

from __future__ import annotations

VERB = 'make-bag'
HELP = 'render tabletop scenes into a rosbag2 bag (camera stream, instructions, ground truth)'


def add_arguments(parser):
    parser.add_argument('--out', required=True, help='bag folder to write')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--scenes', type=int, default=3, help='segments, one scene each')
    parser.add_argument('--seconds-per-scene', type=float, default=8.0)
    parser.add_argument('--instructions-per-scene', type=int, default=2)
    parser.add_argument('--rate-hz', type=float, default=10.0, help='camera rate')
    parser.add_argument('--width', type=int, default=640, help='image width, px')
    parser.add_argument('--height', type=int, default=480, help='image height, px')
    parser.add_argument(
        '--depth-encoding',
        choices=('16UC1', '32FC1', 'none'),
        default='16UC1',
        help='depth topic: 16UC1 millimetres (RealSense), 32FC1 metres (ZED) or none',
    )
    parser.add_argument('--storage', choices=('mcap', 'sqlite3'), default='mcap')
    parser.add_argument('--workers', type=int, default=1, help='rendering processes')
    parser.add_argument('--force', action='store_true', help='replace an existing bag')


def run(args) -> int:
    from poa_gres_ros.bag.make_bag import BagSpec, make_bag

    spec = BagSpec(
        seed=args.seed,
        scenes=args.scenes,
        seconds_per_scene=args.seconds_per_scene,
        instructions_per_scene=args.instructions_per_scene,
        rate_hz=args.rate_hz,
        width_px=args.width,
        height_px=args.height,
        depth_encoding=args.depth_encoding,
    )
    s = make_bag(
        args.out, spec, storage=args.storage, workers=args.workers, force=args.force, progress=True
    )
    print(
        f'wrote {s["path"]} ({s["storage"]}) in {s["wall_s"]} s: {s["frames"]} frames, '
        f'{s["duration_s"]:.1f} s at {spec.rate_hz:g} Hz'
    )
    for topic, n in s['counts'].items():
        print(f'  {topic}: {n} messages')
    for i, ins in enumerate(s['instructions']):
        t = (ins['log_ns'] - spec.start_stamp_ns) / 1e9
        print(
            f'  instruction {i + 1} at {t:6.2f} s ({ins["expr_type"]}, {ins["template"]}, '
            f'{ins["frames_with_gt"]}/{ins["frames"]} frames with ground truth): '
            f'{ins["text"]!r}'
        )
    return 0
