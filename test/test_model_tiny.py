"""Tiny-preset model tests (CPU, seconds): shapes, gradients, aggregation, config options."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from poa_gres_ros.core.model_config import LAYER_STEPS, POAConfig
from poa_gres_ros.core.model_presets import get_preset
from poa_gres_ros.modeling import POAOutput, build_model
from poa_gres_ros.modeling.heads import InstanceAggregation, NoTargetHead, poa_token_mask
from poa_gres_ros.modeling.text_encoder import tokenize

LAYER_FIELDS = (
    'mask_logits',
    'relevance_logits',
    'token_attention',
    'queries',
    'text_features',
    'phrase_embedding',
    'merged_mask_logits',
)


@pytest.fixture(scope='module')
def tiny():
    torch.manual_seed(0)
    return build_model('tiny')


def _inputs(model, texts, hw, seed=0):
    g = torch.Generator().manual_seed(seed)
    tok = tokenize(model.tokenizer, texts, model.config.text.max_tokens)
    images = torch.randn(len(texts), 3, *hw, generator=g)
    return images, tok


def _check_layer(out, b, n, c, hm, wm, length, mask):
    assert out.mask_logits.shape == (b, n, hm, wm)
    assert out.relevance_logits.shape == (b, n)
    assert out.token_attention.shape == (b, n, length)
    assert out.queries.shape == (b, n, c)
    assert out.text_features.shape == (b, length, c)
    assert out.phrase_embedding.shape == (b, n, c)
    assert out.merged_mask_logits.shape == (b, hm, wm)
    r = out.token_attention
    assert torch.allclose(r.sum(-1), torch.ones(b, n), atol=1e-5)
    assert torch.all(r[~mask.bool()[:, None, :].expand_as(r)] == 0)
    assert torch.all(torch.isfinite(out.mask_logits))


@pytest.mark.parametrize('hw', [(64, 64), (64, 96), (128, 96)])
@pytest.mark.parametrize(
    'texts', [['mug'], ['the red mug and the duck on the left', 'a cup'], ['pick up ' * 20]]
)
def test_output_shapes(tiny, hw, texts):
    images, tok = _inputs(tiny, texts, hw)
    with torch.no_grad():
        out = tiny(images, tok.input_ids, tok.attention_mask)
    cfg = tiny.config
    b, n, c = len(texts), cfg.decoder.num_queries, cfg.decoder.hidden_dim
    length = tok.input_ids.shape[1]
    assert length <= cfg.text.max_tokens
    assert isinstance(out, POAOutput)
    assert len(out.aux_outputs) == cfg.decoder.num_layers
    _check_layer(out, b, n, c, hw[0] // 4, hw[1] // 4, length, tok.attention_mask)
    stride = 4 * cfg.decoder.aux_mask_downsample  # deep supervision at a coarser stride
    for layer in out.aux_outputs:
        _check_layer(layer, b, n, c, hw[0] // stride, hw[1] // stride, length, tok.attention_mask)
    assert out.no_target_logits.shape == (b, 2)
    assert out.no_target_prob.shape == (b,)
    assert torch.all((out.no_target_prob >= 0) & (out.no_target_prob <= 1))
    assert out.merged_mask.min() > 0 and out.merged_mask.max() < 1
    feats = tiny.extract_features(images)
    strides = {'res2': 4, 'res3': 8, 'res4': 16, 'res5': 32}
    for key, s in strides.items():
        assert feats[key].shape[-2:] == (hw[0] // s, hw[1] // s)
    assert tiny.encode_text(tok.input_ids, tok.attention_mask).shape == (
        b,
        length,
        tiny.text_hidden_size,
    )


def test_precomputed_features_give_same_output(tiny):
    images, tok = _inputs(tiny, ['the duck on the left'], (64, 96))
    with torch.no_grad():
        full = tiny(images, tok.input_ids, tok.attention_mask)
        feats = tiny.extract_features(images)
        text = tiny.encode_text(tok.input_ids, tok.attention_mask)
        cached = tiny(attention_mask=tok.attention_mask, features=feats, text_features=text)
    for name in LAYER_FIELDS + ('no_target_logits',):
        assert torch.equal(getattr(full, name), getattr(cached, name)), name


def test_inference_path_equals_training_path(tiny):
    """aux_outputs=False computes the intermediate masks at the attention resolution."""
    images, tok = _inputs(tiny, ['the red mug and the duck on the left', 'a cup'], (64, 96))
    with torch.no_grad():
        full = tiny(images, tok.input_ids, tok.attention_mask)
        fast = tiny(images, tok.input_ids, tok.attention_mask, aux_outputs=False)
    assert fast.aux_outputs == [] and len(full.aux_outputs) == tiny.config.decoder.num_layers
    for name in LAYER_FIELDS + ('no_target_logits',):
        assert torch.allclose(getattr(full, name), getattr(fast, name), atol=1e-4), name


def test_missing_inputs_raise(tiny):
    images, tok = _inputs(tiny, ['mug'], (64, 64))
    with pytest.raises(ValueError, match='attention_mask'):
        tiny(images, tok.input_ids)
    with pytest.raises(ValueError, match='images or features'):
        tiny(input_ids=tok.input_ids, attention_mask=tok.attention_mask)
    with pytest.raises(ValueError, match='features lacks'):
        tiny(attention_mask=tok.attention_mask, input_ids=tok.input_ids, features={})


def _grad_loss(out: POAOutput, gen: torch.Generator) -> torch.Tensor:
    """Random projections of every output, so no output's gradient cancels (R sums to 1)."""
    loss = (out.no_target_logits * torch.randn(out.no_target_logits.shape, generator=gen)).sum()
    for layer in out.all_layers:
        for name in LAYER_FIELDS:
            t = getattr(layer, name)
            loss = loss + (t * torch.randn(t.shape, generator=gen)).mean()
        if layer.name_logits is not None:
            t = layer.name_logits
            loss = loss + (t * torch.randn(t.shape, generator=gen)).mean()
    return loss


