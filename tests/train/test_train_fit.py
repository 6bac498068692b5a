"""``taskgraph.fit``: the history it returns, what it learns, its arguments and batches."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

import taskgraph as tg
from taskgraph.train import History, TaskDataset

EPOCH_KEYS = {"epoch", "loss", "data", "kl", "beta", "lr", "time", "per_task"}


def _finite_numbers(value) -> bool:
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    return isinstance(value, (int, float)) and math.isfinite(value)


# -- the history --------------------------------------------------------------------------
def test_history_has_one_record_per_epoch(tk):
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    train = tk.loader(h, *tk.cell_data(64))
    val = tk.loader(h, *tk.cell_data(32, seed=1), shuffle=False)
    history = tg.fit(model, train, val_loader=val, epochs=3, lr=2e-3, seed=0, progress=False)

    assert isinstance(history, History)
    assert len(history) == 3
    assert history["epoch"] == [1, 2, 3]
    assert history["lr"] == [2e-3] * 3
    assert history["beta"] == [1.0] * 3
    assert history.stopped_early is False
    for record in history.records:
        assert EPOCH_KEYS <= set(record), sorted(record)
        assert {"val_loss", "val_data"} <= set(record)
        assert set(record["per_task"]) == set(h.task_names)
        for key in ("loss", "data", "kl", "time", "val_loss", "val_data"):
            assert _finite_numbers(record[key]), (key, record[key])
        assert _finite_numbers(record["per_task"])
        assert record["time"] > 0
        assert record["kl"] > 0  # bernoulli and gaussian synapses have a KL to their prior
        assert "val_overall" in record and _finite_numbers(record["val_overall"])


def test_history_round_trips_through_dict_and_json(tk, tmp_path):
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    history = tg.fit(model, tk.loader(h, *tk.cell_data(32)),
                     val_loader=tk.loader(h, *tk.cell_data(16, seed=2), shuffle=False),
                     epochs=2, seed=0, progress=False, val_metrics=False)
    data = history.to_dict()
    assert json.loads(history.to_json()) == data
    path = tmp_path / "history.json"
    history.to_json(path)
    assert json.loads(path.read_text(encoding="utf-8")) == data
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]
    again = History.from_dict(json.loads(history.to_json()))
    assert again.records == history.records
    assert again.stopped_early == history.stopped_early
    assert again.best_epoch == history.best_epoch
    assert again["loss"] == history["loss"]


def test_history_json_has_no_nan():
    history = History()
    history.append({"epoch": 1, "loss": float("nan"), "val_loss": float("inf"),
                    "per_task": {"a": float("-inf"), "b": 0.5}})
    text = history.to_json()
    assert "NaN" not in text and "Infinity" not in text
    record = json.loads(text)["epochs"][0]
    assert record["loss"] is None and record["val_loss"] is None
    assert record["per_task"] == {"a": None, "b": 0.5}


@pytest.mark.parametrize("standardize", [True, False])
def test_epoch_numbers_match_an_independent_computation(tk, standardize):
    """With a zero learning rate and a deterministic forward pass, the epoch's loss and
    per-task losses are plain averages that can be recomputed by hand; the regression
    target is standardized with numpy's nanmean / nanstd (ddof 0) of the training data."""
    h = tk.hierarchy("animals")
    model = tk.model(h, rounds=0, encoder_spec={"hidden": [8], "dropout": 0.0})
    x, y = tk.animals_data(48)
    loader = tk.loader(h, x, y, batch_size=16, shuffle=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    history = tg.fit(model, loader, epochs=2, optimizer=optimizer, seed=0, progress=False,
                     standardize_targets=standardize)
    w_all = y[:, 3].double().numpy()
    loc, scale = (float(np.nanmean(w_all)), float(np.nanstd(w_all))) if standardize else (0, 1)

    with torch.no_grad():
        out = model(x)

        def per_task(lo, hi):
            """{task: (summed NLL over the labelled examples, their count)}"""
            yy = y[lo:hi]
            m = out["mammal"][lo:hi]
            d, s, w = out["diet"][lo:hi], out["species"][lo:hi], out["weight_kg"][lo:hi]
            known_d, known_w = yy[:, 1] != -1, ~torch.isnan(yy[:, 3])
            r = w[known_w] - (yy[known_w, 3] - loc) / scale
            return {
                "mammal": (F.binary_cross_entropy_with_logits(m, yy[:, 0], reduction="sum")
                           .item(), hi - lo),
                "diet": (F.cross_entropy(d[known_d], yy[known_d, 1].long(), reduction="sum")
                         .item(), int(known_d.sum())),
                "species": (F.cross_entropy(s, yy[:, 2].long(), reduction="sum").item(),
                            hi - lo),
                "weight_kg": (0.5 * float((r ** 2).sum()), int(known_w.sum())),
            }

        whole = {k: total / n for k, (total, n) in per_task(0, 48).items()}
        weights = {"mammal": 1.0, "diet": 1.0, "species": 2.0, "weight_kg": 1.0}
        batch_data = []  # the ELBO's data term: Σ_t w_t Σ_b ℓ_bt / (B · W)
        for lo in range(0, 48, 16):
            part = per_task(lo, lo + 16)
            batch_data.append(sum(weights[k] * total for k, (total, _) in part.items())
                              / (16 * sum(weights.values())))
        expected_loss = sum(batch_data) / len(batch_data)

    for record in history.records:
        assert record["kl"] == 0.0  # nothing stochastic without message passing
        assert record["loss"] == pytest.approx(expected_loss, rel=1e-5)
        assert record["data"] == pytest.approx(expected_loss, rel=1e-5)
        assert record["per_task"] == pytest.approx(whole, rel=1e-5)


def test_loss_decreases_on_a_learnable_problem(tk):
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    x, y = tk.cell_data(128)
    history = tg.fit(model, tk.loader(h, x, y, batch_size=32), epochs=25, lr=2e-2, seed=0,
                     progress=False)
    losses = history["data"]
    assert losses[-1] < 0.6 * losses[0], losses
    assert sum(losses[-5:]) < sum(losses[:5])
    model.eval()
    with torch.no_grad():
        out = model(x)
    accuracy = ((out["metabolism"] > 0).float() == y[:, 0]).float().mean().item()
    assert accuracy > 0.85


# -- batch formats ------------------------------------------------------------------------
class _MappingDataset(Dataset):
    """Examples ``(x, {task: target})``; the default collate turns them into mappings."""

    def __init__(self, x, y, names):
        self.x, self.y, self.names = x, y, names

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], {name: self.y[i, j] for j, name in enumerate(self.names)}


