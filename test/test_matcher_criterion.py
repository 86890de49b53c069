"""Hungarian matcher vs brute force, point sampling, and the POA criterion on hand-built
POAOutput-shaped tensors (docs/method.md#matching, docs/method.md#losses)."""

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from poa_gres_ros.training.criterion import CriterionConfig, POACriterion, union_target
from poa_gres_ros.training.losses import batch_dice_cost, batch_sigmoid_ce_cost, dice_loss
from poa_gres_ros.training.matcher import HungarianMatcher, hungarian
from poa_gres_ros.training.point_sampling import point_sample, uncertain_point_coords


@dataclass
class Layer:  # the fields of POALayerOutput the training code reads
    mask_logits: torch.Tensor
    relevance_logits: torch.Tensor
    token_attention: torch.Tensor
    queries: torch.Tensor
    text_features: torch.Tensor
    phrase_embedding: torch.Tensor
    merged_mask_logits: torch.Tensor


@dataclass
class Output(Layer):
    no_target_logits: torch.Tensor = None
    aux_outputs: list = field(default_factory=list)


def make_layer(b=2, n=6, h=8, w=8, c=4, seed=0, requires_grad=False):
    g = torch.Generator().manual_seed(seed)

    def r(*s):
        return torch.randn(*s, generator=g).requires_grad_(requires_grad)

    return dict(
        mask_logits=r(b, n, h, w),
        relevance_logits=r(b, n),
        token_attention=torch.softmax(torch.randn(b, n, 5, generator=g), -1),
        queries=r(b, n, c),
        text_features=r(b, 5, c),
        phrase_embedding=r(b, n, c),
        merged_mask_logits=r(b, h, w),
    )


def make_output(num_aux=2, **kw):
    out = Output(**make_layer(**kw), no_target_logits=torch.randn(kw.get('b', 2), 2))
    out.aux_outputs = [Layer(**make_layer(**{**kw, 'seed': 10 + i})) for i in range(num_aux)]
    return out


def brute_force(cost):
    n, k = cost.shape
    return min(sum(cost[p[j], j] for j in range(k)) for p in itertools.permutations(range(n), k))


@pytest.mark.parametrize('seed', range(6))
def test_hungarian_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, k = rng.integers(1, 6), None
    k = int(rng.integers(1, n + 1))
    cost = rng.normal(size=(int(n), k))
    rows, cols = hungarian(cost)
    assert sorted(cols.tolist()) == list(range(k)) and len(set(rows.tolist())) == k
    assert cost[rows, cols].sum() == pytest.approx(brute_force(cost))


def test_matcher_cost_and_assignment_equal_brute_force():
    layer = Layer(**make_layer(b=2, n=5))
    gts = [(torch.rand(3, 16, 16) > 0.5).float(), torch.zeros(0, 16, 16)]
    m = HungarianMatcher(num_points=64)
    costs = m.cost_matrices(layer, gts, torch.Generator().manual_seed(1))
    assert costs[0].shape == (5, 3) and costs[1].shape == (5, 0)
    idx = m(layer, gts, torch.Generator().manual_seed(1))
    q, j = idx[0]
    assert float(costs[0][q, j].sum()) == pytest.approx(brute_force(costs[0].numpy()), rel=1e-6)
    assert idx[1][0].numel() == 0
    # the POA term shifts whole rows: cost difference with/without it is constant per row
    m0 = HungarianMatcher(num_points=64, cost_phrase=0.0)
    c0 = m0.cost_matrices(layer, gts, torch.Generator().manual_seed(1))[0]
    diff = costs[0] - c0
    torch.testing.assert_close(diff, diff[:, :1].expand_as(diff))


def test_pairwise_costs_equal_per_pair_losses():
    x, t = torch.randn(4, 30), (torch.rand(3, 30) > 0.5).float()
    dice = batch_dice_cost(x, t)
    bce = batch_sigmoid_ce_cost(x, t)
    for i in range(4):
        for j in range(3):
            assert dice[i, j] == pytest.approx(float(dice_loss(x[i : i + 1], t[j : j + 1])))
            ref = torch.nn.functional.binary_cross_entropy_with_logits(x[i], t[j])
            assert bce[i, j] == pytest.approx(float(ref), rel=1e-5)


def test_point_sample_hits_pixel_centres_and_importance_prefers_boundary():
    img = torch.arange(16.0).view(1, 1, 4, 4)
    pts = torch.tensor([[[0.125, 0.125], [0.875, 0.375]]])  # centres of (0,0) and (x=3,y=1)
    assert point_sample(img, pts)[0, 0].tolist() == [0.0, 7.0]
    logits = torch.full((1, 1, 32, 32), 10.0)
    logits[..., 16:] = -10.0
    logits[..., 12:20] = 0.0  # uncertain band: about 22 % of uniform points land on it
    coords = uncertain_point_coords(logits, 100, 3.0, 0.75, torch.Generator().manual_seed(0))
    x = coords[0, :75, 0]  # the 75 importance-sampled points (the last 25 are uniform)
    assert coords.shape == (1, 100, 2)
    # zero padding of grid_sample makes the image border uncertain too (as in Mask2Former)
    assert ((x > 11 / 32) & (x < 21 / 32)).float().mean() > 0.85


