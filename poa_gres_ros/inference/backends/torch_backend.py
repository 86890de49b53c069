"""PyTorch eager backend: the reference the exported backends are compared with.

Runs under ``torch.inference_mode()`` (no autograd state is ever recorded, so memory does not
grow frame after frame). ``compile=True`` wraps the model in ``torch.compile`` (about 30 s of
compilation on the first call; off by default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.inference.backends.base import Backend
from poa_gres_ros.modeling.poa_model import POAModel


class TorchBackend(Backend):
    """Backend around an in-memory POAModel.

    Args:
        model: POAModel (moved to ``device`` and set to eval mode).
        device: torch device string. compile: use ``torch.compile`` for the vision stage.
    """

    name = 'torch'

    def __init__(self, model: POAModel, device: str = 'cpu', compile: bool = False):
        super().__init__(model.config, str(device))
        self.model = model.to(device).eval()
        self._vision = self.model.vision_outputs
        if compile:
            self._vision = torch.compile(self.model.vision_outputs)

    def encode_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            ids = torch.as_tensor(input_ids, dtype=torch.long, device=self.device)
            mask = torch.as_tensor(attention_mask, dtype=torch.long, device=self.device)
            return self.model.encode_text(ids, mask).float().cpu().numpy()

    def run_vision(
        self, images: np.ndarray, text_features: np.ndarray, text_mask: np.ndarray
    ) -> dict[str, np.ndarray]:
        out = self.run_vision_torch(
            torch.from_numpy(np.asarray(images, np.float32)),
            torch.from_numpy(np.asarray(text_features, np.float32)),
            torch.from_numpy(np.asarray(text_mask, np.int64)),
        )
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    def run_vision_torch(
        self, images: torch.Tensor, text_features: torch.Tensor, text_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            dev = self.device
            return self._vision(
                images.to(dev, torch.float32), text_features.to(dev), text_mask.to(dev, torch.long)
            )

    def describe(self) -> str:
        return (
            f'torch {torch.__version__} eager on {self.device}, {torch.get_num_threads()} threads'
        )


def available(device: str) -> tuple[bool, str]:
    """Torch is always importable here; a CUDA device needs torch.cuda."""
    if str(device).startswith('cuda') and not torch.cuda.is_available():
        return False, 'torch has no CUDA device'
    return True, f'torch {torch.__version__}'


def create(
    model_dir: Path,
    config: POAConfig,
    device: str,
    compile: bool = False,
    num_threads: int | None = None,
    **options,
) -> TorchBackend:
    """Load the model folder and wrap it.

    Args:
        compile: wrap the model with torch.compile (first call takes tens of seconds).
        num_threads: torch intra-op CPU threads (``torch.set_num_threads``, process-wide);
            None keeps torch's default (all cores).
    Raises:
        ValueError: unknown options or num_threads < 1.
    """
    if options:
        raise ValueError(f'unknown torch backend options: {sorted(options)}')
    if num_threads is not None:
        if int(num_threads) < 1:
            raise ValueError(f'num_threads={num_threads} must be >= 1 (or None)')
        torch.set_num_threads(int(num_threads))
    from poa_gres_ros.modeling.io import load_model

    return TorchBackend(load_model(model_dir, device), device, compile=compile)
