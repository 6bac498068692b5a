"""The forward pass: output shapes, the computation done by hand, batching, directions,
stochastic synapses, the synapse table, torch.compile and repr."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import pytest
import torch

from model_test_utils import MIXED


# -- shapes -------------------------------------------------------------------------------
def test_animals_output_shapes_and_mapping(small_model):
    model = small_model("animals")
    out = model(torch.randn(6, 5))
    assert isinstance(out, Mapping)
    assert sorted(out) == sorted(["mammal", "diet", "species", "weight_kg"])
    assert len(out) == 4
    assert out["mammal"].shape == (6,)  # binary
    assert out["diet"].shape == (6, 3)  # multiclass
    assert out["species"].shape == (6, 4)
    assert out["weight_kg"].shape == (6,)  # regression
    with pytest.raises(KeyError):
        out["mamal"]


def test_multilabel_and_multi_output_regression_shapes(small_model):
    model = small_model(copy.deepcopy(MIXED), in_features=3)
    out = model(torch.randn(4, 3))
    shapes = {name: tuple(out[name].shape) for name in out}
    assert shapes == {"a": (4,), "b": (4,), "c": (4, 3), "d": (4, 3), "e": (4, 4),
                      "f": (4, 2), "g": (4,)}
    three = small_model({"taskgraph": 1, "tasks": {
        "size": {"type": "regression", "outputs": 3},
        "heavy": {"type": "binary", "parents": ["size"]}}})
    o3 = three(torch.randn(4, 5))
    assert o3["size"].shape == (4, 3) and o3["heavy"].shape == (4,)
    senti = small_model("sentiment")
    o = senti(torch.randn(4, 5))
    assert o["aspects"].shape == (4, 5) and o["emotion"].shape == (4, 6)


def test_multi_parent_dag_shapes(small_model):
    model = small_model("cell_functions")
    out = model(torch.randn(5, 5))
    assert len(out) == 7
    assert all(out[name].shape == (5,) for name in model.hierarchy.task_names)
    # lipid_signaling has two parents: two incoming edges per direction
    assert model.layout.num_edges == 6


def test_single_task_without_edges(small_model):
    model = small_model({"taskgraph": 1, "tasks": {"only": {"type": "multiclass",
                                                             "classes": 4}}})
    assert model.gnn is None and model.edge_synapses is None
    out = model(torch.randn(3, 5))
    assert list(out) == ["only"] and out["only"].shape == (3, 4)
    res = model.loss(out, torch.tensor([0, 3, -1]))  # a 1-D target matrix for one task
    assert torch.isfinite(res.total)


# -- the computation by hand ----------------------------------------------------------------
def _hand_logits(model, x):
    """rounds=0: z = relu(x W1^T + b1); H_t = z P_t + p_t + e_t; y_t = H_t V_t + v_t."""
    lin = model.encoder.layers[0]
    z = torch.relu(x @ lin.weight.T + lin.bias)  # (B, D)
    out = {}
    for t, name in enumerate(model.hierarchy.task_names):
        h = z @ model.projections.task_weight()[t] + model.projections.bias[t] \
            + model.task_embedding[t]  # (B, F)
        for g, group in enumerate(model.layout.groups):
            if name in group.names:
                j = group.names.index(name)
                y = h @ model.heads[g].weight[j] + model.heads[g].bias[j]  # (B, W)
        spec = model.hierarchy[name]
        if spec.type == "binary" or (spec.type == "regression" and spec.outputs == 1):
            y = y[:, 0]
        out[name] = y
    return out


@pytest.mark.parametrize("source", ["animals", "mixed"])
def test_logits_equal_the_computation_by_hand(small_model, source):
    src = copy.deepcopy(MIXED) if source == "mixed" else source
    model = small_model(src, rounds=0).eval()
    with torch.no_grad():  # make the biases and embeddings matter
        model.task_embedding.normal_()
        model.projections.bias.normal_()
    x = torch.randn(7, 5)
    out = model(x)
    expected = _hand_logits(model, x)
    assert set(out) == set(expected)
    for name in expected:
        torch.testing.assert_close(out[name], expected[name], rtol=1e-5, atol=1e-5)


def _outputs(model, x):
    with torch.no_grad():
        return {k: v.clone() for k, v in model(x).items()}


def test_each_task_depends_only_on_its_own_head(small_model):
    model = small_model(copy.deepcopy(MIXED), rounds=0).eval()
    x = torch.randn(5, 5)
    base = _outputs(model, x)
    for g, group in enumerate(model.layout.groups):
        for j, name in enumerate(group.names):
            with torch.no_grad():
                model.heads[g].weight[j] += 1.0
            changed = _outputs(model, x)
            with torch.no_grad():
                model.heads[g].weight[j] -= 1.0
            for other in base:
                same = torch.allclose(changed[other], base[other], atol=1e-6)
                assert same == (other != name), (name, other)


def test_each_task_depends_only_on_its_own_projection(small_model):
    model = small_model(copy.deepcopy(MIXED), rounds=0).eval()
    x = torch.randn(5, 5)
    base = _outputs(model, x)
    for t, name in enumerate(model.hierarchy.task_names):
        with torch.no_grad():
            model.projections.task_weight()[t] += 0.5
            model.task_embedding[t] += 0.5
        changed = _outputs(model, x)
        with torch.no_grad():
            model.projections.task_weight()[t] -= 0.5
            model.task_embedding[t] -= 0.5
        for other in base:
            same = torch.allclose(changed[other], base[other], atol=1e-6)
            assert same == (other != name), (name, other)


CHAIN = {"taskgraph": 1, "tasks": {"a": {"type": "binary"},
                                   "b": {"type": "binary", "parents": ["a"]},
                                   "c": {"type": "binary", "parents": ["b"]},
                                   "d": {"type": "binary"}}}


@pytest.mark.parametrize("directions, reach", [
    (["down"], {"a": {"a", "b", "c"}, "b": {"b", "c"}, "c": {"c"}, "d": {"d"}}),
    (["up"], {"a": {"a"}, "b": {"a", "b"}, "c": {"a", "b", "c"}, "d": {"d"}}),
    (["down", "up"], {"a": {"a", "b", "c"}, "b": {"a", "b", "c"}, "c": {"a", "b", "c"},
                      "d": {"d"}}),
])
def test_messages_follow_the_enabled_directions(small_model, directions, reach):
    """Perturbing one task's embedding reaches exactly the tasks downstream of it."""
    model = small_model(copy.deepcopy(CHAIN), rounds=2, directions=directions).eval()
    x = torch.randn(4, 5)
    base = _outputs(model, x)
    # a random direction: LayerNorm would hide a constant shift of all features
    delta = torch.randn(model.config.task_dim)
    for t, name in enumerate(model.hierarchy.task_names):
        with torch.no_grad():
            model.task_embedding[t] += delta
        changed = _outputs(model, x)
        with torch.no_grad():
            model.task_embedding[t] -= delta
        moved = {o for o in base if not torch.allclose(changed[o], base[o], atol=1e-6)}
        assert moved == reach[name], (name, moved)


