"""Temperature scaling: fitted values checked against closed forms, where predict applies
them, and that checkpoints keep them (old ones load with 1)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import taskgraph as tg
from taskgraph.errors import ArgumentError, DataError
from taskgraph.model.temperature import calibrate

DATA = Path(__file__).parent / "data"
NAN = float("nan")


def _constant_logits(model, biases: dict[str, list[float]]):
    """Zero every head weight and set the named tasks' biases: the logits are constants."""
    with torch.no_grad():
        for head in model.heads:
            head.weight.zero_()
        for name, bias in biases.items():
            g, j = model.layout.where[name]
            model.heads[g].bias[j] = torch.tensor(bias)
    return model


def _animals(**kw):
    torch.manual_seed(0)
    return tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4,
                      encoder_spec={"hidden": [8]}, **kw)


def test_constant_logits_give_the_closed_form_temperatures():
    # mammal: logit 2 everywhere, 3 of 4 labels are 1: sigmoid(2 / T) = 3/4, T = 2 / ln 3.
    # diet: logits (2, 0, 0), labels 0, 0, 1, 2: softmax(z / T)_0 = 1/2 = e^a / (e^a + 2)
    # with a = 2 / T, so a = ln 2 and T = 2 / ln 2. species: unlabelled, stays 1.
    model = _constant_logits(_animals(), {"mammal": [2.0], "diet": [2.0, 0.0, 0.0]})
    Y = torch.tensor([[1, 0, NAN, 1.0], [1, 0, NAN, 2.0], [1, 1, NAN, 3.0], [0, 2, NAN, 4.0]])
    calibrate(model, [(torch.randn(4, 3), Y)])
    t = dict(zip(model.layout.names, model.temperature.tolist()))
    assert t["mammal"] == pytest.approx(2 / math.log(3), rel=1e-5)
    assert t["diet"] == pytest.approx(2 / math.log(2), rel=1e-5)
    assert t["species"] == 1.0 and t["weight_kg"] == 1.0


def _two_level(coherent: bool = False):
    h = {"taskgraph": 1, "name": "two", "tasks": {
        "r": {"type": "binary"}, "a": {"type": "binary", "parents": ["r"]},
        "b": {"type": "binary", "parents": ["r"]}}}
    torch.manual_seed(0)
    return tg.compile(h, in_features=3, task_dim=4, encoder_spec={"hidden": [8]},
                      coherent=coherent)


@pytest.mark.parametrize("per, expected", [
    # a: logit 2, 3 of 4 positive -> T = 2 / ln 3; b: logit 2, 4 of 5 positive -> 2 / ln 4
    ("task", {"a": 2 / math.log(3), "b": 2 / math.log(4)}),
    # one temperature for a and b (depth 1): the pooled 7 of 9, sigmoid(2 / T) = 7/9
    ("level", {"a": 2 / math.log(3.5), "b": 2 / math.log(3.5)}),
])
def test_per_task_and_per_level_sharing(per, expected):
    model = _constant_logits(_two_level(), {"r": [0.0], "a": [2.0], "b": [2.0]})
    a = [1, 1, 1, 0, NAN]
    b = [1, 1, 1, 1, 0]
    Y = torch.tensor([[NAN, a[i], b[i]] for i in range(5)])
    calibrate(model, [(torch.randn(5, 3), Y)], per=per)
    t = dict(zip(model.layout.names, model.temperature.tolist()))
    assert t["r"] == 1.0  # no label
    for name, value in expected.items():
        assert t[name] == pytest.approx(value, rel=1e-5)


def test_global_pools_every_labelled_entry():
    # r: logit 2, labels 1, 0 (1 of 2); a: logit 2, 3 of 4; pooled: 4 of 6, sigmoid(2/T) = 2/3
    model = _constant_logits(_two_level(), {"r": [2.0], "a": [2.0], "b": [0.0]})
    Y = torch.tensor([[1, 1, NAN], [0, 1, NAN], [NAN, 1, NAN], [NAN, 0, NAN]])
    calibrate(model, [(torch.randn(4, 3), Y)], per="global")
    assert model.temperature.tolist() == pytest.approx([2 / math.log(2)] * 3, rel=1e-5)


