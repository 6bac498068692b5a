"""`Ensemble`: the mixture of its members, checked against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import taskgraph as tg
from taskgraph.errors import ArgumentError, CheckpointError
from taskgraph.model.batches import predict_loader
from taskgraph.model.ensemble import Ensemble

ANIMALS = "hierarchies/animals.yaml"


def _member(seed: int = 0, **kw):
    torch.manual_seed(seed)
    return tg.compile(ANIMALS, in_features=3, task_dim=4, encoder_spec={"hidden": [8]},
                      **kw).eval()


def _constant(model, biases: dict[str, list[float]]):
    """Zero the head weights and set the named tasks' biases: constant logits."""
    with torch.no_grad():
        for head in model.heads:
            head.weight.zero_()
        for name, bias in biases.items():
            g, j = model.layout.where[name]
            model.heads[g].bias[j] = torch.tensor(bias)
    return model


def _h(p: list[float]) -> float:
    return -sum(q * math.log(q) for q in p)


def test_two_members_mix_as_worked_out_by_hand():
    # mammal: p = 1/2 and 3/4; diet: (1/3, 1/3, 1/3) and (2/3, 1/6, 1/6);
    # weight_kg: 1 and 3 (standardized 0 scaled by loc)
    one = _constant(_member(0), {"mammal": [0.0], "diet": [0.0, 0.0, 0.0],
                                 "weight_kg": [0.0]}).set_target_scaling([1.0], [1.0])
    two = _constant(_member(1), {"mammal": [math.log(3)], "diet": [math.log(4), 0.0, 0.0],
                                 "weight_kg": [0.0]}).set_target_scaling([3.0], [1.0])
    pred = Ensemble([one, two]).predict(torch.randn(2, 3))
    m = pred["mammal"]
    torch.testing.assert_close(m.probs, torch.full((2,), 0.625))
    torch.testing.assert_close(m.std, torch.full((2,), 0.125))  # |1/2 - 5/8|
    h_mix, h_mean = _h([0.625, 0.375]), (_h([0.5, 0.5]) + _h([0.75, 0.25])) / 2
    torch.testing.assert_close(m.entropy, torch.full((2,), h_mix))
    torch.testing.assert_close(m.mutual_info, torch.full((2,), h_mix - h_mean))
    d = pred["diet"]
    torch.testing.assert_close(d.probs, torch.tensor([[0.5, 0.25, 0.25]] * 2))
    h_mix = 1.5 * math.log(2)  # H(1/2, 1/4, 1/4)
    h_mean = (math.log(3) + _h([2 / 3, 1 / 6, 1 / 6])) / 2
    torch.testing.assert_close(d.entropy, torch.full((2,), h_mix))
    torch.testing.assert_close(d.mutual_info, torch.full((2,), h_mix - h_mean))
    torch.testing.assert_close(d.std, torch.tensor([[1 / 6, 1 / 12, 1 / 12]] * 2))
    assert d.label.tolist() == [0, 0]
    w = pred["weight_kg"]
    torch.testing.assert_close(w.value, torch.full((2,), 2.0))
    torch.testing.assert_close(w.variance, torch.full((2,), 1.0))  # values 1 and 3


def test_identical_members_predict_as_the_member():
    model = _member()
    x = torch.randn(4, 3)
    pred, alone = Ensemble([model, model, model]).predict(x), model.predict(x)
    for name in ("mammal", "diet", "species"):
        torch.testing.assert_close(pred[name].probs, alone[name].probs)
        torch.testing.assert_close(pred[name].entropy, alone[name].entropy)
        assert pred[name].label.tolist() == alone[name].label.tolist()
        assert float(pred[name].mutual_info.abs().max()) < 1e-6
        assert float(pred[name].std.max()) < 1e-3  # float32 rounding only
    torch.testing.assert_close(pred["weight_kg"].value, alone["weight_kg"].value)