def _xy_dict_collate(items):
    xs = torch.stack([x for x, _ in items])
    names = items[0][1].keys()
    return {"x": xs, "y": {n: torch.stack([t[n] for _, t in items]) for n in names}}


def test_matrix_and_mapping_batches_train_identically(tk):
    h = tk.hierarchy("animals")
    x, y = tk.animals_data(48)  # with missing labels (-1 and NaN)
    names = list(h.task_names)
    mapping = _MappingDataset(x, y, names)
    loaders = {
        "matrix": tk.loader(h, x, y, batch_size=16, shuffle=True, seed=3),
        "mapping": DataLoader(mapping, batch_size=16, shuffle=True,
                              generator=torch.Generator().manual_seed(3)),
        "dict": DataLoader(mapping, batch_size=16, shuffle=True, collate_fn=_xy_dict_collate,
                           generator=torch.Generator().manual_seed(3)),
    }
    batch = next(iter(loaders["mapping"]))
    assert isinstance(batch[1], dict) and set(batch[1]) == set(names)
    results = {}
    for kind, loader in loaders.items():
        model = tk.model(h, encoder_spec={"hidden": [8], "dropout": 0.2})
        history = tg.fit(model, loader, epochs=3, seed=4, progress=False)
        results[kind] = (model, history)
    ref_model, ref_history = results["matrix"]
    for kind in ("mapping", "dict"):
        model, history = results[kind]
        assert tk.same_state(model, ref_model), kind
        assert history["loss"] == ref_history["loss"], kind
        assert history["per_task"] == ref_history["per_task"], kind