def test_examples_are_independent_in_eval_mode(small_model):
    model = small_model("cell_functions", coherent=False).eval()
    x = torch.randn(6, 5)
    full = _outputs(model, x)
    for b in range(6):
        alone = _outputs(model, x[b:b + 1])
        for name in full:
            torch.testing.assert_close(alone[name][0], full[name][b], rtol=1e-5, atol=1e-6)


# -- stochastic synapses -------------------------------------------------------------------
def test_train_mode_samples_and_eval_mode_is_deterministic(small_model):
    model = small_model("animals")  # dropout 0: only the synapses are random
    x = torch.randn(8, 5)
    torch.manual_seed(1)
    a, b = _outputs(model, x), _outputs(model, x)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    model.eval()
    c, d = _outputs(model, x), _outputs(model, x)
    assert all(torch.equal(c[k], d[k]) for k in c)
    # sampling on request in eval mode, and the mean on request in train mode
    e = _outputs(model, x)
    with torch.no_grad():
        sampled = model(x, sample=True)
    assert any(not torch.equal(sampled[k], e[k]) for k in e)
    model.train()
    with torch.no_grad():
        mean = model(x, sample=False)
    for k in e:
        torch.testing.assert_close(mean[k], e[k])


def test_eval_uses_the_expected_synapse_weights(small_model):
    """In eval mode the model equals one whose synapses are fixed at E[w]."""
    model = small_model("animals").eval()
    x = torch.randn(4, 5)
    expected_w = []
    with torch.no_grad():
        for k, kind in enumerate(model.edge_synapses.kinds):
            mu = model.edge_synapses.mu[k]
            p = torch.sigmoid(model.edge_synapses.p_logit[k]) if kind == "bernoulli" else 1.0
            expected_w.append(float(mu * p))
        h = model.embed(model.encode(x))
        h = model.gnn(h, model.edge_index, torch.tensor(expected_w))
        manual = model.readout(h)
        out = model(x)
    for name in out:
        torch.testing.assert_close(out[name], manual[name])


