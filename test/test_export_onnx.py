"""ONNX export of the tiny model: graphs, metadata, onnx.checker, parity at other text lengths
and batch sizes, corruption/mismatch detection; CLI export and the tabletop preset (slow)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from poa_gres_ros.core.model_presets import get_preset
from poa_gres_ros.export.artifacts import file_sha256
from poa_gres_ros.export.onnx_artifacts import validate_export
from poa_gres_ros.export.onnx_export import METADATA_NAME, model_fingerprint, ort_cpu_session
from poa_gres_ros.export.parity import ParityCase, compare, default_cases, run_parity
from poa_gres_ros.export.wrappers import (
    GRAPH_FILES,
    OPSET,
    TEXT_GRAPH,
    VISION_GRAPH,
    VISION_INPUT_NAMES,
    VISION_OUTPUT_NAMES,
    example_images,
    example_tokens,
)
from poa_gres_ros.modeling import build_model, load_model, save_model
from poa_gres_ros.modeling.transformer_decoder import mask_weights

from support.backends import shared_tiny


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return shared_tiny(tmp_path_factory)


@pytest.fixture(scope='module')
def sessions(tiny):
    return {g: ort_cpu_session(Path(tiny['export_dir']) / GRAPH_FILES[g]) for g in GRAPH_FILES}


def test_export_writes_checked_graphs_and_metadata(tiny):
    folder = Path(tiny['export_dir'])
    meta = json.loads((folder / METADATA_NAME).read_text())
    model = load_model(tiny['model_dir'])
    assert meta['opset'] == OPSET == 18 and meta['input_size_hw'] == [64, 96]
    assert meta['max_tokens'] == 16 and meta['versions']['torch'] == torch.__version__
    assert meta['weights_sha256'] == file_sha256(Path(tiny['model_dir']) / 'model.safetensors')
    assert {k: meta[k] for k in ('config_sha256', 'weights_sha256', 'external')} == (
        model_fingerprint(tiny['model_dir'])
    )
    vis = meta['graphs'][VISION_GRAPH]
    assert [i['name'] for i in vis['inputs']] == list(VISION_INPUT_NAMES)
    assert [o['name'] for o in vis['outputs']] == list(VISION_OUTPUT_NAMES)
    shapes = {v['name']: v['shape'] for v in vis['inputs'] + vis['outputs']}
    n, d = model.config.decoder.num_queries, model.text_hidden_size
    assert shapes['images'] == ['batch', 3, 64, 96]  # image size fixed per export
    assert shapes['text_features'] == ['batch', 'tokens', d]
    assert shapes['token_attention'] == ['batch', n, 'tokens']
    assert shapes['mask_logits'] == ['batch', n, 16, 24]
    assert {v['name']: v['dtype'] for v in vis['inputs']} == {
        'images': 'float32',
        'text_features': 'float32',
        'text_mask': 'int64',
    }
    for entry in meta['graphs'].values():
        path = folder / entry['file']
        assert file_sha256(path) == entry['sha256']
        onnx.checker.check_model(str(path), full_check=True)
        assert max(o.version for o in onnx.load(str(path)).opset_import if o.domain == '') == 18
    diffs = meta['parity']['max_abs_diff']
    assert set(diffs) == {'text_features', *VISION_OUTPUT_NAMES}
    assert all(diffs[k] <= meta['parity']['tolerances'][k][0] for k in diffs)
    assert any('exporting' in line and 'first use' in line for line in tiny['log'])
    assert any('ONNX export of' in line and ' took ' in line for line in tiny['log'])


def test_parity_at_unseen_text_lengths_and_batch(tiny, sessions):
    model = load_model(tiny['model_dir'])
    cases = []
    for name, batch, length, seed in (
        ('b3_len5', 3, 5, 7),
        ('b1_len3', 1, 3, 8),
        ('b1_len16', 1, 16, 9),
    ):
        ids, mask = example_tokens(batch, length, seed=seed)
        cases.append(
            ParityCase(
                name, ids.numpy(), mask.numpy(), example_images(batch, (64, 96), seed).numpy()
            )
        )
    report = run_parity(model, sessions, cases)
    assert report.ok, report.format()
    assert len(report.rows) == len(cases) * 6
    out = sessions[VISION_GRAPH].run(
        ['token_attention'],
        {
            'images': cases[0].images,
            'text_mask': cases[0].attention_mask,
            'text_features': sessions[TEXT_GRAPH].run(
                None, {'input_ids': cases[0].input_ids, 'attention_mask': cases[0].attention_mask}
            )[0],
        },
    )[0]
    assert out.shape == (3, model.config.decoder.num_queries, 5)
    assert np.all(out[2, :, 3:] == 0.0)  # padding gets exactly zero attention (row 2: 3 tokens)


def test_parity_fails_for_another_model(tiny, sessions):
    torch.manual_seed(123)
    other = build_model('tiny')  # same architecture, other weights: must not pass
    report = run_parity(other, sessions, default_cases((64, 96), 16)[:1])
    assert not report.ok and 'FAIL' in report.format()
    with pytest.raises(ValueError, match='shape'):
        compare('relevance', np.zeros((1, 6)), np.zeros((1, 5)))


def test_validate_export_reports_corruption_and_mismatch(tiny, tmp_path):
    fp = model_fingerprint(tiny['model_dir'])
    good = tmp_path / 'export'
    shutil.copytree(tiny['export_dir'], good)
    assert validate_export(good, fp, (64, 96)) is None
    assert 'input size' in validate_export(good, fp, (96, 128))
    other = dict(fp, weights_sha256='0' * 64)
    assert 'weights_sha256 differs' in validate_export(good, other, (64, 96))
    vis = good / GRAPH_FILES[VISION_GRAPH]
    data = vis.read_bytes()
    vis.write_bytes(data[: len(data) // 2])  # a truncated copy
    assert 'corrupt' in validate_export(good, fp, (64, 96))
    vis.unlink()
    assert 'missing' in validate_export(good, fp, (64, 96))
    (good / METADATA_NAME).write_text('{not json')
    assert 'not valid JSON' in validate_export(good, fp, (64, 96))


def test_mask_weights_keep_relative_precision_in_the_tail():
    x = torch.tensor([-1000.0, -88.0, -60.0, -30.0, -17.0, -5.0, 0.0, 5.0, 30.0, 1000.0])
    w = mask_weights(x)
    exact = torch.sigmoid(x.double())
    assert w.dtype == torch.float32 and torch.all(torch.isfinite(w))
    assert w[0] == 0.0 and w[-1] == 1.0
    rel = ((w[1:-1].double() - exact[1:-1]) / exact[1:-1]).abs()
    assert float(rel.max()) < 1e-6, rel  # sigmoid(-60) = 8.8e-27 still to float precision
    assert mask_weights(x.double()).dtype == torch.float64


def _empty_mask_model(tmp_path) -> Path:
    """Tiny model with mask position and mask pooling on, their zero-initialised output layers
    set to random values, and every query's mask far below 0.5 (logits about -35 .. -15, as
    the unused queries of a trained model have): these features then see only the tail of
    sigmoid(S), where ONNX Runtime's Sigmoid kernel is 0 or off by a factor of two."""
    cfg = get_preset('tiny').with_overrides(
        {'decoder.mask_position': True, 'decoder.mask_pooling': ['res3', 'res4', 'res5']}
    )
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    dec = model.decoder
    with torch.no_grad():
        for layer, std in ((dec.mask_position.proj, 0.05), (dec.mask_pooling.proj.layers[-1], 0.2)):
            torch.nn.init.normal_(layer.weight, std=std)
            torch.nn.init.normal_(layer.bias, std=std)
        # F_mask channel 0 = 1 everywhere, the mask embedding's channel 0 = -30: every logit
        # is shifted by -30; the other channels, scaled by 10, vary it by about +-7
        embed = dec.heads.mask_embed.layers[-1]
        embed.weight.mul_(10.0)
        embed.bias.mul_(10.0)
        embed.weight[0] = 0.0
        embed.bias[0] = -30.0
        feat = model.pixel_decoder.mask_features
        feat.weight[0] = 0.0
        feat.bias[0] = 1.0
    return save_model(model, tmp_path / 'empty_masks')