# -- arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("epochs", [0, -1, 2.0, True, None])
def test_bad_epochs_raise_argument_error(tk, epochs):
    h = tk.hierarchy("cell_functions")
    with pytest.raises(tg.ArgumentError, match="fit: epochs: expected a positive integer"):
        tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=epochs, progress=False)


def test_unknown_weighting_raises_argument_error(tk):
    h = tk.hierarchy("cell_functions")
    with pytest.raises(tg.ArgumentError, match="magic"):
        tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=1, weighting="magic",
               progress=False)
    with pytest.raises(tg.ArgumentError, match="did you mean 'pcgrad'"):
        tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=1, weighting="PCGrad",
               progress=False)


@pytest.mark.parametrize("kw,match", [
    ({"seed": 1.5}, "fit: seed: expected an integer"),
    ({"kl_warmup": -1}, "fit: kl_warmup"),
    ({"weight_average": 1.0}, "fit: weight_average: expected a decay in"),
    ({"weight_average": 0.0}, "fit: weight_average"),
    ({"val_metric": lambda model, loader: {}}, "val_metric: needs val_loader"),
])
def test_bad_arguments_raise_argument_error(tk, kw, match):
    h = tk.hierarchy("cell_functions")
    with pytest.raises(tg.ArgumentError, match=match):
        tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=1, progress=False, **kw)


def test_empty_loader_raises_data_error(tk):
    h = tk.hierarchy("cell_functions")
    empty = DataLoader(TensorDataset(torch.empty(0, 6), torch.empty(0, 7)), batch_size=4)
    with pytest.raises(tg.DataError, match="no batches"):
        tg.fit(tk.model(h), empty, epochs=1, progress=False)


def test_empty_iterable_without_len_raises_data_error(tk):
    class Nothing:
        def __iter__(self):
            return iter(())

    h = tk.hierarchy("cell_functions")
    with pytest.raises(tg.DataError, match="no batches"):
        tg.fit(tk.model(h), Nothing(), epochs=1, progress=False)


def test_empty_validation_loader_raises_data_error(tk):
    h = tk.hierarchy("cell_functions")
    with pytest.raises(tg.DataError, match="validation"):
        tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), val_loader=[], epochs=1,
               progress=False)


# -- seeds --------------------------------------------------------------------------------
def test_same_seed_same_weights_other_seed_other_weights(tk):
    """Dropout, gaussian and bernoulli synapses and a shuffled loader all draw random
    numbers; the seed controls every one of them."""
    h = tk.hierarchy("animals")
    x, y = tk.animals_data(48)

    def run(seed):
        model = tk.model(h, encoder_spec={"hidden": [8], "dropout": 0.2})
        torch.rand(17)  # the global generator's state before fit must not matter
        tg.fit(model, tk.loader(h, x, y, batch_size=16, seed=99), epochs=2, seed=seed,
               progress=False)
        return model

    a, b, c = run(1), run(1), run(2)
    assert tk.same_state(a, b)
    assert not tk.same_state(a, c)


# -- KL warm-up and scaling ---------------------------------------------------------------
def _kl_share(record: dict) -> float:
    """What the KL adds to an epoch's loss (its data term taken away)."""
    return record["loss"] - record["data"]


def test_kl_warmup_ramps_beta_linearly(tk):
    """β climbs by kl_weight / kl_warmup per epoch, then stays; with the weights held
    fixed (SGD, lr 0) the KL is the same every epoch, so its share of the loss grows in
    proportion to β."""
    h = tk.hierarchy("cell_functions")
    model = tk.model(h)
    history = tg.fit(model, tk.loader(h, *tk.cell_data(32)), epochs=6, kl_warmup=4,
                     kl_weight=0.5, seed=0, progress=False,
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.0))
    assert history["beta"] == pytest.approx([0.125, 0.25, 0.375, 0.5, 0.5, 0.5], abs=1e-12)
    shares = [_kl_share(r) for r in history.records]
    assert all(share > 0 for share in shares), shares
    # 1 : 2 : 3 : 4 : 4 : 4, like β
    assert [share / shares[0] for share in shares] == pytest.approx([1, 2, 3, 4, 4, 4], rel=1e-4)


