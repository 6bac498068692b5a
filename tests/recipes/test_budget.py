"""The convergence budget (``taskgraph.recipes.budget``): plateau drops on valid, and the
refit replaying them epoch by epoch. The valid scores are scripted, so every drop and
the best epoch are worked out by hand below."""

from __future__ import annotations

import importlib

import pytest
import torch

import taskgraph as tg
from taskgraph.errors import ArgumentError
from taskgraph.recipes.budget import PlateauLR, ReplayLR, check_train_config
from taskgraph.recipes.hmc import HMC_CONFIG, train_hmc

hmc_module = importlib.import_module("taskgraph.recipes.hmc")
fit_module = importlib.import_module("taskgraph.train.fit")
SMALL = {"encoder_spec": {"hidden": [16]}, "task_dim": 4}

# valid AU(PRC)-bar of epochs 1..10. With lr_patience 1 (a drop once more than one epoch
# in a row fails to beat the best by 1e-4 relative) and factor 0.5:
#   e1 .1 best | e2 .2 best | e3 .2 bad 1 | e4 .2 bad 2 -> drop to 5e-4 (from epoch 5)
#   e5 .2 bad 1 | e6 .3 best | e7 .3 bad 1 | e8 .3 bad 2 -> drop to 2.5e-4 (from epoch 9)
#   e9 .3 bad 1 | e10 .3 bad 2 -> drop to 1.25e-4
# early stopping (patience 4): epochs 7-10 are not better than epoch 6 -> stop, best 6.
SCRIPT = [0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3]
VALID_LRS = [1e-3] * 4 + [5e-4] * 4 + [2.5e-4] * 2
TRAIN = {"epochs": 30, "batch_size": 16, "patience": 4, "lr": 1e-3, "lr_patience": 1,
         "lr_factor": 0.5, "min_lr": 0.0}


def _scripted(monkeypatch) -> None:
    """Every valid phase sees SCRIPT as its AU(PRC)-bar, one value per epoch."""

    def factory(exclude):
        values = iter(SCRIPT)
        return lambda model, loader: {"val_auprc_bar": next(values)}

    monkeypatch.setattr(hmc_module, "_valid_auprc", factory)


def _step_lrs(monkeypatch) -> list[list[float]]:
    """Per optimizer made by ``fit``: the learning rate of each of its steps."""
    runs: list[list[float]] = []
    make = fit_module.make_optimizer

    def tracked(params, **kw):
        optimizer = make(params, **kw)
        seen: list[float] = []
        optimizer.register_step_pre_hook(
            lambda opt, *_: seen.append(opt.param_groups[0]["lr"]))
        runs.append(seen)
        return optimizer

    monkeypatch.setattr(fit_module, "make_optimizer", tracked)
    return runs


def test_the_valid_phase_drops_the_rate_on_plateaus(toy, monkeypatch) -> None:
    _scripted(monkeypatch)
    result = train_hmc(toy, seed=0, progress=False, overrides=SMALL, train_overrides=TRAIN)
    assert result.epochs == 6 and len(result.valid_history) == 10
    assert result.valid_history["lr"] == pytest.approx(VALID_LRS)
    assert [e for e, _ in result.lr_drops] == [4, 8, 10]
    assert [r[0] for _, r in result.lr_drops] == pytest.approx([5e-4, 2.5e-4, 1.25e-4])
    assert result.valid_auprc == 0.3


def test_the_refit_replays_the_rates_of_the_chosen_epochs(toy, monkeypatch) -> None:
    """160 / 16 = 10 steps an epoch in the valid phase, 240 / 16 = 15 in the refit; the
    refit's six epochs run at the valid phase's rates of epochs 1..6."""
    _scripted(monkeypatch)
    runs = _step_lrs(monkeypatch)
    result = train_hmc(toy, seed=0, progress=False, overrides=SMALL, train_overrides=TRAIN,
                       refit=True)
    valid, refit = runs
    assert valid == pytest.approx([lr for lr in VALID_LRS for _ in range(10)])
    assert refit == pytest.approx([1e-3] * 60 + [5e-4] * 30)
    assert result.history["lr"] == pytest.approx([1e-3] * 4 + [5e-4] * 2)
    assert [r[0] for r in result.lrs] == pytest.approx([1e-3] * 4 + [5e-4] * 2)
    # three param groups (shared, per-task and synapse weight decay), one rate
    assert all(len(r) == 3 and len(set(r)) == 1 for r in result.lrs)


