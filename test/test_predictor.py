"""Predictor facade on a saved tiny model: caching, results at the source resolution, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from poa_gres_ros.core.thresholds import Thresholds
from poa_gres_ros.inference import Predictor, resolve_model_dir
from poa_gres_ros.inference.backends.torch_backend import TorchBackend
from poa_gres_ros.modeling import build_model, load_model, save_model
from poa_gres_ros.modeling.preprocess import preprocess_image

TEXT = 'the red mug and the duck on the left'
KEEP_ALL = Thresholds(relevance=0.0, mask=0.5, no_target=1.0, max_instances=10)


class CountingBackend(TorchBackend):
    """The real torch backend, counting text-encoder runs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.text_runs = 0

    def encode_text(self, input_ids, attention_mask):
        self.text_runs += 1
        return super().encode_text(input_ids, attention_mask)


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    torch.manual_seed(5)
    folder = tmp_path_factory.mktemp('models') / 'tiny_test'
    save_model(build_model('tiny'), folder)
    return folder


@pytest.fixture()
def predictor(model_dir):
    model = load_model(model_dir)
    return Predictor(CountingBackend(model), model.tokenizer, 'tiny_test', cache_size=2)


def _image(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_cached_instruction_gives_the_same_result_as_uncached(predictor):
    img = _image()
    info = predictor.set_instruction(TEXT)
    assert info.num_tokens == 11 and not info.truncated
    cached = predictor.predict(img, KEEP_ALL)
    # uncached reference: the model runs its text encoder inside forward on the raw tokens
    model = predictor.backend.model
    enc = model.tokenizer([TEXT], return_tensors='pt')
    x = preprocess_image(img, model.config)[None]
    with torch.no_grad():
        ref = model(x, enc['input_ids'], enc['attention_mask'])
    keep = [i.query_index for i in cached.instances]
    assert np.allclose(
        [i.relevance for i in cached.instances], ref.relevance[0, keep].numpy(), atol=1e-6
    )
    assert cached.no_target_prob == pytest.approx(float(ref.no_target_prob[0]), abs=1e-6)
    # switching instructions and back hits the cache: no new text encoding, same result
    predictor.set_instruction('a cup')
    assert predictor.backend.text_runs == 2
    predictor.set_instruction(TEXT)
    assert predictor.backend.text_runs == 2
    again = predictor.predict(img, KEEP_ALL)
    assert np.array_equal(again.final_mask, cached.final_mask)
    assert [i.phrase for i in again.instances] == [i.phrase for i in cached.instances]
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(again.instances, cached.instances))


def test_warmup_leaves_the_instruction_alone(predictor):
    predictor.set_instruction('a cup')
    assert predictor.warmup(runs=1) > 0
    assert predictor.instruction.text == 'a cup'
    predictor.set_instruction('a cup')
    assert predictor.backend.text_runs == 2  # warm-up's own text run is not cached


def test_lru_cache_evicts_the_oldest(predictor):
    for text in ('one cup', 'two cups', 'one cup', 'three cups', 'one cup'):
        predictor.set_instruction(text)
    assert predictor.backend.text_runs == 3  # cache_size=2 kept 'one cup' as most recent
    predictor.set_instruction('two cups')  # evicted by 'three cups'
    assert predictor.backend.text_runs == 4


@pytest.mark.parametrize('hw', [(480, 640), (37, 291), (64, 96)])
def test_results_are_at_the_source_resolution(predictor, hw):
    predictor.set_instruction(TEXT)
    pred = predictor.predict(_image(*hw), KEEP_ALL)
    assert pred.final_mask.shape == hw and pred.final_mask.dtype == np.bool_
    assert pred.instruction == TEXT and not pred.no_target
    assert set(pred.timings_ms) == {'preprocess', 'vision', 'postprocess', 'total'}
    rel = [i.relevance for i in pred.instances]
    assert rel == sorted(rel, reverse=True) and len(rel) <= KEEP_ALL.max_instances
    for inst in pred.instances:
        assert inst.mask.shape == hw and inst.mask.any()
        x0, y0, x1, y1 = inst.box_xyxy_px
        assert 0 <= x0 < x1 <= hw[1] and 0 <= y0 < y1 <= hw[0]
        assert (
            inst.phrase is None
            or TEXT[inst.phrase.char_start : inst.phrase.char_end] == inst.phrase.text
        )


def test_thresholds(predictor):
    predictor.set_instruction(TEXT)
    img = _image()
    assert predictor.predict(img, Thresholds(relevance=1.0, no_target=1.0)).instances == []
    two = predictor.predict(img, Thresholds(relevance=0.0, no_target=1.0, max_instances=2))
    assert len(two.instances) <= 2
    nt = predictor.predict(img, Thresholds(relevance=0.0, no_target=0.0))
    assert nt.no_target and nt.instances == [] and not nt.final_mask.any()
    predictor.thresholds = Thresholds(relevance=0.0, no_target=0.0)
    assert predictor.predict(img).no_target
    with pytest.raises(TypeError, match='Thresholds'):
        predictor.thresholds = {'relevance': 0.5}


