"""Batches: iter_batches' forms and errors, and predict_loader's gathering, against the
model's predict() called batch by batch and targets written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import taskgraph as tg
from taskgraph.model.batches import iter_batches, predict_loader, to_device

NAN = float("nan")


def test_iter_batches_forms_and_errors():
    cpu = torch.device("cpu")
    x, y = torch.zeros(2, 3), torch.ones(2, 4)
    got = list(iter_batches([(x, y), [x, y], {"x": x, "y": y}], cpu, who="evaluate"))
    assert len(got) == 3 and all(a is x and b is y for a, b in got)
    assert list(iter_batches([x], cpu, who="hmc", targets=False)) == [(x, None)]
    with pytest.raises(tg.DataError, match="evaluate: batch 1 has no targets"):
        list(iter_batches([(x, y), {"x": x}], cpu, who="evaluate"))
    with pytest.raises(tg.DataError, match="fit: the loader yielded no batches"):
        list(iter_batches([], cpu, who="fit"))
    with pytest.raises(tg.DataError, match="a batch must be"):
        list(iter_batches([(x, y, y)], cpu, who="evaluate"))


def test_to_device_keeps_containers():
    moved = to_device({"a": (torch.zeros(1), [torch.ones(2)]), "n": 3}, torch.device("cpu"))
    assert isinstance(moved["a"], tuple) and isinstance(moved["a"][1], list)
    assert moved["n"] == 3


def test_predict_loader_gathers_what_predict_gives_batch_by_batch():
    torch.manual_seed(0)
    model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4,
                       encoder_spec={"hidden": [8]}).eval()
    x = torch.randn(5, 3)
    Y = torch.tensor([[1.0, 0, 3, 2.5], [0, -1, 1, NAN], [NAN, 2, 0, 1.0],
                      [1, 1, -1, 4.0], [0, 0, 2, NAN]])
    batches = [(x[:3], Y[:3]), (x[3:], Y[3:])]
    groups = predict_loader(model, batches)
    parts = [model.predict(b) for b, _ in batches]
    by_kind = {g.group.names: g for g in groups}
    mammal = by_kind[("mammal",)]
    want = torch.cat([p["mammal"].probs for p in parts]).numpy()
    np.testing.assert_allclose(mammal.mean[:, 0], want, rtol=1e-6)
    assert mammal.target[:, 0, 0].tolist() == pytest.approx([1, 0, NAN, 1, 0], nan_ok=True)
    species = by_kind[("species",)]
    assert species.mean.shape == (5, 1, 4) and species.target[:, 0, 0].tolist() == [3, 1, 0, -1, 2]
    # multiclass labels are the model's (decoded) labels; binary ones are not gathered
    assert species.label[:, 0].tolist() == torch.cat([p["species"].label for p in parts]).tolist()
    assert mammal.label is None and mammal.entropy is None  # no samples: no uncertainty


def test_predict_loader_uncertainty_is_the_mean_over_examples():
    torch.manual_seed(1)
    model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4,
                       encoder_spec={"hidden": [8]})
    x = torch.randn(4, 3)
    torch.manual_seed(7)
    groups = predict_loader(model, [x[:2], x[2:]], samples=3, targets=False, who="hmc")
    torch.manual_seed(7)
    parts = [model.predict(x[:2], samples=3), model.predict(x[2:], samples=3)]
    diet = next(g for g in groups if g.group.names == ("diet",))
    assert diet.target is None
    entropy = torch.cat([p["diet"].entropy for p in parts]).double().mean().item()
    assert diet.entropy[0] == pytest.approx(entropy, rel=1e-6)
    weight = next(g for g in groups if g.group.kind == "regression")
    assert weight.entropy is None  # values have no entropy


def test_predict_loader_checks_targets_as_scoring_needs_them():
    model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
    soft = torch.tensor([[0.3, 0, 0, 0]])  # a soft label trains, but is not scored
    with pytest.raises(tg.DataError, match="'mammal': expected 0 or 1, or -1 / NaN for "
                                           "missing, got 0.3 \\(example 0\\)"):
        predict_loader(model, [(torch.zeros(1, 3), soft)])
    with pytest.raises(tg.DataError, match="batch 0 has no targets"):
        predict_loader(model, [{"x": torch.zeros(1, 3)}], who="reliability diagrams")
