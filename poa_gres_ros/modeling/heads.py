"""Prediction heads of InstAlign (docs/method.md#heads): mask, relevance, phrase-object alignment
(R and P), instance aggregation (IA) and the no-target head.

All functions are tensor-only (no data-dependent Python branches) so they export to ONNX.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from poa_gres_ros.core.model_config import HeadConfig
from poa_gres_ros.modeling.common import MLP


def poa_token_mask(attention_mask: Tensor, exclude_special: bool) -> Tensor:
    """Token set V of the phrase attention R (docs/method.md#phrase-object-alignment).

    Args:
        attention_mask: (B, L) int/bool, 1 = real token, right padded ([CLS] first, [SEP] last
            real token, as BERT tokenizers produce).
        exclude_special: drop [CLS] (position 0) and [SEP] (last real token) from V; a row that
            would become empty keeps its real tokens.
    Returns:
        (B, L) bool.
    """
    valid = attention_mask.bool()
    if not exclude_special:
        return valid
    pos = torch.arange(valid.shape[1], device=valid.device)[None, :]
    last = valid.long().sum(1, keepdim=True) - 1
    content = valid & (pos > 0) & (pos != last)
    # logical ops, not torch.where: ONNX Runtime has no Where kernel for bool tensors
    return content | (valid & ~content.any(1, keepdim=True))


def phrase_alignment(
    queries: Tensor, text: Tensor, token_mask: Tensor, stop_grad_text: bool = False
) -> tuple[Tensor, Tensor]:
    """Phrase-object alignment: ``R = softmax_V(Q T^T / sqrt(C))``, ``P = R T``.

    Method: docs/method.md#phrase-object-alignment.

    Args:
        queries: (B, N, C) Q_k after the decoder norm.
        text: (B, L, C) T_k.
        token_mask: (B, L) bool, the set V (every row has at least one True).
        stop_grad_text: detach T inside P (off by default).
    Returns:
        R: (B, N, L), rows sum to 1 over V, exactly 0 outside V.
        P: (B, N, C) soft phrase embeddings.
    """
    scores = torch.einsum('bnc,blc->bnl', queries, text) / math.sqrt(queries.shape[-1])
    keep = token_mask[:, None, :]
    scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)
    attn = torch.where(keep, scores.softmax(-1), torch.zeros_like(scores))
    phrase = torch.einsum('bnl,blc->bnc', attn, text.detach() if stop_grad_text else text)
    return attn, phrase


class InstanceAggregation(nn.Module):
    """Relevance-weighted instance aggregation (docs/method.md#aggregation).

    soft: ``logits_M = sum_i p_i * PReLU(S_i) (+ b)``, ``M = sigmoid(logits_M)``;
    hard (ablation): ``M = max_i [p_i > tau] * sigmoid(S_i)`` (union of the soft masks of the
    selected queries, so ``M > 0.5`` is the union of their binary masks); logits = logit(M).

    Args:
        cfg: HeadConfig (aggregation, prelu, prelu_init, ia_bias, ia_bias_init, hard_threshold).
        num_queries: N (for the per-query PReLU).
    """

    def __init__(self, cfg: HeadConfig, num_queries: int):
        super().__init__()
        self.mode, self.prelu_mode, self.tau = cfg.aggregation, cfg.prelu, cfg.hard_threshold
        self.prelu_weight = None
        if self.mode == 'soft' and self.prelu_mode != 'none':
            n = num_queries if self.prelu_mode == 'per_query' else 1
            self.prelu_weight = nn.Parameter(torch.full((n,), float(cfg.prelu_init)))
        self.bias = None
        if self.mode == 'soft' and cfg.ia_bias:
            self.bias = nn.Parameter(torch.tensor([float(cfg.ia_bias_init)]))

    def forward(self, mask_logits: Tensor, relevance: Tensor) -> Tensor:
        """mask_logits (B, N, H, W) S; relevance (B, N) p in [0, 1]; returns (B, H, W) logits."""
        if self.mode == 'hard':
            keep = (relevance > self.tau).to(mask_logits.dtype)[:, :, None, None]
            merged = (keep * mask_logits.sigmoid()).amax(1).clamp(1e-6, 1 - 1e-6)
            return torch.logit(merged)
        x = mask_logits
        if self.prelu_weight is not None:
            alpha = self.prelu_weight.view(1, -1, 1, 1)
            x = torch.where(x >= 0, x, alpha * x)
        out = torch.einsum('bn,bnhw->bhw', relevance, x)
        if self.bias is not None:
            out = out + self.bias
        return out


class NoTargetHead(nn.Module):
    """No-target predictor (docs/method.md#no-target): ``MLP([Q_global ; T_sen (; stats)]) -> 2``.

    ``Q_global = sum_i p_i Q_i`` ('sum') or divided by ``sum_i p_i + 1e-6`` ('mean');
    ``T_sen`` = mean of the final text features over real tokens (attention_mask). With
    ``relevance_stats`` the MLP also sees the largest relevance ``max_i p_i`` and the expected
    instance count ``sum_i p_i``: when relevance follows the instruction these say directly
    whether any query claims the expression.
    """

    def __init__(self, dim: int, hidden: int, q_global: str, relevance_stats: bool = False):
        super().__init__()
        self.q_global = q_global
        self.relevance_stats = relevance_stats
        self.mlp = MLP(2 * dim + (2 if relevance_stats else 0), hidden, 2, 2)

    def forward(
        self, queries: Tensor, relevance: Tensor, text: Tensor, attention_mask: Tensor
    ) -> Tensor:
        """queries (B, N, C); relevance (B, N) in [0, 1]; text (B, L, C); attention_mask
        (B, L); returns (B, 2) logits, column 1 = no-target."""
        q_global = torch.einsum('bn,bnc->bc', relevance, queries)
        if self.q_global == 'mean':
            q_global = q_global / (relevance.sum(1, keepdim=True) + 1e-6)
        m = attention_mask.to(text.dtype)[:, :, None]
        t_sen = (text * m).sum(1) / m.sum(1).clamp(min=1.0)
        parts = [q_global, t_sen]
        if self.relevance_stats:
            parts += [relevance.amax(1, keepdim=True), relevance.sum(1, keepdim=True)]
        return self.mlp(torch.cat(parts, -1))


class AgreementRelevance(nn.Module):
    """Relevance logits from the agreement of each query with its phrase
    (docs/method.md#relevance): ``MLP([Q_i ; P_i ; Q_i * W P_i (; word matches)])`` (2
    layers), so a query is relevant when what it holds agrees with the words it attends to,
    not because of its slot. With name alignment, two word-match features in the name space
    join: ``sum_t R_it A_it`` and ``max_t A_it`` (``NameAlignment.word_matches``).

    Args:
        dim: C. extra: number of extra features (0 or 2).
    """

    def __init__(self, dim: int, extra: int = 0):
        super().__init__()
        self.phrase_proj = nn.Linear(dim, dim)
        self.mlp = MLP(3 * dim + extra, dim, 1, 2)

    @property
    def output_layer(self) -> nn.Linear:
        """The last linear layer (its bias sets the prior of every relevance logit)."""
        return self.mlp.layers[-1]

    def forward(self, queries: Tensor, phrase: Tensor, extra: Tensor | None = None) -> Tensor:
        """queries (B, N, C) normed Q; phrase (B, N, C) P; extra (B, N, E) further features
        (the name-space word matches) or None; returns (B, N) logits."""
        parts = [queries, phrase, queries * self.phrase_proj(phrase)]
        if extra is not None:
            parts.append(extra)
        return self.mlp(torch.cat(parts, -1)).squeeze(-1)


class NameAlignment(nn.Module):
    """Object-name alignment (docs/method.md#name-alignment): how well each query matches the
    name of every object category and colour of the dataset, in the decoder's text space.

    ``logits[b, n, m] = exp(s) * cos(W Q_{b,n}, E_m)``, where ``E_m`` is the mean of the
    decoder-projected text tokens of name m (``POATransformerDecoder.embed_texts``) and s a
    learnt log-scale (init log 10). The criterion asks each matched query for its object's
    category and colour among these names.

    With name alignment on, the relevance head also reads ``word_matches``, so the head is
    part of the inference graph; only ``forward`` (the vocabulary logits) is training-only.

    Args:
        dim: C.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.log_scale = nn.Parameter(torch.tensor(math.log(10.0)))

    def forward(self, queries: Tensor, names: Tensor) -> Tensor:
        """queries (B, N, C) normed Q; names (M, C) name embeddings; returns (B, N, M)."""
        q = F.normalize(self.proj(queries), dim=-1)
        return self.log_scale.exp() * torch.einsum('bnc,mc->bnm', q, F.normalize(names, dim=-1))

    def word_matches(
        self, queries: Tensor, text: Tensor, token_attention: Tensor, token_mask: Tensor
    ) -> Tensor:
        """How well the instruction's words name each query, in the name space.

        ``A_it = exp(s) cos(W Q_i, T_t)`` for the real tokens t of the instruction (the space
        the name loss trains: a word that names the object's category or colour scores
        high). Returns (B, N, 2): ``sum_t R_it A_it`` (the words the query attends to) and
        ``max_t A_it`` (the best-matching word), from queries (B, N, C), text (B, L, C),
        token_attention R (B, N, L) and token_mask (B, L) bool.
        """
        q = F.normalize(self.proj(queries), dim=-1)
        sim = self.log_scale.exp() * torch.einsum('bnc,blc->bnl', q, F.normalize(text, dim=-1))
        keep = token_mask[:, None, :]
        attended = (token_attention * sim).sum(-1)
        best = sim.masked_fill(~keep, torch.finfo(sim.dtype).min).amax(-1)
        return torch.stack([attended, best], -1)


class PredictionHeads(nn.Module):
    """Heads applied to every supervised decoder layer: mask, relevance, POA and IA.

    Args:
        cfg: HeadConfig. dim: C. mask_dim: channels of F_mask. num_queries: N.
    """

    def __init__(self, cfg: HeadConfig, dim: int, mask_dim: int, num_queries: int):
        super().__init__()
        self.cfg = cfg
        self.norm = nn.LayerNorm(dim)
        self.mask_embed = MLP(dim, dim, mask_dim, cfg.mask_mlp_layers)
        self.names = NameAlignment(dim) if cfg.name_alignment else None
        # 'linear': p = sigmoid(w^T Q + b); 'agreement': AgreementRelevance
        extra = 2 if self.names is not None else 0
        self.relevance = (
            nn.Linear(dim, 1) if cfg.relevance == 'linear' else AgreementRelevance(dim, extra)
        )
        self.aggregation = InstanceAggregation(cfg, num_queries)

    @property
    def relevance_output(self) -> nn.Linear:
        """The last linear layer of the relevance head (its bias is every logit's prior)."""
        rel = self.relevance
        return rel if isinstance(rel, nn.Linear) else rel.output_layer

    def mask_logits(self, queries: Tensor, mask_features: Tensor) -> Tensor:
        """Only the instance mask logits S (B, N, Hm, Wm) of raw decoder queries (B, N, C)."""
        return torch.einsum('bnd,bdhw->bnhw', self.mask_embed(self.norm(queries)), mask_features)

    def forward(
        self, queries: Tensor, mask_features: Tensor, text: Tensor, token_mask: Tensor
    ) -> dict[str, Tensor]:
        """queries (B, N, C) raw decoder state; mask_features (B, D, Hm, Wm); text (B, L, C);
        token_mask (B, L) bool (V).

        Returns a dict with 'queries' (B, N, C) normed, 'mask_logits' (B, N, Hm, Wm),
        'relevance_logits' (B, N), 'token_attention' (B, N, L), 'phrase_embedding' (B, N, C),
        'merged_mask_logits' (B, Hm, Wm), 'text_features' (B, L, C).
        """
        q = self.norm(queries)
        mask_logits = torch.einsum('bnd,bdhw->bnhw', self.mask_embed(q), mask_features)
        attn, phrase = phrase_alignment(q, text, token_mask, self.cfg.poa_stop_grad_text)
        if isinstance(self.relevance, nn.Linear):
            relevance_logits = self.relevance(q).squeeze(-1)
        else:
            extra = None
            if self.names is not None:
                extra = self.names.word_matches(q, text, attn, token_mask)
            relevance_logits = self.relevance(q, phrase, extra)
        merged = self.aggregation(mask_logits, relevance_logits.sigmoid())
        return {
            'queries': q,
            'mask_logits': mask_logits,
            'relevance_logits': relevance_logits,
            'token_attention': attn,
            'phrase_embedding': phrase,
            'merged_mask_logits': merged,
            'text_features': text,
        }


def attention_keep_mask(mask_logits: Tensor, size: tuple[int, int]) -> Tensor:
    """Masked-attention mask of Mask2Former from the previous prediction.

    Args:
        mask_logits: (B, N, Hm, Wm). size: (h, w) of the next layer's feature level.
    Returns:
        (B, 1, N, h*w) bool, True = may attend (sigmoid >= 0.5); rows with no True are all True.
        Detached (no gradient through the mask).
    """
    m = F.interpolate(mask_logits.detach(), size=size, mode='bilinear', align_corners=False)
    keep = m.flatten(2) >= 0.0  # sigmoid(x) >= 0.5
    keep = keep | ~keep.any(-1, keepdim=True)
    return keep[:, None]
