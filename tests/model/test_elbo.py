"""The objective is the per-example negative ELBO divided by N·W, checked against a
value computed by hand (math, not the code's own records), and the "messages zeroed"
control is exactly the model without message passing."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

import taskgraph as tg

DOC = {"taskgraph": 1, "name": "tiny", "model": {
    "synapse": {"kind": "gaussian", "mean": 1.0, "std": 0.3, "prior_std": 2.0}},
    "tasks": {
        "a": {"type": "binary", "weight": 2.0},
        "c": {"type": "multiclass", "classes": 3, "parents": ["a"]},
        "m": {"type": "multilabel", "classes": 2, "parents": ["a"]},
        "r": {"type": "regression", "parents": ["c"], "weight": 0.5}}}


def _bce(logit: float, y: float) -> float:
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _ce(logits: list[float], y: int) -> float:
    top = max(logits)
    return -(logits[y] - top - math.log(sum(math.exp(v - top) for v in logits)))


def test_loss_is_the_negative_elbo_over_n_w_by_hand():
    torch.manual_seed(0)
    model = tg.compile(DOC, in_features=3, task_dim=4, rounds=1)
    x = torch.randn(3, 3)
    nan = float("nan")
    targets = {"a": torch.tensor([1.0, 0.0, -1.0]),          # example 2: no label
               "c": torch.tensor([2.0, -1.0, 0.0]),
               "m": torch.tensor([[1.0, 0.0], [nan, 1.0], [nan, nan]]),
               "r": torch.tensor([0.5, nan, -1.0])}
    out = model(x, sample=False)
    N, beta = 50, 0.7
    res = model.loss(out, targets, dataset_size=N, kl_weight=beta)

    a, c, m, r = (out["a"].tolist(), out["c"].tolist(), out["m"].tolist(), out["r"].tolist())
    w = {"a": 2.0, "c": 1.0, "m": 1.0, "r": 0.5}
    per_example = [  # Σ_t w_t ℓ_bt over each example's labelled tasks
        w["a"] * _bce(a[0], 1) + w["c"] * _ce(c[0], 2)
        + w["m"] * (_bce(m[0][0], 1) + _bce(m[0][1], 0)) + w["r"] * 0.5 * (0.5 - r[0]) ** 2,
        w["a"] * _bce(a[1], 0) + w["m"] * _bce(m[1][1], 1),
        w["c"] * _ce(c[2], 0) + w["r"] * 0.5 * (-1.0 - r[2]) ** 2,
    ]
    W = sum(w.values())
    data = sum(per_example) / 3 / W
    syn = model.edge_synapses  # KL by torch.distributions, not by the model
    q = Normal(syn.mu.detach(), F.softplus(syn.rho.detach()))
    kl = kl_divergence(q, Normal(torch.ones_like(syn.mu), 2.0 * torch.ones_like(syn.mu)))
    expected = data + beta * float(kl.sum()) / (N * W)
    assert math.isclose(float(res.data.detach()), data, rel_tol=1e-5)
    assert math.isclose(float(res.total.detach()), expected, rel_tol=1e-5)
    assert math.isclose(float(res.kl_term.detach()), beta * float(kl.sum()) / (N * W), rel_tol=1e-5)
    # per task: the mean loss over its labelled examples
    assert math.isclose(float(res.per_task[0].detach()), (_bce(a[0], 1) + _bce(a[1], 0)) / 2,
                        rel_tol=1e-5)


def test_doubling_the_data_set_halves_the_kl_term_only():
    model = tg.compile(DOC, in_features=3, task_dim=4, rounds=1)
    out = model(torch.randn(4, 3), sample=False)
    y = {"a": torch.tensor([1.0, 0.0, 1.0, 0.0])}
    small, large = (model.loss(out, y, dataset_size=n) for n in (100, 200))
    assert torch.equal(small.data, large.data)
    assert math.isclose(float(small.kl_term.detach()), 2 * float(large.kl_term.detach()), rel_tol=1e-6)


def test_zeroed_messages_are_the_model_without_message_passing():
    torch.manual_seed(1)
    for send in ("embedding", "prediction"):
        full = tg.compile(DOC, in_features=3, task_dim=4, rounds=2, send=send)
        plain = tg.compile(DOC, in_features=3, task_dim=4, rounds=0)
        plain.load_state_dict({k: v for k, v in full.state_dict().items()
                               if k in plain.state_dict()})
        x = torch.randn(5, 3)
        full.zero_messages = True
        for name, logits in plain(x, sample=False).items():
            torch.testing.assert_close(full(x, sample=False)[name], logits, rtol=0, atol=0)
        full.zero_messages = False
        assert not torch.allclose(full(x, sample=False)["r"], plain(x, sample=False)["r"])


def test_prediction_messages_carry_the_parents_head_output():
    """With send: prediction, changing a parent's head changes what its children get."""
    torch.manual_seed(2)
    model = tg.compile(DOC, in_features=3, task_dim=4, rounds=1, directions=["down"],
                       send="prediction")
    x = torch.randn(2, 3)
    before = model(x, sample=False)
    with torch.no_grad():  # the head of 'a' (the binary group) only
        model.heads[model.layout.where["a"][0]].reset_parameters()
    after = model(x, sample=False)
    assert not torch.allclose(before["c"], after["c"])   # a child of 'a'
    torch.testing.assert_close(before["r"], after["r"])  # 'r' hears only from 'c'


def test_the_stochastic_layers_initial_std_is_a_yaml_key():
    doc = {**DOC, "model": {"stochastic": {"encoder": True, "projections": True,
                                           "heads": True, "init_std": 0.05}}}
    model = tg.compile(doc, in_features=3, task_dim=4, encoder_spec={"hidden": [6]})
    layer = model.encoder.layers[0]
    stds = [F.softplus(layer.weight_rho), F.softplus(model.projections.weight_rho),
            F.softplus(model.heads[0].weight_rho)]
    for std in stds:
        torch.testing.assert_close(std, torch.full_like(std, 0.05))
    bad = {**DOC, "model": {"stochastic": {"init_std": -1}}}
    try:
        tg.load_hierarchy(bad)
    except tg.SchemaError as err:
        assert "model.stochastic.init_std" in str(err)
    else:
        raise AssertionError("a negative init_std was accepted")
