"""ONNX Runtime backend on the tiny model: Predictor parity with torch, where the ONNX files come
from (model folder onnx/ or the cache), corrupt files, options, backend choice log line."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from poa_gres_ros.core.thresholds import Thresholds
from poa_gres_ros.export.onnx_export import METADATA_NAME
from poa_gres_ros.export.wrappers import GRAPH_FILES, VISION_GRAPH
from poa_gres_ros.inference import Predictor
from poa_gres_ros.inference.backends import create_backend
from poa_gres_ros.inference.backends.onnxruntime_backend import providers_for
from poa_gres_ros.modeling.io import CONFIG_NAME, WEIGHTS_NAME, load_config

from support.backends import shared_tiny

KEEP_ALL = Thresholds(relevance=0.0, mask=0.5, no_target=1.0, max_instances=10)
# Masks are thresholded logits; ORT and torch differ by ~1e-6 in the logits, so a pixel can only
# flip where a logit is within that of 0. Stated tolerance: at most 0.1 % of the image's pixels
# differ per mask (0 in practice).
MAX_MASK_DIFF_FRACTION = 1e-3


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    return shared_tiny(tmp_path_factory)


def _image(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _copy_model(src, dst: Path, with_onnx_from=None) -> Path:
    dst.mkdir(parents=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copy(Path(src) / name, dst / name)
    if with_onnx_from:
        shutil.copytree(with_onnx_from, dst / 'onnx')
    return dst


@pytest.mark.parametrize('text', ['the red mug and the duck on the left', 'a cup'])
def test_predictor_onnxruntime_matches_torch(tiny, text):
    ref = Predictor.from_model_dir(tiny['model_dir'], backend='torch')
    ort = Predictor.from_model_dir(
        tiny['model_dir'], backend='onnxruntime', cache_dir=tiny['cache_dir'], intra_op_threads=2
    )
    assert ort.backend_name == 'onnxruntime' and tiny['cache_dir'] in ort.backend.describe()
    img = _image(seed=3)
    a = (ref.set_instruction(text), ref.predict(img, KEEP_ALL))[1]
    b = (ort.set_instruction(text), ort.predict(img, KEEP_ALL))[1]
    assert [i.query_index for i in a.instances] == [i.query_index for i in b.instances]
    assert len(a.instances) > 0
    assert np.allclose(
        [i.relevance for i in a.instances], [i.relevance for i in b.instances], atol=1e-4
    )
    assert [i.phrase for i in a.instances] == [i.phrase for i in b.instances]
    limit = MAX_MASK_DIFF_FRACTION * img.shape[0] * img.shape[1]
    for x, y in zip(a.instances, b.instances):
        assert int((x.mask != y.mask).sum()) <= limit
    assert int((a.final_mask != b.final_mask).sum()) <= limit
    assert b.no_target_prob == pytest.approx(a.no_target_prob, abs=1e-4)


def test_predict_batch_with_different_text_lengths(tiny):
    ref = Predictor.from_model_dir(tiny['model_dir'], backend='torch')
    ort = Predictor.from_model_dir(
        tiny['model_dir'], backend='onnxruntime', cache_dir=tiny['cache_dir']
    )
    imgs = torch.from_numpy(np.stack([_image(64, 96, s) for s in (1, 2)])).permute(0, 3, 1, 2)
    texts = ['the mug', 'the small green block next to the tall red cup']
    a = ref.predict_batch(imgs, texts, KEEP_ALL)
    b = ort.predict_batch(imgs, texts, KEEP_ALL)
    for x, y in zip(a, b):
        assert [i.query_index for i in x.instances] == [i.query_index for i in y.instances]
        assert np.allclose([i.relevance for i in x.instances], [i.relevance for i in y.instances],
                           atol=1e-4)  # fmt: skip
        assert y.no_target_prob == pytest.approx(x.no_target_prob, abs=1e-4)


def test_model_folder_onnx_is_used_and_a_corrupt_one_is_not(tiny, tmp_path, caplog):
    folder = _copy_model(tiny['model_dir'], tmp_path / 'm', with_onnx_from=tiny['export_dir'])
    cfg = load_config(folder)
    be = create_backend('onnxruntime', folder, cfg, cache_dir=tiny['cache_dir'])
    assert be.export_dir == folder / 'onnx'
    vis = folder / 'onnx' / GRAPH_FILES[VISION_GRAPH]
    vis.write_bytes(vis.read_bytes()[:1000])  # truncated copy in the model folder
    with caplog.at_level(logging.WARNING, logger='poa_gres_ros'):
        be2 = create_backend('onnxruntime', folder, cfg, cache_dir=tiny['cache_dir'])
    assert be2.export_dir == Path(tiny['export_dir'])  # fell back to the valid cache
    assert any(
        'not using the ONNX export in the model folder' in r.getMessage()
        and 'corrupt' in r.getMessage()
        for r in caplog.records
    )


def test_corrupt_cache_without_export_gives_a_clear_error(tiny, tmp_path):
    cache = tmp_path / 'cache'
    shutil.copytree(tiny['cache_dir'], cache)
    export = cache / Path(tiny['export_dir']).relative_to(tiny['cache_dir'])
    vis = export / GRAPH_FILES[VISION_GRAPH]
    vis.write_bytes(b'\0' * 100)
    cfg = load_config(tiny['model_dir'])
    with pytest.raises(RuntimeError, match='corrupt.*poa-gres export'):
        create_backend(
            'onnxruntime', tiny['model_dir'], cfg, cache_dir=cache, export_if_missing=False
        )


def test_hash_valid_but_unloadable_file_names_the_file(tiny, tmp_path):
    folder = _copy_model(tiny['model_dir'], tmp_path / 'm', with_onnx_from=tiny['export_dir'])
    vis = folder / 'onnx' / GRAPH_FILES[VISION_GRAPH]
    vis.write_bytes(b'garbage, not protobuf')
    meta_path = folder / 'onnx' / METADATA_NAME
    import json

    from poa_gres_ros.export.artifacts import file_sha256

    meta = json.loads(meta_path.read_text())
    meta['graphs'][VISION_GRAPH]['sha256'] = file_sha256(vis)  # metadata "agrees"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(RuntimeError, match='cannot load .*vision_decoder.onnx'):
        create_backend(
            'onnxruntime',
            folder,
            load_config(folder),
            cache_dir=tmp_path / 'c',
            export_if_missing=False,
        )


@pytest.mark.slow
def test_corrupt_cache_is_rebuilt(tiny, tmp_path, caplog):
    cache = tmp_path / 'cache'
    shutil.copytree(tiny['cache_dir'], cache)
    export = cache / Path(tiny['export_dir']).relative_to(tiny['cache_dir'])
    (export / GRAPH_FILES[VISION_GRAPH]).write_bytes(b'\0' * 100)
    with caplog.at_level(logging.INFO, logger='poa_gres_ros'):
        be = create_backend(
            'onnxruntime', tiny['model_dir'], load_config(tiny['model_dir']), cache_dir=cache
        )
    msgs = [r.getMessage() for r in caplog.records]
    assert any('will be rebuilt' in m and 'corrupt' in m for m in msgs)
    assert any('ONNX export of' in m for m in msgs)
    out = be.run_vision(
        np.zeros((1, 3, 64, 96), np.float32),
        np.zeros((1, 4, 32), np.float32),
        np.ones((1, 4), np.int64),
    )
    assert out['mask_logits'].shape == (1, 6, 16, 24)


def test_options_and_providers(tiny):
    cfg = load_config(tiny['model_dir'])
    with pytest.raises(ValueError, match='unknown onnxruntime backend options'):
        create_backend('onnxruntime', tiny['model_dir'], cfg, threads=2)
    with pytest.raises(ValueError, match='graph_optimization'):
        create_backend(
            'onnxruntime',
            tiny['model_dir'],
            cfg,
            cache_dir=tiny['cache_dir'],
            graph_optimization='max',
        )
    be = create_backend(
        'onnxruntime',
        tiny['model_dir'],
        cfg,
        cache_dir=tiny['cache_dir'],
        intra_op_threads=1,
        graph_optimization='basic',
    )
    opts = be.sessions[VISION_GRAPH].get_session_options()
    assert opts.intra_op_num_threads == 1
    assert opts.get_session_config_entry('session.intra_op.allow_spinning') == '0'
    assert 'spin-wait off, optimisation basic' in be.describe()
    assert providers_for('cpu', ['CPUExecutionProvider']) == ['CPUExecutionProvider']
    gpu = providers_for(
        'cuda:1',
        ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider'],
        trt_cache_dir='/c',
        fp16=True,
    )
    assert [p[0] if isinstance(p, tuple) else p for p in gpu] == [
        'TensorrtExecutionProvider',
        'CUDAExecutionProvider',
        'CPUExecutionProvider',
    ]
    assert gpu[0][1]['device_id'] == 1 and gpu[0][1]['trt_fp16_enable'] is True
    with pytest.raises(RuntimeError, match='onnxruntime-gpu'):
        providers_for('cuda', ['CPUExecutionProvider'])


def test_backend_choice_log_lines(tiny, caplog):
    cfg = load_config(tiny['model_dir'])
    with caplog.at_level(logging.INFO, logger='poa_gres_ros'):
        be = create_backend(
            'auto', tiny['model_dir'], cfg, 'cpu', cache_dir=tiny['cache_dir'], precision='fp32'
        )
    lines = [r.getMessage() for r in caplog.records if 'backend auto ->' in r.getMessage()]
    assert len(lines) == 1 and be.name == 'onnxruntime'
    assert 'backend auto -> onnxruntime' in lines[0] and 'tensorrt: not usable (' in lines[0]
    caplog.clear()
    # ONNX Runtime fails to start (no export, exporting not allowed): auto falls back to torch
    with caplog.at_level(logging.INFO, logger='poa_gres_ros'):
        be = create_backend(
            'auto',
            tiny['model_dir'],
            cfg,
            'cpu',
            cache_dir='/nonexistent/c',
            export_if_missing=False,
            compile=False,
        )
    lines = [r.getMessage() for r in caplog.records if 'backend auto ->' in r.getMessage()]
    assert be.name == 'torch' and len(lines) == 1
    assert 'onnxruntime: failed to start (no valid ONNX export' in lines[0]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger='poa_gres_ros'):
        create_backend('torch', tiny['model_dir'], cfg)
    assert any(
        r.getMessage().startswith('backend torch (requested): torch') for r in caplog.records
    )


def test_num_threads_is_the_common_thread_option(tiny):
    """The node's num_threads reaches ONNX Runtime (intra-op threads) and torch (set_num_threads,
    checked in a subprocess since it is process-wide)."""
    import subprocess
    import sys

    from poa_gres_ros.inference.backends import onnxruntime_backend as ort_mod
    from poa_gres_ros.modeling.io import load_config

    model_dir = tiny['model_dir']
    cfg = load_config(model_dir)
    be = ort_mod.create(
        model_dir,
        cfg,
        'cpu',
        cache_dir=str(tiny['cache_dir']),
        export_if_missing=False,
        num_threads=1,
    )
    assert be.intra_op_threads == 1
    code = (
        'import torch, sys\n'
        'from poa_gres_ros.inference import Predictor\n'
        f'Predictor.from_model_dir({str(model_dir)!r}, backend="torch", num_threads=1)\n'
        'sys.exit(0 if torch.get_num_threads() == 1 else 3)\n'
    )
    res = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    with pytest.raises(ValueError, match='threads=0'):
        ort_mod.create(
            model_dir,
            cfg,
            'cpu',
            cache_dir=str(tiny['cache_dir']),
            export_if_missing=False,
            num_threads=0,
        )
