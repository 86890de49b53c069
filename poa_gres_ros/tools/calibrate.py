"""Calibrate a saved model's relevance and no-target thresholds on a validation split.

Examples:
    poa-gres calibrate --model runs/x/model --data data/tabletop --split val --out models/x
    poa-gres calibrate --model runs/x/model --data D --split val --max-samples 300 --out M

Chooses the relevance threshold r and the no-target threshold t that maximise gIoU on the
split and folds them into a copy of the model written to ``--out`` (``heads.relevance_offset``
and the no-target head's bias; docs/method.md#calibration), so the product's 0.5 defaults
apply them. Writes ``calibration.json`` beside the model and prints the chosen pair. Calibrate
on a validation split, never on the split you report.
"""

from __future__ import annotations

VERB = 'calibrate'
HELP = 'choose relevance and no-target thresholds on a val split and fold them into the model'


def add_arguments(parser):
    parser.add_argument('--model', required=True, help='model folder or installed model name')
    parser.add_argument('--data', required=True, help='dataset folder (grefs(unc).json ...)')
    parser.add_argument('--split', default='val', help='validation split (default val)')
    parser.add_argument('--format', choices=('grefcoco', 'refzom'), default='grefcoco')
    parser.add_argument('--image-root', default=None, help='image folder (default DATA/images)')
    parser.add_argument('--out', required=True, help='folder for the calibrated model')
    parser.add_argument('--max-samples', type=int, default=None, help='first N sentences')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', 'cuda:1'")
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')


def run(args) -> int:
    import json
    import os

    import torch

    from poa_gres_ros.modeling.io import save_model
    from poa_gres_ros.tools.eval import _load_model, split_dataset
    from poa_gres_ros.training.calibrate import apply_calibration, calibrate
    from poa_gres_ros.training.config import DataConfig

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if os.path.abspath(args.out) == os.path.abspath(args.model):
        raise ValueError('--out must be a new folder, not the model being calibrated')
    model, model_path = _load_model(args.model, device)
    data_cfg = DataConfig(root=args.data, format=args.format)
    image_root = args.image_root or os.path.join(args.data, 'images')
    ds = split_dataset(model, data_cfg, args.split, image_root, args.max_samples)
    if not len(ds):
        raise ValueError(f'split {args.split!r} of {args.data} has no sentences')
    cal = calibrate(model, ds, batch_size=args.batch_size, device=device)
    apply_calibration(model, cal)
    out = save_model(model, args.out)
    info = {'model': model_path, 'data': args.data, 'split': args.split, 'samples': len(ds)}
    info['calibration'] = cal.to_dict()
    with open(os.path.join(out, 'calibration.json'), 'w') as fh:
        json.dump(info, fh, indent=2)
    nt = cal.no_target
    print(
        f'relevance threshold {cal.relevance_threshold:.2f}, no-target threshold '
        f'{nt.threshold:.2f}: gIoU on {args.split} {nt.giou:.2f} (at relevance 0.5 with its '
        f'best no-target threshold: {cal.giou_per_relevance.get(0.5, float("nan")):.2f}; '
        f'N-acc {nt.n_acc}, T-acc {nt.t_acc})'
    )
    print(f'calibrated model: {out}')
    return 0
