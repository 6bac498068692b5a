"""The fused, chunked message-passing round against the formula written out plainly.

The reference below transforms every task for each direction, gathers the transformed
source of every edge, scales it by the edge's weight and mean (or attention) coefficient
and sums it into the target with ``index_add``: the formula of ``HierarchyConv`` as it
reads, with none of the optimized path's reordering (sum first, transform after),
chunking, sparse products or hand-written backward. Outputs and gradients of every input
and parameter are compared in float64.
"""

import pytest
import torch
import torch.nn.functional as F

import taskgraph.nn.fused_round as fused
from taskgraph.errors import ArgumentError
from taskgraph.nn import EdgePlan
from taskgraph.nn.fused_round import message_round
from taskgraph.nn.gnn import HierarchyGNN
from taskgraph.nn.message import HierarchyConv

# 0 -> 2 <- 1 (two parents), 2 -> 4 <- 3, 1 -> 4 (three parents), 4 -> 5, 2 -> 6 -> 7;
# 8 has no edge at all.
EDGES = torch.tensor([[0, 1, 0, 2, 3, 1, 4, 2, 6], [2, 2, 3, 4, 4, 4, 5, 6, 7]])
NUM_TASKS, C = 9, 5
DIRECTIONS = [("down",), ("up",), ("down", "up"), ("up", "down")]


def random_dag(num_tasks: int, seed: int) -> torch.Tensor:
    """Every task after the first two gets one to three parents among the earlier tasks;
    the last task stays alone."""
    g = torch.Generator().manual_seed(seed)
    edges = []
    for child in range(2, num_tasks - 1):
        k = int(torch.randint(1, 4, (1,), generator=g))
        for parent in torch.randperm(child, generator=g)[:k].tolist():
            edges.append((parent, child))
    return torch.tensor(edges).t()


