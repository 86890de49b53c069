"""Write rendered tabletop segments into a rosbag2 bag (mcap or sqlite3) with rosbags.

Topics (the default topic roles of ``bag.timeline``):

| topic | type | what |
|---|---|---|
| /camera/image_raw | sensor_msgs/Image | rgb8, header stamp = capture time, frame_id |
| /camera/camera_info | sensor_msgs/CameraInfo | K of the renderer (``CameraPose.K``), same header |
| /camera/aligned_depth_to_color/image_raw | sensor_msgs/Image | the renderer's depth, same header |
| /instruction | std_msgs/String | each instruction half a frame period before its window |
| /gres/ground_truth | poa_gres_ros/GresInstances | true instances, header = the image's |
| /gres/ground_truth/objects | geometry_msgs/PoseArray | simulator pose per true instance |

Depth (``BagSpec.depth_encoding``): the renderer's own depth buffer, linearised to metres along
the optical axis, pixel for pixel aligned with the image (same render call), as ``16UC1``
millimetres (0 where nothing was hit, the RealSense convention; default) or ``32FC1`` metres
(NaN there, the ZED convention), or no depth topic ('none').

3D ground truth (docs/geometry3d.md#ground-truth): each true instance's ``geometry`` is the visible
surface of its exact mask with the renderer's float depth (``core.geometry3d.visible_surface``:
centroid = mean, box = min / max, no erosion), ``depth_status`` DEPTH_OK. The PoseArray holds,
in the same order as the instances, the object's simulator position (the centre of its
axis-aligned bounding box after settling) and base orientation in the camera optical frame.

Time: frame ``j`` of the bag (segments follow each other without a gap) has header stamp
``start_stamp_ns + j / rate_hz``; the bag's log (receive) times are the stamp plus 4 ms
(image), 4.5 ms (camera_info), 5 ms (depth), 6 ms (ground truth) and 6.5 ms (object poses),
as a recorder on the robot would see them; instructions carry no header and are logged at the
stamp of their first frame minus half a period. So log times strictly increase and every
reader orders the bag the same way.

Scenes: scene ``s`` uses the tabletop scene seed ``dataset.scene_seed(seed, 'test',
SCENE_INDEX_OFFSET + s)``: the test split's seed range (never a training scene) and its
composition rule (no held-out colour x type pair). Determinism: the bag's messages are a pure
function of the ``BagSpec`` whatever the number of worker processes (each segment draws from
``numpy`` streams seeded with its scene seed; segments are written in order).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from poa_gres_ros.bag import messages as M
from poa_gres_ros.bag.timeline import DEFAULT_TOPICS
from poa_gres_ros.bag.typestore import CAMERA_INFO, GRES_INSTANCES, IMAGE, POSE_ARRAY, STRING
from poa_gres_ros.conversions.result_msgs import NS_PER_S

GENERATOR = 'poa_gres_ros make-bag 2'
SCENE_INDEX_OFFSET = 900_000
CUSTOM_DATA_KEY = 'poa_gres_ros.bag_spec'
IMAGE_DELAY_NS, INFO_DELAY_NS, DEPTH_DELAY_NS = 4_000_000, 4_500_000, 5_000_000
GT_DELAY_NS, OBJECTS_DELAY_NS = 6_000_000, 6_500_000
DEPTH_ENCODINGS = ('16UC1', '32FC1', 'none')
WANTED_TYPES = ('single', 'multi', 'no_target')
"""Planned expression types, cycled over the bag's instructions."""


