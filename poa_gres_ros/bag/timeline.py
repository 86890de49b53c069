"""Read a rosbag2 bag (mcap or sqlite3) deterministically: frames, instructions, ground truth.

Topic roles and mapping: the replay needs an ``image`` topic (sensor_msgs/Image or
CompressedImage) and an ``instruction`` topic (std_msgs/String); ``ground_truth``
(poa_gres_ros/GresInstances) enables metrics and ``camera_info`` is passed through when
replaying live. Defaults are :data:`DEFAULT_TOPICS`; a bag from another robot maps its own
names, e.g. ``{'image': '/zed/left/image_rect_color'}`` (``--topic image=/zed/...``).

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
   latest published image with that stamp that has no result yet (``bag.live_eval``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poa_gres_ros.bag import messages as M
from poa_gres_ros.bag.typestore import COMPRESSED_IMAGE, GRES_INSTANCES, IMAGE, STRING

ROLES = ('image', 'camera_info', 'instruction', 'ground_truth')
DEFAULT_TOPICS = {
    'image': '/camera/image_raw',
    'camera_info': '/camera/camera_info',
    'instruction': '/instruction',
    'ground_truth': '/gres/ground_truth',
}
ROLE_TYPES = {
    'image': (IMAGE, COMPRESSED_IMAGE),
    'camera_info': ('sensor_msgs/msg/CameraInfo',),
    'instruction': (STRING,),
    'ground_truth': (GRES_INSTANCES,),
}


def parse_topic_map(items: list[str] | None) -> dict[str, str]:
    """``['image=/zed/left/image_rect_color', ...]`` -> ``{'image': '/zed/...'}``.

    Raises:
        ValueError: an item without '=', an unknown role or a topic not starting with '/'.
    """
    out = {}
    for item in items or []:
        role, sep, topic = item.partition('=')
        role, topic = role.strip(), topic.strip()
        if not sep or role not in ROLES:
            raise ValueError(f'--topic {item!r}: use ROLE=/topic with ROLE one of {ROLES}')
        if not topic.startswith('/'):
            raise ValueError(f'--topic {item!r}: the topic must be absolute (start with /)')
        out[role] = topic
    return out


@dataclass(frozen=True)
class Instruction:
    """An /instruction message. ``ordinal``: 0, 1, ... over all instruction messages;
    ``seq``: 1, 2, ... over non-empty ones (the id a freshly started node assigns), 0 for a
    clear; ``log_ns``: log time; ``text`` as sent."""

    ordinal: int
    seq: int
    log_ns: int
    text: str


@dataclass
class GroundTruth:
    """Ground truth of one frame, kept compact: the merged mask bit-packed.

    Attributes:
        stamp_ns, order: header stamp and position in bag order.
        shape: (H, W); no_target; num_instances; instruction / instruction_id as in the
        message (for checking the bag's pairing).
    """

    stamp_ns: int
    order: int
    shape: tuple[int, int]
    bits: np.ndarray = field(repr=False)
    no_target: bool
    num_instances: int
    instruction: str
    instruction_id: int

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool merged ground-truth mask."""
        n = self.shape[0] * self.shape[1]
        return np.unpackbits(self.bits, count=n).reshape(self.shape).astype(bool)

    @property
    def expr_type(self) -> str:
        """'no_target' | 'single' | 'multi' from the instance count (metrics.EXPR_TYPES)."""
        if self.no_target:
            return 'no_target'
        return 'multi' if self.num_instances > 1 else 'single'


@dataclass
class Frame:
    """One image of the bag: ``index`` 0, 1, ... in bag order; ``order`` its position among
    all read messages; ``loop`` the number of stamp jumps back before it; the instruction
    active at it (None: none or cleared) and its ground truth (None: none in the bag)."""

    index: int
    order: int
    log_ns: int
    stamp_ns: int
    frame_id: str
    loop: int
    instruction: Instruction | None = None
    gt: GroundTruth | None = None


def _gt_record(msg, order: int) -> GroundTruth:
    pred = M.prediction_from_msg(msg)
    return GroundTruth(
        M.stamp_ns(msg.header.stamp),
        order,
        pred.final_mask.shape,
        np.packbits(pred.final_mask.reshape(-1)),
        bool(msg.no_target),
        len(msg.instances),
        str(msg.instruction),
        int(msg.instruction_id),
    )


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
                    if role in ('image', 'instruction'):
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
                stamp = M.stamp_ns(msg.header.stamp)
                if prev_stamp is not None and stamp < prev_stamp:
                    self.stamp_jumps_back += 1
                    loop += 1
                prev_stamp = stamp
                self.frames.append(
                    Frame(len(self.frames), order, log_ns, stamp, str(msg.header.frame_id), loop)
                )
            elif role == 'ground_truth':
                rec = _gt_record(reader.deserialize(raw, conn.msgtype), order)
                gts.setdefault(rec.stamp_ns, []).append(rec)
        self._pair(gts)

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
        from poa_gres_ros.conversions.image_msgs import (
            ImageConversionError,
            compressed_msg_to_rgb,
            image_msg_to_rgb,
        )

        wanted = None if indices is None else set(indices)
        compressed = self.msgtypes['image'] == COMPRESSED_IMAGE
        with self._reader() as reader:
            conns = self._connections(reader, ['image'])
            for k, (conn, _, raw) in enumerate(reader.messages(connections=conns)):
                if wanted is not None and k not in wanted:
                    continue
                msg = reader.deserialize(raw, conn.msgtype)
                try:
                    rgb = compressed_msg_to_rgb(msg) if compressed else image_msg_to_rgb(msg)
                except ImageConversionError as exc:
                    yield self.frames[k], str(exc)
                    continue
                yield self.frames[k], rgb

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
            'gt_unpaired': self.gt_unpaired,
            'stamp_jumps_back': self.stamp_jumps_back,
            'duration_s': (max(logs) - min(logs)) / 1e9 if logs else 0.0,
        }
