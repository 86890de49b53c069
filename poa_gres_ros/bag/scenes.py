"""Render one tabletop scene as a 10 Hz camera segment with instructions and exact ground truth.

A segment is what a robot's head camera sees while it slowly turns over one table: the camera
moves linearly (``CameraPose.lerp``) between two viewpoints on a sphere around the objects,
12-25 degrees of azimuth, up to 6 degrees of elevation and 8 cm of distance apart, drawn from
the tabletop generator's viewpoint ranges (``tabletop.CameraRanges``). Lighting is drawn as for
the dataset but without shadows (about 1.6x faster to render, ``tabletop.camera.Lighting``).

Instructions: the segment's frames are split into ``instructions`` equal windows; each window
gets one referring expression, chosen from ``tabletop.generate_referrals`` on the window's
first frame with the wanted expression type ('single' | 'multi' | 'no_target') and kept only
if its meaning (the tabletop query) resolves in *every* frame of the window with that type
(``tabletop.phrase_sets`` re-resolved per frame, since left/right and visibility change as
the camera moves). If no expression of the wanted type holds over the whole window, the other
types are tried; if none holds everywhere, the one valid in most frames is used and frames
where it is ambiguous get no ground truth (the replay counts them as unscored).

Ground truth per frame: the referred objects' visible masks (``RenderedView.mask``), one
instance per object, grouped by phrase in the order of the sentence's phrase spans.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from poa_gres_ros.core.results import GresPrediction, InstanceResult, PhraseSpan

EXPR_ORDER = ('single', 'multi', 'no_target')
AZIMUTH_SWEEP_DEG = (12.0, 25.0)
ELEVATION_DRIFT_DEG = 6.0
DISTANCE_DRIFT_M = 0.08
PATH_TRIES = 8


@dataclass
class Window:
    """One instruction of a segment.

    Attributes:
        start, end: frame range [start, end) within the segment.
        text: the instruction; spans: its phrase spans (char_start, char_end).
        wanted_type / expr_type: the planned and the chosen expression type.
        template: the tabletop template name.
        frame_sets: per frame of the window, the referred object indices per phrase, or None
            when the expression is ambiguous in that frame (no ground truth).
    """

    start: int
    end: int
    text: str
    spans: tuple[tuple[int, int], ...]
    wanted_type: str
    expr_type: str
    template: str
    frame_sets: list


def _camera_pair(scene, rng, width_px, height_px):
    """Start and end poses of a slow sweep (module docstring)."""
    from poa_gres_ros.tabletop import CameraRanges, orbit_pose
    from poa_gres_ros.tabletop.camera import draw_orbit

    r = CameraRanges()
    kw = draw_orbit(rng, scene.centre_xyz_m(), r, width_px, height_px)
    look, dist = kw.pop('look_at_xyz_m'), kw.pop('distance_m')
    az, el = kw.pop('azimuth_deg'), kw.pop('elevation_deg')
    d_az = (1.0 if rng.random() < 0.5 else -1.0) * rng.uniform(*AZIMUTH_SWEEP_DEG)
    el_b = float(
        np.clip(el + rng.uniform(-ELEVATION_DRIFT_DEG, ELEVATION_DRIFT_DEG), *r.elevation_deg)
    )
    dist_b = float(np.clip(dist + rng.uniform(-DISTANCE_DRIFT_M, DISTANCE_DRIFT_M), *r.distance_m))
    return orbit_pose(look, dist, az, el, **kw), orbit_pose(look, dist_b, az + d_az, el_b, **kw)


def render_sweep(scene, rng, n_frames: int, width_px: int, height_px: int) -> list:
    """Render ``n_frames`` views along a slow camera sweep over ``scene``.

    Tries up to ``PATH_TRIES`` sweeps and keeps the first whose first and last frames show at
    least min(2, objects) well-visible objects (else the best one). Returns a list of
    ``tabletop.RenderedView`` (with their depth buffers, for the bag's depth topic).
    """
    from poa_gres_ros.tabletop import sample_lighting

    light = dataclasses.replace(sample_lighting(rng), shadow=False)
    need = min(2, len(scene.objects))
    best = None
    for _ in range(PATH_TRIES):
        a, b = _camera_pair(scene, rng, width_px, height_px)
        ends = [scene.render(a, light), scene.render(b, light)]
        score = min(len(v.well_visible()) for v in ends)
        if best is None or score > best[0]:
            best = (score, a, b, ends)
        if score >= need:
            break
    _, a, b, ends = best
    views = []
    for k in range(n_frames):
        if k == 0:
            view = ends[0]
        elif k == n_frames - 1:
            view = ends[1]
        else:
            view = scene.render(a.lerp(b, k / (n_frames - 1)), light)
        views.append(view)
    return views


def _type_of(sets) -> str:
    n = sum(len(s) for s in sets)
    return 'no_target' if n == 0 else ('single' if n == 1 else 'multi')


def choose_window(scene, views, start, end, wanted, rng, rules) -> Window | None:
    """Pick the instruction of frames [start, end) (module docstring); None when the first
    frame offers no expression at all."""
    from poa_gres_ros.tabletop import Facts, generate_referrals, phrase_sets

    facts = [Facts(scene, v) for v in views[start:end]]
    best = None
    for etype in (wanted,) + tuple(t for t in EXPR_ORDER if t != wanted):
        refs = generate_referrals(
            scene, views[start], rng, n_refs=8, type_mix={etype: 1.0}, **rules
        )
        for ref in refs:
            if ref.expr_type != etype:
                continue
            sets = []
            for f in facts:
                s = phrase_sets(ref.query, f)
                sets.append(s if s is not None and _type_of(s) == etype else None)
            n_ok = sum(s is not None for s in sets)
            if best is None or n_ok > best[0]:
                best = (n_ok, ref, sets)
            if n_ok == len(sets):
                break
        if best is not None and best[0] == end - start:
            break
    if best is None:
        return None
    _, ref, sets = best
    sentence = ref.sentences[0]
    return Window(
        start,
        end,
        sentence.text,
        tuple(sentence.spans),
        wanted,
        ref.expr_type,
        ref.template,
        sets,
    )


def referred_objects(window: Window, k: int) -> list[tuple[PhraseSpan, int]] | None:
    """(phrase span, object index) per ground-truth instance of frame ``k`` (absolute index in
    the segment) of ``window``, in instance order (by phrase, then by object index), or None
    when the instruction is ambiguous there."""
    sets = window.frame_sets[k - window.start]
    if sets is None:
        return None
    out = []
    for (s, e), objs in zip(window.spans, sets):
        span = PhraseSpan(window.text[s:e], s, e)
        out += [(span, i) for i in sorted(objs)]
    return out


def ground_truth(view, window: Window, k: int) -> GresPrediction | None:
    """Ground truth of frame ``k`` (absolute index in the segment) of ``window``, or None when
    the instruction is ambiguous there. Instances: one per referred object, in the order of
    :func:`referred_objects`; relevance 1."""
    referred = referred_objects(window, k)
    if referred is None:
        return None
    h, w = view.instance_map.shape
    final = np.zeros((h, w), bool)
    instances = []
    for span, i in referred:
        m = view.mask(i)
        final |= m
        instances.append(InstanceResult(m, 1.0, span, -1))
    no_target = not instances
    return GresPrediction(instances, final, no_target, 1.0 if no_target else 0.0, window.text)


def plan_windows(scene, views, n_instructions, wanted_types, rng, rules) -> list[Window]:
    """Split the frames into ``n_instructions`` windows and choose each one's instruction."""
    n = len(views)
    k = max(1, min(n_instructions, n))
    bounds = [round(i * n / k) for i in range(k + 1)]
    out = []
    for i in range(k):
        wanted = wanted_types[i % len(wanted_types)]
        win = choose_window(scene, views, bounds[i], bounds[i + 1], wanted, rng, rules)
        if win is not None:
            out.append(win)
    return out
