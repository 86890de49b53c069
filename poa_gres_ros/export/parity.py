"""Torch versus exported-graph parity at written tolerances.

An output passes when every element satisfies ``|actual - torch| <= atol + rtol * |torch|``
(``numpy.allclose`` semantics). Tolerances (float32 on CPU; measured differences of the tiny
and tabletop presets are 1e-7 .. 1.2e-5, so these leave an order of magnitude of headroom for
other CPUs and thread counts while still catching a wrong graph, which differs by > 1e-2):

==================  ======  ======
output              atol    rtol
==================  ======  ======
text_features       1e-4    1e-4
mask_logits         1e-3    1e-3   (logits reach tens; masks are thresholded at 0)
relevance           1e-4    0
token_attention     1e-4    0
merged_mask         1e-4    0
no_target_prob      1e-4    0
==================  ======  ======

The cases cover the export's own text length, a different (the maximum) length, padding and
batch sizes 1 and 2, because dynamic dimensions are what a wrong export gets wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from poa_gres_ros.export.wrappers import (
    TEXT_GRAPH,
    TEXT_OUTPUT_NAME,
    VISION_GRAPH,
    VISION_OUTPUT_NAMES,
    example_images,
    example_tokens,
)

TOLERANCES: dict[str, tuple[float, float]] = {
    TEXT_OUTPUT_NAME: (1e-4, 1e-4),
    'mask_logits': (1e-3, 1e-3),
    'relevance': (1e-4, 0.0),
    'token_attention': (1e-4, 0.0),
    'merged_mask': (1e-4, 0.0),
    'no_target_prob': (1e-4, 0.0),
}


@dataclass
class ParityCase:
    """Fixed inputs of one parity case: tokens (B, L) int64 and images (B, 3, H, W) float32."""

    name: str
    input_ids: np.ndarray
    attention_mask: np.ndarray
    images: np.ndarray


@dataclass
class ParityReport:
    """Max abs differences: ``rows`` of (graph, case, output, max_abs_diff, within_tolerance)."""

    rows: list[tuple[str, str, str, float, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r[4] for r in self.rows)

    def max_abs_diff(self) -> dict[str, float]:
        """Per output name, the largest difference over all cases."""
        out: dict[str, float] = {}
        for _, _, name, diff, _ in self.rows:
            out[name] = max(out.get(name, 0.0), diff)
        return out

    def format(self) -> str:
        """Table text: one line per graph/case/output with the tolerance and the verdict."""
        lines = [f'{"graph":<15} {"case":<18} {"output":<16} {"max|diff|":>10}  tolerance']
        for graph, case, name, diff, ok in self.rows:
            atol, rtol = TOLERANCES[name]
            verdict = 'ok' if ok else 'FAIL'
            lines.append(
                f'{graph:<15} {case:<18} {name:<16} {diff:10.3g}  atol={atol:g} rtol={rtol:g} '
                f'{verdict}'
            )
        return '\n'.join(lines)


def compare(name: str, reference: np.ndarray, actual: np.ndarray) -> tuple[float, bool]:
    """(max abs difference, within TOLERANCES[name]) of one output.

    Raises:
        ValueError: different shapes (a wrong dynamic dimension) or an unknown output name.
    """
    if name not in TOLERANCES:
        raise ValueError(f'no tolerance for output {name!r}; known: {sorted(TOLERANCES)}')
    ref = np.asarray(reference, np.float64)
    act = np.asarray(actual, np.float64)
    if ref.shape != act.shape:
        raise ValueError(f'{name}: shape {act.shape} differs from torch {ref.shape}')
    if ref.size == 0:
        return 0.0, True
    atol, rtol = TOLERANCES[name]
    diff = np.abs(act - ref)
    ok = bool(np.all(diff <= atol + rtol * np.abs(ref)) and np.all(np.isfinite(act)))
    return float(diff.max()), ok


def default_cases(size_hw: tuple[int, int], max_tokens: int) -> list[ParityCase]:
    """Two cases: batch 2 at the export length (8 or max_tokens if smaller, second row
    padded) and batch 1 at ``max_tokens`` (a length the export did not trace)."""
    short = min(8, max_tokens)
    cases = []
    for name, batch, length, seed in (
        (f'b2_len{short}_pad', 2, short, 1),
        (f'b1_len{max_tokens}', 1, max_tokens, 2),
    ):
        ids, mask = example_tokens(batch, length, seed=seed)
        imgs = example_images(batch, size_hw, seed=seed)
        cases.append(ParityCase(name, ids.numpy(), mask.numpy(), imgs.numpy()))
    return cases


def run_parity(model, sessions: dict, cases: list[ParityCase]) -> ParityReport:
    """Compare the torch model with two ONNX Runtime sessions on fixed cases.

    Args:
        model: POAModel in eval mode (the reference).
        sessions: {'text_encoder': session, 'vision_decoder': session}, objects with ORT's
            ``run(output_names, feeds)``.
        cases: inputs (see ``default_cases``).
    Returns:
        ParityReport (check ``.ok``; the caller decides what a failure means).
    """
    report = ParityReport()
    for case in cases:
        ids = torch.from_numpy(case.input_ids)
        mask = torch.from_numpy(case.attention_mask)
        with torch.inference_mode():
            ref_text = model.encode_text(ids, mask)
            ref_vis = model.vision_outputs(torch.from_numpy(case.images), ref_text, mask)
        (text,) = sessions[TEXT_GRAPH].run(
            [TEXT_OUTPUT_NAME], {'input_ids': case.input_ids, 'attention_mask': case.attention_mask}
        )
        diff, ok = compare(TEXT_OUTPUT_NAME, ref_text.numpy(), text)
        report.rows.append((TEXT_GRAPH, case.name, TEXT_OUTPUT_NAME, diff, ok))
        # the vision graph gets the torch text features so the two graphs are checked apart
        vis = sessions[VISION_GRAPH].run(
            list(VISION_OUTPUT_NAMES),
            {
                'images': case.images,
                'text_features': ref_text.numpy(),
                'text_mask': case.attention_mask,
            },
        )
        for name, value in zip(VISION_OUTPUT_NAMES, vis):
            diff, ok = compare(name, ref_vis[name].numpy(), value)
            report.rows.append((VISION_GRAPH, case.name, name, diff, ok))
    return report