@dataclass(frozen=True)
class BagSpec:
    """What to render.

    Attributes:
        seed: base seed (>= 0). scenes: segments (>= 1), one scene each.
        seconds_per_scene: segment length in seconds (> 0). rate_hz: camera rate (> 0).
        instructions_per_scene: instruction windows per segment (>= 1).
        width_px, height_px: image size (>= 32 x 24; 640 x 480 is the robot camera).
        start_stamp_ns: header stamp of the first frame.
        frame_id: camera optical frame id.
        depth_encoding: '16UC1' (mm), '32FC1' (m) or 'none' (no depth topic).
    """

    seed: int = 0
    scenes: int = 3
    seconds_per_scene: float = 8.0
    instructions_per_scene: int = 2
    rate_hz: float = 10.0
    width_px: int = 640
    height_px: int = 480
    start_stamp_ns: int = 1_700_000_000 * NS_PER_S
    frame_id: str = 'tabletop_camera_optical_frame'
    depth_encoding: str = '16UC1'

    def __post_init__(self):
        if self.depth_encoding not in DEPTH_ENCODINGS:
            raise ValueError(f'depth_encoding must be one of {DEPTH_ENCODINGS}')
        if self.seed < 0 or self.scenes < 1 or self.instructions_per_scene < 1:
            raise ValueError('need seed >= 0, scenes >= 1 and instructions_per_scene >= 1')
        if not self.seconds_per_scene > 0 or not self.rate_hz > 0:
            raise ValueError('seconds_per_scene and rate_hz must be > 0')
        if self.width_px < 32 or self.height_px < 24:
            raise ValueError(f'image {self.width_px}x{self.height_px} too small (>= 32x24)')
        if self.frames_per_scene < 2:
            raise ValueError('a segment needs at least 2 frames: raise seconds_per_scene')

    @property
    def frames_per_scene(self) -> int:
        return int(round(self.seconds_per_scene * self.rate_hz))

    @property
    def period_ns(self) -> int:
        return int(round(1e9 / self.rate_hz))


def _segment(args) -> dict:
    """Render segment ``s`` and serialise its messages (runs in a worker process)."""
    spec_dict, s = args
    spec = BagSpec(**spec_dict)
    from poa_gres_ros.bag.scenes import ground_truth, plan_windows, referred_objects, render_sweep
    from poa_gres_ros.tabletop.dataset import COMPOSITION, pair_rules, scene_seed
    from poa_gres_ros.tabletop.scene import TabletopScene, quiet_client, sample_scene_spec

    seed = scene_seed(spec.seed, 'test', SCENE_INDEX_OFFSET + s)
    n = spec.frames_per_scene
    first = s * n
    k_before = s * spec.instructions_per_scene
    wanted = WANTED_TYPES[k_before % 3 :] + WANTED_TYPES[: k_before % 3]
    client = quiet_client()
    try:
        scene = TabletopScene(sample_scene_spec(seed, COMPOSITION['test']), client=client)
        views = render_sweep(
            scene, np.random.default_rng([seed, 21]), n, spec.width_px, spec.height_px
        )
        windows = plan_windows(
            scene,
            views,
            spec.instructions_per_scene,
            wanted,
            np.random.default_rng([seed, 22]),
            pair_rules('test'),
        )
        poses = {o.index: object_pose(scene, o) for o in scene.objects}
    finally:
        client.disconnect()
    out, infos = [], []
    for win in windows:
        t = spec.start_stamp_ns + (first + win.start) * spec.period_ns - spec.period_ns // 2
        out.append((t, 'instruction', M.serialize(M.string(win.text))))
        infos.append(
            {
                'scene': s,
                'log_ns': t,
                'text': win.text,
                'wanted_type': win.wanted_type,
                'expr_type': win.expr_type,
                'template': win.template,
                'frames': win.end - win.start,
                'frames_with_gt': sum(x is not None for x in win.frame_sets),
            }
        )
    by_frame = {k: w for w in windows for k in range(w.start, w.end)}
    n_gt = 0
    for k, view in enumerate(views):
        stamp = spec.start_stamp_ns + (first + k) * spec.period_ns
        hdr = M.header(stamp, spec.frame_id)
        out.append((stamp + IMAGE_DELAY_NS, 'image', M.serialize(M.image_rgb8(view.rgb, hdr))))
        info = M.camera_info(view.pose.K, spec.width_px, spec.height_px, hdr)
        out.append((stamp + INFO_DELAY_NS, 'camera_info', M.serialize(info)))
        depth_m = np.where(view.depth_m < FAR_FRACTION * view.pose.far_m, view.depth_m, np.nan)
        if spec.depth_encoding != 'none':
            depth = M.depth_image(depth_m.astype(np.float32), spec.depth_encoding, hdr)
            out.append((stamp + DEPTH_DELAY_NS, 'depth', M.serialize(depth)))
        win = by_frame.get(k)
        gt = ground_truth(view, win, k) if win is not None else None
        if gt is not None:
            i = windows.index(win)
            objs = [o for _, o in referred_objects(win, k)]
            geo = [visible_surface(view.mask(o), depth_m, intrinsics(view)) for o in objs]
            msg = M.gres_instances(
                gt,
                hdr,
                instruction_id=i + 1,
                instruction_stamp_ns=infos[i]['log_ns'],
                model_name='ground_truth',
                backend='tabletop renderer',
                geometry=geo,
                depth_status=1,  # DEPTH_OK
                depth_stamp_ns=stamp,
            )
            out.append((stamp + GT_DELAY_NS, 'ground_truth', M.serialize(msg)))
            cam = [camera_frame_pose(view.pose, *poses[o]) for o in objs]
            objects = M.serialize(M.pose_array(cam, hdr))
            out.append((stamp + OBJECTS_DELAY_NS, 'gt_objects', objects))
            n_gt += 1
        view.depth_m = None  # written: free it
    out.sort(key=lambda m: m[0])
    return {
        'scene': s,
        'seed': seed,
        'messages': out,
        'instructions': infos,
        'frames': n,
        'frames_with_gt': n_gt,
        'objects': len(scene.objects),
    }


