"""A small random CNN backbone for tests and shape checks (the ``tiny`` preset).

Four stride-2 stages after a stride-2 stem give res2..res5 at strides 4, 8, 16, 32; it has no
pretrained weights and exists so that the whole model builds and trains in seconds on a CPU.
"""

from __future__ import annotations

from torch import Tensor, nn


def _stage(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class TinyCNNBackbone(nn.Module):
    """Random-initialised CNN; ``out_channels`` maps 'res2'..'res5' to channels.

    Args:
        channels: output channels of res2..res5.
    """

    uses_text = False

    def __init__(self, channels: tuple[int, int, int, int] = (16, 24, 32, 48)):
        super().__init__()
        stem = channels[0] // 2 or 1
        self.body = nn.ModuleDict(
            {
                'stem': _stage(3, stem),
                'res2': _stage(stem, channels[0]),
                'res3': _stage(channels[0], channels[1]),
                'res4': _stage(channels[1], channels[2]),
                'res5': _stage(channels[2], channels[3]),
            }
        )
        self.out_channels = dict(zip(('res2', 'res3', 'res4', 'res5'), channels))

    def forward(
        self, images: Tensor, text: Tensor | None = None, text_mask: Tensor | None = None
    ) -> dict[str, Tensor]:
        """images (B, 3, H, W) normalised; returns 'res2'..'res5' (B, C_k, H/s, W/s)."""
        x = self.body['stem'](images)
        out = {}
        for key in ('res2', 'res3', 'res4', 'res5'):
            x = self.body[key](x)
            out[key] = x
        return out
