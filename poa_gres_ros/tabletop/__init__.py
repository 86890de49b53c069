"""Synthetic tabletop scenes with generalized referring expressions (PyBullet, CPU only).

Modules, one concern each: ``catalog`` (object types, palette, sizes, nouns, held-out pairs
and synonyms), ``scene`` (seeded layout, settling), ``textures`` (table surfaces), ``camera``
(poses, intrinsics, resolutions, lighting), ``render`` (RGB, instance masks, visibility rule),
``sensor`` (camera effects on the written images), ``facts`` (attribute filters and what one
view tells about them), ``queries`` (meaning and exact ground truth), ``language`` (wording,
paraphrases, phrase spans), ``carriers`` (the words around the phrases: "could you get
...?"), ``expressions`` (balanced choice per view), ``writer`` (gRefCOCO json), ``dataset``
(splits, workers, summary, small evaluation set). What the data varies, with ranges:
docs/tabletop.md.

Reuse (e.g. a bag of a 10 Hz camera moving over one scene)::

    import numpy as np
    from poa_gres_ros.tabletop import Facts, build_scene, generate_referrals, orbit_pose
    from poa_gres_ros.tabletop import phrase_sets, sample_view

    with build_scene(seed=7) as scene:                    # settled once
        first = sample_view(scene, np.random.default_rng(0))
        refs = generate_referrals(scene, first, np.random.default_rng(1))
        a = orbit_pose(scene.centre_xyz_m(), 0.8, azimuth_deg=20, elevation_deg=50)
        b = orbit_pose(scene.centre_xyz_m(), 0.7, azimuth_deg=60, elevation_deg=45)
        for k in range(50):                               # 5 s at 10 Hz
            view = scene.render(a.lerp(b, k / 49), first.lighting)
            per_phrase = phrase_sets(refs[0].query, Facts(scene, view))
            # None: the instruction is ambiguous in this frame (e.g. an object at the
            # border); else one set of object indices per phrase, masks view.mask(i),
            # an empty set for a no-target instruction; view.pose.K is the intrinsics.

Spatial words (left/right, ordinals) are in image space, so re-resolve them per frame.
"""

from poa_gres_ros.tabletop.camera import (
    CameraPose,
    CameraRanges,
    Lighting,
    orbit_pose,
    sample_camera_pose,
    sample_lighting,
)
from poa_gres_ros.tabletop.expressions import Referral, candidate_queries, generate_referrals
from poa_gres_ros.tabletop.queries import Facts, mentioned_pairs, phrase_sets, query_from_dict
from poa_gres_ros.tabletop.render import RenderedView, render_view, sample_view
from poa_gres_ros.tabletop.scene import TabletopScene, build_scene, sample_scene_spec

__all__ = [
    'CameraPose',
    'CameraRanges',
    'Facts',
    'Lighting',
    'Referral',
    'RenderedView',
    'TabletopScene',
    'build_scene',
    'candidate_queries',
    'generate_referrals',
    'mentioned_pairs',
    'orbit_pose',
    'phrase_sets',
    'query_from_dict',
    'render_view',
    'sample_camera_pose',
    'sample_lighting',
    'sample_scene_spec',
    'sample_view',
]