def _spread_heads(model, factor: float = 25.0):
    with torch.no_grad():
        for head in model.heads:
            head.weight.mul_(factor)
    return model.eval()


def test_soft_labels_from_logits_twice_too_confident_recover_two():
    """Targets sigma(z / 2) (soft labels) make T = 2 the exact minimiser for every task,
    also through the coherence constraint (it commutes with one common scale)."""
    torch.manual_seed(0)
    model = _spread_heads(tg.compile("hierarchies/cell_functions.yaml", in_features=5,
                                     task_dim=8))
    assert model.coherence is not None
    x = torch.randn(400, 5)
    with torch.no_grad():
        z = model(x, sample=False).blocks[0]  # (N, T), coherent logits
    assert float(z.std()) > 1.0  # logits spread widely enough to pin T down
    Y = torch.sigmoid(z / 2)
    for per in ("task", "global"):
        calibrate(model, [(x[:200], Y[:200]), (x[200:], Y[200:])], per=per)
        assert model.temperature.tolist() == pytest.approx([2.0] * 7, rel=1e-3)


def test_multiclass_labels_drawn_at_half_the_temperature_recover_it():
    torch.manual_seed(1)
    model = _spread_heads(_animals(rounds=0), factor=8.0)
    x = torch.randn(6000, 3)
    with torch.no_grad():
        out = model(x, sample=False)
    rng = np.random.default_rng(0)
    Y = torch.full((6000, 4), NAN)
    for col, name in ((1, "diet"), (2, "species")):
        p = torch.softmax(out[name].double() / 0.5, -1).numpy()  # under-confident: T = 0.5
        u = rng.random((6000, 1))
        Y[:, col] = torch.from_numpy((u > np.cumsum(p, 1)).sum(1).astype(np.float32))
    calibrate(model, [(x, Y)])
    t = dict(zip(model.layout.names, model.temperature.tolist()))
    assert t["diet"] == pytest.approx(0.5, rel=0.06)
    assert t["species"] == pytest.approx(0.5, rel=0.06)
    assert t["mammal"] == 1.0


def test_predict_divides_the_logits_by_the_temperature():
    model = _animals().eval()
    x = torch.randn(6, 3)
    with torch.no_grad():
        out = model(x, sample=False)
        model.temperature.copy_(torch.tensor([2.0, 0.5, 3.0, 7.0]))
    pred = model.predict(x)
    torch.testing.assert_close(pred["mammal"].probs, torch.sigmoid(out["mammal"] / 2))
    torch.testing.assert_close(pred["diet"].probs, torch.softmax(out["diet"] / 0.5, -1))
    torch.testing.assert_close(pred["species"].probs, torch.softmax(out["species"] / 3, -1))
    torch.testing.assert_close(pred["weight_kg"].value, out["weight_kg"])  # untouched


def test_sampled_predictions_use_the_temperature_too():
    # an enormous temperature flattens every draw: sigmoid(z / 1e6) = 1/2, softmax uniform
    model = _animals().eval()
    assert model.stochastic
    with torch.no_grad():
        model.temperature.fill_(1e6)
    pred = model.predict(torch.randn(5, 3), samples=6)
    torch.testing.assert_close(pred["mammal"].probs, torch.full((5,), 0.5))
    torch.testing.assert_close(pred["species"].probs, torch.full((5, 4), 0.25))
    assert float(pred["diet"].std.max()) < 1e-3  # float32 sums: sqrt of ~1e-8 rounding


