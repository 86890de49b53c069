"""The end-to-end demo (``make demo``): the node with the shipped model on a replayed camera bag.

    poa-gres demo                        shipped model 'tabletop', bag data/demo_bag
    poa-gres demo --model /tmp/m         another model folder
    poa-gres demo --regenerate           render the demo bag again

Steps: (1) the demo bag, 24 s of a 10 Hz 640x480 camera slowly moving over three rendered
tabletop scenes with six instructions (single-target, multi-target, no-target), is rendered
into data/demo_bag if it is missing or was made with other settings (deterministic: the same
bytes of every message on any machine with the same pybullet build; about 40 s on 2 busy
cores); (2) gres_node starts with the model and config/gres.yaml, like ``poa-gres node``;
(3) the bag is played into it in real
time with /clock (use_sim_time), its results are recorded and scored against the bag's
ground truth; the node and the player run in ROS domain 101 (``--domain-id``; the last of the
ids 0-101 that are safe on Linux, outside the 1-100 the tests take), so the demo neither sees
nor disturbs other ROS 2 nodes on the machine, e.g. a robot camera on /camera/image_raw;
(4) a short summary is printed and the report (Markdown, JSON, figures) is written to
reports/demo. The node processes frames slower than 10 Hz on a CPU, so it drops frames
(newest frame wins); the summary reports them.

Exit status: 0 on success, 1 when the node answered no frame, 2 on errors (no model, no ROS),
3 when the node failed (it exited on its own, or not with status 0).

The node runs with ``image_qos:=auto`` (``--image-qos``): the player's camera publisher is
reliable, as most camera drivers' default profile, and 'auto' subscribes reliable to it; with
the parameter file's best-effort 'sensor_data', Fast DDS loses about half of the 640x480
frames in transport on 2 loaded cores (measured: 131 of 240).
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

VERB = 'demo'
DEMO_DOMAIN_ID = 101
HELP = 'end-to-end demo: render the demo bag, start the node, replay live, print the summary'


def demo_spec():
    """The demo bag's BagSpec: 3 scenes x 8 s at 10 Hz, 640 x 480, 2 instructions each."""
    from poa_gres_ros.bag.make_bag import BagSpec

    return BagSpec(seed=0, scenes=3, seconds_per_scene=8.0, instructions_per_scene=2)


def add_arguments(parser):
    parser.add_argument('--model', default='tabletop', help="model folder or name ('tabletop')")
    parser.add_argument('--bag', default='data/demo_bag', help='demo bag folder')
    parser.add_argument('--out', default='reports/demo', help='report folder')
    parser.add_argument('--regenerate', action='store_true', help='render the bag again')
    parser.add_argument('--workers', type=int, default=2, help='bag rendering processes')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--image-qos', default='auto', help="the node's image_qos parameter")
    parser.add_argument(
        '--domain-id',
        type=int,
        default=DEMO_DOMAIN_ID,
        help='ROS_DOMAIN_ID of the demo (its own, so a robot camera publishing '
        '/camera/image_raw on this host does not mix in)',
    )
    parser.add_argument('--startup-timeout', type=float, default=180.0, help='node start, s')


def ensure_bag(path: Path, workers: int, regenerate: bool = False) -> tuple[bool, float]:
    """Render the demo bag into ``path`` unless an identical one is there.

    Written to ``.<name>.partial/<name>`` beside it first (the bag's file is named after its
    folder: ``<name>.mcap``) and moved into place when complete, so an interrupted run never
    leaves a half bag behind. Returns (rendered?, seconds).
    """
    from poa_gres_ros.bag.make_bag import make_bag, read_spec

    spec = demo_spec()
    if not regenerate and read_spec(path) == asdict(spec):
        return False, 0.0
    t0 = time.perf_counter()
    staging = path.with_name(f'.{path.name}.partial')
    tmp = staging / path.name
    print(f'[demo] rendering the demo bag into {path} (24 s of 10 Hz camera, 3 scenes)')
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    make_bag(tmp, spec, workers=workers, force=True, progress=True)
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    staging.rmdir()
    return True, time.perf_counter() - t0


def _resolve_model(name: str) -> Path:
    from poa_gres_ros.inference import resolve_model_dir

    try:
        return resolve_model_dir(name)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f'{exc}. Pass --model with a model folder, e.g. one written by '
            '`poa-gres init-model --preset tabletop --out /tmp/tabletop_init` (untrained)'
        ) from None


def run(args) -> int:
    from poa_gres_ros.bag.live_eval import evaluate_live
    from poa_gres_ros.bag.report import format_summary, write_report
    from poa_gres_ros.bag.timeline import BagTimeline
    from poa_gres_ros.core.node_settings import NodeSettings, read_parameter_file
    from poa_gres_ros.ros.launch_commands import config_file
    from poa_gres_ros.tools.replay import import_player

    LiveSettings, play_live = import_player()  # noqa: N806 - a class
    if args.domain_id is not None:
        os.environ['ROS_DOMAIN_ID'] = str(args.domain_id)
    t0 = time.perf_counter()
    model = _resolve_model(args.model)
    bag = Path(args.bag)
    rendered, bag_s = ensure_bag(bag, args.workers, args.regenerate)
    if not rendered:
        print(f'[demo] using the demo bag in {bag} (--regenerate renders it again)')
    timeline = BagTimeline.open(bag)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    params = config_file('gres.yaml')
    domain = os.environ.get('ROS_DOMAIN_ID', '0')
    seconds = timeline.summary()['duration_s']
    print(
        f'[demo] starting gres_node with model {model} (ROS domain {domain}); playing '
        f'{len(timeline.frames)} frames ({seconds:.0f} s) live with /clock'
    )
    t1 = time.perf_counter()
    settings = LiveSettings(
        rate=args.rate,
        clock=True,
        model=str(model),
        params_file=str(params),
        startup_timeout_s=args.startup_timeout,
        log_path=str(out / 'node.log'),
        extra_ros_args=('-p', f'image_qos:={args.image_qos}'),
    )
    try:
        capture = play_live(timeline, settings)
    except RuntimeError as exc:  # the node exited or never became active
        print(f'[demo] gres_node failed: {exc}')
        return 3
    result = evaluate_live(timeline, capture)
    live_s = time.perf_counter() - t1
    values = read_parameter_file(params)
    thresholds = NodeSettings.from_values(values).thresholds
    meta = {
        'model': str(model),
        'backend': values.get('backend', 'auto'),
        'params_file': str(params),
        'thresholds': asdict(thresholds),
        'command': 'poa-gres demo',
    }
    paths = write_report(str(out), result, timeline.instructions, meta)
    total = time.perf_counter() - t0
    print()
    print(format_summary(paths['report'], paths))
    bag_note = f'rendered in {bag_s:.0f} s' if rendered else 'reused'
    print(
        f'  time: {total:.0f} s in all (bag {bag_note}, node start + live replay + scoring '
        f'{live_s:.0f} s)'
    )
    node = result.live['node']
    if node.get('exit_code') != 0:
        print(f'[demo] gres_node exited with status {node.get("exit_code")}; log {node["log"]}')
        return 3
    if not result.records:
        print(f'[demo] the node answered no frame; its log: {node["log"]}')
        return 1
    return 0
