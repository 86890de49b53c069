"""Shared tiny model + ONNX export for the backend tests, built once per pytest session.

The export is the expensive part (~20-50 s on 2 shared cores), so every backend test module
uses the same one: ``shared_tiny(tmp_path_factory)`` builds a seeded tiny model folder (no
``onnx/`` subfolder) and exports it through the real first-use path
(``find_or_export_onnx`` into a cache folder), recording the log lines of that call. A file lock
and a marker file make the second caller reuse it.
"""

from __future__ import annotations

import json
import logging

import torch

from poa_gres_ros.export.artifacts import exclusive_lock
from poa_gres_ros.export.onnx_artifacts import find_or_export_onnx
from poa_gres_ros.modeling import build_model, save_model

SEED = 5


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(f'{record.levelname} {record.name}: {record.getMessage()}')


def shared_tiny(tmp_path_factory) -> dict:
    """{'model_dir', 'cache_dir', 'export_dir', 'log'} (log: lines of the first-use export)."""
    base = tmp_path_factory.getbasetemp() / 'shared_tiny_backend'
    base.mkdir(exist_ok=True)
    done = base / 'done.json'
    with exclusive_lock(base / '.lock'):
        if not done.is_file():
            torch.manual_seed(SEED)
            model_dir = save_model(build_model('tiny'), base / 'tiny_model')
            handler = _Records()
            logger = logging.getLogger('poa_gres_ros')
            old_level = logger.level
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            try:
                export_dir, _ = find_or_export_onnx(model_dir, base / 'cache')
            finally:
                logger.removeHandler(handler)
                logger.setLevel(old_level)
            done.write_text(
                json.dumps(
                    {
                        'model_dir': str(model_dir),
                        'cache_dir': str(base / 'cache'),
                        'export_dir': str(export_dir),
                        'log': handler.lines,
                    }
                )
            )
    return json.loads(done.read_text())
