"""TensorRT engine cache and builder inputs, tested without TensorRT (it cannot be installed
here): availability reason, profiles, cache keys, rebuild decisions, writable-folder check, I/O
tables, INT8 calibration batches, build-engine CLI. The torch-vs-TensorRT parity test runs only
where TensorRT and a CUDA GPU exist (marker gpu) and is skipped elsewhere with the reason."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from poa_gres_ros.export.artifacts import ensure_writable_dir
from poa_gres_ros.export.calibration import calibration_batches
from poa_gres_ros.export.onnx_export import METADATA_NAME, ort_cpu_session
from poa_gres_ros.export.tensorrt_engine import (
    format_io_table,
    onnx_io_table,
    profile_shapes,
    rebuild_reason,
    save_engine,
)
from poa_gres_ros.export.wrappers import GRAPH_FILES, TEXT_GRAPH, VISION_GRAPH
from poa_gres_ros.inference.backends import tensorrt_backend
from poa_gres_ros.inference.engine_artifacts import plan_engines
from poa_gres_ros.modeling import load_model
from poa_gres_ros.modeling.preprocess import preprocess_image
from poa_gres_ros.modeling.text_encoder import load_tokenizer, tokenize

from support.backends import shared_tiny

GPU = {'gpu_name': 'Orin (nvgpu)', 'compute_capability': '8.7'}
TRT_OK, TRT_WHY = tensorrt_backend.available('cuda:0')


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return shared_tiny(tmp_path_factory)


@pytest.fixture(scope='module')
def meta(tiny):
    return json.loads((Path(tiny['export_dir']) / METADATA_NAME).read_text())


@pytest.mark.skipif(TRT_OK, reason='TensorRT is usable here; this checks the reason text')
def test_available_says_exactly_why_not():
    ok, why = tensorrt_backend.available('cuda:0')
    assert not ok
    try:
        import tensorrt  # noqa: F401
    except (ImportError, OSError):
        assert why.startswith('tensorrt does not import (')
    if not torch.cuda.is_available():
        assert 'sees no CUDA GPU' in why
    ok, why = tensorrt_backend.available('cpu')
    assert not ok and "device 'cpu' is not a CUDA device" in why
    with pytest.raises(RuntimeError, match='TensorRT is not usable'):
        tensorrt_backend.create(Path('.'), None, 'cuda:0')


def test_module_imports_without_importing_tensorrt():
    code = (
        'import sys; import poa_gres_ros.inference.backends.tensorrt_backend; '
        'import poa_gres_ros.inference.engine_artifacts; import poa_gres_ros.tools.build_engine; '
        'print("tensorrt" in sys.modules)'
    )
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == 'False'


def test_profile_shapes_from_the_export(meta):
    vis = profile_shapes(meta['graphs'][VISION_GRAPH]['inputs'], 2, 6, 16)
    assert vis['images'] == [[1, 3, 64, 96], [1, 3, 64, 96], [2, 3, 64, 96]]
    assert vis['text_features'] == [[1, 1, 32], [1, 6, 32], [2, 16, 32]]
    assert vis['text_mask'] == [[1, 1], [1, 6], [2, 16]]
    txt = profile_shapes(meta['graphs'][TEXT_GRAPH]['inputs'], 1, 8, 16)
    assert txt == {
        'input_ids': [[1, 1], [1, 8], [1, 16]],
        'attention_mask': [[1, 1], [1, 8], [1, 16]],
    }
    with pytest.raises(ValueError, match='opt_tokens'):
        profile_shapes(meta['graphs'][TEXT_GRAPH]['inputs'], 1, 17, 16)
    with pytest.raises(ValueError, match="unknown dynamic dimension 'height'"):
        profile_shapes([{'name': 'x', 'shape': ['height', 3]}], 1, 1, 4)


def test_cache_key_changes_with_every_field(meta, tmp_path):
    folder, specs = plan_engines(meta, GPU, '10.3.0.30', 'fp16', tmp_path)
    assert folder.parent == tmp_path / 'engines'
    assert folder.name.startswith('orin-nvgpu-sm87-trt10.3.0.30-fp16-64x96-')
    assert [s.graph for s in specs] == [TEXT_GRAPH, VISION_GRAPH]
    assert specs[1].onnx_sha256 == meta['graphs'][VISION_GRAPH]['sha256']
    assert specs[1].profile['text_mask'][1] == [1, 8]  # opt = max_tokens // 2
    assert plan_engines(meta, GPU, '10.3.0.30', 'fp16', tmp_path)[0] == folder  # deterministic
    others = [
        plan_engines(meta, dict(GPU, gpu_name='RTX 4090'), '10.3.0.30', 'fp16', tmp_path),
        plan_engines(meta, dict(GPU, compute_capability='8.9'), '10.3.0.30', 'fp16', tmp_path),
        plan_engines(meta, GPU, '10.7.0', 'fp16', tmp_path),
        plan_engines(meta, GPU, '10.3.0.30', 'fp32', tmp_path),
        plan_engines(meta, GPU, '10.3.0.30', 'fp16', tmp_path, max_batch=4),
        plan_engines(meta, GPU, '10.3.0.30', 'fp16', tmp_path, opt_tokens=12),
        plan_engines(dict(meta, input_size_hw=[96, 128]), GPU, '10.3.0.30', 'fp16', tmp_path),
    ]
    changed = json.loads(json.dumps(meta))
    changed['graphs'][VISION_GRAPH]['sha256'] = 'f' * 64
    others.append(plan_engines(changed, GPU, '10.3.0.30', 'fp16', tmp_path))
    assert len({f for f, _ in others} | {folder}) == len(others) + 1
    with pytest.raises(ValueError, match='precision'):
        plan_engines(meta, GPU, '10.3.0.30', 'bf16', tmp_path)


def test_rebuild_decision(meta, tmp_path):
    folder, specs = plan_engines(meta, GPU, '10.3.0.30', 'fp16', tmp_path)
    folder.mkdir(parents=True)
    spec = specs[1]
    path = folder / 'vision_decoder.engine'
    assert 'no engine' in rebuild_reason(path, spec)
    path.write_bytes(b'plan bytes')
    assert 'is missing' in rebuild_reason(path, spec)  # engine without metadata
    save_engine(path, b'plan bytes', spec, {'build_s': 1.0})
    assert rebuild_reason(path, spec) is None
    cases = {
        'tensorrt_version': replace(spec, tensorrt_version='10.7.0'),
        'gpu_name': replace(spec, gpu_name='RTX 4090'),
        'compute_capability': replace(spec, compute_capability='6.1'),  # another GPU generation
        'precision': replace(spec, precision='fp32'),
        'onnx_sha256': replace(spec, onnx_sha256='0' * 64),
        'profile': replace(spec, profile={}),
    }
    for field, other in cases.items():
        assert rebuild_reason(path, other).startswith(f'{field} is '), field
    path.write_bytes(b'plan bytes, truncated')
    assert 'corrupt' in rebuild_reason(path, spec)
    path.with_suffix('.json').write_text('{')
    assert 'not valid JSON' in rebuild_reason(path, spec)


def test_cache_folder_must_be_writable(tmp_path):
    assert ensure_writable_dir(tmp_path / 'a' / 'b') == tmp_path / 'a' / 'b'
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(
        RuntimeError,
        match=r'TensorRT engine cache folder .* is not writable.*'
        r'POA_GRES_CACHE_DIR',
    ):
        ensure_writable_dir(blocker / 'engines', 'TensorRT engine cache')


def test_io_table_from_the_onnx_graph(meta, tiny):
    rows = onnx_io_table(meta['graphs'][VISION_GRAPH])
    graph = onnx.load(
        str(Path(tiny['export_dir']) / GRAPH_FILES[VISION_GRAPH]), load_external_data=False
    ).graph
    assert [r['name'] for r in rows] == [v.name for v in graph.input] + [
        v.name for v in graph.output
    ]
    assert [r['mode'] for r in rows] == ['INPUT'] * 3 + ['OUTPUT'] * 5
    by_name = {r['name']: r for r in rows}
    assert by_name['images']['shape'] == [-1, 3, 64, 96]
    assert by_name['text_mask']['dtype'] == 'int64'
    text = format_io_table(rows)
    assert len(text.splitlines()) == 9 and 'token_attention' in text


def _dataset(root: Path, n: int = 4) -> Path:
    (root / 'images').mkdir(parents=True)
    rng = np.random.default_rng(0)
    refs = []
    for i in range(n):
        cv2.imwrite(
            str(root / 'images' / f'{i:03d}.png'),
            rng.integers(0, 256, (48 + 8 * i, 80, 3), dtype=np.uint8),
        )
        refs.append(
            {
                'ref_id': i,
                'image_id': i,
                'file_name': f'{i:03d}.png',
                'split': 'train' if i % 2 else 'val',
                'ann_id': [-1],
                'no_target': True,
                'sentences': [{'sent': f'the object number {i} on the left', 'sent_id': i}],
            }
        )
    (root / 'grefs(unc).json').write_text(json.dumps(refs))
    return root


def test_calibration_batches(tiny, tmp_path):
    data = _dataset(tmp_path / 'ds')
    model = load_model(tiny['model_dir'])
    cfg = model.config
    tok = load_tokenizer(cfg.text, tiny['model_dir'])
    text = ort_cpu_session(Path(tiny['export_dir']) / GRAPH_FILES[TEXT_GRAPH])
    batches = calibration_batches(data, cfg, tok, text, num_images=3, seed=1)
    assert len(batches) == 3
    for b in batches:
        assert b['images'].shape == (1, 3, 64, 96) and b['images'].dtype == np.float32
        assert b['text_features'].shape == (1, 16, 32) and b['text_mask'].dtype == np.int64
    again = calibration_batches(data, cfg, tok, text, num_images=3, seed=1)
    assert all(np.array_equal(a['images'], b['images']) for a, b in zip(batches, again))
    # the image path is the predictor's preprocessing and the text path is the text encoder
    first = calibration_batches(data, cfg, tok, text, num_images=1, split='val', seed=0)[0]
    rgbs = {
        i: cv2.cvtColor(cv2.imread(str(data / 'images' / f'{i:03d}.png')), cv2.COLOR_BGR2RGB)
        for i in (0, 2)
    }
    picked = [
        i
        for i, rgb in rgbs.items()
        if np.array_equal(first['images'][0], preprocess_image(rgb, cfg).numpy())
    ]
    assert len(picked) == 1
    enc = tokenize(tok, [f'the object number {picked[0]} on the left'], 16, padding='max_length')
    assert np.array_equal(enc.attention_mask.numpy(), first['text_mask'])
    with torch.inference_mode():
        ref = model.encode_text(enc.input_ids, enc.attention_mask).numpy()
    assert np.allclose(ref, first['text_features'], atol=1e-4)
    with pytest.raises(FileNotFoundError, match='gRefCOCO'):
        calibration_batches(tmp_path, cfg, tok, text)
    (data / 'images' / '001.png').unlink()
    with pytest.raises(FileNotFoundError, match='001.png'):
        calibration_batches(data, cfg, tok, text, num_images=4)


def test_build_engine_cli(tiny):
    from poa_gres_ros.tools import cli

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = cli.main(
            [
                'build-engine',
                tiny['model_dir'],
                '--dry-run',
                '--cache-dir',
                tiny['cache_dir'],
                '--max-batch',
                '2',
            ]
        )
    out = buf.getvalue()
    assert code == 0, out
    assert 'engine cache folder:' in out and '-fp16-64x96-' in out
    assert 'profile text_mask: min [1, 1] opt [1, 8] max [2, 16]' in out
    assert 'INPUT   images           float32  [-1, 3, 64, 96]' in out
    if not TRT_OK:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(['build-engine', tiny['model_dir'], '--cache-dir', tiny['cache_dir']])
        assert code == 2 and 'TensorRT is not usable here' in err.getvalue()


@pytest.mark.gpu
@pytest.mark.skipif(not TRT_OK, reason=f'needs TensorRT 10+ and a CUDA GPU: {TRT_WHY}')
@pytest.mark.parametrize('precision, atol', [('fp32', 1e-3), ('fp16', 5e-2)])
def test_tensorrt_matches_torch(tiny, tmp_path, precision, atol):
    """fp32: same tolerance as ONNX Runtime's mask logits; fp16: 5e-2 absolute on every output
    (FP16 has ~3 significant digits; the tiny model's logits are O(1))."""
    from poa_gres_ros.export.parity import default_cases
    from poa_gres_ros.modeling.io import load_config

    cfg = load_config(tiny['model_dir'])
    be = tensorrt_backend.create(
        Path(tiny['model_dir']), cfg, 'cuda:0', cache_dir=tmp_path, precision=precision, max_batch=2
    )
    model = load_model(tiny['model_dir'])
    for case in default_cases((64, 96), 16):
        with torch.inference_mode():
            text = model.encode_text(
                torch.from_numpy(case.input_ids), torch.from_numpy(case.attention_mask)
            )
            ref = model.vision_outputs(
                torch.from_numpy(case.images), text, torch.from_numpy(case.attention_mask)
            )
        got_text = be.encode_text(case.input_ids, case.attention_mask)
        assert np.abs(got_text - text.numpy()).max() <= atol
        got = be.run_vision(case.images, text.numpy(), case.attention_mask)
        for name, value in got.items():
            assert np.abs(value - ref[name].numpy()).max() <= atol, name
    be.close()
    again = tensorrt_backend.create(
        Path(tiny['model_dir']),
        cfg,
        'cuda:0',
        cache_dir=tmp_path,
        precision=precision,
        max_batch=2,
        build_if_missing=False,
    )
    again.close()  # the cached engine is found without a rebuild
