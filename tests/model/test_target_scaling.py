"""Regression target scaling: statistics, the standardized loss, predictions in the
targets' units, checkpoints (also those written before scaling existed), and ``fit``."""

from __future__ import annotations

import copy
import json
import math
import warnings

import pytest
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

import taskgraph as tg
from model_test_utils import MIXED
from taskgraph.checkpoint import _digest
from taskgraph.model.outputs import TaskOutputs
from taskgraph.train import TaskDataset, make_loader

NAN = float("nan")

#: a binary task and a regression task in kilograms (target columns: big, w)
_KG = {"taskgraph": 1, "name": "kg",
       "tasks": {"big": {"type": "binary"}, "w": {"type": "regression", "parents": ["big"]}}}


def _kg():
    return copy.deepcopy(_KG)

#: population std of [1000, 2000, 3000]: sqrt(((-1000)² + 0² + 1000²) / 3)
STD_123 = 1000.0 * math.sqrt(2.0 / 3.0)  # 816.4966...


def _kg_targets():
    return torch.tensor([[1.0, 1000.0], [0.0, 2000.0], [1.0, 3000.0], [0.0, NAN]])


# -- statistics ---------------------------------------------------------------------------
def test_statistics_of_the_known_values_by_hand(small_model):
    model = small_model(_kg())
    assert model.regression_outputs == ["w"]
    assert model.target_loc.tolist() == [0.0] and model.target_scale.tolist() == [1.0]
    model.fit_target_scaling(_kg_targets())
    assert model.target_loc.tolist() == pytest.approx([2000.0])
    assert model.target_scale.tolist() == pytest.approx([STD_123])  # population std
    again = small_model(_kg()).fit_target_scaling({"w": [3000.0, NAN, 1000.0, 2000.0]})
    assert torch.equal(again.target_loc, model.target_loc)
    assert torch.equal(again.target_scale, model.target_scale)


def test_no_known_value_and_constant_columns(small_model):
    model = small_model(_kg())
    model.fit_target_scaling(torch.tensor([[1.0, NAN], [0.0, NAN]]))
    assert model.target_loc.tolist() == [0.0] and model.target_scale.tolist() == [1.0]
    model.fit_target_scaling(torch.tensor([[1.0, 7.5], [0.0, 7.5], [0.0, NAN]]))
    assert model.target_loc.tolist() == [7.5] and model.target_scale.tolist() == [1.0]


def test_multi_output_regression_follows_the_target_columns(small_model):
    """MIXED's columns: a, b, c, d, e (4 labels), f (2 outputs), g — regression f[0], f[1], g."""
    model = small_model(copy.deepcopy(MIXED))
    assert model.regression_outputs == ["f[0]", "f[1]", "g"]
    Y = torch.full((3, 11), NAN)
    Y[:, 8] = torch.tensor([1.0, 3.0, NAN])  # f[0]: mean 2, std 1
    Y[:, 9] = torch.tensor([10.0, 10.0, 40.0])  # f[1]: mean 20, std sqrt(200)
    Y[:, 10] = torch.tensor([-4.0, 4.0, 0.0])  # g: mean 0, std sqrt(32 / 3)
    model.fit_target_scaling(Y)
    assert model.target_loc.tolist() == pytest.approx([2.0, 20.0, 0.0])
    assert model.target_scale.tolist() == pytest.approx([1.0, math.sqrt(200), math.sqrt(32 / 3)])


@pytest.mark.parametrize("loc, scale, match", [
    ([1.0, 2.0], [1.0], "loc: expected 1 values"),
    ([1.0], [0.0], "scale of regression output 'w': expected a finite positive number, got 0"),
    ([NAN], [1.0], "loc of regression output 'w'"),
    (["kg"], [1.0], "loc: not numeric"),
])
def test_bad_scaling_is_refused(small_model, loc, scale, match):
    with pytest.raises(tg.DataError, match=match):
        small_model(_kg()).set_target_scaling(loc, scale)


def test_infinite_regression_target_is_named(small_model):
    with pytest.raises(tg.DataError, match=r"task 'w'.*finite.*example 1"):
        small_model(_kg()).fit_target_scaling(torch.tensor([[1.0, 2.0], [0.0, math.inf]]))


