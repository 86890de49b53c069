"""Overlay drawing for GRES results (CLI ``poa-gres segment``, the node's debug image, and
with the ground truth outlined, evaluation and replay reports).

Each kept instance gets a colour (fill + outline) and a label ``"<phrase> 0.87"`` at the top
left of its box; the merged final mask is outlined in white; a no-target prediction gets a
banner; the instruction is written along the bottom edge. OpenCV's Hershey fonts only draw
ASCII, so labels are transliterated (accents dropped, other characters shown as '?').
"""

from __future__ import annotations

import unicodedata

import numpy as np

from poa_gres_ros.core.results import GresPrediction

# Distinct RGB colours (Tableau 10), cycled per instance.
PALETTE_RGB = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def ascii_label(text: str) -> str:
    """Best-effort ASCII version of ``text`` for cv2.putText ('café' -> 'cafe', '杯' -> '?')."""
    decomposed = unicodedata.normalize('NFKD', text)
    out = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        out.append(ch if 32 <= ord(ch) < 127 else '?')
    return ''.join(out)


def _put_label(
    img: np.ndarray,
    text: str,
    org: tuple[int, int],
    colour,
    scale: float,
    taken: list[tuple[int, int, int, int]] | None = None,
) -> None:
    """Filled label with its top-left near ``org``; moved down while it would cover a label
    in ``taken`` (boxes x0, y0, x1, y1, updated)."""
    import cv2

    font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, int(round(scale * 2)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    height = th + base + 2
    x = int(np.clip(org[0], 0, max(0, img.shape[1] - tw - 2)))
    y = int(np.clip(org[1] + height, height, img.shape[0] - 1))  # y = bottom edge
    for _ in range(len(taken or ())):
        hit = any(x < r[2] and r[0] < x + tw + 2 and y - height < r[3] and r[1] < y for r in taken)
        if not hit or y + height > img.shape[0] - 1:
            break
        y += height
    if taken is not None:
        taken.append((x, y - height, x + tw + 2, y))
    cv2.rectangle(img, (x, y - height), (x + tw + 2, y), colour, -1)
    lum = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]
    fg = (0, 0, 0) if lum > 140 else (255, 255, 255)
    cv2.putText(img, text, (x + 1, y - base - 1), font, scale, fg, thick, cv2.LINE_AA)


def draw_overlay(
    image_rgb: np.ndarray,
    prediction: GresPrediction,
    alpha: float = 0.45,
    show_instruction: bool = True,
) -> np.ndarray:
    """Draw a prediction over its image.

    Args:
        image_rgb: (H, W, 3) uint8 RGB, the image the prediction was made on.
        prediction: GresPrediction at the same (H, W).
        alpha: opacity of the instance fill in [0, 1].
        show_instruction: write the instruction along the bottom edge.
    Returns:
        (H, W, 3) uint8 RGB, a new array.
    Raises:
        TypeError / ValueError: wrong image type or shape, or masks of another size.
    """
    import cv2

    if not isinstance(image_rgb, np.ndarray) or image_rgb.dtype != np.uint8:
        raise TypeError('image_rgb must be a (H, W, 3) uint8 numpy array')
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
        raise ValueError(f'image_rgb must have shape (H, W, 3), got {image_rgb.shape}')
    h, w = image_rgb.shape[:2]
    if prediction.final_mask.shape != (h, w):
        raise ValueError(f'prediction masks are {prediction.final_mask.shape}, image is {(h, w)}')
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f'alpha={alpha} must be in [0, 1]')
    out = image_rgb.copy()
    scale = max(0.4, min(h, w) / 900.0)
    for k, inst in enumerate(prediction.instances):
        if inst.mask.shape != (h, w):
            raise ValueError(f'instance mask is {inst.mask.shape}, image is {(h, w)}')
        colour = PALETTE_RGB[k % len(PALETTE_RGB)]
        region = inst.mask
        out[region] = ((1 - alpha) * out[region] + alpha * np.asarray(colour)).astype(np.uint8)
        contours, _ = cv2.findContours(
            region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(out, contours, -1, colour, max(1, int(2 * scale)))
    if prediction.final_mask.any():
        contours, _ = cv2.findContours(
            prediction.final_mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
        )
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1)
    taken: list[tuple[int, int, int, int]] = []
    if prediction.no_target:
        _put_label(
            out,
            f'no target ({prediction.no_target_prob:.2f})',
            (4, 0),
            (214, 39, 40),
            scale * 1.3,
            taken,
        )
    for k, inst in enumerate(prediction.instances):  # labels last, on top of every fill
        colour = PALETTE_RGB[k % len(PALETTE_RGB)]
        phrase = ascii_label(inst.phrase.text) if inst.phrase is not None else '-'
        x0, y0, _, _ = inst.box_xyxy_px
        _put_label(out, f'{phrase} {inst.relevance:.2f}', (x0, y0), colour, scale, taken)
    if show_instruction and prediction.instruction:
        text = ascii_label(prediction.instruction) + (
            ' [truncated]' if prediction.truncated else ''
        )
        _put_label(out, text, (4, h), (20, 20, 20), scale)
    return out


def draw_ground_truth_overlay(image_rgb: np.ndarray, pred: GresPrediction, gt: np.ndarray):
    """:func:`draw_overlay` of ``pred`` (no instruction text) plus the ground truth outlined in
    red, for evaluation and replay reports.

    Args:
        image_rgb: (H0, W0, 3) uint8 RGB, resized (bilinear) to the mask size.
        pred: the prediction, masks (H, W) bool.
        gt: (H, W) bool merged ground-truth mask.
    Returns:
        (H, W, 3) uint8 RGB.
    """
    import cv2

    h, w = gt.shape
    img = cv2.resize(image_rgb, (w, h), interpolation=cv2.INTER_LINEAR)
    out = draw_overlay(img, pred, show_instruction=False)
    contours, _ = cv2.findContours(gt.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(out, contours, -1, (230, 30, 30), max(1, round(min(h, w) / 160)))
    return out
