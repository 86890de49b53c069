"""InstAlign training loss (docs/method.md#losses).

::

    L_total  = w_inst * sum_k L_inst(k) + w_merged * L_merged + w_nt * L_nt
    L_inst(k) = w_score * BCE(p_k, y_k) (negatives weighted 0.1)
              + sum_matched (w_bce * BCE_pts + w_dice * Dice_pts) / #GT
              + w_phrase * mean_matched (1 - cos(Q_k,i, P_k,i))
    L_merged = w_merged_bce * BCE(M, G_union) + w_merged_dice * Dice(M, G_union)
    L_nt     = CE(no_target_logits, 1[no-target])

k runs over the final layer and every ``aux_outputs`` layer (deep supervision); queries are
matched per layer with :class:`HungarianMatcher`. Mask terms use K importance-sampled points
(Mask2Former: oversample 3.0, importance 0.75); the merged mask is supervised at its own
resolution (stride 4) against the union of the referred masks, area-resized (all zeros for
no-target samples). #GT is the number of GT instances in the batch, averaged over DDP ranks
and clamped at 1, as in Mask2Former's ``SetCriterion``.

Ablation switches of the tabletop study (docs/method.md#ablations):
``CriterionConfig.ablation('no_poa')`` sets the POA weight to 0 in the loss and the cost;
``'merged_only'`` drops instance matching and its losses (ReLA-like); ``'hard_selection'`` is a
model-config switch and leaves the loss unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from poa_gres_ros.training.losses import dice_loss, poa_loss, sigmoid_ce_loss
from poa_gres_ros.training.matcher import HungarianMatcher
from poa_gres_ros.training.point_sampling import point_sample, uncertain_point_coords

ABLATIONS = ('full', 'no_poa', 'merged_only', 'hard_selection')
INSTANCE_TARGETS = ('referred', 'all_objects')


@dataclass
class CriterionConfig:
    """Every weight of the loss and the matching cost (defaults: docs/method.md#losses).

    Attributes:
        weight_score: relevance BCE weight (Mask2Former class weight 2.0).
        weight_bce: point-sampled mask BCE weight (5.0).
        weight_dice: point-sampled mask dice weight (5.0).
        weight_phrase: POA weight lambda_phrase (2.0).
        negative_weight: weight of unmatched queries in the relevance BCE (0.1).
        weight_inst / weight_merged / weight_nt: lambda_inst (1), lambda_merged (2),
            lambda_nt (1).
        merged_bce / merged_dice: the two terms of L_merged (1, 1).
        cost_score / cost_bce / cost_dice / cost_phrase: matching-cost weights; None = the
            matching loss weight.
        num_points: K points per mask for the loss and the cost (12544; fewer for CPU).
        oversample_ratio / importance_sample_ratio: importance sampling (3.0, 0.75).
        score_cost: 'neg_prob' (-p) or 'neg_log_prob' (-log p) in the cost.
        deep_supervision: also supervise ``aux_outputs`` (True).
        instance_supervision: False = merged-mask-only ablation (no matching, no L_inst).
        merged_all_layers: apply L_merged to aux layers too (False).
        nt_class_weights: optional (w_target, w_no_target) CE class weights; None = equal.
        instance_targets: what queries are matched to (docs/method.md#matching):
            'referred' = the referred instances only (the paper's reading); 'all_objects' =
            every annotated object of the image, matched by mask cost alone (the score and
            POA costs default to 0), relevance target 1 for referred and 0 for unreferred
            objects, POA on the referred matches. Needs datasets built ``with_objects``.
        weight_name: weight of the object-name alignment term (all_objects with a
            vocabulary and a model with ``heads.name_alignment``): each matched query's
            cross-entropy over the dataset's category names and over its colour names
            (docs/method.md#name-alignment).
    """

    weight_score: float = 2.0
    weight_bce: float = 5.0
    weight_dice: float = 5.0
    weight_phrase: float = 2.0
    negative_weight: float = 0.1
    weight_inst: float = 1.0
    weight_merged: float = 2.0
    weight_nt: float = 1.0
    merged_bce: float = 1.0
    merged_dice: float = 1.0
    cost_score: float | None = None
    cost_bce: float | None = None
    cost_dice: float | None = None
    cost_phrase: float | None = None
    num_points: int = 12544
    oversample_ratio: float = 3.0
    importance_sample_ratio: float = 0.75
    score_cost: str = 'neg_prob'
    deep_supervision: bool = True
    instance_supervision: bool = True
    merged_all_layers: bool = False
    nt_class_weights: tuple[float, float] | None = None
    instance_targets: str = 'referred'
    weight_name: float = 1.0

    def __post_init__(self):
        if self.instance_targets not in INSTANCE_TARGETS:
            raise ValueError(
                f'criterion.instance_targets={self.instance_targets!r}; use one of '
                f'{INSTANCE_TARGETS}'
            )
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float | int) and not isinstance(v, bool) and v < 0:
                raise ValueError(f'criterion.{f.name}={v} must be >= 0')
        if self.num_points < 1:
            raise ValueError(f'criterion.num_points={self.num_points} must be >= 1')
        if self.nt_class_weights is not None:
            self.nt_class_weights = tuple(float(w) for w in self.nt_class_weights)
            if len(self.nt_class_weights) != 2:
                raise ValueError('criterion.nt_class_weights needs two values')

    @classmethod
    def from_dict(cls, d: dict) -> CriterionConfig:
        """Build from a dict (config file section); unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f'unknown criterion keys {sorted(unknown)}; known: {sorted(known)}')
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def ablation(self, name: str) -> CriterionConfig:
        """A copy for one ablation of the tabletop study: 'full', 'no_poa', 'merged_only' or
        'hard_selection' (the last one changes the model config only, see the trainer)."""
        if name not in ABLATIONS:
            raise ValueError(f'ablation must be one of {ABLATIONS}, got {name!r}')
        if name == 'no_poa':
            return replace(self, weight_phrase=0.0, cost_phrase=0.0)
        if name == 'merged_only':
            return replace(self, instance_supervision=False)
        return replace(self)

    def matcher(self) -> HungarianMatcher:
        all_objects = self.instance_targets == 'all_objects'

        def pick(cost, weight, zero_for_all_objects=False):
            if cost is not None:
                return cost
            return 0.0 if (all_objects and zero_for_all_objects) else weight

        return HungarianMatcher(
            cost_score=pick(self.cost_score, self.weight_score, True),
            cost_bce=pick(self.cost_bce, self.weight_bce),
            cost_dice=pick(self.cost_dice, self.weight_dice),
            cost_phrase=pick(self.cost_phrase, self.weight_phrase, True),
            num_points=self.num_points,
            score_cost=self.score_cost,
        )


def union_target(gt_masks: list[Tensor], size_hw: tuple[int, int], device, dtype) -> Tensor:
    """Merged GT at the merged-mask resolution.

    Args:
        gt_masks: B tensors (K_b, H, W) in [0, 1]; K_b = 0 gives an all-zero target.
        size_hw: (Hm, Wm) output size.
    Returns:
        (B, Hm, Wm) float in [0, 1] (area-resized union, so edges may be fractional).
    """
    out = []
    for m in gt_masks:
        if m.shape[0] == 0:
            out.append(torch.zeros(size_hw, device=device, dtype=dtype))
            continue
        u = m.to(device=device, dtype=dtype).amax(0)[None, None]
        if tuple(u.shape[-2:]) != tuple(size_hw):
            u = F.interpolate(u, size=size_hw, mode='area')
        out.append(u[0, 0])
    return torch.stack(out)


class POACriterion(torch.nn.Module):
    """Computes the InstAlign loss from a ``POAOutput``.

    Args:
        cfg: :class:`CriterionConfig`.
    """

    def __init__(self, cfg: CriterionConfig | None = None):
        super().__init__()
        self.cfg = cfg or CriterionConfig()
        self.matcher = self.cfg.matcher()

    def _num_masks(self, gt_masks: list[Tensor], device) -> float:
        n = torch.tensor(float(sum(m.shape[0] for m in gt_masks)), device=device)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(n)
            n = n / dist.get_world_size()
        return max(float(n), 1.0)

    def layer_instance_loss(
        self,
        layer,
        gt_masks: list[Tensor],
        num_masks: float,
        referred: list[Tensor] | None = None,
        labels: tuple[list[Tensor], list[Tensor], int] | None = None,
    ) -> dict[str, Tensor]:
        """Matched/unmatched losses of one decoder layer: 'score', 'bce', 'dice', 'poa'
        (unweighted scalars).

        Args:
            layer: a ``POALayerOutput``.
            gt_masks: B tensors (K_b, H, W): the instances queries are matched to (the
                referred ones, or every annotated object).
            num_masks: the mask-loss normaliser (#GT instances of the batch).
            referred: B bool tensors (K_b,), which of ``gt_masks`` the sentence refers to;
                None = all of them. A query matched to an unreferred object gets relevance
                target 0 at full weight (a hard negative); unmatched queries get target 0
                at ``negative_weight``; the POA term covers referred matches only.
            labels: ``(category, colour, num_categories)``: B int64 tensors (K_b,) of each
                instance's category and colour index (-1 = none) and the number of category
                names; with the layer's ``name_logits`` this adds the 'name' term.
        """
        cfg = self.cfg
        indices = self.matcher(layer, gt_masks)
        rel = layer.relevance_logits.float()
        b_idx = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(indices)])
        q_idx = torch.cat([q for q, _ in indices])
        if referred is None:
            pos = torch.ones(q_idx.shape[0], dtype=torch.bool, device=rel.device)
        else:
            pos = torch.cat([referred[b].to(rel.device)[j] for b, (_, j) in enumerate(indices)])
            pos = pos.bool()
        target = torch.zeros_like(rel)
        weight = torch.full_like(rel, cfg.negative_weight)
        target[b_idx, q_idx] = pos.to(rel.dtype)
        weight[b_idx, q_idx] = 1.0
        bce = F.binary_cross_entropy_with_logits(rel, target, reduction='none')
        out = {'score': (bce * weight).sum() / weight.sum().clamp_min(1e-8)}

        pred = layer.mask_logits[b_idx, q_idx].float()[:, None]  # (M, 1, Hm, Wm)
        if pred.shape[0] == 0:
            zero = layer.mask_logits.sum() * 0.0
            out.update(bce=zero, dice=zero, poa=(layer.queries.sum() * 0.0).float())
            return out
        coords = uncertain_point_coords(
            pred, cfg.num_points, cfg.oversample_ratio, cfg.importance_sample_ratio
        )
        pred_pts = point_sample(pred, coords)[:, 0]
        with torch.no_grad():
            # every GT instance is matched (N >= K), so j is a permutation of range(K_b):
            # sample each image's (K_b, H, W) targets in place at the coordinates of the
            # prediction matched to them, instead of gathering an (M, H, W) copy
            tgt_pts, start = [], 0
            for b, (_, j) in enumerate(indices):
                if len(j):
                    j = j.to(coords.device)
                    c = coords[start : start + len(j)][torch.argsort(j)]
                    pts = point_sample(gt_masks[b].to(pred)[:, None], c)[:, 0]
                    tgt_pts.append(pts[j])
                    start += len(j)
            tgt_pts = torch.cat(tgt_pts)
        out['bce'] = sigmoid_ce_loss(pred_pts, tgt_pts).sum() / num_masks
        out['dice'] = dice_loss(pred_pts, tgt_pts).sum() / num_masks
        q = layer.queries[b_idx[pos], q_idx[pos]].float()
        ph = layer.phrase_embedding[b_idx[pos], q_idx[pos]].float()
        n_pos = num_masks if referred is None else max(float(pos.sum()), 1.0)
        out['poa'] = poa_loss(q, ph).sum() / n_pos
        if labels is not None and getattr(layer, 'name_logits', None) is not None:
            out['name'] = self._name_loss(layer.name_logits[b_idx, q_idx].float(), indices, labels)
        return out

    @staticmethod
    def _name_loss(logits: Tensor, indices, labels) -> Tensor:
        """Cross-entropy of each matched query over the category names and over the colour
        names (docs/method.md#name-alignment); instances without a label are ignored."""
        category, colour, n_cat = labels
        cat = torch.cat([category[b].to(logits.device)[j] for b, (_, j) in enumerate(indices)])
        col = torch.cat([colour[b].to(logits.device)[j] for b, (_, j) in enumerate(indices)])
        loss = logits.sum() * 0.0
        if (cat >= 0).any():
            loss = loss + F.cross_entropy(logits[:, :n_cat], cat, ignore_index=-1)
        if logits.shape[1] > n_cat and (col >= 0).any():
            loss = loss + F.cross_entropy(logits[:, n_cat:], col, ignore_index=-1)
        return loss

    def merged_loss(self, merged_logits: Tensor, gt_masks: list[Tensor]) -> dict[str, Tensor]:
        """L_merged terms 'merged_bce', 'merged_dice' for (B, Hm, Wm) logits."""
        logits = merged_logits.float()
        tgt = union_target(gt_masks, tuple(logits.shape[-2:]), logits.device, logits.dtype)
        flat, tflat = logits.flatten(1), tgt.flatten(1)
        return {
            'merged_bce': sigmoid_ce_loss(flat, tflat).mean(),
            'merged_dice': dice_loss(flat, tflat).mean(),
        }

    def forward(
        self,
        outputs,
        gt_masks: list[Tensor],
        no_target: Tensor,
        object_masks: list[Tensor] | None = None,
        object_referred: list[Tensor] | None = None,
        object_category: list[Tensor] | None = None,
        object_colour: list[Tensor] | None = None,
        num_categories: int | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss and its weighted parts.

        Args:
            outputs: ``POAOutput`` of the model (final layer fields, ``no_target_logits``
                (B, 2), ``aux_outputs``).
            gt_masks: B tensors (K_b, H, W) in [0, 1], the referred non-crowd instances
                (K_b = 0 for no-target samples), any resolution.
            no_target: (B,) bool GT no-target flags.
            object_masks, object_referred: every annotated object of each sample's image,
                B tensors (K_b, H, W) and B bool tensors (K_b,); required when
                ``instance_targets='all_objects'`` (ignored otherwise).
            object_category, object_colour, num_categories: the objects' category and
                colour indices (B int64 tensors (K_b,), -1 = none) and the number of
                category names, for the name-alignment term (all_objects only; needs the
                outputs' ``name_logits``).
        Returns:
            ``(loss, parts)``: scalar loss with gradient; ``parts`` maps names such as
            'score', 'bce_3', 'poa', 'merged_bce', 'nt' to weighted detached scalars
            (aux layer k gets the suffix '_k'; convert with float() only when logging, to
            avoid a device sync per step).
        Raises:
            ValueError: batch sizes differ, or a sample flagged targeted has no GT instance.
        """
        cfg = self.cfg
        bsz = outputs.mask_logits.shape[0]
        if len(gt_masks) != bsz or no_target.shape[0] != bsz:
            raise ValueError(f'batch {bsz}: got {len(gt_masks)} GT entries, {no_target.shape}')
        for b, m in enumerate(gt_masks):
            if (m.shape[0] == 0) != bool(no_target[b]):
                raise ValueError(
                    f'sample {b}: no_target={bool(no_target[b])} but {m.shape[0]} '
                    'GT instances (drop targeted samples without masks)'
                )
        targets, referred, labels = gt_masks, None, None
        if cfg.instance_supervision and cfg.instance_targets == 'all_objects':
            if object_masks is None or object_referred is None:
                raise ValueError(
                    "instance_targets='all_objects' needs object_masks and object_referred "
                    '(build the datasets with with_objects=True)'
                )
            for b, r in enumerate(object_referred):
                if bool(r.any()) == bool(no_target[b]):
                    raise ValueError(
                        f'sample {b}: no_target={bool(no_target[b])} but '
                        f'{int(r.sum())} referred objects'
                    )
            targets, referred = object_masks, object_referred
            if object_category is not None and cfg.weight_name:
                colour = object_colour or [torch.full_like(c, -1) for c in object_category]
                labels = (object_category, colour, int(num_categories or 0))
        layers = [outputs]
        if cfg.deep_supervision:
            layers = [outputs, *outputs.aux_outputs]
        parts: dict[str, Tensor] = {}
        if cfg.instance_supervision:
            num_masks = self._num_masks(targets, outputs.mask_logits.device)
            targets = [t.float() for t in targets]  # once, not once per layer and use
            w = {
                'score': cfg.weight_score,
                'bce': cfg.weight_bce,
                'dice': cfg.weight_dice,
                'poa': cfg.weight_phrase,
                'name': cfg.weight_name,
            }
            for k, layer in enumerate(layers):
                sfx = '' if k == 0 else f'_{k - 1}'
                losses = self.layer_instance_loss(layer, targets, num_masks, referred, labels)
                for name, val in losses.items():
                    if w[name]:
                        parts[name + sfx] = cfg.weight_inst * w[name] * val
        merged_layers = layers if cfg.merged_all_layers else [outputs]
        for k, layer in enumerate(merged_layers):
            sfx = '' if k == 0 else f'_{k - 1}'
            m = self.merged_loss(layer.merged_mask_logits, gt_masks)
            parts['merged_bce' + sfx] = cfg.weight_merged * cfg.merged_bce * m['merged_bce']
            parts['merged_dice' + sfx] = cfg.weight_merged * cfg.merged_dice * m['merged_dice']
        cw = None
        if cfg.nt_class_weights is not None:
            cw = torch.tensor(cfg.nt_class_weights, device=outputs.no_target_logits.device)
        nt = F.cross_entropy(outputs.no_target_logits.float(), no_target.long(), weight=cw)
        parts['nt'] = cfg.weight_nt * nt
        total = sum(parts.values())
        return total, {k: v.detach() for k, v in parts.items()}
