"""Typed outputs of ``POAModel.forward`` (docs/method.md#overview).

Shapes: B batch, N queries, L tokens, C decoder width, (Hm, Wm) = (H/4, W/4) of the network
input (H, W). All tensors are float (the model's dtype); logits are pre-sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor


@dataclass
class POALayerOutput:
    """Predictions of one supervised decoder layer (index 0 = before layer 1).

    Attributes:
        mask_logits: (B, N, Hm, Wm) instance mask logits S_k.
        relevance_logits: (B, N) pre-sigmoid; relevance p_k = sigmoid(relevance_logits).
        token_attention: (B, N, L) R_k, softmax over the token set V (real tokens, without
            [CLS]/[SEP] when ``heads.poa_exclude_special_tokens``), exactly 0 at padding.
        queries: (B, N, C) Q_k as used by the heads (after the decoder norm).
        text_features: (B, L, C) T_k (updated by the text <- query cross-attention).
        phrase_embedding: (B, N, C) P_k = R_k T_k, for the POA loss
            (docs/method.md#phrase-object-alignment).
        merged_mask_logits: (B, Hm, Wm) pre-sigmoid of the aggregated mask M_k
            (docs/method.md#aggregation).
        name_logits: (B, N, M) object-name scores (training only) or None.
        relevance_offset: ``heads.relevance_offset`` of the final layer's reported relevance
            (0 for the earlier layers).
    """

    mask_logits: Tensor
    relevance_logits: Tensor
    token_attention: Tensor
    queries: Tensor
    text_features: Tensor
    phrase_embedding: Tensor
    merged_mask_logits: Tensor
    name_logits: Tensor | None = None
    relevance_offset: float = 0.0

    @property
    def relevance(self) -> Tensor:
        """(B, N) reported relevance scores ``p = sigmoid(relevance_logits + relevance_offset)``
        in [0, 1] (the calibrated score that post-processing thresholds)."""
        if self.relevance_offset:
            return (self.relevance_logits + self.relevance_offset).sigmoid()
        return self.relevance_logits.sigmoid()

    @property
    def merged_mask(self) -> Tensor:
        """(B, Hm, Wm) merged mask M in (0, 1)."""
        return self.merged_mask_logits.sigmoid()


@dataclass
class POAOutput(POALayerOutput):
    """The final layer's predictions plus the no-target head and the earlier layers.

    Attributes:
        no_target_logits: (B, 2), column 1 = no-target (docs/method.md#no-target).
        aux_outputs: all earlier supervised layers, layer 0 (before layer 1) first; length =
            ``decoder.num_layers``.
    """

    no_target_logits: Tensor = None  # type: ignore[assignment]
    aux_outputs: list[POALayerOutput] = field(default_factory=list)

    @property
    def no_target_prob(self) -> Tensor:
        """(B,) probability that the expression has no referent, softmax column 1."""
        return self.no_target_logits.softmax(-1)[:, 1]

    @property
    def all_layers(self) -> list[POALayerOutput]:
        """aux_outputs followed by this (final) layer: num_layers + 1 entries."""
        return [*self.aux_outputs, self]
