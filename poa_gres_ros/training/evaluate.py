"""Batched evaluation of a POAModel on a dataset: gRefCOCO, Ref-ZOM and instance metrics.

Post-processing is the product's: ``core.postprocess.postprocess`` (docs/postprocessing.md),
the function the Predictor calls, applied to the model's own outputs (``relevance``,
``merged_mask``, ``no_target_prob``). Metrics are counted on what it returns, so they score
what the node publishes: the merged mask (restricted to the reported instances), the
no-target decision (which includes "no instance left") and the instances with their phrases.

* gRefCOCO (cIoU, gIoU, N-acc, T-acc, Pr@X): ``core.metrics.GresEvaluator`` (ReLA's counting);
* Ref-ZOM (oIoU, mIoU, Acc): ``core.metrics.RefZomEvaluator``, when the records are Ref-ZOM's;
* instance recall / precision, count accuracy, phrase-grounding accuracy:
  ``core.instance_metrics.InstanceEvaluator`` against the per-object GT masks and, where the
  records carry them, the sentence's GT phrases (docs/metrics.md).

Evaluation size (docs/method.md#evaluation-resolution): 'input' = the network input size with
the GT rasterised there (ReLA's protocol: 480 x 480 for gRefCOCO, comparable numbers need a
480 x 480 model); 'source' = each image's own size (what the robot sees); or an explicit (H, W).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from poa_gres_ros.core.instance_metrics import GtPhrase, InstanceEvaluator, merge_summaries
from poa_gres_ros.core.metrics import GresEvaluator, RefZomEvaluator
from poa_gres_ros.core.postprocess import InstructionTokens, postprocess
from poa_gres_ros.core.results import GresPrediction
from poa_gres_ros.core.thresholds import Thresholds
from poa_gres_ros.training.datasets.gres_dataset import collate_gres


@dataclass
class EvalResult:
    """Metrics and per-sample outcomes of one split.

    Attributes:
        summary: per expression type ('all', 'single', 'multi', 'no_target') the gRefCOCO
            metrics of ``GresEvaluator.summary`` and the instance metrics of
            ``InstanceEvaluator.summary`` in one dict.
        refzom: Ref-ZOM metrics (oIoU, mIoU, Acc, Pr@X) when the records carry Ref-ZOM
            sources, else None.
        samples: per sample: index, sentence, expr_type, outcome, iou, no_target_prob,
            pred_no_target, num_pred, num_gt, num_matched.
        examples: up to ``keep_examples`` (index, GresPrediction, gt_mask (H, W) bool) for
            overlays, at the evaluation size.
        eval_size: description of the evaluation resolution.
    """

    summary: dict
    refzom: dict | None
    samples: list[dict]
    examples: list[tuple[int, GresPrediction, np.ndarray]] = field(default_factory=list)
    eval_size: str = 'input'


def to_device(batch: dict, device) -> dict:
    """Move the tensors of a batch dict (see ``collate_gres``) to ``device``."""
    out = dict(batch)
    for key in ('images', 'input_ids', 'attention_mask', 'text_features', 'image_index'):
        if key in out:
            out[key] = out[key].to(device, non_blocking=True)
    if 'features' in out:
        out['features'] = {k: v.to(device, non_blocking=True) for k, v in out['features'].items()}
    return out


def model_inputs(batch: dict, dtype=torch.float32) -> dict:
    """Keyword arguments of ``POAModel.forward`` from a batch (cached features cast to
    ``dtype``: they are stored in float16)."""
    kw = {'input_ids': batch['input_ids'], 'attention_mask': batch['attention_mask']}
    if 'features' in batch:
        kw['features'] = {k: v.to(dtype) for k, v in batch['features'].items()}
    else:
        kw['images'] = batch['images']
    if 'text_features' in batch:
        kw['text_features'] = batch['text_features'].to(dtype)
    if 'image_index' in batch:
        kw['image_index'] = batch['image_index']
    return kw


def _tokens(tokenizer, max_tokens: int, sentences: list[str], input_ids) -> list:
    """Offsets and word ids of the batch's sentences, for phrase spans; checked against the
    token ids the model saw so that attention columns and offsets line up."""
    from poa_gres_ros.modeling.text_encoder import tokenize

    tok = tokenize(tokenizer, sentences, max_tokens)
    ids = input_ids.cpu()
    out = []
    for j, text in enumerate(sentences):
        n = tok.num_tokens[j]
        if not torch.equal(tok.input_ids[j, :n].cpu(), ids[j, :n]):
            raise RuntimeError(
                f'the dataset tokenized {text!r} differently from the model tokenizer'
            )
        out.append(InstructionTokens(text, tok.offsets[j][:n], tok.word_ids[j][:n]))
    return out


def gt_phrases(record) -> list[GtPhrase] | None:
    """The record's GT phrases as indices into its instance masks (``record.ann_ids`` order),
    or None when the record has none."""
    if not getattr(record, 'phrases', ()):
        return None
    where = {a: k for k, a in enumerate(record.ann_ids)}
    return [
        GtPhrase(p.char_start, p.char_end, tuple(where[a] for a in p.ann_ids if a in where))
        for p in record.phrases
    ]


def _gt_at(dataset, index: int, eval_size, batch_gt: torch.Tensor) -> np.ndarray:
    """(K, H, W) bool per-object GT masks at the evaluation size."""
    if eval_size == 'input':
        g = batch_gt.numpy()
    elif eval_size == 'source':
        g = dataset.masks.masks(dataset.records[index], None)
    else:
        g = dataset.masks.masks(dataset.records[index], tuple(eval_size))
    return g.astype(bool)


@torch.no_grad()
def evaluate_dataset(
    model,
    dataset,
    thresholds: Thresholds | None = None,
    batch_size: int = 8,
    device: str | torch.device = 'cpu',
    eval_size: str | tuple[int, int] = 'input',
    keep_examples: int = 0,
    progress: bool = False,
    num_workers: int = 0,
) -> EvalResult:
    """Run the model over a ``GresDataset`` / ``CachedFeatureDataset`` and count metrics.

    Args:
        model: POAModel (put in eval mode here; its previous mode is restored).
        dataset: dataset with ``records`` and ``masks``.
        thresholds: post-processing thresholds (default ``Thresholds()``).
        eval_size: 'input', 'source' or (H, W) (module docstring).
        keep_examples: keep this many (evenly spaced) predictions for overlays
            (``len(dataset)`` keeps every one).
    Raises:
        ValueError: an unknown ``eval_size``.
    """
    return evaluate_thresholds(
        model, dataset, [thresholds or Thresholds()], batch_size, device, eval_size,
        keep_examples, progress, num_workers,
    )[0]  # fmt: skip


@torch.no_grad()
def evaluate_thresholds(
    model,
    dataset,
    thresholds: Sequence[Thresholds],
    batch_size: int = 8,
    device: str | torch.device = 'cpu',
    eval_size: str | tuple[int, int] = 'input',
    keep_examples: int = 0,
    progress: bool = False,
    num_workers: int = 0,
) -> list[EvalResult]:
    """:func:`evaluate_dataset` for several sets of post-processing thresholds at the cost of
    one pass of the network: every batch's model output is post-processed once per set.
    Used by calibration (training/calibrate.py), which compares many thresholds.

    Returns:
        one :class:`EvalResult` per entry of ``thresholds``, in order; each equals
        ``evaluate_dataset`` with that set.
    Raises:
        ValueError: an unknown ``eval_size`` or no thresholds.
    """
    if not (
        eval_size in ('input', 'source')
        or (isinstance(eval_size, tuple | list) and len(eval_size) == 2)
    ):
        raise ValueError(f"eval_size must be 'input', 'source' or (H, W), got {eval_size!r}")
    if not thresholds:
        raise ValueError('evaluate_thresholds needs at least one set of thresholds')
    was_training = model.training
    model.eval()
    n = len(dataset)
    keep = (
        set(np.linspace(0, n - 1, keep_examples).round().astype(int).tolist())
        if (keep_examples and n)
        else set()
    )
    is_refzom = any(r.source in ('zero', 'one', 'many') for r in dataset.records)
    counts = [_Counts() for _ in thresholds]
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_gres,
        num_workers=num_workers,
    )
    max_tokens = model.config.text.max_tokens
    for batch in tqdm(loader, desc='evaluating', disable=not progress):
        b = to_device(batch, device)
        out = model(**model_inputs(b), aux_outputs=False)
        indices = batch['index'].tolist()
        records = [dataset.records[i] for i in indices]
        sizes = [
            {'input': tuple(dataset.size_hw), 'source': (r.height, r.width)}.get(
                eval_size if isinstance(eval_size, str) else '', tuple(eval_size)
            )
            for r in records
        ]
        tokens = _tokens(
            model.tokenizer, max_tokens, [r.sentence for r in records], batch['input_ids']
        )
        gts = [
            _gt_at(dataset, idx, eval_size, batch['gt_masks'][j]) for j, idx in enumerate(indices)
        ]
        for thr, c in zip(thresholds, counts):
            preds = postprocess(out, sizes, thr, tokens)
            for idx, rec, pred, gt_inst, size in zip(indices, records, preds, gts, sizes):
                c.add(idx, rec, pred, gt_inst, size, is_refzom, idx in keep)
    model.train(was_training)
    desc = eval_size if isinstance(eval_size, str) else f'{eval_size[0]}x{eval_size[1]}'
    return [c.result(is_refzom, desc) for c in counts]


@dataclass
class _Counts:
    """The metric accumulators and per-sample rows of one set of thresholds."""

    gres: GresEvaluator = field(default_factory=GresEvaluator)
    zom: RefZomEvaluator = field(default_factory=RefZomEvaluator)
    inst: InstanceEvaluator = field(default_factory=InstanceEvaluator)
    samples: list = field(default_factory=list)
    examples: list = field(default_factory=list)

    def add(self, idx, rec, pred, gt_inst, size, is_refzom: bool, keep: bool) -> None:
        gt = gt_inst.any(axis=0) if gt_inst.shape[0] else np.zeros(size, bool)
        k = 2 if rec.expr_type == 'multi' else 1  # the record's type (crowd-independent)
        res = self.gres.add(pred.final_mask, gt, pred.no_target, rec.no_target, k)
        if is_refzom:
            self.zom.add(pred.final_mask, gt, rec.source)
        ir = self.inst.add(
            [i.mask for i in pred.instances],
            gt_inst.reshape(-1, *size),
            res.expr_type,
            [i.phrase for i in pred.instances],
            gt_phrases(rec),
        )
        self.samples.append(
            {
                'index': idx,
                'sentence': rec.sentence,
                'expr_type': rec.expr_type,
                'outcome': res.outcome,
                'iou': res.iou,
                'no_target_prob': pred.no_target_prob,
                'pred_no_target': pred.no_target,
                'num_pred': ir.num_pred,
                'num_gt': ir.num_gt,
                'num_matched': ir.num_matched,
            }
        )
        if keep:
            self.examples.append((idx, pred, gt))

    def result(self, is_refzom: bool, desc: str) -> EvalResult:
        summary = merge_summaries(self.gres.summary(), self.inst.summary())
        zom = self.zom.summary() if is_refzom else None
        return EvalResult(summary, zom, self.samples, self.examples, desc)