def test_a_factor_of_one_keeps_the_rate(toy, monkeypatch) -> None:
    _scripted(monkeypatch)
    result = train_hmc(toy, seed=0, progress=False, overrides=SMALL,
                       train_overrides=dict(TRAIN, lr_factor=1.0))
    assert result.valid_history["lr"] == [1e-3] * 10 and result.lr_drops == []


def test_plateau_and_replay_in_a_plain_fit() -> None:
    """The callbacks on their own, with ``fit``'s val_metric scripted: 0.5 then 0.4
    twice; lr_patience 0 drops after every epoch that is not better: after epoch 2
    (0.1 -> 0.02, the rate of epoch 3) and after epoch 3 (-> 0.004, unused); the replay
    of the recorded rates reproduces them in a run without validation."""
    h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16, 7)).float()
    loader = tg.train.make_loader(tg.train.TaskDataset(x, y, h), batch_size=8, seed=0)
    scores = iter([0.5, 0.4, 0.4])
    plateau = PlateauLR("score", patience=0, factor=0.2)
    model = tg.compile(h, in_features=4, task_dim=4, encoder_spec={"hidden": [8]})
    first = tg.fit(model, loader, val_loader=loader, epochs=3, lr=0.1, progress=False,
                   seed=0, val_metrics=False, callbacks=[plateau],
                   val_metric=lambda m, l: {"score": next(scores)})
    assert first["lr"] == pytest.approx([0.1, 0.1, 0.02])
    assert [r[0] for r in plateau.lrs] == pytest.approx([0.1, 0.1, 0.02])
    assert [e for e, _ in plateau.drops] == [2, 3]
    model = tg.compile(h, in_features=4, task_dim=4, encoder_spec={"hidden": [8]})
    again = tg.fit(model, loader, epochs=3, lr=0.1, progress=False, seed=0,
                   callbacks=[ReplayLR(plateau.lrs)])
    assert again["lr"] == pytest.approx([0.1, 0.1, 0.02])


def test_replay_refuses_epochs_it_has_no_rates_for() -> None:
    h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
    loader = tg.train.make_loader(tg.train.TaskDataset(
        torch.randn(8, 4), torch.randint(0, 2, (8, 7)).float(), h), batch_size=8, seed=0)
    model = tg.compile(h, in_features=4, task_dim=4, encoder_spec={"hidden": [8]})
    with pytest.raises(ArgumentError, match="no recorded rates for epoch 2"):
        tg.fit(model, loader, epochs=2, progress=False, callbacks=[ReplayLR([[0.1]])])


def test_the_defaults_are_the_documented_budget() -> None:
    train = HMC_CONFIG["train"]
    assert (train["epochs"], train["patience"], train["lr_patience"], train["lr_factor"],
            train["min_lr"]) == (400, 12, 3, 0.3, 1e-5)


@pytest.mark.parametrize("key, value, expected", [
    ("lr_factor", 0.0, r"train\.lr_factor: expected a number in \(0, 1\], got 0\.0"),
    ("lr_factor", 1.5, r"train\.lr_factor: expected a number in \(0, 1\], got 1\.5"),
    ("lr_patience", -1, r"train\.lr_patience: expected an integer >= 0, got -1"),
    ("min_lr", -1e-3, r"train\.min_lr: expected a number >= 0"),
    ("epochs", 0, r"train\.epochs: expected a positive integer, got 0"),
    ("patience", True, r"train\.patience: expected a positive integer, got True"),
])
def test_bad_training_settings_raise_argument_error(toy, key, value, expected) -> None:
    with pytest.raises(ArgumentError, match=r"^train_hmc: " + expected):
        train_hmc(toy, progress=False, overrides=SMALL, train_overrides={key: value})
    with pytest.raises(ArgumentError, match=expected):
        check_train_config({key: value})


def test_the_module_docstring_lists_every_training_default() -> None:
    import taskgraph.recipes.budget as budget

    rows = {line.split()[0]: line.split()[1] for line in budget.__doc__.splitlines()
            if line.split() and line.split()[0] in HMC_CONFIG["train"]}
    assert set(rows) == set(HMC_CONFIG["train"])
    assert {k: None if v == "None" else float(v) for k, v in rows.items()} == {
        k: None if v is None else float(v) for k, v in HMC_CONFIG["train"].items()}
