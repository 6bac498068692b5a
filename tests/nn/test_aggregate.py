"""weighted_aggregate against a gather / index_add reference, values and gradients."""

import pytest
import torch

from taskgraph.nn import EdgePlan, weighted_aggregate


def _reference(h, w, src, dst, num_dst):
    out = h.new_zeros(h.size(0), num_dst, h.size(2))
    return out.index_add(1, dst, h[:, src] * w.unsqueeze(-1))


@pytest.mark.parametrize("shared", [False, True])
def test_matches_gather_scatter_with_gradients(shared):
    g = torch.Generator().manual_seed(0)
    S, R, E, B, F = 7, 5, 19, 3, 4
    src, dst = torch.randint(0, S, (E,), generator=g), torch.randint(0, R, (E,), generator=g)
    plan = EdgePlan(src, dst, S, R)
    h = torch.randn(B, S, F, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1 if shared else B, E, generator=g, dtype=torch.float64,
                    requires_grad=True)
    ours = weighted_aggregate(h, w, plan)
    ref = _reference(h, w.expand(B, -1), src, dst, R)
    torch.testing.assert_close(ours, ref)
    grad = torch.randn(B, R, F, generator=g, dtype=torch.float64)
    torch.testing.assert_close(torch.autograd.grad(ours, (h, w), grad),
                               torch.autograd.grad(ref, (h, w), grad))
    assert torch.autograd.gradcheck(lambda a, b: weighted_aggregate(a, b, plan), (h, w))


def test_in_degree_and_empty_edges():
    plan = EdgePlan(torch.tensor([0, 1, 1]), torch.tensor([2, 2, 0]), 2, 3)
    assert plan.in_degree().tolist() == [1, 0, 2]
    empty = EdgePlan(torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long), 2, 3)
    out = weighted_aggregate(torch.ones(2, 2, 4), torch.ones(1, 0), empty)
    assert out.shape == (2, 3, 4) and not out.any()


def test_shape_errors_name_the_argument():
    plan = EdgePlan(torch.tensor([0]), torch.tensor([1]), 2, 2)
    with pytest.raises(ValueError, match="'h'"):
        weighted_aggregate(torch.ones(2, 3, 4), torch.ones(1, 1), plan)
    with pytest.raises(ValueError, match="'weight'"):
        weighted_aggregate(torch.ones(2, 2, 4), torch.ones(3, 1), plan)