def test_parity_with_mask_position_and_pooling_on_empty_masks(tmp_path):
    """Regression: exported with ONNX's Sigmoid, these features differed by up to 0.7 in mask
    logits (tolerance 1e-3) while torch float32 and float64 agree to 2e-5."""
    from poa_gres_ros.export.onnx_export import export_onnx

    model_dir = _empty_mask_model(tmp_path)
    model = load_model(model_dir)
    case = default_cases((64, 96), 16)[0]
    ids, mask = torch.from_numpy(case.input_ids), torch.from_numpy(case.attention_mask)
    with torch.inference_mode():
        text = model.encode_text(ids, mask)
        ref = model.vision_outputs(torch.from_numpy(case.images), text, mask)
        assert float(ref['mask_logits'].max()) < -15.0  # the regime this test is about
        dec = model.decoder
        for layer in (dec.mask_position.proj, dec.mask_pooling.proj.layers[-1]):
            layer.weight.zero_()
            layer.bias.zero_()
        without = model.vision_outputs(torch.from_numpy(case.images), text, mask)
    # the two features together move the result far beyond the tolerance
    assert float((ref['mask_logits'] - without['mask_logits']).abs().max()) > 0.1
    meta = export_onnx(model_dir, tmp_path / 'onnx')  # raises with the table on a failure
    diffs = meta['parity']['max_abs_diff']
    assert diffs['mask_logits'] < 1e-3 and diffs['relevance'] < 1e-4, diffs


@pytest.mark.slow
def test_cli_export_prints_max_abs_diff_per_output(tiny, tmp_path):
    from poa_gres_ros.tools import cli

    out = tmp_path / 'onnx_out'
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert cli.main(['export', tiny['model_dir'], '--out', str(out)]) == 0
    text = buf.getvalue()
    for name in ('text_features', *VISION_OUTPUT_NAMES):
        assert f'  {name}' in text
    assert 'vision_decoder.onnx' in text and (out / METADATA_NAME).is_file()
    fp = model_fingerprint(tiny['model_dir'])
    assert validate_export(out, fp, (64, 96)) is None


@pytest.mark.slow
def test_tabletop_export_parity(tmp_path):
    """Tabletop preset (EfficientNet-Lite0 + MiniLM-L6, random decoder): ~3 min on 2 cores."""
    from poa_gres_ros.export.onnx_export import export_onnx
    from poa_gres_ros.modeling import save_model

    torch.manual_seed(0)
    model_dir = save_model(build_model('tabletop'), tmp_path / 'tabletop')
    meta = export_onnx(model_dir, tmp_path / 'onnx')
    assert meta['input_size_hw'] == [384, 512]
    model = load_model(model_dir)
    sessions = {g: ort_cpu_session(tmp_path / 'onnx' / f) for g, f in GRAPH_FILES.items()}
    ids, mask = example_tokens(1, 13, seed=3)  # a length the export did not trace
    case = ParityCase(
        'b1_len13', ids.numpy(), mask.numpy(), example_images(1, (384, 512), 3).numpy()
    )
    report = run_parity(model, sessions, [case])
    assert report.ok, report.format()
