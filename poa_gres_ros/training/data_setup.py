"""Builds the model and the datasets of a training run from a :class:`TrainConfig`.

Feature caching is used when ``cache_dir`` is set: it requires a frozen backbone without
language fusion and a frozen text encoder (otherwise the cached features would go stale), and
then the train and validation sets read ``<cache_dir>/<split-names>`` caches built by rank 0.
"""

from __future__ import annotations

import os

from poa_gres_ros.training.config import TrainConfig
from poa_gres_ros.training.datasets.feature_cache import (
    CachedFeatureDataset,
    FeatureCache,
    build_feature_cache,
)
from poa_gres_ros.training.datasets.grefcoco import load_grefcoco
from poa_gres_ros.training.datasets.gres_dataset import GresDataset, model_preprocess
from poa_gres_ros.training.datasets.records import ObjectVocabulary
from poa_gres_ros.training.datasets.refzom import load_refzom


def build_model_for_training(cfg: TrainConfig):
    """A fresh preset model, or a model folder, with the run's overrides (and ablation)."""
    from poa_gres_ros.core.model_presets import get_preset
    from poa_gres_ros.modeling.build import build_model

    over = cfg.model_overrides()
    if cfg.model.preset is not None:
        mcfg = get_preset(cfg.model.preset)
        return build_model(mcfg.with_overrides(over) if over else mcfg)
    from poa_gres_ros.modeling.io import load_model

    model = load_model(cfg.model.model_dir)
    if not over:
        return model
    new = build_model(
        model.config.with_overrides(over), model_dir=cfg.model.model_dir, load_pretrained=False
    )
    new.load_state_dict(model.state_dict())
    return new


def load_records(data_cfg, splits: list[str], for_training: bool):
    """Records and mask rasteriser of some splits (gRefCOCO or Ref-ZOM format)."""
    kw = {}
    if data_cfg.refs_file:
        kw['refs_file'] = data_cfg.refs_file
    if data_cfg.instances_file:
        kw['instances_file'] = data_cfg.instances_file
    if data_cfg.format == 'refzom':
        return load_refzom(data_cfg.root, splits, skip_targeted_without_masks=for_training, **kw)
    return load_grefcoco(data_cfg.root, splits, skip_targeted_without_masks=for_training, **kw)


def uses_cache(cfg: TrainConfig, model) -> bool:
    """True when frozen features are cached (raises if ``cache_dir`` cannot be honoured)."""
    if not cfg.cache_dir:
        return False
    mc = model.config
    if not (mc.backbone.frozen and mc.text.frozen) or mc.backbone.language_fusion:
        raise ValueError(
            'cache_dir is set but the backbone or text encoder trains (or the '
            'backbone is language-aware): cached features would go stale; remove '
            'cache_dir or freeze both (backbone.frozen, text.frozen)'
        )
    return True


def build_datasets(cfg: TrainConfig, model, device, is_main: bool, barrier):
    """``(train_set, val_set or None)`` for the run (cached-feature or image datasets)."""
    d = cfg.data
    if not d.root:
        raise ValueError('data.root is empty: set it to a gRefCOCO-format dataset folder')
    image_root = d.image_root or os.path.join(d.root, 'images')
    size_hw = tuple(model.config.input.size_hw)
    prep = model_preprocess(model.config)
    cached = uses_cache(cfg, model)
    crit = cfg.effective_criterion()
    with_objects = crit.instance_supervision and crit.instance_targets == 'all_objects'

    def make(splits, for_training, limit):
        records, masks = load_records(d, splits, for_training)
        vocab = None
        if with_objects and for_training:
            vocab = ObjectVocabulary.of(masks.coco)
        if limit is not None:
            records = records[:limit]
        if not records:
            raise ValueError(f'no samples in split(s) {splits} of {d.root}')
        if not cached:
            return GresDataset(
                records,
                masks,
                image_root,
                size_hw,
                model.tokenizer,
                model.config.text.max_tokens,
                prep,
                with_objects=with_objects and for_training,
                vocabulary=vocab,
            )
        name = '+'.join(splits) + (f'-first{limit}' if limit is not None else '')
        cache_dir = os.path.join(cfg.cache_dir, name)
        if is_main:
            cache = build_feature_cache(
                model,
                records,
                image_root,
                cache_dir,
                prep,
                batch_size=max(1, cfg.batch_size),
                device=device,
                progress=cfg.progress,
            )
        barrier()
        if not is_main:
            cache = FeatureCache(cache_dir)
        cache.check(model.config, records)
        return CachedFeatureDataset(
            records,
            masks,
            cache,
            size_hw,
            with_objects=with_objects and for_training,
            vocabulary=vocab,
        )

    train = make(list(d.train_splits), True, d.max_train_samples)
    val = make(list(d.val_splits), False, d.max_val_samples) if d.val_splits else None
    return train, val


def name_features(model, vocabulary: ObjectVocabulary | None, device):
    """Frozen text-encoder features of the vocabulary's names, for the name-alignment loss.

    Returns:
        ``(features, mask)``: (M, L, D_text) float and (M, L) int64 for the M =
        ``len(vocabulary.texts)`` names, or ``(None, None)`` without a vocabulary or without
        the model's name-alignment head.
    """
    import torch

    from poa_gres_ros.training.datasets.gres_dataset import tokenize

    if vocabulary is None or model.name_alignment is None or not vocabulary.texts:
        return None, None
    ids, mask = tokenize(model.tokenizer, list(vocabulary.texts), model.config.text.max_tokens)
    ids, mask = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
    with torch.no_grad():
        return model.encode_text(ids, mask).detach(), mask