FAR_FRACTION = 0.999
"""Rendered depth at or beyond this fraction of the far plane is background: nothing was hit."""


def intrinsics(view):
    """``core.geometry3d.PinholeIntrinsics`` of a rendered view."""
    from poa_gres_ros.core.geometry3d import PinholeIntrinsics

    return PinholeIntrinsics.from_k(view.pose.K, view.pose.width_px, view.pose.height_px)


def visible_surface(mask, depth_m, intr):
    """``core.geometry3d.visible_surface`` (the ground-truth reference)."""
    from poa_gres_ros.core.geometry3d import visible_surface as surface

    return surface(mask, depth_m, intr)


def object_pose(scene, obj) -> tuple[np.ndarray, np.ndarray]:
    """World position (3,) of ``obj`` (its settled AABB centre, metres) and its base
    orientation (4,) quaternion xyzw, from the simulator."""
    _, quat = scene.client.getBasePositionAndOrientation(obj.body_uid)
    return np.asarray(obj.centre_xyz_m, np.float64), np.asarray(quat, np.float64)


def camera_frame_pose(pose, position_w, quat_w) -> tuple[np.ndarray, np.ndarray]:
    """A world pose -> (position (3,), quaternion xyzw (4,)) in the camera optical frame of
    ``pose`` (a ``tabletop.CameraPose``)."""
    from scipy.spatial.transform import Rotation

    T_cw = np.linalg.inv(pose.T_world_camera)  # noqa: N806
    p = T_cw[:3, :3] @ position_w + T_cw[:3, 3]
    q = (Rotation.from_matrix(T_cw[:3, :3]) * Rotation.from_quat(quat_w)).as_quat()
    return p, q


