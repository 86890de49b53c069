"""Time the tabletop generator stage by stage on this machine and extrapolate a full dataset.

    python benchmarks/tabletop_generation.py --scenes 20 [--views 3] [--train-scenes 3000]

Prints the mean time per scene (layout + load + settle), per view (render with and without
shadows at the view's drawn resolution, ``camera.RESOLUTIONS``), per view for expressions,
RLE, camera effects (``sensor``) and PNG writing, and the time a dataset of
``--train-scenes`` train scenes (+10 % each for val / test / test_comp) would take with 1 and
2 worker processes. It also renders every view at 640x480 (the only size before resolutions
were sampled) and prints the ratio of the two render times. Timings depend on the machine's
load: run it on an idle machine, and read the ratios (shadow / no shadow, drawn size /
640x480, render / build) rather than absolute values on a shared one.

Measured when resolutions, cameras, tables and carriers came in (generator ``tabletop-2``),
on the shared 2-core machine at load average 12-18: ``poa-gres make-dataset --scenes 300
--eval-scenes 30 --views-per-scene 2 --seed 0 --workers 2`` under ``nice`` took 195.5 s of
CPU (user) before and 224.5 s after (1.15x; wall times of 56 and 63 min only show the load),
without the camera effects; this script then gave a drawn-size / 640x480 render ratio of
1.22 and camera effects at 8 % of a view's time. With the camera effects the same command
took 244.6 s of CPU (user; 1.25x the 195.5 s before, 254 s with system time against 201 s).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--scenes', type=int, default=20)
    ap.add_argument('--views', type=int, default=3, help='views rendered per scene')
    ap.add_argument('--train-scenes', type=int, default=3000)
    args = ap.parse_args()

    import cv2

    from poa_gres_ros.tabletop.camera import CameraRanges, sample_camera_pose, sample_lighting
    from poa_gres_ros.tabletop.catalog import HELD_OUT_PAIRS
    from poa_gres_ros.tabletop.expressions import generate_referrals
    from poa_gres_ros.tabletop.render import render_view
    from poa_gres_ros.tabletop.scene import TabletopScene, quiet_client, sample_scene_spec
    from poa_gres_ros.tabletop.sensor import sample_sensor
    from poa_gres_ros.tabletop.writer import view_record

    client = quiet_client()
    t = {
        'spec': [],
        'build': [],
        'render_shadow': [],
        'render_plain': [],
        'render_plain_640x480': [],
        'expr': [],
        'record': [],
        'sensor': [],
        'png': [],
    }
    n_refs, n_sent = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        for s in range(args.scenes):
            t0 = time.perf_counter()
            spec = sample_scene_spec(10_000 + s)
            t1 = time.perf_counter()
            scene = TabletopScene(spec, client)
            t2 = time.perf_counter()
            t['spec'].append(t1 - t0)
            t['build'].append(t2 - t1)
            rng = np.random.default_rng(s)
            for v in range(args.views):
                size = CameraRanges().draw_resolution(rng)
                pose = sample_camera_pose(rng, scene.centre_xyz_m(), None, *size)
                light = sample_lighting(rng)
                ref = dataclasses.replace(pose, width_px=640, height_px=480)
                ta = time.perf_counter()
                render_view(scene, ref, dataclasses.replace(light, shadow=False))
                t['render_plain_640x480'].append(time.perf_counter() - ta)
                for shadow in (True, False):
                    light = type(light)(**{**light.to_dict(), 'shadow': shadow})
                    ta = time.perf_counter()
                    view = render_view(scene, pose, light)
                    t['render_shadow' if shadow else 'render_plain'].append(
                        time.perf_counter() - ta
                    )
                ta = time.perf_counter()
                refs = generate_referrals(scene, view, rng, forbid_pairs=HELD_OUT_PAIRS)
                tb = time.perf_counter()
                view_record(scene, view, refs, split='train', file_name='x.png', view_index=v)
                tc = time.perf_counter()
                rgb = sample_sensor(rng).apply(view.rgb)
                td = time.perf_counter()
                cv2.imwrite(os.path.join(tmp, f'{s}_{v}.png'), rgb[:, :, ::-1])
                te = time.perf_counter()
                t['expr'].append(tb - ta)
                t['record'].append(tc - tb)
                t['sensor'].append(td - tc)
                t['png'].append(te - td)
                n_refs += len(refs)
                n_sent += sum(len(r.sentences) for r in refs)
    client.disconnect()
    m = {k: float(np.mean(v)) for k, v in t.items()}
    render = 0.5 * (m['render_shadow'] + m['render_plain'])  # datasets shadow half the views
    per_view = render + m['expr'] + m['record'] + m['sensor'] + m['png']
    per_scene = m['spec'] + m['build'] + per_view
    n_total = int(round(args.train_scenes * 1.3))
    print(
        f'{args.scenes} scenes x {args.views} views, {os.cpu_count()} CPUs, '
        f'load average {os.getloadavg()[0]:.2f}'
    )
    for k, v in m.items():
        print(f'  {k:<14} {1000 * v:8.1f} ms')
    print(f'  shadow / plain render ratio: {m["render_shadow"] / m["render_plain"]:.2f}')
    print(
        '  drawn resolutions / 640x480 render ratio (no shadow): '
        f'{m["render_plain"] / m["render_plain_640x480"]:.2f}'
    )
    print(f'  per view (mixed shadows, expressions, RLE, PNG): {per_view:.3f} s')
    print(f'  per scene with one view: {per_scene:.3f} s; each extra view adds {per_view:.3f} s')
    print(
        f'  expressions per view: {n_refs / (args.scenes * args.views):.1f} refs, '
        f'{n_sent / (args.scenes * args.views):.1f} sentences'
    )
    for workers in (1, 2):
        print(
            f'  {args.train_scenes} train scenes + 3 x 10 % eval = {n_total} scenes, '
            f'{workers} worker(s): {n_total * per_scene / workers / 60:.1f} min '
            '(if the cores are free)'
        )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
