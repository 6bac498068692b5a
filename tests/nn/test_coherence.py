import networkx as nx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from taskgraph.nn.coherence import Coherence


@st.composite
def dags(draw):
    """Random DAG (edges i -> j with i < j), logits and labels."""
    T = draw(st.integers(1, 30))
    pairs = [(i, j) for i in range(T) for j in range(i + 1, T)]
    edges = draw(st.lists(st.sampled_from(pairs), max_size=60)) if pairs else []
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    B = 3
    logits = torch.randn(B, T, generator=gen, dtype=torch.float64)
    targets = torch.randint(-1, 2, (B, T), generator=gen)
    return T, edges, logits, targets


def _edge_index(edges):
    return torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t()


def _graph(T, edges):
    g = nx.DiGraph()
    g.add_nodes_from(range(T))
    g.add_edges_from(edges)
    return g


def _brute_force(T, edges, logits):
    g = _graph(T, edges)
    out = torch.empty_like(logits)
    for t in range(T):
        group = [t] + sorted(nx.descendants(g, t))
        out[:, t] = logits[:, group].amax(dim=1)
    return out


def _brute_force_mc(T, edges, logits, targets):
    """C-HMCNN's MCLoss input, in probability space as in the paper."""
    g = _graph(T, edges)
    probs = torch.sigmoid(logits)
    labels = (targets == 1).to(probs.dtype)
    out = torch.empty_like(probs)
    for t in range(T):
        group = [t] + sorted(nx.descendants(g, t))
        constrained = probs[:, group].amax(dim=1)
        positive = (labels[:, group] * probs[:, group]).amax(dim=1)
        out[:, t] = (1 - labels[:, t]) * constrained + labels[:, t] * positive
    return out


@settings(max_examples=60, deadline=None)
@given(dags())
def test_forward_matches_brute_force(case):
    T, edges, logits, _ = case
    coherence = Coherence(_edge_index(edges), T)
    out = coherence(logits)
    for p, c in edges:
        assert (out[:, p] >= out[:, c]).all()
    assert coherence.violations(out) == 0
    torch.testing.assert_close(out, _brute_force(T, edges, logits))
    g = _graph(T, edges)
    expected_levels = nx.dag_longest_path_length(g) if edges else 0
    assert coherence.num_levels == expected_levels


@settings(max_examples=60, deadline=None)
@given(dags())
def test_mc_logits_matches_brute_force(case):
    T, edges, logits, targets = case
    coherence = Coherence(_edge_index(edges), T)
    logits = logits.clone().requires_grad_()
    out = coherence.mc_logits(logits, targets)
    expected = _brute_force_mc(T, edges, logits.detach(), targets)
    torch.testing.assert_close(torch.sigmoid(out), expected)
    mask = targets != -1
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        out[mask], targets[mask].to(out.dtype), reduction="sum")
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_gradient_flows_through_argmax():
    coherence = Coherence(torch.tensor([[0, 0, 1], [1, 2, 3]]), 4)
    logits = torch.tensor([[0.0, 1.0, 2.0, 5.0]], requires_grad=True)
    out = coherence(logits)
    out[0, 0].backward()
    assert logits.grad.tolist() == [[0.0, 0.0, 0.0, 1.0]]


def test_multi_parent_nodes():
    # Diamond 0 -> {1, 2} -> 3 and a node 6 with two unrelated parents 4, 5.
    edge_index = torch.tensor([[0, 0, 1, 2, 4, 5], [1, 2, 3, 3, 6, 6]])
    coherence = Coherence(edge_index, 7)
    logits = torch.tensor([[0.0, -1.0, -2.0, 3.0, -5.0, 1.0, 0.5]])
    expected = torch.tensor([[3.0, 3.0, 3.0, 3.0, 0.5, 1.0, 0.5]])
    torch.testing.assert_close(coherence(logits), expected)
    targets = torch.tensor([[1, 0, 1, 0, 1, 1, 0]])
    # 0: positives among {0, 1, 2, 3} are 0, 2; 2: only itself; 4: only itself.
    expected_mc = torch.tensor([[0.0, 3.0, -2.0, 3.0, -5.0, 1.0, 0.5]])
    torch.testing.assert_close(coherence.mc_logits(logits, targets),
                               expected_mc)
    assert coherence.num_levels == 2
    assert coherence.violations(logits) == 3  # 1->3, 2->3 and 4->6


@pytest.mark.parametrize("edges, cycle", [
    ([(0, 1), (1, 2), (2, 0)], "0 -> 1 -> 2 -> 0"),
    ([(0, 1), (1, 1)], "1 -> 1"),
    ([(0, 1), (1, 2), (2, 3), (3, 1)], "1 -> 2 -> 3 -> 1"),
])
def test_cycles_are_rejected(edges, cycle):
    with pytest.raises(ValueError, match=f"acyclic.*{cycle}"):
        Coherence(_edge_index(edges), 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"\[0, 3\).*\[0, 3\]"):
        Coherence(torch.tensor([[0], [3]]), 3)
    with pytest.raises(ValueError, match=r"\[0, 3\).*\[-1, 1\]"):
        Coherence(torch.tensor([[-1], [1]]), 3)
    with pytest.raises(ValueError, match=r"shape \(2, E\)"):
        Coherence(torch.tensor([[0, 1, 2]]), 3)
    with pytest.raises(ValueError, match="integer"):
        Coherence(torch.tensor([[0.0], [1.0]]), 3)
    with pytest.raises(ValueError, match="num_tasks"):
        Coherence(torch.tensor([[0], [1]]), -1)
    coherence = Coherence(torch.tensor([[0], [1]]), 3)
    with pytest.raises(ValueError, match=r"\(B, 3\).*\(2, 4\)"):
        coherence(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="targets"):
        coherence.mc_logits(torch.zeros(2, 3), torch.zeros(2, 4))


