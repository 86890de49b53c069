"""Read a rosbag2 bag (mcap or sqlite3) deterministically: frames, instructions, ground truth.

Topic roles and mapping: the replay needs an ``image`` topic (sensor_msgs/Image or
CompressedImage) and an ``instruction`` topic (std_msgs/String); ``ground_truth``
(poa_gres_ros/GresInstances) enables metrics; ``depth`` (aligned depth image) with
``camera_info`` enables the 3D errors and both are passed through when replaying live;
``gt_objects`` (geometry_msgs/PoseArray, one simulator pose per true instance) adds the
distance to the simulator's object position (docs/geometry3d.md#ground-truth). Defaults are
:data:`DEFAULT_TOPICS`; a bag from another robot maps its own names, e.g.
``{'image': '/zed/left/image_rect_color'}`` (``--topic image=/zed/...``).

Rules (what "the instruction active at an image" and "its ground truth" mean):

1. Order: messages are read in log-time order (the bag's receive timestamps), which is the
   order ``ros2 bag play`` publishes them in; rosbags sorts them so (mcap and sqlite3 alike).
   Ties keep the storage order, except that an instruction logged at exactly an image's log
   time counts as before it.
2. Instruction: an image is paired with the latest /instruction logged at or before the
   image's log time. An empty (whitespace-only) instruction clears it, as in the node: images
   after it have no instruction until the next one and are not scored.
3. Header stamps only identify frames; they may jump backwards (a looped recording replays
   the same stamps again, or a camera clock reset). A jump back is counted (``stamp_jumps_back``)
   and starts a new ``loop`` number. Ground truth is paired with the image of equal header
   stamp that is nearest in bag order (ties: the later message), so in a looped recording
   each loop's image gets its own loop's ground truth.
4. Live replay matches results by header stamp in the same spirit: a result belongs to the
   latest published image with that stamp that has no result yet and was published before
   the result's inference began (``bag.live_eval``).
5. Depth (offline replay): a frame takes the depth image of the nearest header stamp within
   ``depth_tolerance_s`` (nearest in bag order among equal stamps), as the node does, and the
   newest CameraInfo logged before that depth image; ground-truth object poses pair like
   ground truth (rule 3).

The topic roles and ``parse_topic_map`` are in ``topic_roles``, the records (``Instruction``,
``Frame``, ``GroundTruth``, ``DepthInput``) in ``timeline_records``; both are importable from
here too.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from poa_gres_ros.bag.timeline_records import (
    DepthInput,
    Frame,
    GroundTruth,
    Instruction,
    depth_input,
    gt_record,
)
from poa_gres_ros.bag.topic_roles import DEFAULT_TOPICS, ROLE_TYPES, ROLES, parse_topic_map
from poa_gres_ros.bag.typestore import COMPRESSED_IMAGE
from poa_gres_ros.conversions import result_msgs as R
from poa_gres_ros.conversions.image_msgs import (
    ImageConversionError,
    compressed_msg_to_rgb,
    image_msg_to_rgb,
)

__all__ = [
    'DEFAULT_TOPICS',
    'DEPTH_TOLERANCE_S',
    'KEEP_DEPTH',
    'ROLES',
    'ROLE_TYPES',
    'BagTimeline',
    'DepthInput',
    'Frame',
    'GroundTruth',
    'Instruction',
    'parse_topic_map',
]

DEPTH_TOLERANCE_S = 0.02
"""Default stamp tolerance when pairing depth with colour (the node's depth_tolerance_s)."""
KEEP_DEPTH = 8


def _decode_image(msg, compressed: bool) -> np.ndarray | str:
    """(H, W, 3) uint8 RGB of an Image or CompressedImage with the node's converter, or the
    reason it cannot be converted (bad encoding or sizes), so one bad frame never ends a
    replay."""
    try:
        return compressed_msg_to_rgb(msg) if compressed else image_msg_to_rgb(msg)
    except ImageConversionError as exc:
        return str(exc)


def _no_depth(timeline) -> str:
    if 'depth' not in timeline.topics:
        return 'the bag has no depth topic'
    return 'no depth image within the stamp tolerance'


class BagTimeline:
    """Index of a bag (module docstring for the rules); images are decoded on demand.

    Use :meth:`open`. Attributes: ``path``, ``topics`` (role -> topic, roles absent from the
    bag removed), ``msgtypes`` (role -> type), ``frames``, ``instructions``, ``counts``
    (role -> messages), ``stamp_jumps_back``, ``other_topics`` (topics not used).
    """

    def __init__(self, path: Path, topics: dict[str, str]):
        self.path = path
        self.topics = topics
        self.msgtypes: dict[str, str] = {}
        self.frames: list[Frame] = []
        self.instructions: list[Instruction] = []
        self.counts: dict[str, int] = {}
        self.stamp_jumps_back = 0
        self.other_topics: list[str] = []
        self.gt_unpaired = 0
        self.depth_stamps: list[tuple[int, int]] = []  # (stamp_ns, order) per depth image

    @classmethod
    def open(cls, path: str | Path, topics: dict[str, str] | None = None) -> BagTimeline:
        """Index the bag at ``path`` with role -> topic overrides ``topics``.

        Raises:
            FileNotFoundError: no bag there. ValueError: the image or instruction topic is
            missing, or a mapped topic has a type its role cannot use (the message lists the
            bag's topics and types).
        """
        path = Path(path)
        if not (path / 'metadata.yaml').is_file():
            raise FileNotFoundError(f'{path} is not a rosbag2 folder (no metadata.yaml)')
        wanted = {**DEFAULT_TOPICS, **(topics or {})}
        self = cls(path, {})
        with self._reader() as reader:
            have = {c.topic: c.msgtype for c in reader.connections}
            listing = ', '.join(f'{t} [{ty}]' for t, ty in sorted(have.items()))
            for role, topic in wanted.items():
                if topic not in have:
                    if role in ('image', 'instruction'):  # required roles
                        raise ValueError(
                            f'{path}: no {role} topic {topic!r}; the bag has '
                            f'{listing}; map it with --topic {role}=/name'
                        )
                    continue
                if have[topic] not in ROLE_TYPES[role]:
                    raise ValueError(
                        f'{path}: {role} topic {topic} is {have[topic]}, expected '
                        f'{" or ".join(ROLE_TYPES[role])}; the bag has {listing}'
                    )
                self.topics[role] = topic
                self.msgtypes[role] = have[topic]
            self.other_topics = sorted(set(have) - set(self.topics.values()))
            self._index(reader)
        return self

    def _reader(self):
        from rosbags.highlevel import AnyReader

        from poa_gres_ros.bag.typestore import gres_typestore

        return AnyReader([self.path], default_typestore=gres_typestore())

    def _connections(self, reader, roles):
        topics = {self.topics[r] for r in roles if r in self.topics}
        return [c for c in reader.connections if c.topic in topics]

    def _index(self, reader) -> None:
        role_of = {t: r for r, t in self.topics.items()}
        gts: dict[int, list[GroundTruth]] = {}
        objects: dict[int, list[tuple[int, list]]] = {}
        seq, prev_stamp, loop = 0, None, 0
        self.counts = dict.fromkeys(self.topics, 0)
        conns = self._connections(reader, ROLES)
        for order, (conn, log_ns, raw) in enumerate(reader.messages(connections=conns)):
            role = role_of[conn.topic]
            self.counts[role] += 1
            if role == 'instruction':
                text = str(reader.deserialize(raw, conn.msgtype).data)
                seq += 1 if text.strip() else 0
                n = len(self.instructions)
                self.instructions.append(Instruction(n, seq if text.strip() else 0, log_ns, text))
            elif role == 'image':
                msg = reader.deserialize(raw, conn.msgtype)
                stamp = R.stamp_ns(msg.header.stamp)
                if prev_stamp is not None and stamp < prev_stamp:
                    self.stamp_jumps_back += 1
                    loop += 1
                prev_stamp = stamp
                self.frames.append(
                    Frame(len(self.frames), order, log_ns, stamp, str(msg.header.frame_id), loop)
                )
            elif role == 'ground_truth':
                rec = gt_record(reader.deserialize(raw, conn.msgtype), order)
                gts.setdefault(rec.stamp_ns, []).append(rec)
            elif role == 'depth':
                hdr = reader.deserialize(raw, conn.msgtype).header
                self.depth_stamps.append((R.stamp_ns(hdr.stamp), order))
            elif role == 'gt_objects':
                msg = reader.deserialize(raw, conn.msgtype)
                pos = [np.array([p.position.x, p.position.y, p.position.z]) for p in msg.poses]
                objects.setdefault(R.stamp_ns(msg.header.stamp), []).append((order, pos))
        self._pair(gts)
        for f in self.frames:  # object poses pair with the frame's ground truth (rule 5)
            cands = objects.get(f.stamp_ns)
            if f.gt is not None and cands:
                f.gt.object_positions_m = min(cands, key=lambda c: abs(c[0] - f.order))[1]

    def _pair(self, gts: dict[int, list[GroundTruth]]) -> None:
        instr = sorted(self.instructions, key=lambda i: (i.log_ns, i.ordinal))
        logs = [i.log_ns for i in instr]
        used = set()
        for f in self.frames:
            k = bisect.bisect_right(logs, f.log_ns) - 1
            if k >= 0 and instr[k].text.strip():
                f.instruction = instr[k]
            cands = gts.get(f.stamp_ns)
            if cands:
                f.gt = min(cands, key=lambda g: (abs(g.order - f.order), -g.order))
                used.add(id(f.gt))
        self.gt_unpaired = sum(len(v) for v in gts.values()) - len(used)

    # ------------------------------------------------------------------ reading images
    def images(self, indices=None) -> Iterator[tuple[Frame, np.ndarray | str]]:
        """Decode the images (all, or the frame indices in ``indices``) in bag order with the
        node's converter (``conversions/image_msgs.py``, pure numpy/OpenCV: every encoding the
        node takes, row padding honoured).

        Yields:
            (Frame, (H, W, 3) uint8 RGB, possibly a read-only view), or (Frame, reason) for
            an image that cannot be converted (bad encoding or sizes), so one bad frame never
            ends a replay.
        """
        wanted = None if indices is None else set(indices)
        compressed = self.msgtypes['image'] == COMPRESSED_IMAGE
        with self._reader() as reader:
            conns = self._connections(reader, ['image'])
            for k, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
                if wanted is not None and k not in wanted:
                    continue
                yield (
                    self.frames[k],
                    _decode_image(reader.deserialize(raw, conn.msgtype), compressed),
                )

    def depth_index(self, tolerance_s: float = DEPTH_TOLERANCE_S) -> dict[int, int]:
        """Frame index -> position among the depth messages of its depth image (rule 5);
        frames without one within ``tolerance_s`` are absent."""
        if not self.depth_stamps:
            return {}
        tol = int(round(tolerance_s * 1e9))
        stamps = np.array([s for s, _ in self.depth_stamps], np.int64)
        orders = np.array([o for _, o in self.depth_stamps], np.int64)
        out = {}
        for f in self.frames:
            gap = np.abs(stamps - f.stamp_ns)
            best = gap.min()
            if best <= tol:
                cand = np.flatnonzero(gap == best)
                out[f.index] = int(cand[np.argmin(np.abs(orders[cand] - f.order))])
        return out

    def images_with_depth(self, indices=None, tolerance_s: float = DEPTH_TOLERANCE_S):
        """Like :meth:`images`, with each frame's :class:`DepthInput` (rule 5), in one pass
        over the bag: a frame waits until its depth image is read; the last
        ``KEEP_DEPTH`` depth images are kept for frames logged after their depth.

        Yields:
            (Frame, RGB array or reason, DepthInput), in bag order of the depth pairing.
        """
        from collections import deque

        wanted = None if indices is None else set(indices)
        want_depth = self.depth_index(tolerance_s)
        used = {d for k, d in want_depth.items() if wanted is None or k in wanted}
        compressed = self.msgtypes['image'] == COMPRESSED_IMAGE
        role_of = {t: r for r, t in self.topics.items()}
        pending: dict[int, list] = {}  # depth position -> [(frame, rgb)] waiting for it
        recent: deque = deque(maxlen=KEEP_DEPTH)  # (depth position, message)
        info, n_img, n_depth = None, 0, 0
        with self._reader() as reader:
            conns = self._connections(reader, ['image', 'depth', 'camera_info'])
            for conn, _, raw in reader.messages(connections=conns):
                role = role_of[conn.topic]
                if role == 'camera_info':
                    info = reader.deserialize(raw, conn.msgtype)
                elif role == 'depth':
                    d, n_depth = n_depth, n_depth + 1
                    if d in used:
                        msg = reader.deserialize(raw, conn.msgtype)
                        recent.append((d, msg))
                        for frame, rgb in pending.pop(d, []):
                            yield frame, rgb, depth_input(msg, info, rgb)
                else:
                    k, n_img = n_img, n_img + 1
                    if wanted is not None and k not in wanted:
                        continue
                    rgb = _decode_image(reader.deserialize(raw, conn.msgtype), compressed)
                    d = want_depth.get(k)
                    if d is None:
                        yield self.frames[k], rgb, DepthInput(None, None, None, _no_depth(self))
                    elif d >= n_depth:
                        pending.setdefault(d, []).append((self.frames[k], rgb))
                    else:
                        old = next((m for p, m in recent if p == d), None)
                        yield self.frames[k], rgb, depth_input(old, info, rgb)
            for waiting in pending.values():
                for frame, rgb in waiting:
                    yield frame, rgb, depth_input(None, info, rgb)

    def raw_messages(self, roles) -> Iterator[tuple[str, str, str, int, bytes, int | None]]:
        """The raw CDR messages of ``roles`` in playback order (rule 1), for publishing.

        Yields:
            (role, topic, msgtype, log_ns, raw bytes, frame index for images else None).
        """
        role_of = {t: r for r, t in self.topics.items()}
        with self._reader() as reader:
            conns = self._connections(reader, roles)
            n_img, group = 0, []
            for conn, log_ns, raw in reader.messages(connections=conns):
                if group and group[0][3] != log_ns:
                    yield from sorted(group, key=lambda m: m[0] != 'instruction')
                    group = []
                role = role_of[conn.topic]
                idx = None
                if role == 'image':
                    idx, n_img = n_img, n_img + 1
                group.append((role, conn.topic, conn.msgtype, log_ns, bytes(raw), idx))
            yield from sorted(group, key=lambda m: m[0] != 'instruction')

    def summary(self) -> dict:
        """Counts and pairing facts for reports."""
        logs = [f.log_ns for f in self.frames]
        return {
            'path': str(self.path),
            'topics': dict(self.topics),
            'types': dict(self.msgtypes),
            'counts': dict(self.counts),
            'other_topics': self.other_topics,
            'frames': len(self.frames),
            'instructions': len(self.instructions),
            'frames_without_instruction': sum(f.instruction is None for f in self.frames),
            'frames_with_gt': sum(f.gt is not None for f in self.frames),
            'depth_images': len(self.depth_stamps),
            'gt_unpaired': self.gt_unpaired,
            'stamp_jumps_back': self.stamp_jumps_back,
            'duration_s': (max(logs) - min(logs)) / 1e9 if logs else 0.0,
        }