def _perfect_output(b=2, n=6, h=16, w=16):
    """Queries 1 and 4 of image 0 predict the two GT instances; image 1 is no-target."""
    gts = [torch.zeros(2, h, w), torch.zeros(0, h, w)]
    gts[0][0, :8, :8] = 1
    gts[0][1, 8:, 8:] = 1
    kw = make_layer(b=b, n=n, h=h, w=w, requires_grad=False)
    kw['mask_logits'] = torch.full((b, n, h, w), -20.0)
    kw['mask_logits'][0, 1] = gts[0][0] * 40 - 20
    kw['mask_logits'][0, 4] = gts[0][1] * 40 - 20
    kw['relevance_logits'] = torch.full((b, n), -20.0)
    kw['relevance_logits'][0, [1, 4]] = 20.0
    kw['phrase_embedding'] = kw['queries'].clone()  # cos = 1 -> POA 0
    kw['merged_mask_logits'] = torch.full((b, h, w), -20.0)
    kw['merged_mask_logits'][0] = (gts[0].amax(0)) * 40 - 20
    kw = {k: v.requires_grad_(True) for k, v in kw.items()}
    out = Output(**kw, no_target_logits=torch.tensor([[20.0, -20.0], [-20.0, 20.0]]))
    return out, gts, torch.tensor([False, True])


def test_criterion_perfect_prediction_has_near_zero_loss_and_gradients():
    out, gts, nt = _perfect_output()
    crit = POACriterion(CriterionConfig(num_points=256, deep_supervision=False))
    total, parts = crit(out, gts, nt)
    assert set(parts) == {'score', 'bce', 'dice', 'poa', 'merged_bce', 'merged_dice', 'nt'}
    for name in ('score', 'poa', 'merged_bce', 'merged_dice', 'nt'):
        assert abs(float(parts[name])) < 1e-3, name
    # importance sampling puts points on edges, where the bilinear GT is soft (0.5), so the
    # point BCE of a perfect mask is not 0; it must still be far below an inverted mask's
    inv, _, _ = _perfect_output()
    with torch.no_grad():
        inv.mask_logits[0, [1, 4]] *= -1
    _, parts_inv = crit(inv, gts, nt)
    assert float(parts['bce'] + parts['dice']) < 0.25 * float(parts_inv['bce'] + parts_inv['dice'])
    total.backward()
    assert out.mask_logits.grad is not None and out.relevance_logits.grad is not None
    # a wrong relevance on a matched query costs exactly weight * BCE / sum(weights)
    out2, gts, nt = _perfect_output()
    with torch.no_grad():
        out2.relevance_logits[0, 1] = 0.0  # p = 0.5 on a matched query
    _, parts2 = crit(out2, gts, nt)
    sum_w = 2 * 1.0 + 10 * 0.1
    assert float(parts2['score']) == pytest.approx(2.0 * np.log(2) / sum_w, rel=1e-3)


def test_criterion_poa_term_is_mean_one_minus_cos_over_matched():
    out, gts, nt = _perfect_output()
    with torch.no_grad():
        out.phrase_embedding[0, 1] = -out.queries[0, 1]  # cos -1 -> 2
        out.phrase_embedding[0, 0] = -out.queries[0, 0]  # unmatched: ignored
    cfg = CriterionConfig(
        num_points=256, deep_supervision=False, weight_phrase=2.0, cost_phrase=0.0
    )
    _, parts = POACriterion(cfg)(out, gts, nt)
    assert float(parts['poa']) == pytest.approx(2.0 * (2.0 + 0.0) / 2, rel=1e-5)


def test_criterion_deep_supervision_ablations_and_no_target_batch():
    out = make_output(b=2, n=6, h=8, w=8, num_aux=2)
    gts = [(torch.rand(2, 32, 32) > 0.5).float(), torch.zeros(0, 32, 32)]
    nt = torch.tensor([False, True])
    cfg = CriterionConfig(num_points=32)
    _, parts = POACriterion(cfg)(out, gts, nt)
    assert {'score', 'score_0', 'score_1', 'poa_1', 'bce_0'} <= set(parts)
    _, parts = POACriterion(cfg.ablation('no_poa'))(out, gts, nt)
    assert not any(k.startswith('poa') for k in parts)
    assert POACriterion(cfg.ablation('no_poa')).matcher.cost_phrase == 0.0
    _, parts = POACriterion(cfg.ablation('merged_only'))(out, gts, nt)
    assert set(parts) == {'merged_bce', 'merged_dice', 'nt'}
    # batch of no-target samples only: instance mask terms are zero but differentiable
    out = make_output(b=2, n=6, h=8, w=8, num_aux=0, requires_grad=True)
    total, parts = POACriterion(cfg)(out, [torch.zeros(0, 8, 8)] * 2, torch.tensor([1, 1]).bool())
    assert float(parts['bce']) == 0.0 and torch.isfinite(total)
    total.backward()
    assert out.mask_logits.grad is not None


def test_union_target_and_errors():
    m = torch.zeros(2, 8, 8)
    m[0, :4, :4] = 1
    m[1, 2:6, 2:6] = 1
    u = union_target([m, torch.zeros(0, 8, 8)], (4, 4), 'cpu', torch.float32)
    assert u.shape == (2, 4, 4) and float(u[1].sum()) == 0.0
    assert float(u[0].sum()) * 4 == pytest.approx(float(m.amax(0).sum()))
    out = make_output(b=2, n=6, h=8, w=8, num_aux=0)
    with pytest.raises(ValueError, match='no_target'):
        POACriterion()(out, [torch.zeros(0, 8, 8)] * 2, torch.tensor([False, True]))
    with pytest.raises(ValueError, match='unknown criterion keys'):
        CriterionConfig.from_dict({'weight_poa': 1.0})
    with pytest.raises(ValueError, match='only 2 queries'):
        hungarian(np.zeros((2, 3)))