def group_softmax(score: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Softmax over the edges of each group, per example (a loop over groups)."""
    out = torch.empty_like(score)
    for u in group.unique().tolist():
        idx = (group == u).nonzero().flatten()
        out[:, idx] = torch.softmax(score[:, idx], dim=1)
    return out


def reference_round(conv, x, edge_index, weight, source=None):
    """x + GELU(sum over directions and edges of c * w * (M m_s + b)), plainly."""
    B, T, width = x.shape
    E = edge_index.size(1)
    sent = x if source is None else source
    if conv.norm_at == "source":
        sent = F.layer_norm(sent, (width,), conv.norm.weight, conv.norm.bias, conv.norm.eps)
    msg = torch.zeros_like(x)
    for k, direction in enumerate(conv.directions):
        src, dst = edge_index if direction == "down" else edge_index.flip(0)
        lin = conv.lin[direction]
        h = sent @ lin.weight.T  # (B, T, F)
        if lin.bias is not None:
            h = h + lin.bias
        if conv.message_type == "sum":
            degree = torch.zeros(T, dtype=x.dtype).index_add_(0, dst, torch.ones(E, dtype=x.dtype))
            coef = 1.0 / degree[dst]  # (E,)
        else:
            q = x @ conv.lin_att[direction].weight.T  # (B, T, F)
            e = F.leaky_relu(h[:, src] + q[:, dst], conv.negative_slope)  # (B, E, F)
            coef = group_softmax((e * conv.att[k]).sum(-1), dst)  # (B, E)
        w = weight[:, k * E:(k + 1) * E] * coef  # (B | 1, E)
        msg = msg.index_add(1, dst, h[:, src] * w.unsqueeze(-1))
    out = x + F.gelu(msg)
    if conv.norm_at == "residual":
        out = conv.norm(out)
    return out


def _conv(directions, message, norm, bias=True, seed=0):
    torch.manual_seed(seed)
    conv = HierarchyConv(C, directions=directions, message=message, norm=norm,
                         bias=bias).double()
    if isinstance(conv.norm, torch.nn.LayerNorm):
        with torch.no_grad():  # a non-trivial affine part
            conv.norm.weight.uniform_(0.5, 1.5)
            conv.norm.bias.uniform_(-0.5, 0.5)
    return conv


def _grads(out, inputs, grad):
    return torch.autograd.grad(out, inputs, grad, allow_unused=True)


def _chunks_of(monkeypatch, rows):
    """Make every round work through the batch ``rows`` examples at a time (None: all)."""
    monkeypatch.setattr(fused, "_chunk_rows", lambda x: rows or x.size(0))


@pytest.mark.parametrize("rows", [1, 2, None])
@pytest.mark.parametrize("norm", ["source", "residual", False])
@pytest.mark.parametrize("message", ["sum", "attention"])
@pytest.mark.parametrize("directions", DIRECTIONS)
def test_round_matches_the_plain_formula_with_gradients(monkeypatch, directions, message, norm,
                                                         rows):
    _chunks_of(monkeypatch, rows)
    conv = _conv(directions, message, norm)
    g = torch.Generator().manual_seed(1)
    B, D, E = 5, len(directions), EDGES.size(1)  # B = 5: chunks of 2, 2 and 1
    x = torch.randn(B, NUM_TASKS, C, generator=g, dtype=torch.float64, requires_grad=True)
    source = torch.randn(B, NUM_TASKS, C, generator=g, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(B, NUM_TASKS, C, generator=g, dtype=torch.float64)
    params = list(conv.parameters())
    for rows in (B, 1):  # per-example weights, and one weight vector for the whole batch
        w = torch.randn(rows, D * E, generator=g, dtype=torch.float64, requires_grad=True)
        for src in (None, source):  # tasks send their embedding, or another tensor
            ours = conv(x, EDGES, w, source=src)
            ref = reference_round(conv, x, EDGES, w, source=src)
            torch.testing.assert_close(ours, ref)
            inputs = [x, w] + ([] if src is None else [src]) + params
            for a, b in zip(_grads(ours, inputs, grad), _grads(ref, inputs, grad)):
                if b is None:
                    assert a is None or not a.any()
                else:
                    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_two_rounds_on_random_dags_match_the_formula(monkeypatch, seed):
    _chunks_of(monkeypatch, 3)
    edge_index = random_dag(12, seed)
    torch.manual_seed(seed)
    gnn = HierarchyGNN(C, 2).double()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(7, 12, C, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.rand(7, 2 * edge_index.size(1), generator=g, dtype=torch.float64,
                   requires_grad=True)
    grad = torch.randn(7, 12, C, generator=g, dtype=torch.float64)
    ours = gnn(x, edge_index, w)
    ref = x
    for conv in gnn.convs:
        ref = reference_round(conv, ref, edge_index, w)
    torch.testing.assert_close(ours, ref)
    inputs = [x, w, *gnn.parameters()]
    for a, b in zip(_grads(ours, inputs, grad), _grads(ref, inputs, grad)):
        torch.testing.assert_close(a, b)


def test_a_round_without_bias_matches_the_formula():
    conv = _conv(("down", "up"), "sum", "source", bias=False)
    x = torch.randn(3, NUM_TASKS, C, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2 * EDGES.size(1), dtype=torch.float64, requires_grad=True)
    ours, ref = conv(x, EDGES, w), reference_round(conv, x, EDGES, w)
    torch.testing.assert_close(ours, ref)
    grad = torch.randn_like(x)
    for a, b in zip(_grads(ours, [x, w], grad), _grads(ref, [x, w], grad)):
        torch.testing.assert_close(a, b)


def _plan(edge_index, num_tasks, D):
    return HierarchyConv(C, directions=("down", "up")[:D]).plan(edge_index, num_tasks)


@pytest.mark.parametrize("keep", [True, False])
@pytest.mark.parametrize("rows", [1, 2, None])
@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize("shared", [False, True])
def test_gradcheck(monkeypatch, rows, normalize, shared, keep):
    """keep=False: the transformed sources are recomputed in the backward pass, as for
    batches too large to keep them."""
    _chunks_of(monkeypatch, rows)
    if not keep:
        monkeypatch.setattr(fused, "_KEEP_ELEMENTS", 0)
    T, width, B = 4, 3, 3
    edge_index = torch.tensor([[0, 1, 0, 2], [1, 2, 2, 3]])  # 2 has two parents
    plan = _plan(edge_index, T, 2)
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    x, sent = rand(B, T, width), rand(B, T, width)
    w = rand(1 if shared else B, plan.num_edges)
    lin_w, lin_b = rand(width, 2 * width), rand(2, width)
    norm = (rand(width), rand(width)) if normalize else ()

    def round_of(x, sent, w, lin_w, lin_b, *norm):
        nw, nb = norm if norm else (None, None)
        return message_round(x, sent, w, plan, lin_w, lin_b, norm_weight=nw, norm_bias=nb,
                             normalize=normalize)

    assert torch.autograd.gradcheck(round_of, (x, sent, w, lin_w, lin_b, *norm))
    # a task sending its own embedding: x is both the residual and the source
    assert torch.autograd.gradcheck(lambda x, *rest: round_of(x, x, *rest),
                                    (x, w, lin_w, lin_b, *norm))


def test_zero_weights_are_exactly_the_identity():
    """Messages zeroed (every w = 0): the output is the input, bit for bit, and the
    gradient of the input is the upstream gradient."""
    conv = _conv(("down", "up"), "sum", "source")
    x = torch.randn(4, NUM_TASKS, C, dtype=torch.float64, requires_grad=True)
    w = torch.zeros(4, 2 * EDGES.size(1), dtype=torch.float64, requires_grad=True)
    out = conv(x, EDGES, w)
    assert torch.equal(out, x)
    grad = torch.randn_like(x)
    gx, gw = torch.autograd.grad(out, (x, w), grad)
    assert torch.equal(gx, grad)
    assert gw.abs().sum() > 0  # the weights still learn: dL/dw is not zero at w = 0


def test_message_round_rejects_mismatched_shapes():
    plan = _plan(EDGES, NUM_TASKS, 2)
    x = torch.randn(2, NUM_TASKS, C)
    w = torch.ones(2, plan.num_edges)
    lin = torch.randn(C, 2 * C)
    with pytest.raises(ArgumentError, match="'x' and 'sent'"):
        message_round(x, x[:, :3], w, plan, lin)
    with pytest.raises(ArgumentError, match="'lin_weight'"):
        message_round(x, x, w, plan, lin[:, :C])
    with pytest.raises(ArgumentError, match="'lin_bias'"):
        message_round(x, x, w, plan, lin, torch.zeros(3, C))
    with pytest.raises(ArgumentError, match="'weight'"):
        message_round(x, x, w[:, 1:], plan, lin)
    with pytest.raises(ArgumentError, match="plan"):
        message_round(x[:, :4], x[:, :4], w, plan, lin)


def test_plans_and_sparse_indices_are_built_once():
    gnn = HierarchyGNN(C, 2)
    edge_index = EDGES.clone()
    x = torch.randn(3, NUM_TASKS, C)
    gnn(x, edge_index)
    plan = gnn.plan(edge_index, NUM_TASKS)
    assert gnn.plan(edge_index, NUM_TASKS) is plan  # the same edges: the cached plan
    crow = plan._index(3, False)[0]
    gnn(x, edge_index)
    assert plan._index(3, False)[0] is crow  # the batch size's indices are reused
    assert gnn.plan(edge_index.clone(), NUM_TASKS) is not plan  # another tensor
    edge_index[1, 0] = 3  # changed in place: its version moved on
    assert gnn.plan(edge_index, NUM_TASKS) is not plan
    for batch in range(1, 10):  # the index cache stays bounded
        plan.matrix(torch.ones(batch, plan.num_edges))
    assert len(plan._index_cache) <= 4


def test_a_plan_block_matrix_is_the_per_example_adjacency():
    plan = EdgePlan(torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), 2, 3)
    w = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    dense = plan.matrix(w).to_dense()  # (B R, B S) = (6, 4)
    expected = torch.zeros(6, 4)
    for b in range(2):
        expected[3 * b + 1, 2 * b + 0] = w[b, 0]  # edge 0: 0 -> 1
        expected[3 * b + 2, 2 * b + 0] = w[b, 1]  # edge 1: 0 -> 2
        expected[3 * b + 2, 2 * b + 1] = w[b, 2]  # edge 2: 1 -> 2
    assert torch.equal(dense, expected)
    assert torch.equal(plan.matrix(w, transpose=True).to_dense(), expected.t())


# -- the compiled model: mixed synapse kinds, zeroed messages, both norm positions ---------
def _hierarchy(edge_index: torch.Tensor) -> dict:
    parents: dict[int, list[str]] = {}
    for p, c in edge_index.t().tolist():
        parents.setdefault(c, []).append(f"t{p}")
    tasks = {f"t{i}": {"type": "binary", **({"parents": parents[i]} if i in parents else {})}
             for i in range(NUM_TASKS)}
    edges = [{"from": "t0", "to": "t2", "synapse": {"kind": "bernoulli", "p": 0.7}},
             {"from": "t1", "to": "t4", "synapse": {"kind": "bernoulli", "p": 0.4, "mean": 1.5}},
             {"from": "t2", "to": "t4", "synapse": {"kind": "fixed", "mean": 0.5}},
             {"from": "t4", "to": "t5", "direction": "up", "synapse": {"kind": "fixed"}}]
    return {"taskgraph": 1, "name": "mixed", "tasks": tasks, "edges": edges,
            "model": {"synapse": {"kind": "gaussian", "mean": 1.0, "std": 0.3}}}


def _model(norm: str = "source"):
    import taskgraph as tg

    torch.manual_seed(0)
    model = tg.compile(_hierarchy(EDGES), in_features=3, task_dim=C, rounds=2).double()
    for conv in model.gnn.convs:  # the position of the norm of models saved before 0.2
        conv.norm_at = norm
    return model


@pytest.mark.parametrize("norm", ["source", "residual"])
def test_model_rounds_with_gaussian_bernoulli_and_fixed_synapses(norm):
    model = _model(norm).train()
    assert set(model.edge_synapses.kinds) == {"gaussian", "bernoulli", "fixed"}
    g = torch.Generator().manual_seed(3)
    h = torch.randn(6, NUM_TASKS, C, generator=g, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(6, NUM_TASKS, C, generator=g, dtype=torch.float64)
    torch.manual_seed(4)  # the same synapse draws for both
    ours = model.propagate(h)
    torch.manual_seed(4)
    w = model.edge_synapses(6)  # (B, D * E): per-example samples
    ref = h
    for conv in model.gnn.convs:
        ref = reference_round(conv, ref, model.edge_index, w)
    torch.testing.assert_close(ours, ref)
    inputs = [h, *model.edge_synapses.parameters(), *model.gnn.parameters()]
    for a, b in zip(_grads(ours, inputs, grad), _grads(ref, inputs, grad)):
        torch.testing.assert_close(a, b)
    model.eval()  # E[w], one weight vector for the batch
    with torch.no_grad():
        ref = h
        for conv in model.gnn.convs:
            ref = reference_round(conv, ref, model.edge_index,
                                  model.edge_synapses.mean_weight().unsqueeze(0))
        torch.testing.assert_close(model.propagate(h), ref)


def test_zeroed_messages_leave_the_embeddings_unchanged():
    """``zero_messages``: every synapse weight times 0, everything else kept; with the
    norm on what is sent, the rounds are exactly the identity and pass gradients through."""
    model = _model().train()
    model.zero_messages = True
    h = torch.randn(4, NUM_TASKS, C, dtype=torch.float64, requires_grad=True)
    out = model.propagate(h)
    assert torch.equal(out, h)
    grad = torch.randn_like(h)
    out.backward(grad)
    assert torch.equal(h.grad, grad)
    syn = model.edge_synapses
    assert not syn.mu.grad.any() and not syn.rho.grad.any()  # w * 0: no gradient to w
    residual = _model("residual")
    residual.zero_messages = True
    with torch.no_grad():  # the old round normalizes its output: LayerNorm(h + 0)
        expected = h
        for conv in residual.gnn.convs:
            expected = conv.norm(expected)
        torch.testing.assert_close(residual.propagate(h), expected)


def test_chunks_grow_with_threads_and_cover_the_batch_off_the_cpu(monkeypatch):
    x = torch.zeros(64, 100, 16)  # 1,600 elements per example
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert fused._chunk_rows(x) == 64  # 2^18 / 1,600 = 163 examples: the whole batch
    assert fused._chunk_rows(torch.zeros(64, 10_000, 16)) == 1
    assert fused._chunk_rows(torch.zeros(64, 1000, 32)) == 8
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert fused._chunk_rows(torch.zeros(64, 1000, 32)) == 32
    assert fused._chunk_rows(torch.zeros(64, 10_000, 16, device="meta")) == 64
