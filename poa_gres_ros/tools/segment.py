"""Segment what an instruction refers to in one image and write an overlay.

    poa-gres segment --model tabletop --image scene.png --text "the red mug and the duck" \\
        --out overlay.png

Prints one line per referred instance (relevance, phrase, box in pixels, area) and the
no-target decision; ``--json`` prints the same as one JSON object.
"""

from __future__ import annotations

import json

from poa_gres_ros.tools.threshold_args import add_threshold_arguments, thresholds_from_args

VERB = 'segment'
HELP = 'segment the objects an instruction refers to in one image; write an overlay'


def add_arguments(parser):
    parser.add_argument(
        '--model',
        default='tabletop',
        help='model folder or installed model name (default: tabletop)',
    )
    parser.add_argument('--image', required=True, help='input image (any format cv2 reads)')
    parser.add_argument('--text', required=True, help='the instruction')
    parser.add_argument('--out', help='write the overlay here (png/jpg)')
    parser.add_argument(
        '--backend', default='torch', help='torch | onnxruntime | tensorrt | auto (default: torch)'
    )
    parser.add_argument('--device', default='cpu', help='cpu or cuda:N (default: cpu)')
    add_threshold_arguments(parser)
    parser.add_argument('--json', action='store_true', help='print one JSON object')


def _read_rgb(path: str):
    import cv2

    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read image {path!r} (missing or not an image)')
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _summary(pred) -> dict:
    return {
        'instruction': pred.instruction,
        'truncated': pred.truncated,
        'no_target': pred.no_target,
        'no_target_prob': round(pred.no_target_prob, 4),
        'final_mask_area_px': int(pred.final_mask.sum()),
        'instances': [
            {
                'query_index': inst.query_index,
                'relevance': round(inst.relevance, 4),
                'phrase': None
                if inst.phrase is None
                else {
                    'text': inst.phrase.text,
                    'char_start': inst.phrase.char_start,
                    'char_end': inst.phrase.char_end,
                },
                'box_xyxy_px': list(inst.box_xyxy_px),
                'area_px': inst.area_px,
            }
            for inst in pred.instances
        ],
        'timings_ms': {k: round(v, 1) for k, v in pred.timings_ms.items()},
    }


def run(args) -> int:
    import cv2

    from poa_gres_ros.core.visualize import draw_overlay
    from poa_gres_ros.inference import Predictor

    image = _read_rgb(args.image)
    thresholds = thresholds_from_args(args)
    predictor = Predictor.from_model_dir(
        args.model, backend=args.backend, device=args.device, thresholds=thresholds
    )
    predictor.set_instruction(args.text)
    pred = predictor.predict(image)
    summary = _summary(pred)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        print(
            f'model {predictor.model_name} ({predictor.backend.describe()}), image '
            f'{image.shape[1]}x{image.shape[0]}, {summary["timings_ms"]["total"]} ms'
        )
        print(f'instruction: {pred.instruction!r}' + (' (truncated)' if pred.truncated else ''))
        print(
            f'no_target: {pred.no_target} (p={pred.no_target_prob:.3f}); final mask '
            f'{summary["final_mask_area_px"]} px; {len(pred.instances)} instance(s)'
        )
        for k, inst in enumerate(summary['instances']):
            phrase = inst['phrase']['text'] if inst['phrase'] else '-'
            print(
                f'  [{k}] relevance {inst["relevance"]:.3f}  phrase {phrase!r}  box '
                f'{tuple(inst["box_xyxy_px"])}  area {inst["area_px"]} px'
            )
    if args.out:
        overlay = draw_overlay(image, pred)
        if not cv2.imwrite(args.out, cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR)):
            raise RuntimeError(
                f'could not write {args.out!r} (folder missing or unknown extension?)'
            )
        if not args.json:
            print(f'overlay written to {args.out}')
    return 0
