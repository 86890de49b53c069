"""The small evaluation set: regenerated deterministically, a few hundred balanced samples.

Regenerating it takes about 20-40 s on one shared core (32 scenes), hence ``slow``. The
expected counts pin the set: if the generator changes them, the shipped model's metrics on
this set (model card) must be measured again and these numbers updated together.
"""

from __future__ import annotations

import json
import os

import pytest

from poa_gres_ros.tabletop.dataset import SMALL_EVAL_SET, make_eval_set

pytest.importorskip('pybullet')

EXPECTED = {  # split: (images, refs, sentences), measured with SMALL_EVAL_SET
    'test': (24, 165, 249),
    'test_comp': (8, 48, 71),
}


@pytest.mark.slow
def test_small_eval_set_regenerates_with_its_documented_counts(tmp_path):
    out = str(tmp_path / 'eval')
    summary = make_eval_set(out)
    assert set(summary['splits']) == set(SMALL_EVAL_SET['scenes'])
    total = sum(s['sentences'] for s in summary['splits'].values())
    assert 250 <= total <= 600
    for split, (images, refs, sentences) in EXPECTED.items():
        s = summary['splits'][split]
        assert (s['images'], s['refs'], s['sentences']) == (images, refs, sentences), split
        frac = s['sentence_fraction_per_expr_type']
        assert min(frac.values()) >= 0.08, (split, frac)
    test = summary['splits']['test']['sentence_fraction_per_expr_type']
    assert 0.15 <= test['no_target'] <= 0.3
    with open(os.path.join(out, 'grefs(unc).json')) as fh:
        refs = json.load(fh)
    assert len(refs) == sum(s['refs'] for s in summary['splits'].values())