def test_a_coherent_model_stays_coherent_with_per_task_temperatures():
    model = _spread_heads(tg.compile("hierarchies/cell_functions.yaml", in_features=5,
                                     task_dim=8))
    with torch.no_grad():
        model.temperature.copy_(torch.tensor([5.0, 0.2, 0.3, 4.0, 0.1, 3.0, 0.25]))
    x = torch.randn(50, 5)
    with torch.no_grad():
        raw = model(x, sample=False).raw_binary
    pred = model.predict(x)
    probs = torch.stack([pred[n].probs for n in model.layout.names], 1)  # (N, T)
    for parent, child in model.layout.edges:
        i, j = model.layout.index[parent], model.layout.index[child]
        assert bool((probs[:, i] >= probs[:, j] - 1e-6).all())
    # glycolysis is a leaf: its probability is its own raw logit over its temperature
    g = model.layout.index["glycolysis"]
    torch.testing.assert_close(probs[:, g], torch.sigmoid(raw[:, g] / 0.1))


def test_calibrating_again_starts_from_the_logits():
    model = _constant_logits(_animals(), {"mammal": [2.0]})
    Y = torch.tensor([[1, NAN, NAN, NAN], [1, NAN, NAN, NAN], [1, NAN, NAN, NAN],
                      [0, NAN, NAN, NAN]])
    loader = [(torch.randn(4, 3), Y)]
    first = calibrate(model, loader).temperature.clone()
    second = calibrate(model, loader).temperature
    torch.testing.assert_close(first, second)
    assert first[0].item() == pytest.approx(2 / math.log(3), rel=1e-5)


def test_the_mode_is_restored():
    model = _animals().train()
    Y = torch.tensor([[1, 0, 2, 1.0], [0, 1, 1, 2.0]])
    calibrate(model, [(torch.randn(2, 3), Y)])
    assert all(m.training for m in model.modules())


def test_save_and_load_keep_the_temperatures(tmp_path):
    model = _animals().eval()
    with torch.no_grad():
        model.temperature.copy_(torch.tensor([1.5, 0.7, 2.5, 1.0]))
    tg.save(model, tmp_path / "m.pt")
    again = tg.load(tmp_path / "m.pt")
    assert again.temperature.tolist() == pytest.approx([1.5, 0.7, 2.5, 1.0])
    x = torch.randn(3, 3)
    torch.testing.assert_close(again.predict(x)["diet"].probs, model.predict(x)["diet"].probs)


@pytest.mark.parametrize("name", ["old_mlp.pt", "old_messages.pt"])
def test_a_checkpoint_saved_before_temperatures_loads_with_one(name):
    model = tg.load(DATA / name)
    assert model.temperature.tolist() == [1.0] * model.layout.num_tasks


def test_a_state_dict_without_temperatures_loads_with_one():
    model = _animals()
    state = {k: v for k, v in model.state_dict().items() if k != "temperature"}
    with torch.no_grad():
        model.temperature.fill_(3.0)
    model.load_state_dict(state)  # strict
    assert model.temperature.tolist() == [1.0] * 4


def test_bad_arguments():
    model = _animals()
    loader = [(torch.randn(2, 3), torch.tensor([[1, 0, 2, 1.0], [0, 1, 1, 2.0]]))]
    with pytest.raises(ArgumentError, match="per: expected one of task, level, global"):
        calibrate(model, loader, per="tasks")
    with pytest.raises(ArgumentError, match="max_iter"):
        calibrate(model, loader, max_iter=0)
    with pytest.raises(TypeError, match="TaskGraphModel"):
        calibrate(torch.nn.Linear(2, 2), loader)
    with pytest.raises(DataError, match="no labelled entry"):
        calibrate(model, [(torch.randn(2, 3), torch.tensor([[NAN, NAN, NAN, 1.0]] * 2))])
    reg = tg.compile({"taskgraph": 1, "name": "r", "tasks": {"v": {"type": "regression"}}},
                     in_features=3, task_dim=4)
    with pytest.raises(ArgumentError, match="no binary, multiclass or multilabel"):
        calibrate(reg, [(torch.randn(2, 3), torch.ones(2, 1))])
    with pytest.raises(DataError, match="expected a label in"):
        calibrate(model, [(torch.randn(2, 3), torch.tensor([[3, 0, 2, 1.0]] * 2))])