def test_bad_input_gives_clear_errors(predictor):
    with pytest.raises(RuntimeError, match='set_instruction'):
        predictor.predict(_image())
    for bad in ('', '   \n'):
        with pytest.raises(ValueError, match='empty'):
            predictor.set_instruction(bad)
    with pytest.raises(TypeError, match='str'):
        predictor.set_instruction(b'a cup')
    predictor.set_instruction('a cup')
    with pytest.raises(TypeError, match='uint8'):
        predictor.predict(_image().astype(np.float32))
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        predictor.predict(_image()[:, :, :2])
    with pytest.raises(TypeError, match='numpy'):
        predictor.predict(torch.zeros(4, 4, 3, dtype=torch.uint8))
    predictor.clear_instruction()
    assert predictor.instruction is None


def test_long_instruction_is_truncated(predictor):
    info = predictor.set_instruction('pick up the mug ' * 10)
    assert info.truncated and info.num_tokens == predictor.max_tokens
    assert predictor.predict(_image(), KEEP_ALL).truncated


def test_predict_batch_of_tensors_matches_single_frames(predictor):
    predictor.set_instruction(TEXT)
    imgs = [_image(64, 96, seed=s) for s in (1, 2)]  # network size: no input resize
    batch = predictor.predict_batch(
        torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2),
        texts=[TEXT, 'a cup'],
        thresholds=KEEP_ALL,
    )
    assert len(batch) == 2 and [p.instruction for p in batch] == [TEXT, 'a cup']
    assert batch[0].final_mask.shape == (64, 96) and batch[0].final_mask.dtype == np.bool_
    single = predictor.predict(imgs[0], KEEP_ALL)
    # same post-processing; the model ran on a batch of two with a padded second text
    assert [i.query_index for i in batch[0].instances] == [i.query_index for i in single.instances]
    assert np.allclose(
        [i.relevance for i in batch[0].instances],
        [i.relevance for i in single.instances],
        atol=1e-5,
    )
    assert (batch[0].final_mask == single.final_mask).mean() > 0.995
    for a, b in zip(batch[0].instances, single.instances):
        assert (a.mask == b.mask).mean() > 0.995 and a.phrase == b.phrase
    assert predictor.instruction.text == TEXT  # texts= does not change the current one
    with pytest.raises(ValueError, match='2 texts for 1 images'):
        predictor.predict_batch(torch.zeros(1, 3, 64, 96, dtype=torch.uint8), texts=['a', 'b'])


def test_predict_batch_of_images_of_different_sizes(predictor):
    predictor.set_instruction(TEXT)
    imgs = [_image(120, 160, seed=3), _image(37, 291, seed=4)]
    batch = predictor.predict_batch(imgs, thresholds=KEEP_ALL)
    assert [p.final_mask.shape for p in batch] == [(120, 160), (37, 291)]
    for img, got in zip(imgs, batch):
        one = predictor.predict(img, KEEP_ALL)
        assert [i.query_index for i in got.instances] == [i.query_index for i in one.instances]
        assert (got.final_mask == one.final_mask).mean() > 0.995
        assert got.no_target == one.no_target and got.instruction == TEXT
    with pytest.raises(TypeError, match='sequence of images'):
        predictor.predict_batch(imgs[0])
    with pytest.raises(ValueError, match='empty batch'):
        predictor.predict_batch([])


def test_from_model_dir_and_resolve_by_name(model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv('POA_GRES_MODEL_PATH', str(model_dir.parent))
    assert resolve_model_dir('tiny_test') == model_dir.resolve()
    p = Predictor.from_model_dir('tiny_test', thresholds=KEEP_ALL)
    assert (p.model_name, p.backend_name, p.max_tokens, p.input_size_hw) == (
        'tiny_test',
        'torch',
        16,
        (64, 96),
    )
    p.set_instruction('a cup')
    assert p.predict(_image()).final_mask.shape == (120, 160)
    with pytest.raises(FileNotFoundError) as err:
        resolve_model_dir('no_such_model')
    assert str(model_dir.parent / 'no_such_model') in str(err.value)
    with pytest.raises(ValueError, match='unknown backend'):
        Predictor.from_model_dir(model_dir, backend='openvino')


def test_instruction_changes_from_other_threads(predictor):
    """A node sets instructions from one callback group while another predicts."""
    import threading

    predictor.set_instruction('a cup')
    errors, results = [], []

    def set_texts(texts):
        try:
            for t in texts:
                predictor.set_instruction(t)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    def predict():
        try:
            for s in range(4):
                results.append(predictor.predict(_image(seed=s), KEEP_ALL).instruction)
        except Exception as exc:
            errors.append(exc)

    texts_a = [f'the {c} mug on the left' for c in ('red', 'blue', 'green', 'big')]
    texts_b = [f'the {c} duck' for c in ('small', 'yellow', 'rubber', 'last')]
    threads = [
        threading.Thread(target=set_texts, args=(texts_a,)),
        threading.Thread(target=set_texts, args=(texts_b,)),
        threading.Thread(target=predict),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(results) == 4 and all(r in {'a cup', *texts_a, *texts_b} for r in results)
    assert predictor.instruction.text in {*texts_a, *texts_b}
