"""MC dropout: ``predict(..., samples=K, dropout=True)`` keeps only the dropout modules in
train mode, with the synapses at their expected weights, and folds the K passes into the
batch."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import taskgraph as tg
from taskgraph.errors import ArgumentError
from taskgraph.model.batches import predict_loader

ANIMALS = "hierarchies/animals.yaml"
ONE_VALUE = {"taskgraph": 1, "name": "v", "tasks": {"v": {"type": "regression"}}}


def _mlp(dropout: float = 0.5, **kw):
    torch.manual_seed(0)
    return tg.compile(ANIMALS, in_features=4, task_dim=4,
                      encoder_spec={"hidden": [16], "dropout": dropout}, **kw)


def test_draws_differ_and_give_uncertainty():
    model = _mlp().eval()
    pred = model.predict(torch.randn(6, 4), samples=16, dropout=True)
    for name in ("mammal", "diet", "species"):
        assert float(pred[name].std.max()) > 1e-3
        assert float(pred[name].mutual_info.max()) > 1e-6
    assert float(pred["weight_kg"].variance.min()) > 0
    assert pred.samples == 16


def test_mean_and_variance_of_a_linear_model_match_the_dropout_formula():
    """Encoder = dropout(p = 1/2) on the input, no message passing, linear projections
    and head: f(x) = c + sum_i a_i m_i x_i / (1 - p), m_i ~ Bernoulli(1 - p), so
    E f = c + a . x and Var f = p / (1 - p) * sum_i a_i^2 x_i^2."""
    torch.manual_seed(3)
    model = tg.compile(ONE_VALUE, encoder=nn.Sequential(nn.Dropout(0.5)), encoder_dim=4,
                       task_dim=3, rounds=0).eval()
    with torch.no_grad():
        f0 = model(torch.zeros(1, 4), sample=False)["v"].item()
        a = torch.tensor([model(torch.eye(4)[i:i + 1], sample=False)["v"].item() - f0
                          for i in range(4)], dtype=torch.float64)
    x = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    expected_mean = f0 + float((a * x[0].double()).sum())
    expected_var = 0.5 / 0.5 * float((a ** 2 * x[0].double() ** 2).sum())
    K = 20000
    torch.manual_seed(0)
    pred = model.predict(x, samples=K, dropout=True)["v"]
    assert pred.value.item() == pytest.approx(expected_mean, abs=5 * math.sqrt(expected_var / K))
    assert pred.variance.item() == pytest.approx(expected_var, rel=0.06)


class _InertDropout(nn.Module):
    """A dropout (p = 0.5) whose output is multiplied by 0: on, it changes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.0 * self.drop(x)


def test_inert_dropout_changes_nothing_and_batch_norm_stays_in_eval_mode():
    """With a dropout that cannot change the output every draw is the deterministic
    eval-mode prediction: the synapses (gaussian, stochastic) are not sampled and the
    BatchNorm uses its running statistics (in train mode it would normalise each batch
    by its own)."""
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), _InertDropout())
    with torch.no_grad():
        encoder[1].running_mean.fill_(2.0)
        encoder[1].running_var.fill_(9.0)
    model = tg.compile(ANIMALS, encoder=encoder, task_dim=4).eval()
    assert model.stochastic and model.edge_synapses is not None
    x = torch.randn(5, 4)
    plain = model.predict(x)
    mc = model.predict(x, samples=7, dropout=True)
    for name in ("mammal", "diet", "species"):
        torch.testing.assert_close(mc[name].probs, plain[name].probs, rtol=1e-5, atol=1e-6)
        assert float(mc[name].std.max()) < 1e-3  # float32 sums: sqrt of rounding
    torch.testing.assert_close(mc["weight_kg"].value, plain["weight_kg"].value)


def test_dropout_with_p_zero_only_is_refused():
    """Every dropout module at p = 0 would give K identical draws and a std of 0."""
    encoder = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.0))
    model = tg.compile(ANIMALS, encoder=encoder, task_dim=4).eval()
    with pytest.raises(ArgumentError, match="no dropout module with p > 0"):
        model.predict(torch.randn(2, 4), samples=3, dropout=True)


def test_the_samples_are_folded_into_the_batch():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(4, 6), nn.Dropout(0.3))
    rows: list[int] = []  # rows seen by the dropout module, where the draws begin
    encoder[1].register_forward_hook(lambda module, inputs, output: rows.append(
        inputs[0].shape[0]))
    model = tg.compile(ANIMALS, encoder=encoder, task_dim=4).eval()
    model.predict(torch.randn(3, 4), samples=8, dropout=True)
    assert rows == [24]  # one pass over 8 copies of the 3 rows
    rows.clear()
    model.predict(torch.randn(3, 4), samples=8, dropout=True, chunk_size=3)
    assert rows == [9, 9, 6]


class _DictEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 6)
        self.drop = nn.Dropout(0.5)
        self.calls = 0

    def forward(self, x: dict) -> torch.Tensor:
        self.calls += 1
        return self.drop(self.linear(x["a"]))


def test_an_input_that_is_not_a_tensor_gets_one_pass_per_draw():
    torch.manual_seed(0)
    encoder = _DictEncoder()
    model = tg.compile(ANIMALS, encoder=encoder, encoder_dim=6, task_dim=4).eval()
    pred = model.predict({"a": torch.randn(3, 4)}, samples=5, dropout=True)
    assert encoder.calls == 5
    assert pred["diet"].probs.shape == (3, 3) and float(pred["diet"].std.max()) > 1e-3


@pytest.mark.parametrize("train", [True, False])
def test_every_module_gets_its_mode_back(train):
    model = _mlp().train(train)
    model.predict(torch.randn(2, 4), samples=3, dropout=True)
    assert all(m.training is train for m in model.modules())


def test_dropout_needs_samples_and_a_dropout_module():
    with pytest.raises(ArgumentError, match="needs samples >= 1"):
        _mlp().predict(torch.randn(2, 4), samples=0, dropout=True)
    with pytest.raises(ArgumentError, match="has no dropout module"):
        _mlp(dropout=0.0).predict(torch.randn(2, 4), samples=4, dropout=True)


def test_predict_loader_passes_dropout_on():
    model = _mlp().eval()
    Y = torch.tensor([[1.0, 0.0, 2.0, 5.0], [0.0, 1.0, 1.0, 3.0]])
    loader = [(torch.randn(2, 4), Y)]
    groups = predict_loader(model, loader, samples=8, dropout=True)
    binary = groups[model.layout.binary_group]
    assert binary.mutual_info is not None and float(binary.mutual_info.max()) > 0
    plain = predict_loader(model, loader)
    assert plain[0].mutual_info is None
    with pytest.raises(ArgumentError, match="needs samples"):
        predict_loader(model, loader, dropout=True)