def test_doubling_dataset_size_halves_the_kl_share(tk):
    """The KL is spread over the data set: the same run (fixed weights, same draws) with
    ``dataset_size`` 2,000 instead of 1,000 has the same data term and half the KL share."""
    h = tk.hierarchy("cell_functions")
    data = tk.cell_data(32)
    records = []
    for n in (1000, 2000):
        model = tk.model(h)
        history = tg.fit(model, tk.loader(h, *data), epochs=1, dataset_size=n, seed=0,
                         progress=False, optimizer=torch.optim.SGD(model.parameters(), lr=0.0))
        records.append(history.records[0])
    small, large = records
    assert small["data"] == large["data"]
    assert _kl_share(small) > 0
    assert _kl_share(small) == pytest.approx(2 * _kl_share(large), rel=1e-4)


# -- progress -----------------------------------------------------------------------------
def test_progress_is_silent_when_stderr_is_not_a_terminal(tk, capfd):
    h = tk.hierarchy("cell_functions")
    tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(32), batch_size=8), epochs=2,
           progress=True, seed=0)
    out, err = capfd.readouterr()
    assert err == ""
    assert out == ""


def test_progress_bar_is_drawn_on_a_terminal(tk, capfd, monkeypatch):
    """The counterpart of the test above: the bar is there when stderr is a terminal."""
    h = tk.hierarchy("cell_functions")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(32), batch_size=8), epochs=1,
           progress=True, seed=0)
    _, err = capfd.readouterr()
    assert "epoch 1/1" in err


def test_early_stopping_without_val_loader_is_refused(tk):
    h = tk.hierarchy("cell_functions")
    with pytest.raises(tg.ArgumentError, match="val_loader"):
        tg.fit(tk.model(h), tk.loader(h, *tk.cell_data(16)), epochs=2,
               early_stopping="val_loss", progress=False)


def test_targets_outside_a_task_raise_data_error(tk):
    h = tk.hierarchy("cell_functions")
    x, y = tk.cell_data(16)
    y[3, 2] = 2.0  # not a binary label
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    with pytest.raises(tg.DataError, match="lipid_metabolism"):
        tg.fit(tk.model(h), loader, epochs=1, progress=False)


def test_training_on_plain_tensor_dataset_matches_task_dataset(tk):
    """Any DataLoader of ``(x, Y)`` pairs works, not only TaskDataset."""
    h = tk.hierarchy("cell_functions")
    x, y = tk.cell_data(32)
    a, b = tk.model(h), tk.model(h)
    tg.fit(a, DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False), epochs=2, seed=0,
           progress=False)
    tg.fit(b, DataLoader(TaskDataset(x, y, h), batch_size=8, shuffle=False), epochs=2, seed=0,
           progress=False)
    assert tk.same_state(a, b)


def test_a_model_can_be_snapshotted_during_training(tk):
    """Keeping a copy of the best model (``copy.deepcopy``) or pickling it whole, as
    training utilities such as EMA, SWA or best-model callbacks do, works."""
    import copy
    import pickle

    h = tk.hierarchy("animals")
    model = tk.model(h)
    tg.fit(model, tk.loader(h, *tk.animals_data(16)), epochs=1, seed=0, progress=False)
    snapshot = copy.deepcopy(model)
    assert tk.same_state(snapshot, model)
    assert snapshot.hierarchy.task_names == h.task_names
    clone = pickle.loads(pickle.dumps(model))
    assert tk.same_state(clone, model)


def test_per_task_losses_are_left_out_for_large_hierarchies(tk):
    from taskgraph.train.loop import PER_TASK_LIMIT

    n = PER_TASK_LIMIT + 1
    h = tg.load_hierarchy({"taskgraph": 1, "name": "wide",
                           "tasks": {f"t{i}": {"type": "binary"} for i in range(n)}})
    x = torch.randn(8, 6)
    y = (torch.rand(8, n, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    history = tg.fit(tk.model(h), tk.loader(h, x, y, batch_size=8), epochs=1, progress=False)
    record = history.records[0]
    assert "per_task" not in record
    assert {"loss", "data", "kl", "beta", "lr", "time", "epoch"} <= set(record)
