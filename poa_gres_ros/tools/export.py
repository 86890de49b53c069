"""Export a model folder to ONNX: two graphs (text encoder; vision + decoder) with named inputs
and outputs, opset 18, dynamic batch and text length, the image size fixed to the model's input
size, checked with onnx.checker and against torch (max abs difference per output printed).

  poa-gres export models/tabletop                 # writes models/tabletop/onnx/
  poa-gres export models/tabletop --out /tmp/onnx

The ONNX Runtime and TensorRT backends use a model folder's onnx/ subfolder when its metadata
matches the folder's weights; otherwise they export into the cache on first use.
"""

from __future__ import annotations

VERB = 'export'
HELP = 'export a model folder to ONNX (text encoder + vision/decoder graphs) with parity check'


def add_arguments(parser):
    parser.add_argument('model_dir', help='model folder (path or name under models/)')
    parser.add_argument(
        '--out', default=None, help='output folder (default: MODEL_DIR/onnx, used by backends)'
    )
    parser.add_argument('--opset', type=int, default=None, help='ONNX opset (default 18)')
    parser.add_argument(
        '--no-parity', action='store_true', help='skip the torch vs ONNX Runtime check'
    )


def run(args) -> int:
    import logging
    import time
    from pathlib import Path

    from poa_gres_ros.export.onnx_export import METADATA_NAME, export_onnx
    from poa_gres_ros.export.wrappers import GRAPH_FILES, GRAPHS, OPSET
    from poa_gres_ros.inference.model_dirs import resolve_model_dir

    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    logging.getLogger('poa_gres_ros').setLevel(logging.INFO)
    model_dir = resolve_model_dir(args.model_dir)
    out = Path(args.out) if args.out else model_dir / 'onnx'
    opset = args.opset or OPSET
    print(f'exporting {model_dir} -> {out} (opset {opset}); this takes 1-3 min on 2 CPU cores')
    t0 = time.perf_counter()
    meta = export_onnx(model_dir, out, opset=opset, check_parity=not args.no_parity)
    for graph in GRAPHS:
        g = meta['graphs'][graph]
        ins = ', '.join(f'{i["name"]}{i["shape"]} {i["dtype"]}' for i in g['inputs'])
        outs = ', '.join(f'{o["name"]}{o["shape"]} {o["dtype"]}' for o in g['outputs'])
        print(f'{GRAPH_FILES[graph]}: {g["bytes"] / 1e6:.1f} MB, {ins} -> {outs}')
    if 'parity' in meta:
        print('parity torch vs ONNX Runtime, max abs diff per output (all cases):')
        tol = meta['parity']['tolerances']
        for name, diff in meta['parity']['max_abs_diff'].items():
            print(f'  {name:<16} {diff:.3g}  (atol {tol[name][0]:g}, rtol {tol[name][1]:g})')
    print(f'wrote {out / METADATA_NAME} in {time.perf_counter() - t0:.1f} s')
    return 0