@pytest.mark.parametrize(
    'overrides',
    [
        {},
        {'heads.prelu': 'per_query', 'heads.ia_bias': True},
        {'heads.q_global': 'mean', 'heads.poa_exclude_special_tokens': True},
    ],
)
def test_gradients_reach_every_trainable_parameter(overrides):
    torch.manual_seed(1)
    model = build_model(get_preset('tiny').with_overrides(overrides)).train()
    with torch.no_grad():  # zero-initialised layers (deformable offsets) would block gradients
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    images, tok = _inputs(model, ['the red mug and the duck on the left', 'a cup'], (64, 96))
    names = tokenize(model.tokenizer, ['mug', 'rubber duck', 'red'], 8)  # name alignment
    with torch.no_grad():
        name_features = model.encode_text(names.input_ids, names.attention_mask)
    out = model(
        images,
        tok.input_ids,
        tok.attention_mask,
        name_features=name_features,
        name_mask=names.attention_mask,
    )
    assert out.name_logits.shape == (2, model.config.decoder.num_queries, 3)
    _grad_loss(out, torch.Generator().manual_seed(2)).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert len(trainable) == len(list(model.parameters()))  # tiny: nothing frozen
    dead = [n for n, p in trainable if p.grad is None or not torch.any(p.grad != 0)]
    assert not dead, f'no gradient for {dead}'


def test_frozen_parts_get_no_gradient_and_stay_in_eval():
    cfg = get_preset('tiny').with_overrides({'backbone.frozen': True, 'text.frozen': True})
    model = build_model(cfg).train()
    assert not model.backbone.body.training and not model.text_encoder.training
    assert model.decoder.training
    images, tok = _inputs(model, ['a cup'], (64, 64))
    out = model(images, tok.input_ids, tok.attention_mask)
    _grad_loss(out, torch.Generator().manual_seed(0)).backward()
    for name, p in model.named_parameters():
        frozen = name.startswith(('backbone.body.', 'text_encoder.'))
        assert p.requires_grad != frozen, name
        assert (p.grad is None) == frozen, name
    # frozen but randomly initialised parts are still stored in model folders
    assert model.external_prefixes == ()


def test_zero_relevance_gives_empty_final_mask(tiny):
    model = build_model(tiny.config)
    model.load_state_dict(tiny.state_dict())
    with torch.no_grad():
        model.decoder.heads.relevance_output.weight.zero_()
        model.decoder.heads.relevance_output.bias.fill_(-1e4)  # sigmoid -> exactly 0
    images, tok = _inputs(model, ['the duck', 'a cup'], (64, 96))
    with torch.no_grad():
        out = model(images, tok.input_ids, tok.attention_mask)
    assert torch.all(out.relevance == 0)
    for layer in out.all_layers:
        assert torch.all(layer.merged_mask_logits == 0)  # sum_i 0 * PReLU(S_i)
    final = out.merged_mask > 0.5  # docs/method.md#aggregation: final mask = M > 0.5
    assert not final.any()


