"""Model folders: save then load gives identical outputs; broken folders give clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from poa_gres_ros.modeling import build_model, load_model, save_model
from poa_gres_ros.modeling.io import CONFIG_NAME, WEIGHTS_NAME
from poa_gres_ros.modeling.text_encoder import tokenize


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    torch.manual_seed(3)
    model = build_model('tiny')
    folder = tmp_path_factory.mktemp('tiny_model')
    save_model(model, folder)
    return model, folder


def _run(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    tok = tokenize(model.tokenizer, ['the red mug and the duck on the left', 'mug'], 16)
    with torch.no_grad():
        return model(torch.randn(2, 3, 64, 96, generator=g), tok.input_ids, tok.attention_mask)


def test_save_then_load_gives_identical_outputs(saved):
    model, folder = saved
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME, 'text_encoder']
    loaded = load_model(folder)
    assert not loaded.training
    a, b = _run(model), _run(loaded)
    for name in (
        'mask_logits',
        'relevance_logits',
        'token_attention',
        'merged_mask_logits',
        'no_target_logits',
    ):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    # the tokenizer travels with the folder (text.source is the folder's text_encoder/)
    cfg = json.loads((folder / CONFIG_NAME).read_text())
    assert cfg['text']['source'] == 'text_encoder'
    assert loaded.tokenizer('a cup')['input_ids'] == model.tokenizer('a cup')['input_ids']
    assert set(load_file(folder / WEIGHTS_NAME)) == set(model.state_dict())


def _copy(folder, dst):
    dst.mkdir()
    for p in folder.rglob('*'):
        if p.is_file():
            target = dst / p.relative_to(folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(p.read_bytes())
    return dst


def test_missing_files(saved, tmp_path):
    _, folder = saved
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_model(tmp_path / 'nowhere')
    broken = _copy(folder, tmp_path / 'no_weights')
    (broken / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_NAME):
        load_model(broken)
    broken = _copy(folder, tmp_path / 'no_config')
    (broken / CONFIG_NAME).unlink()
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        load_model(broken)


def test_corrupt_weights_file(saved, tmp_path):
    _, folder = saved
    broken = _copy(folder, tmp_path / 'corrupt')
    data = (broken / WEIGHTS_NAME).read_bytes()
    (broken / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])  # truncated copy
    with pytest.raises(RuntimeError, match='corrupt or not a safetensors file'):
        load_model(broken)
    (broken / WEIGHTS_NAME).write_bytes(b'\x80\x03pickle, not safetensors')
    with pytest.raises(RuntimeError, match='corrupt or not a safetensors file'):
        load_model(broken)


def test_mismatched_keys_are_named(saved, tmp_path):
    _, folder = saved
    broken = _copy(folder, tmp_path / 'keys')
    weights = load_file(broken / WEIGHTS_NAME)
    del weights['decoder.heads.relevance.phrase_proj.weight']
    weights['decoder.extra_head.weight'] = torch.zeros(3)
    save_file(weights, str(broken / WEIGHTS_NAME))
    with pytest.raises(RuntimeError) as err:
        load_model(broken)
    msg = str(err.value)
    assert 'missing keys (1): decoder.heads.relevance.phrase_proj.weight' in msg
    assert 'unexpected keys (1): decoder.extra_head.weight' in msg


def test_config_that_does_not_match_weights(saved, tmp_path):
    _, folder = saved
    broken = _copy(folder, tmp_path / 'shapes')
    cfg = json.loads((broken / CONFIG_NAME).read_text())
    cfg['decoder']['num_queries'] = 7
    (broken / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(
        RuntimeError,
        match=r'decoder.query_feat.weight: file \(6, 32\) vs model '
        r'\(7, 32\)',
    ):
        load_model(broken)
    cfg['decoder']['num_querys'] = 7
    (broken / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match='num_querys'):
        load_model(broken)


def test_config_of_the_first_format_keeps_its_architecture():
    """A format-1 config.json (written before the text-stream and relevance options existed)
    is read as the architecture it was written for; today's format takes today's defaults."""
    from poa_gres_ros.core.model_config import CONFIG_FORMAT, POAConfig
    from poa_gres_ros.core.model_presets import get_preset

    d = get_preset('tiny').to_dict()
    assert d['format'] == CONFIG_FORMAT != 'poa_gres_ros.model_config/1'
    for section, keys in {
        'decoder': ('text_norm', 'text_update_gate', 'mask_position', 'mask_pooling'),
        'heads': ('relevance', 'no_target_stats'),
    }.items():
        for k in keys:
            del d[section][k]
    today = POAConfig.from_dict(d)
    assert (today.decoder.text_norm, today.heads.relevance) == (True, 'agreement')
    v1 = POAConfig.from_dict({**d, 'format': 'poa_gres_ros.model_config/1'})
    assert (v1.decoder.text_norm, v1.decoder.text_update_gate) == (False, False)
    assert (v1.heads.relevance, v1.heads.no_target_stats) == ('linear', False)
    model = build_model(v1)
    assert not hasattr(model.decoder.heads.relevance, 'mlp')
    with pytest.raises(ValueError, match='format'):
        POAConfig.from_dict({**d, 'format': 'poa_gres_ros.model_config/99'})