def test_no_edges_and_leading_dims():
    coherence = Coherence(torch.empty(2, 0, dtype=torch.long), 5)
    logits = torch.randn(4, 5)
    torch.testing.assert_close(coherence(logits), logits)
    assert coherence.num_levels == 0
    chain = Coherence([[0, 1], [1, 2]], 3)  # lists are accepted
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(chain(x).reshape(8, 3), chain(x.reshape(8, 3)))


def test_repr_and_buffers():
    coherence = Coherence(torch.tensor([[0, 0, 1], [1, 2, 3]]), 4)
    assert repr(coherence) == "Coherence(num_tasks=4, num_edges=3, levels=2)"
    names = {name for name, _ in coherence.named_buffers()}
    assert {"edge_parent", "edge_child", "edge_slot", "level_nodes"} <= names
    assert coherence.state_dict() == {}  # derived from the constructor


def _layered_dag(T, E, levels, seed):
    gen = torch.Generator().manual_seed(seed)
    # Nodes 0..levels form a chain (one path of length `levels`); every other
    # node gets a random layer and edges only go to a deeper layer.
    layer = torch.randint(0, levels + 1, (T, ), generator=gen)
    layer[:levels + 1] = torch.arange(levels + 1)
    src = torch.randint(0, T, (4 * E, ), generator=gen)
    dst = torch.randint(0, T, (4 * E, ), generator=gen)
    keep = layer[src] < layer[dst]
    edges = torch.stack([src[keep], dst[keep]])
    edges = torch.unique(edges, dim=1)[:, :E - levels]
    chain = torch.stack([torch.arange(levels), torch.arange(1, levels + 1)])
    return torch.cat([chain, edges], dim=1)


def test_scale_gene_ontology_sized():
    T, E, levels, B = 4130, 5000, 12, 256
    edge_index = _layered_dag(T, E, levels, seed=0)
    coherence = Coherence(edge_index, T)
    assert coherence.num_levels == levels
    assert coherence.num_edges == edge_index.size(1) > 4900
    for name, buffer in coherence.named_buffers():
        assert buffer.numel() <= T + E, name  # O(T + E), never T * T
    logits = torch.randn(B, T, requires_grad=True)
    out = coherence(logits)
    assert out.shape == (B, T)
    assert coherence.violations(out) == 0
    out.sum().backward()
    assert logits.grad.sum() == B * T  # every output picks one input
    # Spot-check a few nodes against their descendant sets.
    g = _graph(T, edge_index.t().tolist())
    for t in [0, 1, 5, 100, 2000]:
        group = [t] + sorted(nx.descendants(g, t))
        torch.testing.assert_close(out[:, t], logits[:, group].amax(dim=1))


def test_tie_sends_the_gradient_to_the_node_itself():
    coherence = Coherence(torch.tensor([[0, 0], [1, 2]]), 3)  # 0 -> 1, 0 -> 2
    logits = torch.tensor([[2.0, 2.0, 1.0]], requires_grad=True)
    coherence(logits)[0, 0].backward()
    assert logits.grad.tolist() == [[1.0, 0.0, 0.0]]
    # tied children: exactly one of them gets it
    logits = torch.tensor([[0.0, 3.0, 3.0]], requires_grad=True)
    coherence(logits)[0, 0].backward()
    assert sorted(logits.grad[0].tolist()) == [0.0, 0.0, 1.0]


def test_gradient_matches_a_dense_max_without_ties():
    # The dense reference: max over each node's descendant set by autograd's own amax.
    edge_index = _layered_dag(60, 90, 5, seed=3)
    coherence = Coherence(edge_index, 60)
    g = _graph(60, edge_index.t().tolist())
    members = [sorted({t} | nx.descendants(g, t)) for t in range(60)]
    logits = torch.randn(4, 60, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(4, 60, dtype=torch.float64)
    (coherence(logits) * weights).sum().backward()
    ours = logits.grad.clone()
    logits.grad = None
    dense = torch.stack([logits[:, m].amax(dim=1) for m in members], dim=1)  # (B, T)
    (dense * weights).sum().backward()
    torch.testing.assert_close(ours, logits.grad)


def test_backward_touches_each_level_once():
    # A 400-level chain: the backward is one scatter, not one full-size op per level.
    T = 400
    coherence = Coherence(torch.stack([torch.arange(T - 1), torch.arange(1, T)]), T)
    logits = torch.randn(8, T, requires_grad=True)
    out = coherence(logits)
    seen, stack = set(), [out.grad_fn]
    while stack:  # the autograd graph: a few nodes, not a few per level
        fn = stack.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            stack.extend(f for f, _ in fn.next_functions)
    assert len(seen) < 10
    out.sum().backward()
    assert logits.grad.sum() == 8 * T
    assert torch.equal(out[:, 0], logits.detach().amax(dim=1))