# -- loss and predictions -----------------------------------------------------------------
def test_loss_is_the_standardized_mse_by_hand(small_model):
    model = small_model(_kg()).set_target_scaling([2000.0], [500.0])
    g_bin, g_reg = model.layout.where["big"][0], model.layout.where["w"][0]
    blocks = [None, None]
    blocks[g_bin] = torch.zeros(3, 1)  # (B, T_g)
    blocks[g_reg] = torch.tensor([0.5, -1.0, 2.0]).view(3, 1, 1)  # (B, T_g, k)
    out = TaskOutputs(model.layout.groups, blocks)
    result = model.loss(out, {"w": torch.tensor([2500.0, 1000.0, NAN])})
    # standardized targets (2500 - 2000) / 500 = 1 and (1000 - 2000) / 500 = -2: the
    # gaussian NLLs ½(1 - 0.5)² = 0.125 and ½(-2 + 1)² = 0.5, mean 0.3125 per labelled
    # example; the data term sums them over B = 3 examples and W = 2 task weights
    assert result.per_task_dict() == {"w": pytest.approx(0.3125)}
    assert float(result.data.detach()) == pytest.approx(0.625 / (3 * 2))


def test_predict_returns_loc_plus_scale_times_the_head_output(small_model):
    model = small_model(_kg()).eval()
    x = torch.randn(4, 5)
    with torch.no_grad():
        f = model(x)["w"].clone()
    model.set_target_scaling([2000.0], [500.0])
    with torch.no_grad():
        assert torch.equal(model(x)["w"], f)  # the heads stay in standardized units
    pred = model.predict(x)
    torch.testing.assert_close(pred["w"].value, 2000.0 + 500.0 * f)
    g = model.layout.where["w"][0]
    torch.testing.assert_close(pred.blocks[g]["mean"][:, 0, 0], 2000.0 + 500.0 * f)


def test_predicted_variance_is_scaled_by_scale_squared(small_model):
    model = small_model(copy.deepcopy(MIXED), stochastic={"heads": True}).eval()
    x = torch.randn(3, 5)
    torch.manual_seed(5)
    plain = model.predict(x, samples=16)
    model.set_target_scaling([1.0, -2.0, 50.0], [2.0, 0.5, 10.0])
    torch.manual_seed(5)
    scaled = model.predict(x, samples=16)
    assert (plain["g"].variance > 0).all()
    torch.testing.assert_close(scaled["g"].variance, 100.0 * plain["g"].variance)
    torch.testing.assert_close(scaled["g"].value, 50.0 + 10.0 * plain["g"].value)
    loc, scale = torch.tensor([1.0, -2.0]), torch.tensor([2.0, 0.5])
    torch.testing.assert_close(scaled["f"].value, loc + scale * plain["f"].value)
    torch.testing.assert_close(scaled["f"].variance, scale ** 2 * plain["f"].variance)
    torch.testing.assert_close(scaled["a"].probs, plain["a"].probs)  # classes untouched


def test_evaluate_scores_in_the_targets_units(small_model):
    model = small_model(_kg()).eval().set_target_scaling([2000.0], [500.0])
    x, y = torch.randn(4, 5), _kg_targets()
    with torch.no_grad():
        f = model(x)["w"]
    value = 2000.0 + 500.0 * f[:3]
    expected = float(((value - y[:3, 1]) ** 2).mean())
    report = tg.evaluate(model, [(x, y)])
    assert report.tasks["w"]["mse"] == pytest.approx(expected, rel=1e-5)


# -- checkpoints --------------------------------------------------------------------------
def test_save_and_load_keep_the_scaling(tmp_path, small_model):
    model = small_model(_kg()).eval().fit_target_scaling(_kg_targets())
    tg.save(model, tmp_path / "m.pt")
    again = tg.load(tmp_path / "m.pt")
    assert torch.equal(again.target_loc, model.target_loc)
    assert torch.equal(again.target_scale, model.target_scale)
    x = torch.randn(3, 5)
    assert torch.equal(again.predict(x)["w"].value, model.predict(x)["w"].value)


def test_weights_saved_before_target_scaling_load_without_scaling(tmp_path, small_model):
    model = small_model(_kg()).eval()
    state = model.state_dict()
    del state["target_loc"], state["target_scale"]
    scaled = small_model(_kg()).set_target_scaling([5.0], [3.0])
    scaled.load_state_dict(state)  # strict: the missing statistics mean "no scaling"
    assert scaled.target_loc.tolist() == [0.0] and scaled.target_scale.tolist() == [1.0]
    # and a whole checkpoint file of that time
    path = tmp_path / "old.pt"
    tg.save(model, path)
    payload = torch.load(path, weights_only=True)
    for key in ("target_loc", "target_scale"):
        del payload["state_dict"][key]
    payload["sha256"] = _digest(json.loads(payload["meta_json"]), payload["state_dict"])
    torch.save(payload, path)
    old = tg.load(path)
    assert old.target_loc.tolist() == [0.0] and old.target_scale.tolist() == [1.0]
    x = torch.randn(3, 5)
    with torch.no_grad():
        torch.testing.assert_close(old.predict(x)["w"].value, model(x)["w"])


