"""InstAlign / POA model: backbone + text encoder + pixel decoder + text-conditioned
masked-attention decoder + relevance, POA, instance aggregation and no-target heads
(docs/method.md#architecture).

``forward`` accepts precomputed backbone features and/or raw text-encoder features, which is
how CPU training uses cached frozen features and how the predictor caches the instruction.
Build it with ``poa_gres_ros.modeling.build.build_model(cfg)``; save and load model folders with
``poa_gres_ros.modeling.io``.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.modeling.heads import NameAlignment, NoTargetHead
from poa_gres_ros.modeling.outputs import POALayerOutput, POAOutput
from poa_gres_ros.modeling.pixel_decoder import MSDeformAttnPixelDecoder
from poa_gres_ros.modeling.text_encoder import TextEncoder
from poa_gres_ros.modeling.transformer_decoder import POATransformerDecoder

FEATURE_KEYS = ('res2', 'res3', 'res4', 'res5')
_LAYER_FIELDS = (
    'mask_logits',
    'relevance_logits',
    'token_attention',
    'queries',
    'text_features',
    'phrase_embedding',
    'merged_mask_logits',
)
VISION_OUTPUT_NAMES = (
    'mask_logits',
    'relevance',
    'token_attention',
    'merged_mask',
    'no_target_prob',
)


class POAModel(nn.Module):
    """The whole network.

    Args:
        config: POAConfig (validated).
        backbone: module with ``out_channels`` ('res2'..'res5' -> C), ``uses_text`` and
            ``forward(images, text, text_mask) -> dict``; its pretrained part is ``.body``.
        text_encoder: TextEncoder (``hidden_size`` = D_text, from the encoder's config).
        tokenizer: Hugging Face fast tokenizer matching the text encoder.

    Attributes:
        external_prefixes: state-dict prefixes of frozen pretrained parts that are rebuilt from
            their sources when loading and therefore not stored in model folders.

    The model is constructed in eval mode (like Hugging Face ``from_pretrained``); call
    ``.train()`` before training (frozen parts stay in eval mode, see ``train``).
    """

    def __init__(
        self, config: POAConfig, backbone: nn.Module, text_encoder: TextEncoder, tokenizer=None
    ):
        super().__init__()
        config.validate()
        self.config = config
        self.tokenizer = tokenizer
        self.backbone = backbone
        self.text_encoder = text_encoder
        self.text_hidden_size = text_encoder.hidden_size
        pd = config.pixel_decoder
        self.pixel_decoder = MSDeformAttnPixelDecoder(pd, backbone.out_channels)
        self.decoder = POATransformerDecoder(
            config.decoder,
            config.heads,
            pd.conv_dim,
            pd.mask_dim,
            self.text_hidden_size,
            dict(backbone.out_channels),
        )
        hc = config.heads
        self.no_target_head = NoTargetHead(
            config.decoder.hidden_dim, hc.no_target_hidden, hc.q_global, hc.no_target_stats
        )
        prefixes = []
        if config.backbone.frozen:
            self.backbone.body.requires_grad_(False)
            if config.backbone.pretrained:
                prefixes.append('backbone.body.')
        if config.text.frozen:
            self.text_encoder.requires_grad_(False)
            if config.text.pretrained:
                prefixes.append('text_encoder.')
        self.external_prefixes = tuple(prefixes)
        self.train(False)

    @property
    def name_alignment(self) -> NameAlignment | None:
        """The object-name alignment head (``heads.name_alignment``), or None."""
        return self.decoder.heads.names

    # --- modes and state ---------------------------------------------------------------
    def train(self, mode: bool = True) -> POAModel:
        """Like nn.Module.train, but frozen parts (backbone body, text encoder) stay in eval
        mode so BatchNorm statistics and dropout of pretrained weights never change."""
        super().train(mode)
        if self.config.backbone.frozen:
            self.backbone.body.train(False)
        if self.config.text.frozen:
            self.text_encoder.train(False)
        return self

    def stored_state_dict(self) -> dict[str, Tensor]:
        """State dict without the external (frozen pretrained) parts: what model folders hold."""
        return {
            k: v for k, v in self.state_dict().items() if not k.startswith(self.external_prefixes)
        }

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # --- stages --------------------------------------------------------------------------
    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Raw text features (docs/method.md#text-encoder, before the model's own projection).

        Args:
            input_ids: (B, L) int64 token ids. attention_mask: (B, L) int64, 1 = real token.
        Returns:
            (B, L, D_text) float, D_text = ``text_hidden_size``.
        """
        frozen = self.config.text.frozen
        ctx = torch.no_grad() if frozen and torch.is_grad_enabled() else contextlib.nullcontext()
        with ctx:
            return self.text_encoder(input_ids.long(), attention_mask.long())

    def extract_features(
        self,
        images: Tensor,
        text_features: Tensor | None = None,
        attention_mask: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Backbone features.

        Args:
            images: (B, 3, H, W) float, normalised with ``config.input`` mean/std (see
                ``modeling.preprocess``); H, W multiples of 32.
            text_features, attention_mask: (B, L, D_text) and (B, L); only used (and then
                required) by a language-aware backbone (``backbone.language_fusion``).
        Returns:
            {'res2': (B, C2, H/4, W/4), 'res3': .. H/8, 'res4': .. H/16, 'res5': .. H/32}.
        """
        frozen = self.config.backbone.frozen and not self.backbone.uses_text
        ctx = torch.no_grad() if frozen and torch.is_grad_enabled() else contextlib.nullcontext()
        with ctx:
            return self.backbone(images, text_features, attention_mask)

    def forward(
        self,
        images: Tensor | None = None,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        *,
        features: dict[str, Tensor] | None = None,
        text_features: Tensor | None = None,
        aux_outputs: bool = True,
        image_index: Tensor | None = None,
        name_features: Tensor | None = None,
        name_mask: Tensor | None = None,
    ) -> POAOutput:
        """Run the model.

        Args:
            images: (B, 3, H, W) normalised float; not needed when ``features`` is given.
            input_ids: (B, L) int64; not needed when ``text_features`` is given.
            attention_mask: (B, L) int64 (or bool), 1 = real token; always required.
            features: precomputed ``extract_features`` output (skips the backbone).
            text_features: precomputed ``encode_text`` output (skips the text encoder).
            aux_outputs: compute the earlier layers' outputs (deep supervision); False for
                inference (``aux_outputs`` is then empty and the earlier layers only predict
                the masks their successors' masked attention needs).
            image_index: (B,) int64 or None. When given, ``images`` / ``features`` hold
                B_img <= B distinct images and sentence b is about image ``image_index[b]``:
                the pixel decoder then runs once per image, not once per sentence (training
                with several sentences per image). A language-aware backbone gets one image
                copy per sentence instead.
            name_features, name_mask: (M, L', D_text) encoder output and (M, L') mask of the
                dataset's category and colour names (``ObjectVocabulary.texts``); training
                with ``heads.name_alignment`` fills every layer's ``name_logits`` from them.
        Returns:
            POAOutput (final layer + no-target + ``num_layers`` aux outputs).
        Raises:
            ValueError: a required input is missing, or ``image_index`` with ``features``
                of a language-aware backbone.
        """
        if attention_mask is None:
            raise ValueError('attention_mask (B, L) is required')
        if image_index is not None and self.backbone.uses_text:
            if features is not None:
                raise ValueError(
                    'image_index with precomputed features needs a backbone '
                    'without language fusion (its features depend on the text)'
                )
            if images is not None:  # language-aware backbone: one image copy per sentence
                images, image_index = images[image_index.to(images.device).long()], None
        if text_features is None:
            if input_ids is None:
                raise ValueError('give input_ids or text_features')
            text_features = self.encode_text(input_ids, attention_mask)
        if features is None:
            if images is None:
                raise ValueError('give images or features')
            features = self.extract_features(images, text_features, attention_mask)
        missing = [k for k in FEATURE_KEYS if k not in features]
        if missing:
            raise ValueError(f'features lacks {missing}; expected keys {FEATURE_KEYS}')
        out = self.decode(features, text_features, attention_mask, aux_outputs, image_index)
        if name_features is not None and self.name_alignment is not None:
            if name_mask is None:
                raise ValueError('name_features needs name_mask')
            names = self.decoder.embed_texts(name_features, name_mask)
            for layer in out.all_layers:
                layer.name_logits = self.name_alignment(layer.queries, names)
        return out

    def decode(
        self,
        features: dict[str, Tensor],
        text_features: Tensor,
        attention_mask: Tensor,
        aux_outputs: bool = True,
        image_index: Tensor | None = None,
    ) -> POAOutput:
        """Pixel decoder, transformer decoder and heads on given features (see ``forward``)."""
        mask_features, multi_scale = self.pixel_decoder(features)
        if image_index is not None:
            image_index = image_index.to(mask_features.device).long()
        layers = self.decoder(
            multi_scale,
            mask_features,
            text_features,
            attention_mask,
            aux_outputs,
            image_index,
            backbone_features=features,
        )
        last = layers[-1]
        nt_logits = self.no_target_head(
            last['queries'],
            last['relevance_logits'].sigmoid(),
            last['text_features'],
            attention_mask,
        )
        aux = []
        if aux_outputs:
            aux = [POALayerOutput(**{k: d[k] for k in _LAYER_FIELDS}) for d in layers[:-1]]
        return POAOutput(
            **{k: last[k] for k in _LAYER_FIELDS},
            relevance_offset=float(self.config.heads.relevance_offset),
            no_target_logits=nt_logits,
            aux_outputs=aux,
        )

    def vision_outputs(
        self, images: Tensor, text_features: Tensor, attention_mask: Tensor
    ) -> dict[str, Tensor]:
        """The inference graph behind the backends' ``run_vision`` (and the ONNX export).

        Args:
            images: (B, 3, H, W) normalised float. text_features: (B, L, D_text) from
                ``encode_text``. attention_mask: (B, L) int64.
        Returns:
            dict with VISION_OUTPUT_NAMES: 'mask_logits' (B, N, H/4, W/4), 'relevance' (B, N) in
            [0, 1], 'token_attention' (B, N, L), 'merged_mask' (B, H/4, W/4) in (0, 1),
            'no_target_prob' (B,) in [0, 1].
        """
        out = self.forward(
            images, attention_mask=attention_mask, text_features=text_features, aux_outputs=False
        )
        return {
            'mask_logits': out.mask_logits,
            'relevance': out.relevance,
            'token_attention': out.token_attention,
            'merged_mask': out.merged_mask,
            'no_target_prob': out.no_target_prob,
        }