def make_bag(
    out: str | Path,
    spec: BagSpec | None = None,
    *,
    storage: str = 'mcap',
    workers: int = 1,
    topics: dict[str, str] | None = None,
    force: bool = False,
    progress: bool = False,
) -> dict:
    """Render ``spec`` into the rosbag2 folder ``out`` (module docstring) and return a summary.

    Args:
        out: bag folder to create (``metadata.yaml`` + ``.mcap`` or ``.db3``).
        storage: 'mcap' (zstd-compressed chunks) or 'sqlite3' (uncompressed).
        workers: processes rendering segments in parallel (>= 1).
        topics: role -> topic overrides of ``timeline.DEFAULT_TOPICS``.
        force: replace an existing ``out``.
    Returns:
        dict with the spec, counts per topic, instructions (text, type, times), timings.
    Raises:
        FileExistsError: ``out`` exists and not ``force``. ValueError: bad storage/workers.
    """
    from rosbags.rosbag2 import Writer
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode, StoragePlugin

    from poa_gres_ros.bag.typestore import gres_typestore

    spec = spec or BagSpec()
    if storage not in ('mcap', 'sqlite3'):
        raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    if workers < 1:
        raise ValueError(f'workers must be >= 1, got {workers}')
    out = Path(out)
    if out.exists():
        if not force:
            raise FileExistsError(f'{out} exists; pass force=True (--force) to replace it')
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = {**DEFAULT_TOPICS, **(topics or {})}
    ts = gres_typestore()
    t0 = time.perf_counter()
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    writer = Writer(out, version=9, storage_plugin=plugin)
    if storage == 'mcap':
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    jobs = [(asdict(spec), s) for s in range(spec.scenes)]
    counts = {names[r]: 0 for r in names if r != 'depth' or spec.depth_encoding != 'none'}
    summary = {
        'generator': GENERATOR,
        'spec': asdict(spec),
        'storage': storage,
        'topics': names,
        'scenes': [],
        'instructions': [],
    }
    pool = None
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp

        pool = mp.get_context('spawn').Pool(min(workers, len(jobs)))
        results = pool.imap(_segment, jobs, chunksize=1)
    else:
        results = map(_segment, jobs)
    from tqdm import tqdm

    try:
        with writer:
            writer.set_custom_data(CUSTOM_DATA_KEY, json.dumps(asdict(spec), sort_keys=True))
            types = {
                'image': IMAGE,
                'camera_info': CAMERA_INFO,
                'instruction': STRING,
                'ground_truth': GRES_INSTANCES,
                'gt_objects': POSE_ARRAY,
            }
            if spec.depth_encoding != 'none':
                types['depth'] = IMAGE
            conns = {r: writer.add_connection(names[r], t, typestore=ts) for r, t in types.items()}
            n_instr = 0
            for seg in tqdm(results, total=len(jobs), desc='scenes', disable=not progress):
                for log_ns, role, raw in seg['messages']:
                    if role == 'ground_truth':  # global instruction ids (1, 2, ...)
                        raw = _renumber(raw, n_instr)
                    writer.write(conns[role], log_ns, raw)
                    counts[names[role]] += 1
                n_instr += len(seg['instructions'])
                summary['instructions'] += seg['instructions']
                summary['scenes'].append(
                    {k: seg[k] for k in ('scene', 'seed', 'frames', 'frames_with_gt', 'objects')}
                )
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    summary['counts'] = counts
    summary['frames'] = spec.scenes * spec.frames_per_scene
    summary['duration_s'] = summary['frames'] / spec.rate_hz
    summary['wall_s'] = round(time.perf_counter() - t0, 2)
    summary['path'] = str(out)
    return summary


def _renumber(raw: bytes, offset: int) -> bytes:
    """Add ``offset`` to a ground-truth message's instruction id (segment -> bag numbering)."""
    if offset == 0:
        return raw
    msg = M.deserialize(raw, GRES_INSTANCES)
    msg.instruction_id += offset
    return M.serialize(msg)


def read_spec(path: str | Path) -> dict | None:
    """The BagSpec dict a bag was made with (its metadata custom data), None for other bags."""
    import yaml

    meta = Path(path) / 'metadata.yaml'
    if not meta.is_file():
        return None
    info = yaml.safe_load(meta.read_text()).get('rosbag2_bagfile_information', {})
    text = (info.get('custom_data') or {}).get(CUSTOM_DATA_KEY)
    return json.loads(text) if text else None