def test_gradients_reach_synapse_parameters(small_model):
    model = small_model("animals")
    syn = model.edge_synapses
    names = dict(syn.named_parameters())
    assert {"mu", "rho", "p_logit"} <= set(names)
    kinds = list(syn.kinds)
    assert "bernoulli" in kinds and "gaussian" in kinds
    torch.manual_seed(2)
    x = torch.randn(16, 5)
    targets = {"mammal": torch.randint(0, 2, (16,)).float(),
               "diet": torch.randint(0, 3, (16,)),
               "species": torch.randint(0, 4, (16,)),
               "weight_kg": torch.randn(16)}
    result = model.loss(model(x), targets)  # no dataset_size: the data term alone
    result.total.backward()
    gauss = torch.tensor([k == "gaussian" for k in kinds])
    bern = ~gauss
    assert syn.mu.grad is not None and syn.mu.grad.abs().sum() > 0
    assert syn.rho.grad is not None and (syn.rho.grad[gauss] != 0).all()
    assert syn.p_logit.grad is not None and (syn.p_logit.grad[bern] != 0).all()
    assert torch.isfinite(syn.mu.grad).all() and torch.isfinite(syn.rho.grad).all()


def test_no_noise_gradient_in_eval_mode(small_model):
    model = small_model("animals").eval()
    out = model(torch.randn(8, 5))
    model.loss(out, {"weight_kg": torch.randn(8)}).total.backward()
    syn = model.edge_synapses
    assert syn.rho.grad is None or torch.count_nonzero(syn.rho.grad) == 0
    assert syn.mu.grad is not None and syn.mu.grad.abs().sum() > 0


# -- the synapse table ----------------------------------------------------------------------
def test_synapse_table_for_animals(small_model):
    model = small_model("animals")
    rows = model.synapses()
    edges = [("mammal", "diet"), ("diet", "species"), ("species", "weight_kg")]
    assert len(rows) == 2 * len(edges)
    assert {(r["parent"], r["child"], r["direction"]) for r in rows} == \
        {(p, c, d) for p, c in edges for d in ("down", "up")}
    for r in rows:
        assert set(r) >= {"parent", "child", "direction", "kind", "mean", "std", "p"}
        if (r["parent"], r["child"]) == ("mammal", "diet"):
            assert r["kind"] == "bernoulli"
            assert r["p"] == pytest.approx(0.9, abs=1e-6)
            assert r["mean"] == pytest.approx(1.0 * 0.9, abs=1e-6)  # amplitude * p
            assert r["std"] == pytest.approx((0.9 * 0.1) ** 0.5, abs=1e-5)
        else:
            assert r["kind"] == "gaussian"
            assert r["mean"] == pytest.approx(1.0, abs=1e-6)
            assert r["std"] == pytest.approx(0.1, abs=1e-5)
            assert r["p"] == 1.0


def test_direction_specific_edge_override(small_model):
    model = small_model("cell_functions")
    rows = model.synapses()
    assert len(rows) == 2 * 6
    for r in rows:
        if (r["parent"], r["child"], r["direction"]) == ("signaling", "lipid_signaling", "up"):
            assert r["kind"] == "gaussian"
            assert r["mean"] == pytest.approx(0.5, abs=1e-6)
            assert r["std"] == pytest.approx(0.2, abs=1e-5)
        else:
            assert r["kind"] == "bernoulli", r
            assert r["p"] == pytest.approx(0.9, abs=1e-6)
    down_only = small_model("cell_functions", directions=["down"]).synapses()
    assert len(down_only) == 6 and all(r["kind"] == "bernoulli" for r in down_only)
    assert all(r["direction"] == "down" for r in down_only)
    up_only = small_model("cell_functions", directions=["up"]).synapses()
    kinds = {(r["parent"], r["child"]): r["kind"] for r in up_only}
    assert kinds.pop(("signaling", "lipid_signaling")) == "gaussian"
    assert set(kinds.values()) == {"bernoulli"}


def test_file_edge_override_applies_over_a_compile_synapse(small_model):
    model = small_model("cell_functions", synapse={"kind": "fixed", "mean": 0.3})
    for r in model.synapses():
        if (r["parent"], r["child"], r["direction"]) == ("signaling", "lipid_signaling", "up"):
            assert r["kind"] == "gaussian" and r["mean"] == pytest.approx(0.5, abs=1e-6)
        else:
            assert r["kind"] == "fixed"
            assert r["mean"] == pytest.approx(0.3, abs=1e-6)
            assert r["std"] == 0.0 and r["p"] == 1.0


# -- repr and torch.compile -----------------------------------------------------------------
def test_repr_names_hierarchy_and_counts(small_model):
    text = repr(small_model("animals"))
    assert "TaskGraphModel(" in text
    assert "'animals'" in text and "tasks=4" in text and "edges=3" in text
    text = repr(small_model("cell_functions"))
    assert "'cell_functions'" in text and "tasks=7" in text and "edges=6" in text
    assert "coherent=True" in text


def test_torch_compile_matches_eager(small_model):
    model = small_model("animals", rounds=1).eval()  # one round keeps compiling short
    x = torch.randn(4, 5)
    eager = _outputs(model, x)
    compiled = torch.compile(model)
    with torch.no_grad():
        out = compiled(x)
    for name in eager:
        torch.testing.assert_close(out[name], eager[name], rtol=1e-4, atol=1e-5)
