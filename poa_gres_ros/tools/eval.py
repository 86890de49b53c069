"""Evaluate a model folder on gRefCOCO-format (or Ref-ZOM) splits with ReLA's metrics.

Examples:
    poa-gres eval --model models/tabletop --data data/tabletop --split test --split test_comp
    poa-gres eval --model runs/x/model --data /data/grefcoco --image-root /data/coco/train2014 \\
        --split val --split testA --split testB --eval-size input --device cuda
    poa-gres eval --model M --data /data/refzom --format refzom --split test

Writes ``report.json``, ``report.md``, ``samples_<split>.jsonl`` and figures (IoU histogram,
metrics per expression type, overlays) to ``--out`` and prints the metric table.
Metrics, counted on the post-processed answer (docs/postprocessing.md): cIoU, gIoU, N-acc,
T-acc, Pr@0.7/0.8/0.9 (ReLA's evaluator after its fix in commit 884ef17)
per split and per expression type; Ref-ZOM oIoU, mIoU, Acc.
"""

from __future__ import annotations

from poa_gres_ros.tools.threshold_args import add_threshold_arguments, thresholds_from_args

VERB = 'eval'
HELP = 'evaluate a model on dataset splits (cIoU, gIoU, N-acc, T-acc; JSON + Markdown report)'


def add_arguments(parser):
    parser.add_argument('--model', required=True, help='model folder or installed model name')
    parser.add_argument('--data', required=True, help='dataset folder (grefs(unc).json ...)')
    parser.add_argument(
        '--split', action='append', required=True, help='split to evaluate (repeatable)'
    )
    parser.add_argument('--format', choices=('grefcoco', 'refzom'), default='grefcoco')
    parser.add_argument('--image-root', default=None, help='image folder (default DATA/images)')
    parser.add_argument(
        '--eval-size',
        default='input',
        help="'input' (network input, ReLA protocol), 'source' or HxW",
    )
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='auto', help="'auto', 'cpu', 'cuda', 'cuda:1'")
    add_threshold_arguments(parser)
    parser.add_argument('--max-samples', type=int, default=None, help='first N sentences/split')
    parser.add_argument('--examples', type=int, default=12, help='overlays per split')
    parser.add_argument('--out', default='reports/eval', help='report folder')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads')


def parse_eval_size(text: str):
    """'input' | 'source' | 'HxW' -> 'input' | 'source' | (H, W).

    Raises:
        ValueError: anything else.
    """
    if text in ('input', 'source'):
        return text
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f"--eval-size {text!r}: use 'input', 'source' or HxW") from None
    if h <= 0 or w <= 0:
        raise ValueError(f'--eval-size {text!r}: sizes must be positive')
    return (h, w)


def _load_model(name_or_path: str, device):
    import os

    from poa_gres_ros.modeling.io import load_model

    path = name_or_path
    if not os.path.isdir(path):
        try:
            from poa_gres_ros.inference import resolve_model_dir
        except ImportError:
            raise FileNotFoundError(f'model folder {path} not found') from None
        path = str(resolve_model_dir(name_or_path))
    return load_model(path, device=device), path


def split_dataset(model, data_cfg, split: str, image_root: str, max_samples=None):
    """A ``GresDataset`` of one split (its first ``max_samples`` sentences) prepared for
    ``model``'s input size, tokenizer and preprocessing.

    Raises:
        FileNotFoundError / ValueError: from ``load_records`` (missing or unknown split).
    """
    from poa_gres_ros.training.data_setup import load_records
    from poa_gres_ros.training.datasets.gres_dataset import GresDataset, model_preprocess

    records, masks = load_records(data_cfg, [split], for_training=False)
    if max_samples:
        records = records[:max_samples]
    cfg = model.config
    return GresDataset(
        records,
        masks,
        image_root,
        tuple(cfg.input.size_hw),
        model.tokenizer,
        cfg.text.max_tokens,
        model_preprocess(cfg),
    )


def run(args) -> int:
    import os

    import torch

    from poa_gres_ros.core.instance_metrics import summary_line
    from poa_gres_ros.core.metrics import METRIC_KEYS
    from poa_gres_ros.training.config import DataConfig
    from poa_gres_ros.training.evaluate import evaluate_dataset
    from poa_gres_ros.training.report import write_report

    eval_size = parse_eval_size(args.eval_size)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model, model_path = _load_model(args.model, device)
    thresholds = thresholds_from_args(args)
    data_cfg = DataConfig(root=args.data, format=args.format)
    image_root = args.image_root or os.path.join(args.data, 'images')
    results, datasets = {}, {}
    for split in args.split:
        ds = split_dataset(model, data_cfg, split, image_root, args.max_samples)
        results[split] = evaluate_dataset(
            model,
            ds,
            thresholds,
            args.batch_size,
            device,
            eval_size,
            keep_examples=args.examples,
            progress=True,
        )
        datasets[split] = ds
        row = results[split].summary['all']
        print(
            f'{split:>10}: n={row["count"]} '
            + ' '.join(f'{k}={row[k]:.2f}' if row[k] is not None else f'{k}=-' for k in METRIC_KEYS)
        )
        print(f'{"":>10}  {summary_line(row)}')
        if results[split].refzom:
            z = results[split].refzom
            print(
                f'{"":>10}  Ref-ZOM '
                + ' '.join(
                    f'{k}={z[k]:.2f}' if z[k] is not None else f'{k}=-'
                    for k in ('oIoU', 'mIoU', 'Acc')
                )
            )
    meta = {
        'model': model_path,
        'data': args.data,
        'format': args.format,
        'eval_size': args.eval_size,
        'thresholds': thresholds.to_dict(),
        'device': device,
        'max_samples': args.max_samples,
    }
    paths = write_report(args.out, results, datasets, meta)
    print(f'report: {paths["markdown"]} and {paths["json"]}')
    return 0