# -- fit ----------------------------------------------------------------------------------
class _Mapping(Dataset):
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], {"big": self.y[i, 0], "w": self.y[i, 1]}


def _kg_data(n=64, seed=0, loc=90_000.0, spread=3_000.0):
    """Weights in kilograms, ~``loc`` ± ``spread``, a linear function of x."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=gen)
    w = loc + spread * x[:, 0]
    y = torch.stack([(x[:, 1] > 0).float(), w], 1)
    y[::9, 1] = NAN
    return x, y


def _hand_statistics(y):
    w = y[:, 1][~torch.isnan(y[:, 1])].double()
    return float(w.mean()), float(w.std(unbiased=False))


@pytest.mark.parametrize("form", ["task_dataset", "tensor_dataset", "mapping"])
def test_fit_sets_the_statistics_from_the_training_data(small_model, form):
    x, y = _kg_data()
    h = tg.load_hierarchy(_kg())
    loader = {"task_dataset": lambda: make_loader(TaskDataset(x, y, h), batch_size=16),
              "tensor_dataset": lambda: DataLoader(TensorDataset(x, y), batch_size=16,
                                                   shuffle=True),
              "mapping": lambda: DataLoader(_Mapping(x, y), batch_size=16, shuffle=True)}[form]()
    model = small_model(_kg())
    tg.fit(model, loader, epochs=1, progress=False, seed=0)
    loc, scale = _hand_statistics(y)
    assert model.target_loc.item() == pytest.approx(loc, rel=1e-6)
    assert model.target_scale.item() == pytest.approx(scale, rel=1e-5)


def test_fit_without_standardization_leaves_the_scaling_alone(small_model):
    x, y = _kg_data()
    loader = make_loader(TaskDataset(x, y, tg.load_hierarchy(_kg())), batch_size=16)
    model = small_model(_kg())
    tg.fit(model, loader, epochs=1, progress=False, seed=0, standardize_targets=False)
    assert model.target_loc.tolist() == [0.0] and model.target_scale.tolist() == [1.0]
    model.set_target_scaling([1.0], [2.0])
    tg.fit(model, loader, epochs=1, progress=False, seed=0, standardize_targets=False)
    assert model.target_loc.tolist() == [1.0] and model.target_scale.tolist() == [2.0]


def test_kilogram_targets_no_longer_swamp_the_loss(small_model):
    x, y = _kg_data()
    loader = make_loader(TaskDataset(x, y, tg.load_hierarchy(_kg())), batch_size=16)
    raw = tg.fit(small_model(_kg()), loader, epochs=1, progress=False, seed=0,
                 standardize_targets=False)
    scaled = tg.fit(small_model(_kg()), loader, epochs=1, progress=False, seed=0)
    # unscaled, predicting ~0 for ~90,000 kg costs ~8e9; standardized, about 1
    assert raw.records[0]["per_task"]["w"] > 1e9
    assert scaled.records[0]["per_task"]["w"] < 5.0
    assert scaled.records[0]["per_task"]["big"] < 5.0


def test_resumed_fit_keeps_the_checkpoints_statistics(tmp_path, small_model):
    h = tg.load_hierarchy(_kg())
    x, y = _kg_data()
    first = small_model(_kg())
    tg.fit(first, make_loader(TaskDataset(x, y, h), batch_size=16), epochs=1,
           progress=False, seed=0, checkpoint_dir=tmp_path)
    x2, y2 = _kg_data(seed=1, loc=10.0, spread=1.0)  # other data: other statistics
    again = small_model(_kg(), seed=3)
    tg.fit(again, make_loader(TaskDataset(x2, y2, h), batch_size=16), epochs=2,
           progress=False, checkpoint_dir=tmp_path, resume=True)
    assert torch.equal(again.target_loc, first.target_loc)
    assert torch.equal(again.target_scale, first.target_scale)


def test_fit_on_a_one_shot_iterator_warns_and_does_not_scale(small_model):
    x, y = _kg_data(16)
    model = small_model(_kg())
    with pytest.warns(UserWarning, match="one-shot iterator"):
        tg.fit(model, iter([(x, y)]), epochs=1, progress=False, seed=0)
    assert model.target_loc.tolist() == [0.0]


def test_classification_only_hierarchies_have_no_statistics(small_model):
    model = small_model("cell_functions")
    assert model.target_loc is None and model.regression_outputs == []
    assert not any(k.startswith("target_") for k in model.state_dict())
    assert model.set_target_scaling([], []) is model
    x, y = torch.randn(8, 5), torch.randint(0, 2, (8, 7)).float()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tg.fit(model, [(x, y)], epochs=1, progress=False, seed=0)
