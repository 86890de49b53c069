"""Image-grouped batches: the sampler covers every sentence once per epoch, and a grouped forward
pass (pixel decoder once per image, ``image_index``) equals the per-sentence pass."""

from types import SimpleNamespace

import pytest
import torch

from poa_gres_ros.core.model_presets import get_preset
from poa_gres_ros.modeling.build import build_model
from poa_gres_ros.training.config import TrainConfig
from poa_gres_ros.training.datasets.gres_dataset import collate_gres
from poa_gres_ros.training.datasets.grouped_sampler import ImageGroupedBatchSampler
from poa_gres_ros.training.trainer import Trainer

from support.gref_files import write_grefcoco_fixture


def _records(sizes):
    return [SimpleNamespace(file_name=f'img{i}.png') for i, n in enumerate(sizes) for _ in range(n)]


def test_sampler_covers_each_sentence_once_and_groups_images():
    recs = _records([5, 1, 3, 7, 2, 4])
    s = ImageGroupedBatchSampler(recs, batch_size=4, sentences_per_image=2, seed=3, drop_last=False)
    batches = list(s)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(recs)))
    assert len(s) == len(batches) == 6
    # chunks of one image stay together: consecutive pairs in the flat order share an image far
    # more often than a random order would (at least one pair per image with >= 2 sentences)
    same = sum(recs[a].file_name == recs[b].file_name for a, b in zip(flat[::2], flat[1::2]))
    assert same >= 5
    again = ImageGroupedBatchSampler(recs, 4, 2, seed=3, drop_last=False)
    assert list(again) == batches
    again.set_epoch(1)
    assert list(again) != batches
    s.set_epoch(0, skip_batches=2)
    assert list(s) == batches[2:]
    ranks = [
        list(ImageGroupedBatchSampler(recs, 4, 2, seed=3, rank=r, world_size=2)) for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 2
    assert not {i for b in ranks[0] for i in b} & {i for b in ranks[1] for i in b}
    with pytest.raises(ValueError, match='sentences_per_image'):
        ImageGroupedBatchSampler(recs, 4, 0)


def test_collate_shares_images_and_grouped_forward_matches_per_sentence():
    torch.manual_seed(0)
    cfg = get_preset('tiny')
    model = build_model(cfg)
    h, w = cfg.input.size_hw
    imgs = torch.randn(3, 3, h, w)
    keys = ['a', 'b', 'a', 'c', 'b']
    items = [
        {
            'images': imgs['abc'.index(k)],
            'input_ids': torch.randint(1000, 2000, (6,)),
            'attention_mask': torch.ones(6, dtype=torch.int64),
            'gt_masks': torch.zeros(0, h, w, dtype=torch.uint8),
            'no_target': True,
            'index': i,
            'image_key': k,
        }
        for i, k in enumerate(keys)
    ]
    batch = collate_gres(items)
    assert batch['images'].shape[0] == 3
    assert batch['image_index'].tolist() == [0, 1, 0, 2, 1]
    model.eval()  # no dropout or batch statistics; gradients still flow
    grouped = model(
        batch['images'],
        batch['input_ids'],
        batch['attention_mask'],
        image_index=batch['image_index'],
    )
    loss_g = grouped.mask_logits.square().mean() + grouped.no_target_logits.square().mean()
    loss_g.backward()
    grads_g = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    expanded = model(
        batch['images'][batch['image_index']], batch['input_ids'], batch['attention_mask']
    )
    loss_e = expanded.mask_logits.square().mean() + expanded.no_target_logits.square().mean()
    loss_e.backward()
    torch.testing.assert_close(grouped.mask_logits, expanded.mask_logits)
    torch.testing.assert_close(loss_g, loss_e)
    assert any(n.startswith('pixel_decoder.') for n in grads_g)
    for n, p in model.named_parameters():
        if p.grad is not None:
            torch.testing.assert_close(grads_g[n], p.grad, rtol=1e-4, atol=1e-6, msg=n)
    # no repeated image: plain stacking, no image_index
    single = collate_gres([dict(it, image_key=str(i)) for i, it in enumerate(items)])
    assert 'image_index' not in single and single['images'].shape[0] == 5


def test_trainer_with_sentences_per_image(tmp_path):
    root = str(tmp_path / 'data')
    write_grefcoco_fixture(root)
    cfg = TrainConfig.from_dict(
        {
            'model': {'preset': 'tiny'},
            'data': {'root': root, 'val_splits': []},
            'batch_size': 4,
            'sentences_per_image': 2,
            'output_dir': str(tmp_path / 'run'),
            'checkpoint_every': 0,
            'progress': False,
            'num_threads': 1,
            'schedule': {'max_iters': 3, 'warmup_iters': 1},
            'criterion': {'num_points': 64},
        }
    )
    trainer = Trainer(cfg)
    loader = trainer._loader(0, 0)
    assert trainer.iters_per_epoch == len(loader.batch_sampler) >= 1
    batch = next(iter(loader))
    n_img = batch['images'].shape[0]
    assert n_img < 4 and batch['image_index'].max().item() == n_img - 1
    before = {n: p.detach().clone() for n, p in trainer.model.pixel_decoder.named_parameters()}
    trainer.train()
    assert trainer.iteration == 3
    changed = [
        n
        for n, p in trainer.model.pixel_decoder.named_parameters()
        if not torch.equal(p, before[n])
    ]
    assert changed
    with pytest.raises(ValueError, match='sentences_per_image'):
        TrainConfig.from_dict({'model': {'preset': 'tiny'}, 'sentences_per_image': 0})


@pytest.mark.parametrize('drop_last', [True, False])
@pytest.mark.parametrize('world_size', [1, 2, 3])
def test_sampler_len_equals_the_batches_it_yields(world_size, drop_last):
    recs = _records([10, 9, 1, 1, 1, 2, 5])
    for batch_size in (1, 3, 4, 8):
        for k in (1, 2, 4):
            for rank in range(world_size):
                s = ImageGroupedBatchSampler(
                    recs, batch_size, k, seed=1, rank=rank, world_size=world_size,
                    drop_last=drop_last,
                )  # fmt: skip
                assert len(s) == len(list(s)), (batch_size, k, rank)