def test_aggregation_matches_hand_computation():
    s = torch.tensor([[[[2.0, -4.0], [0.0, 1.0]], [[-2.0, 3.0], [1.0, -1.0]]]])  # (1, 2, 2, 2)
    p = torch.tensor([[0.5, 0.25]])
    base = get_preset('tiny').heads
    shared = InstanceAggregation(base, num_queries=2)
    # PReLU(S1) = [[2, -1], [0, 1]], PReLU(S2) = [[-0.5, 3], [1, -0.25]] (alpha 0.25)
    want = torch.tensor([[[0.875, 0.25], [0.25, 0.4375]]])
    assert torch.allclose(shared(s, p), want)
    none = InstanceAggregation(dataclasses.replace(base, prelu='none'), 2)
    assert torch.allclose(none(s, p), 0.5 * s[:, 0] + 0.25 * s[:, 1])
    per_q = InstanceAggregation(dataclasses.replace(base, prelu='per_query'), 2)
    with torch.no_grad():
        per_q.prelu_weight.copy_(torch.tensor([0.5, 0.0]))
    want_pq = torch.tensor([[[1.0, -0.25], [0.25, 0.5]]])  # 0.5*[[2,-2],[0,1]] + .25*[[0,3],[1,0]]
    assert torch.allclose(per_q(s, p), want_pq)
    biased = InstanceAggregation(dataclasses.replace(base, ia_bias=True, ia_bias_init=-2.0), 2)
    assert torch.allclose(biased(s, p), want - 2.0)
    hard = InstanceAggregation(dataclasses.replace(base, aggregation='hard'), 2)
    merged = hard(s, torch.tensor([[0.8, 0.3]]))  # only query 0 selected
    assert torch.equal(merged > 0, s[:, 0] > 0)
    both = hard(s, torch.tensor([[0.8, 0.9]]))  # union of the two binary masks
    assert torch.equal(both > 0, (s[:, 0] > 0) | (s[:, 1] > 0))


