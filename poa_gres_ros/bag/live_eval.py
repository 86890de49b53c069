"""Score a live replay: match the node's results to the published frames, count drops, check
which instruction each result was bound to (no rclpy; the ROS side is ``ros/bag_player.py``).

Matching (``bag.timeline`` rule 4): results are taken in arrival order; a result with header
stamp s belongs to the latest frame published with stamp s, with no result yet, that was
published before the node began the result's inference (arrival - the result's
``inference_time_ms``: a frame is received before its inference starts). A bag that loops
(stamps repeat) therefore matches each result to its own loop, even a result of the first
pass that took longer than a loop to compute (it cannot belong to a frame published while it
was being computed); a result whose stamp was never published (another publisher on the
image topic) is counted as unmatched.

Binding: the frame's expected instruction is the one active at it in the bag (rule 2). A
result is *bound to the wrong instruction* when its ``instruction`` text differs from the
expected text, or its ``instruction_id`` does not correspond to the expected instruction: the
node numbers instructions 1, 2, ... in receive order, so ``id - seq`` (``seq`` = the bag's
numbering of non-empty instructions) is the same for every correct result; that offset is
taken as the most common one among results with the expected text (0 for a freshly started
node; a node that ran before counts on from its earlier instructions).

Drops: published frames without a result. The node's /diagnostics counters (difference
between the last report before playback and the first after it) split them into frames the
node never received (lost in transport), frames replaced in its single-slot buffer
(``dropped_stale``), frames without an instruction, rejected frames and errors.

Latency: end to end = result arrival - image publication, both on the player's monotonic clock
(independent of stamps and of sim time); ``inference_ms`` is the node's own figure.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from poa_gres_ros.bag import messages as M
from poa_gres_ros.bag.replay import (
    ReplayResult,
    base_record,
    example_frames,
    latency_stats,
    score_frame,
    thumbnail,
)
from poa_gres_ros.bag.timeline import BagTimeline
from poa_gres_ros.bag.typestore import GRES_INSTANCES
from poa_gres_ros.conversions import result_msgs as R

COUNTERS = (
    'received',
    'lost_in_transport',
    'processed',
    'dropped_stale',
    'rejected',
    'no_instruction',
    'errors',
    'instructions',
)


@dataclass
class LiveCapture:
    """What the player recorded (plain data).

    Attributes:
        published: (frame index, monotonic publish time s) per image, in publish order.
        outputs: (monotonic arrival time s, raw GresInstances CDR) per result.
        counters_before / counters_after: the node's diagnostics values (key -> str) from the
            last report before playback and the first after the results stopped; None if
            no report came.
        instructions_published: number of /instruction messages sent.
        node: facts about the node (started or connected, model, exit status, log path).
        settings: rate, clock, QoS and topics used.
    """

    published: list[tuple[int, float]] = field(default_factory=list)
    outputs: list[tuple[float, bytes]] = field(default_factory=list)
    counters_before: dict | None = None
    counters_after: dict | None = None
    instructions_published: int = 0
    node: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)


def counter_delta(before: dict | None, after: dict | None) -> dict | None:
    """Per counter of :data:`COUNTERS`: after - before (ints), None without an 'after'."""
    if after is None:
        return None

    def num(d, k):
        try:
            return int(float((d or {}).get(k, 0)))
        except ValueError:
            return 0

    return {k: num(after, k) - num(before, k) for k in COUNTERS}


def match_outputs(published, outputs, stamps: dict[int, int]):
    """Pair results with frames (module docstring).

    Args:
        published: (frame index, publish time s); outputs: (arrival s, decoded message).
        stamps: frame index -> header stamp ns.
    Returns:
        (list of (frame index, arrival s, message), number of unmatched results).
    """
    pending: dict[int, list[tuple[float, int]]] = {}
    for idx, t in published:
        pending.setdefault(stamps[idx], []).append((t, idx))
    matched, unmatched, taken = [], 0, set()
    for arrival, msg in sorted(outputs, key=lambda o: o[0]):
        started = arrival - max(float(msg.inference_time_ms), 0.0) / 1e3
        cands = [
            (t, i)
            for t, i in pending.get(R.stamp_ns(msg.header.stamp), ())
            if t <= started and i not in taken
        ]
        if not cands:
            unmatched += 1
            continue
        _, idx = max(cands)
        taken.add(idx)
        matched.append((idx, arrival, msg))
    return matched, unmatched


def score_3d(frame, pred, msg) -> dict:
    """The 3D part of a live record: ``depth`` ('ok' or the result's depth_detail) and
    ``errors_3d`` (``bag.eval3d.frame_errors`` with the node's geometry) when the frame has
    ground truth with 3D."""
    from poa_gres_ros.bag.eval3d import frame_errors
    from poa_gres_ros.conversions.depth3d import geometry_from_msg

    ok = int(msg.depth_status) == 1  # DEPTH_OK
    out = {'depth': 'ok' if ok else (msg.depth_detail or f'depth_status {msg.depth_status}')}
    if frame.gt is not None and frame.gt.geometry:
        geo = [geometry_from_msg(i.geometry) for i in msg.instances] if ok else None
        out['errors_3d'] = frame_errors([i.mask for i in pred.instances], geo, frame.gt)
    return out


def evaluate_live(timeline: BagTimeline, capture: LiveCapture) -> ReplayResult:
    """Score the captured results against the bag (module docstring).

    Returns:
        ReplayResult with mode 'live'; ``records`` also hold ``e2e_ms``, the result's
        instruction text / id and ``wrong_instruction``; ``live`` holds the drop accounting,
        latency and binding counts.
    """
    decoded = [(t, M.deserialize(raw, GRES_INSTANCES)) for t, raw in capture.outputs]
    stamps = {f.index: f.stamp_ns for f in timeline.frames}
    pub_time = dict(capture.published)
    matched, unmatched = match_outputs(capture.published, decoded, stamps)
    offsets = Counter(
        int(msg.instruction_id) - timeline.frames[i].instruction.seq
        for i, _, msg in matched
        if timeline.frames[i].instruction is not None
        and msg.instruction == timeline.frames[i].instruction.text
    )
    offset = offsets.most_common(1)[0][0] if offsets else 0
    result = ReplayResult('live', timeline.summary())
    answered = sorted(matched, key=lambda m: m[0])
    examples = example_frames([timeline.frames[i] for i, _, _ in answered])
    wanted = {i: ordinal for ordinal, i in examples.items()}
    preds = {}
    wrong = Counter()
    for idx, arrival, msg in answered:
        frame = timeline.frames[idx]
        pred = R.prediction_from_msg(msg)
        ins = frame.instruction
        if ins is None:
            verdict = 'no instruction in the bag'
        elif msg.instruction != ins.text:
            verdict = 'other text'
        elif int(msg.instruction_id) - offset != ins.seq:
            verdict = 'other instruction id'
        else:
            verdict = None
        if verdict:
            wrong[verdict] += 1
        rec = base_record(frame, pred)
        rec.update(
            e2e_ms=(arrival - pub_time[idx]) * 1e3,
            latency_ms=(arrival - pub_time[idx]) * 1e3,
            inference_ms=float(msg.inference_time_ms),
            result_instruction=msg.instruction,
            result_instruction_id=int(msg.instruction_id),
            wrong_instruction=verdict,
        )
        # a result bound to another instruction is scored as what it is: an answer for this
        # frame (the ground truth is the bag's), so binding errors lower the metrics too
        rec.update(score_frame(result, frame, pred))
        if 'depth' in timeline.topics:
            rec.update(score_3d(frame, pred, msg))
        result.records.append(rec)
        if idx in wanted:
            preds[idx] = pred
    if preds:
        for frame, rgb in timeline.images(preds):
            if isinstance(rgb, str):
                continue
            gt = frame.gt.mask if frame.gt is not None else None
            result.examples[wanted[frame.index]] = (
                frame.index,
                thumbnail(rgb, preds[frame.index], gt),
            )
    delta = counter_delta(capture.counters_before, capture.counters_after)
    published = len(capture.published)
    drops = {
        'published': published,
        'answered': len(answered),
        'dropped': published - len(answered),
    }
    if delta is not None:
        drops.update(
            not_received_by_node=max(0, published - delta['received']),
            lost_in_transport_events=delta['lost_in_transport'],
            dropped_single_slot=delta['dropped_stale'],
            no_instruction=delta['no_instruction'],
            rejected=delta['rejected'],
            errors=delta['errors'],
            processed=delta['processed'],
            results_not_received=max(0, delta['processed'] - len(decoded)),
        )
    result.live = {
        'drops': drops,
        'node_counters': delta,
        'unmatched_results': unmatched,
        'results_received': len(decoded),
        'instructions_published': capture.instructions_published,
        'wrong_instruction': sum(wrong.values()),
        'wrong_instruction_by_cause': dict(wrong),
        'instruction_id_offset': offset,
        'e2e_latency_ms': latency_stats([r['e2e_ms'] for r in result.records]),
        'inference_ms': latency_stats([r['inference_ms'] for r in result.records]),
        'node': capture.node,
        'settings': capture.settings,
    }
    return result