def test_sampled_members_mix_all_their_draws():
    """samples=K: the mean of the M*K draws, their std by the law of total variance, and
    MI = H[mean] - mean over members of their mean draw entropy (H_m - MI_m)."""
    a, b = _member(0), _member(1)
    x = torch.randn(5, 3)
    torch.manual_seed(7)
    pred = Ensemble([a, b]).predict(x, samples=6)
    torch.manual_seed(7)  # the members draw in order, from the same stream
    pa, pb = a.predict(x, samples=6), b.predict(x, samples=6)
    for name in ("diet", "species"):
        ma, mb = pa[name].probs.double().numpy(), pb[name].probs.double().numpy()
        sa, sb = pa[name].std.double().numpy(), pb[name].std.double().numpy()
        mean = (ma + mb) / 2
        np.testing.assert_allclose(pred[name].probs.numpy(), mean, rtol=1e-5, atol=1e-7)
        var = (sa ** 2 + ma ** 2 + sb ** 2 + mb ** 2) / 2 - mean ** 2
        np.testing.assert_allclose(pred[name].std.numpy(), np.sqrt(var), rtol=1e-3, atol=2e-4)
        h = -(mean * np.log(mean)).sum(-1)
        inner = [(p.entropy - p.mutual_info).double().numpy() for p in (pa[name], pb[name])]
        np.testing.assert_allclose(pred[name].mutual_info.numpy(), h - (inner[0] + inner[1]) / 2,
                                   rtol=1e-4, atol=1e-6)
    assert pred.samples == 6


def test_evaluate_and_predict_loader_take_an_ensemble():
    model = _member()
    Y = torch.tensor([[1.0, 0.0, 2.0, 5.0], [0.0, 1.0, 1.0, 3.0], [1.0, 2.0, 0.0, 4.0]])
    loader = [(torch.randn(3, 3), Y)]
    ensemble = Ensemble([model, model])
    ours, alone = tg.evaluate(ensemble, loader), tg.evaluate(model, loader)
    for name in model.layout.names:
        assert ours.tasks[name]["score"] == pytest.approx(alone.tasks[name]["score"], abs=1e-6)
    groups = predict_loader(ensemble, loader, samples=2, dropout=True)
    assert [g.mean.shape[0] for g in groups] == [3, 3, 3, 3]


def test_dropout_passes_to_the_members():
    members = [_member(s) for s in (0, 1)]
    pred = Ensemble(members).predict(torch.randn(3, 3), samples=8, dropout=True)
    assert float(pred["diet"].std.max()) > 1e-3
    with pytest.raises(ArgumentError, match="has no dropout"):
        plain = tg.compile(ANIMALS, in_features=3, task_dim=4,
                           encoder_spec={"hidden": [8], "dropout": 0.0})
        Ensemble([plain]).predict(torch.randn(3, 3), samples=8, dropout=True)


def test_save_and_load_round_trip(tmp_path):
    ensemble = Ensemble([_member(0), _member(1)])
    paths = ensemble.save(tmp_path / "ens")
    x = torch.randn(4, 3)
    expected = ensemble.predict(x)["species"].probs
    for again in (Ensemble.load(tmp_path / "ens"), Ensemble.load(paths)):
        assert len(again) == 2 and not again.training
        torch.testing.assert_close(again.predict(x)["species"].probs, expected)
    with pytest.raises(CheckpointError, match="not a taskgraph ensemble folder"):
        Ensemble.load(tmp_path)


def test_members_must_share_the_hierarchy():
    other = tg.compile("hierarchies/cell_functions.yaml", in_features=3, task_dim=4)
    with pytest.raises(ArgumentError, match=r"models\[1\].*share one hierarchy"):
        Ensemble([_member(), other])
    with pytest.raises(ArgumentError, match="at least one"):
        Ensemble([])
    with pytest.raises(ArgumentError, match=r"models\[0\]: expected a TaskGraphModel"):
        Ensemble([torch.nn.Linear(2, 2)])
    # a different architecture on the same hierarchy is fine
    wide = tg.compile(ANIMALS, in_features=3, task_dim=8, rounds=1)
    assert len(Ensemble([_member(), wide])) == 2


def test_what_it_exposes():
    a, b = _member(0), _member(1)
    ensemble = Ensemble([a, b])
    assert ensemble.layout is a.layout and ensemble.hierarchy is a.hierarchy
    assert ensemble.config is a.config and ensemble.stochastic
    assert len(list(ensemble.parameters())) == 2 * len(list(a.parameters()))
    assert repr(ensemble) == "Ensemble(members=2, hierarchy='animals', tasks=4)"
    with pytest.raises(TypeError, match="call .predict"):
        ensemble(torch.randn(2, 3))
