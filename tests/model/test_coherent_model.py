"""Coherent models: a parent's probability is never below a child's; the MC loss."""

from __future__ import annotations

import math

import networkx as nx
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskgraph as tg
from model_test_utils import SMALL, hierarchy_path


def _edges(h):
    return [(p, c) for c in h.task_names for p in h[c].parents]


def _assert_coherent(h, out, atol=0.0):
    for parent, child in _edges(h):
        assert (out[parent] >= out[child] - atol).all(), (parent, child)


def _max_over_descendants(h, raw):
    """Coherent logits by hand: max of the raw logits over a task and its descendants."""
    graph = nx.DiGraph(_edges(h))
    graph.add_nodes_from(h.task_names)
    expected = {}
    for name in h.task_names:
        group = [name, *nx.descendants(graph, name)]
        expected[name] = torch.stack([raw[n] for n in group]).amax(0)
    return expected


def _raw_by_task(model, out):
    group = model.layout.groups[model.layout.binary_group]
    return {name: out.raw_binary[:, j] for j, name in enumerate(group.names)}


@pytest.fixture
def cell(small_model):
    model = small_model("cell_functions")
    assert model.config.coherent
    with torch.no_grad():  # spread the raw scores so that children often beat parents
        for head in model.heads:
            head.bias.normal_(std=2.0)
    return model


def test_coherent_in_eval_and_train_mode(cell):
    torch.manual_seed(0)
    x = torch.randn(32, 5)
    for mode in (True, False):
        cell.train(mode)
        with torch.no_grad():
            out = cell(x)
        _assert_coherent(cell.hierarchy, out)
        # the raw scores do break the order somewhere, so the constraint does work
        raw = _raw_by_task(cell, out)
        assert any((raw[p] < raw[c]).any() for p, c in _edges(cell.hierarchy))
        expected = _max_over_descendants(cell.hierarchy, raw)
        for name in cell.hierarchy.task_names:
            assert torch.equal(out[name], expected[name]), name


def test_raw_binary_only_when_coherent(small_model, cell):
    x = torch.randn(3, 5)
    assert cell(x).raw_binary is not None and cell(x).raw_binary.shape == (3, 7)
    plain = small_model("cell_functions", coherent=False)
    assert plain(x).raw_binary is None
    assert small_model("animals")(x).raw_binary is None


def _mc_loss_by_hand(h, raw, targets):
    """C-HMCNN MC loss per task: a positive node takes the max over itself and its positive
    descendants, other nodes over all descendants; BCE, mean over labelled examples."""
    graph = nx.DiGraph(_edges(h))
    graph.add_nodes_from(h.task_names)
    B = len(next(iter(raw.values())))
    per_task = {}
    for name in h.task_names:
        losses = []
        for b in range(B):
            y = float(targets[name][b])
            if y == -1:
                continue
            group = [name, *nx.descendants(graph, name)]
            if y == 1:
                group = [n for n in group if float(targets[n][b]) == 1]
            logit = max(float(raw[n][b].detach()) for n in group)
            p = 1 / (1 + math.exp(-logit))
            losses.append(-(y * math.log(p) + (1 - y) * math.log(1 - p)))
        per_task[name] = sum(losses) / len(losses) if losses else None
    return per_task


def test_mc_loss_by_hand_and_backward(cell):
    torch.manual_seed(1)
    cell.train()
    x = torch.randn(6, 5)
    out = cell(x)
    names = cell.hierarchy.task_names
    # labels consistent with the hierarchy, some missing
    g = torch.Generator().manual_seed(3)
    leaf_on = torch.rand(6, len(names), generator=g) > 0.6
    targets = {n: torch.zeros(6) for n in names}
    order = list(reversed(cell.hierarchy.topological_order))
    for n in order:
        kids = [c for p, c in _edges(cell.hierarchy) if p == n]
        on = leaf_on[:, names.index(n)]
        for c in kids:
            on = on | (targets[c] == 1)
        targets[n] = on.float()
    targets["glycolysis"][0] = -1.0
    targets["signaling"][2] = -1.0
    res = cell.loss(out, targets, dataset_size=100)
    ref = _mc_loss_by_hand(cell.hierarchy, _raw_by_task(cell, out), targets)
    for t, name in enumerate(res.names):
        assert res.per_task[t].item() == pytest.approx(ref[name], rel=1e-4, abs=1e-6), name
    res.total.backward()
    grads = [p.grad for p in cell.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(gr).all() for gr in grads)
    assert cell.heads[0].weight.grad.abs().sum() > 0


def test_coherent_predictions(cell):
    torch.manual_seed(2)
    pred = cell.predict(torch.randn(8, 5), samples=6)
    probs = {n: pred[n].probs for n in cell.hierarchy.task_names}
    _assert_coherent(cell.hierarchy, probs, atol=1e-6)
    labels = {n: pred[n].label for n in cell.hierarchy.task_names}
    _assert_coherent(cell.hierarchy, labels)


def test_coherent_on_a_mixed_hierarchy(small_model):
    """Only binary tasks are constrained; other task types pass through."""
    h = {"taskgraph": 1, "tasks": {
        "a": {"type": "binary"},
        "b": {"type": "binary", "parents": ["a"]},
        "m": {"type": "multiclass", "classes": 3, "parents": ["a"]},
        "c": {"type": "binary", "parents": ["b"]},
    }}
    model = small_model(h, coherent=True).eval()
    with torch.no_grad():
        model.heads[0].bias.copy_(torch.tensor([[-3.0], [0.0], [3.0]]))  # a < b < c raw
    out = model(torch.randn(5, 5))
    assert torch.equal(out["a"], torch.maximum(out["b"], out["a"]))
    assert (out["a"] >= out["b"]).all() and (out["b"] >= out["c"]).all()
    assert out["m"].shape == (5, 3)


# -- property: random DAGs of binary tasks ------------------------------------------------
@st.composite
def binary_dags(draw):
    n = draw(st.integers(min_value=1, max_value=15))
    tasks = {}
    for i in range(n):
        parents = draw(st.lists(st.integers(0, i - 1), max_size=min(i, 3), unique=True)) \
            if i else []
        body = {"type": "binary"}
        if parents:
            body["parents"] = [f"t{p}" for p in parents]
        tasks[f"t{i}"] = body
    return {"taskgraph": 1, "name": "random", "tasks": tasks}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=binary_dags(), seed=st.integers(0, 2**16), rounds=st.integers(0, 1),
       batch=st.integers(1, 3))
def test_random_dags_are_coherent(data, seed, rounds, batch):
    torch.manual_seed(seed)
    model = tg.compile(data, in_features=3, coherent=True, rounds=rounds, **SMALL)
    h = model.hierarchy
    with torch.no_grad():
        for head in model.heads:
            head.bias.normal_(std=2.0)
    x = torch.randn(batch, 3)
    for mode in (True, False):
        model.train(mode)
        with torch.no_grad():
            out = model(x)
        _assert_coherent(h, out)
        expected = _max_over_descendants(h, _raw_by_task(model, out))
        for name in h.task_names:
            assert torch.equal(out[name], expected[name])
    probs = {n: torch.sigmoid(out[n]) for n in h.task_names}
    _assert_coherent(h, probs)


def test_cell_functions_file_is_coherent_by_default():
    model = tg.compile(hierarchy_path("cell_functions"), in_features=4, **SMALL)
    assert model.coherence is not None
    _assert_coherent(model.hierarchy, model(torch.randn(4, 4)))
