"""Datasets for training and evaluation: gRefCOCO format (also tabletop), Ref-ZOM, and
cached frozen features for CPU training. See each module's docstring."""

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
