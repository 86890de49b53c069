"""Build (or find) the TensorRT engines of a model folder on this GPU and cache them.

  poa-gres build-engine models/tabletop                       # fp16, cache default
  poa-gres build-engine models/tabletop --precision int8 --calibration-dataset data/tabletop
  poa-gres build-engine models/tabletop --dry-run             # plan only: works without TensorRT

Steps: find the ONNX export (MODEL_DIR/onnx or the cache; exported on first use), parse it with
TensorRT's ONNX parser, log every I/O tensor, set the optimisation profile (batch 1..max-batch,
text length 1..max_tokens, tuned for --opt-tokens), build with the precision flags and write the
engine plus a metadata JSON into the cache folder keyed by GPU name, compute capability,
TensorRT version, precision, input size and ONNX hash. Build engines on the target (a Jetson
builds its own; engines do not move between GPUs or TensorRT versions). Needs TensorRT 10+.
"""

from __future__ import annotations

from poa_gres_ros.core.inference_options import PRECISIONS

VERB = 'build-engine'
HELP = 'build/cache TensorRT engines for a model folder (TensorRT 10+, CUDA GPU)'


def add_arguments(parser):
    parser.add_argument('model_dir', help='model folder (path or name under models/)')
    parser.add_argument('--precision', choices=PRECISIONS, default='fp16')
    parser.add_argument('--device', default='cuda:0', help='CUDA device (default cuda:0)')
    parser.add_argument(
        '--cache-dir',
        default=None,
        help='cache root (default: $POA_GRES_CACHE_DIR, else ~/.cache/poa_gres_ros)',
    )
    parser.add_argument('--max-batch', type=int, default=1, help='largest batch (default 1)')
    parser.add_argument(
        '--opt-tokens', type=int, default=None, help='text length to tune for (default max/2)'
    )
    parser.add_argument('--workspace-mb', type=int, default=1024, help='builder workspace limit')
    parser.add_argument('--calibration-dataset', default=None, help='gRefCOCO folder for int8')
    parser.add_argument('--calibration-images', type=int, default=64)
    parser.add_argument('--force', action='store_true', help='rebuild even if cached')
    parser.add_argument(
        '--dry-run',
        action='store_true',
        help='print the plan (cache folder, profiles, ONNX I/O tensors) without TensorRT',
    )


def run(args) -> int:
    import logging

    from poa_gres_ros.export.onnx_artifacts import find_or_export_onnx
    from poa_gres_ros.export.tensorrt_engine import format_io_table, onnx_io_table
    from poa_gres_ros.inference.engine_artifacts import plan_engines
    from poa_gres_ros.inference.model_dirs import resolve_model_dir
    from poa_gres_ros.modeling.io import load_config

    logging.basicConfig(level=logging.WARNING, format='%(levelname)s %(name)s: %(message)s')
    logging.getLogger('poa_gres_ros').setLevel(logging.INFO)
    model_dir = resolve_model_dir(args.model_dir)
    config = load_config(model_dir)
    if args.dry_run:
        from poa_gres_ros.export.artifacts import default_cache_dir

        export_dir, meta = find_or_export_onnx(model_dir, args.cache_dir)
        gpu = {'gpu_name': 'PLANNED-GPU', 'compute_capability': '0.0'}
        try:
            from poa_gres_ros.export.tensorrt_engine import gpu_identity

            gpu = gpu_identity(args.device)
        except RuntimeError as exc:
            print(f'(no GPU here: {exc}; the plan uses a placeholder GPU)')
        folder, specs = plan_engines(
            meta,
            gpu,
            _trt_version(),
            args.precision,
            args.cache_dir or default_cache_dir(),
            args.max_batch,
            args.opt_tokens,
        )
        print(f'ONNX export: {export_dir}\nengine cache folder: {folder}')
        for spec in specs:
            print(f'\n[{spec.graph}] ONNX I/O tensors:')
            print(format_io_table(onnx_io_table(meta['graphs'][spec.graph])))
            for name, (lo, mid, hi) in spec.profile.items():
                print(f'  profile {name}: min {lo} opt {mid} max {hi}')
        return 0
    from poa_gres_ros.inference.backends.tensorrt_backend import available
    from poa_gres_ros.inference.engine_artifacts import find_or_build_engines

    ok, why = available(args.device)
    if not ok:
        raise RuntimeError(f'TensorRT is not usable here: {why} (--dry-run works without it)')
    engines, info = find_or_build_engines(
        model_dir,
        config,
        args.device,
        cache_dir=args.cache_dir,
        precision=args.precision,
        max_batch=args.max_batch,
        opt_tokens=args.opt_tokens,
        workspace_mb=args.workspace_mb,
        calibration_dataset=args.calibration_dataset,
        calibration_images=args.calibration_images,
        force_rebuild=args.force,
    )
    for eng in engines.values():
        eng.close()
    print(f'ready: {info}')
    return 0


def _trt_version() -> str:
    try:
        import tensorrt as trt
    except (ImportError, OSError):
        return 'none'
    return trt.__version__
