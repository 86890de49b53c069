"""INT8 calibration data for the TensorRT vision engine, drawn from a gRefCOCO-format dataset.

``calibration_batches`` picks ``num_images`` refs (seeded, without replacement) from
``grefs(unc).json`` of a dataset folder (docs/method.md#grefcoco-format:
``images/<file_name>``), preprocesses each image exactly as the predictor does
(``modeling.preprocess.preprocess_image``), tokenizes the ref's first sentence padded to
``max_tokens`` and encodes it with the exported text graph (ONNX Runtime on CPU, so calibration
sees the same text features the engine will). Batches are one image each at the full text
length, matching the calibration profile set in
``tensorrt_engine._set_precision``.

``make_calibrator`` wraps the batches in a ``trt.IInt8EntropyCalibrator2`` (TensorRT 10; see
``tensorrt_engine`` for why implicit calibration). Device buffers are torch CUDA tensors.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

from poa_gres_ros.core.json_files import read_json

GREFS_FILES = ('grefs(unc).json', 'grefs.json')


def _read_refs(dataset_dir: Path) -> list[dict]:
    """Refs with sentences from the first grefs file found in ``dataset_dir``."""
    for name in GREFS_FILES:
        path = dataset_dir / name
        if path.is_file():
            refs = read_json(path, list, 'refs (gRefCOCO format)')
            return [r for r in refs if isinstance(r, dict) and r.get('sentences')]
    raise FileNotFoundError(
        f'no {" or ".join(GREFS_FILES)} in {dataset_dir}: the calibration dataset must be in '
        'gRefCOCO format (docs/method.md#grefcoco-format), e.g. one written by '
        '`poa-gres make-dataset`'
    )


def calibration_batches(
    dataset_dir: str | os.PathLike,
    config,
    tokenizer,
    text_session,
    num_images: int = 64,
    seed: int = 0,
    split: str | None = None,
) -> list[dict[str, np.ndarray]]:
    """Vision-graph inputs for INT8 calibration.

    Args:
        dataset_dir: gRefCOCO-format folder (grefs(unc).json + images/).
        config: POAConfig (input size, normalisation, max_tokens).
        tokenizer: the model's fast tokenizer. text_session: ORT session of text_encoder.onnx.
        num_images: batches to draw (>= 1; fewer if the dataset is smaller).
        seed: sampling seed. split: only refs of this split (e.g. 'train'); None = all.
    Returns:
        list of {'images': (1, 3, H, W) float32, 'text_features': (1, L, D) float32,
        'text_mask': (1, L) int64} with L = ``config.text.max_tokens``.
    Raises:
        FileNotFoundError: no grefs file or a listed image is missing.
        ValueError: no usable refs, or num_images < 1.
    """
    import cv2

    from poa_gres_ros.modeling.preprocess import preprocess_image
    from poa_gres_ros.modeling.text_encoder import tokenize

    if num_images < 1:
        raise ValueError(f'num_images={num_images} must be >= 1')
    root = Path(dataset_dir)
    refs = [r for r in _read_refs(root) if split is None or r.get('split') == split]
    if not refs:
        raise ValueError(f'no refs with sentences in {root} (split={split!r})')
    picked = random.Random(seed).sample(refs, min(num_images, len(refs)))
    max_tokens = config.text.max_tokens
    batches = []
    for ref in picked:
        path = root / 'images' / str(ref['file_name'])
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(f'calibration image {path} is missing or unreadable')
        image = preprocess_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), config).numpy()[None]
        sent = ref['sentences'][0]
        text = sent.get('sent') or sent.get('raw') or ''
        tok = tokenize(tokenizer, [text], max_tokens, padding='max_length')
        ids = tok.input_ids.numpy().astype(np.int64)
        mask = tok.attention_mask.numpy().astype(np.int64)
        (feats,) = text_session.run(['text_features'], {'input_ids': ids, 'attention_mask': mask})
        batches.append(
            {'images': image.astype(np.float32), 'text_features': feats, 'text_mask': mask}
        )
    return batches


def make_calibrator(
    trt, batches: list[dict[str, np.ndarray]], cache_file: str | os.PathLike, device: str = 'cuda:0'
):
    """``trt.IInt8EntropyCalibrator2`` over ``batches`` (one batch per ``get_batch`` call).

    The calibration table is written to ``cache_file`` and read back on the next build, so a
    rebuild (e.g. after a TensorRT update) does not need the dataset again.
    """
    import torch

    class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._index = 0
            self._current: dict[str, torch.Tensor] = {}

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if self._index >= len(batches):
                return None
            batch = batches[self._index]
            self._index += 1
            self._current = {n: torch.from_numpy(batch[n]).to(device).contiguous() for n in names}
            return [int(self._current[n].data_ptr()) for n in names]

        def read_calibration_cache(self):
            path = Path(cache_file)
            return path.read_bytes() if path.is_file() else None

        def write_calibration_cache(self, cache):
            Path(cache_file).write_bytes(bytes(cache))

    return _EntropyCalibrator()