def test_no_target_head_inputs():
    head = NoTargetHead(dim=2, hidden=4, q_global='sum')
    q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    p = torch.tensor([[0.5, 0.25]])
    text = torch.tensor([[[1.0, 1.0], [3.0, 5.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    captured = {}
    head.mlp.layers[0].register_forward_hook(lambda m, i, o: captured.update(x=i[0]))
    head(q, p, text, mask)
    assert torch.allclose(captured['x'], torch.tensor([[0.5, 0.5, 2.0, 3.0]]))
    head.q_global = 'mean'
    head(q, p, text, mask)
    assert torch.allclose(captured['x'][:, :2], torch.tensor([[0.5, 0.5]]) / 0.75, atol=1e-5)


def test_poa_token_mask_excludes_cls_and_sep():
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]])
    got = poa_token_mask(mask, exclude_special=True)
    assert got.tolist() == [[False, True, True, False, False], [True, True, False, False, False]]
    assert torch.equal(poa_token_mask(mask, False), mask.bool())


def test_layer_order_and_ablation_variants_build_and_run():
    cfg = get_preset('tiny').with_overrides(
        {
            'decoder.layer_order': ['masked_cross_attn', 'self_attn', 'ffn'],
            'heads.aggregation': 'hard',
            'heads.poa_stop_grad_text': True,
        }
    )
    model = build_model(cfg)
    assert not hasattr(model.decoder.layers[0], 'text_update_attn')
    images, tok = _inputs(model, ['a cup on the left'], (64, 64))
    out = model(images, tok.input_ids, tok.attention_mask)
    assert out.mask_logits.shape == (1, 6, 16, 16)
    for levels in (['res4', 'res5'], ['res5']):  # fewer encoder levels, the rest FPN levels
        model = build_model(
            get_preset('tiny').with_overrides({'pixel_decoder.transformer_in_features': levels})
        )
        assert len(model.pixel_decoder.lateral_convs) == 4 - len(levels)
        out = model(images, tok.input_ids, tok.attention_mask)
        assert out.mask_logits.shape == (1, 6, 16, 16)
    with pytest.raises(ValueError, match='transformer_in_features'):
        get_preset('tiny').with_overrides({'pixel_decoder.transformer_in_features': ['res3']})
    with pytest.raises(ValueError, match='layer_order'):
        get_preset('tiny').with_overrides({'decoder.layer_order': ['ffn', 'self_attn']})
    reordered = get_preset('tiny').with_overrides(
        {'decoder.layer_order': list(reversed(LAYER_STEPS))}
    )
    assert reordered.decoder.layer_order == tuple(reversed(LAYER_STEPS))


def test_swin_backbone_with_language_fusion():
    cfg = get_preset('tiny').with_overrides(
        {
            'backbone.name': 'swin',
            'backbone.pretrained': False,
            'backbone.language_fusion': True,
            'backbone.swin_embed_dim': 8,
            'backbone.swin_depths': [1, 1, 2, 1],
            'backbone.swin_num_heads': [1, 1, 2, 2],
            'backbone.swin_window_size': 4,
            'backbone.swin_drop_path_rate': 0.0,
        }
    )
    model = build_model(cfg).train()
    assert model.backbone.out_channels == {'res2': 8, 'res3': 16, 'res4': 32, 'res5': 64}
    images, tok = _inputs(model, ['the left cup', 'a duck'], (64, 96))
    with pytest.raises(ValueError, match='text features'):
        model.extract_features(images)
    out = model(images, tok.input_ids, tok.attention_mask)
    assert out.mask_logits.shape == (2, 6, 16, 24)
    _grad_loss(out, torch.Generator().manual_seed(0)).backward()
    fusion = {n: p for n, p in model.named_parameters() if '.fusion.' in n or '.gates.' in n}
    assert len(model.backbone.gates) == 3  # the last stage's gated residual would be unused
    # every PWAM/gate parameter is in the graph (conv biases before InstanceNorm and the key
    # bias of a masked softmax have mathematically zero gradient, as in LAVT)
    assert fusion and all(p.grad is not None for p in fusion.values())
    assert all(torch.any(p.grad != 0) for n, p in fusion.items() if n.endswith('weight'))


def test_config_json_round_trip_and_errors(tmp_path):
    for name in ('paper', 'tabletop', 'tiny'):
        cfg = get_preset(name)
        cfg.to_json(tmp_path / f'{name}.json')
        back = POAConfig.from_json(tmp_path / f'{name}.json')
        assert back == cfg
    tab = get_preset('tabletop')
    assert tab.input.size_hw == (384, 512) and tab.text.source == 'minilm'
    with pytest.raises(ValueError, match='unknown keys .*decoder.*hiden_dim'):
        POAConfig.from_dict({'decoder': {'hiden_dim': 3}})
    with pytest.raises(ValueError, match='multiples of 32'):
        tab.with_overrides({'input.size_hw': [100, 128]})
    with pytest.raises(ValueError, match='unknown model config key'):
        tab.with_overrides({'decoder.nope': 1})
    with pytest.raises(ValueError, match='aggregation'):
        tab.with_overrides({'heads.aggregation': 'max'})
    with pytest.raises(ValueError, match='unknown model preset'):
        get_preset('huge')
    (tmp_path / 'bad.json').write_text('{"decoder": ')
    with pytest.raises(ValueError, match='not valid JSON'):
        POAConfig.from_json(tmp_path / 'bad.json')


def test_paper_preset_needs_local_weights():
    with pytest.raises(FileNotFoundError, match='text.source'):
        build_model('paper')  # bert-base-uncased must be a local folder; nothing downloads
    cfg = get_preset('paper').with_overrides({'text.source': 'minilm'})
    with pytest.raises(ValueError, match='backbone.weights'):
        build_model(cfg)


@pytest.mark.parametrize(
    'key,value',
    [
        ('pixel_decoder.fpn_conv', 'sparse'),
        ('heads.prelu', 'relu'),
        ('heads.q_global', 'max'),
        ('heads.hard_threshold', 1.5),
        ('backbone.name', 'resnet'),
        ('text.max_tokens', 2),
        ('decoder.hidden_dim', 31),
        ('pixel_decoder.norm_groups', 5),
        ('backbone.language_fusion', True),
    ],
)
def test_invalid_config_values_are_rejected(key, value):
    with pytest.raises(ValueError, match=key.split('.')[-1].split('_')[0]):
        get_preset('tiny').with_overrides({key: value})
