"""Datasets for training and evaluation: gRefCOCO format (also tabletop), Ref-ZOM, and
cached frozen features for CPU training.

- ``records``: one record per sentence and the ground-truth rasteriser.
- ``grefcoco``: the gRefCOCO-format loader; ``refzom``: the Ref-ZOM loader.
- ``gres_dataset``: the PyTorch dataset and its collate function.
- ``feature_cache``: frozen backbone and text features cached on disk.
- ``grouped_sampler``: batches of several sentences of one image.
"""

from poa_gres_ros.training.datasets.grefcoco import load_grefcoco
from poa_gres_ros.training.datasets.gres_dataset import GresDataset, collate_gres, tokenize
from poa_gres_ros.training.datasets.records import CocoMasks, GresRecord
from poa_gres_ros.training.datasets.refzom import load_refzom

__all__ = [
    'CocoMasks',
    'GresDataset',
    'GresRecord',
    'collate_gres',
    'load_grefcoco',
    'load_refzom',
    'tokenize',
]
