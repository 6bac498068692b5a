"""The HMC recipe (``taskgraph.recipes.hmc``): moving-average weights, the search on valid,
refit.

The toy tree of 7 labels of ``tests/recipes/conftest.py``, whose labels follow the
features, so that a learning model beats one that cannot learn.
"""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from taskgraph.datasets.hmc import HMCData
from taskgraph.recipes.hmc import HMC_CONFIG, merge_config, predict_matrix, train_hmc

fit_module = importlib.import_module("taskgraph.train.fit")  # the module, not the function
FAST = {"epochs": 4, "batch_size": 16, "patience": 2}
SMALL = {"encoder_spec": {"hidden": [16]}, "task_dim": 4}



@pytest.fixture(scope="module")
def data(toy: HMCData) -> HMCData:
    """The recipe tests' toy set (``tests/recipes/conftest.py``)."""
    return toy


def test_merge_config_merges_nested_dicts_without_touching_the_base() -> None:
    merged = merge_config(HMC_CONFIG, {"model": {"encoder_spec": {"hidden": [7]}},
                                       "train": {"lr": 0.5}})
    assert merged["model"]["encoder_spec"]["hidden"] == [7]
    assert merged["model"]["encoder_spec"]["dropout"] == HMC_CONFIG["model"]["encoder_spec"]["dropout"]
    assert merged["train"]["lr"] == 0.5 and merged["train"]["epochs"] == HMC_CONFIG["train"]["epochs"]
    assert HMC_CONFIG["model"]["encoder_spec"]["hidden"] == [512, 512]
    assert HMC_CONFIG["train"]["lr"] == 1e-3


class _Steps:
    """Stands in for ``fit``'s optimizer factory: each optimizer it makes keeps a copy
    of the weights after each of its steps."""

    def __init__(self, monkeypatch) -> None:
        self.runs: list[list[dict[int, torch.Tensor]]] = []  # per optimizer, per step
        make = fit_module.make_optimizer

        def tracked(params, **kw):
            params = list(params)
            optimizer = make(params, **kw)
            # parameter groups (dicts) or parameters; the copies are keyed by parameter
            flat = [p for g in params for p in g["params"]] if isinstance(params[0], dict) \
                else params
            seen: list[dict[int, torch.Tensor]] = []

            def keep(*_):
                seen.append({id(p): p.detach().clone() for p in flat})
            optimizer.register_step_post_hook(keep)
            self.runs.append(seen)
            return optimizer

        monkeypatch.setattr(fit_module, "make_optimizer", tracked)


def test_scored_weights_are_the_moving_average_of_the_steps(data: HMCData, monkeypatch) -> None:
    """160 examples in batches of 80: two steps in the one epoch; with decay 0.75 the
    scored weights are 0.75 x the first step's + 0.25 x the second's."""
    steps = _Steps(monkeypatch)
    result = train_hmc(data, seed=0, progress=False, overrides=SMALL,
                       train_overrides=dict(FAST, epochs=1, batch_size=80, ema=0.75))
    (seen,) = steps.runs
    params = list(result.model.parameters())
    first, second = seen
    assert not torch.equal(first[id(params[0])], second[id(params[0])])
    assert sorted(first) == sorted(id(p) for p in params)
    for p in params:
        torch.testing.assert_close(p.detach(), 0.75 * first[id(p)] + 0.25 * second[id(p)])


def test_no_average_when_ema_is_zero(data: HMCData, monkeypatch) -> None:
    steps = _Steps(monkeypatch)
    result = train_hmc(data, seed=0, progress=False, overrides=SMALL,
                       train_overrides=dict(FAST, epochs=1, batch_size=80, ema=0.0))
    (seen,) = steps.runs
    assert len(seen) == 2
    for p in result.model.parameters():  # the last step's weights
        assert torch.equal(p.detach(), seen[-1][id(p)])


def test_the_scored_model_is_the_best_epoch_on_valid(data: HMCData) -> None:
    """The valid score is sklearn's micro average precision of the returned model on the
    valid split, and the best of the validation phase's epochs."""
    result = train_hmc(data, seed=0, progress=False, overrides=SMALL, train_overrides=FAST)
    P = predict_matrix(result.model, data.valid.X)
    expected = average_precision_score(data.valid.Y, P, average="micro")  # no roots here
    assert result.valid_auprc == pytest.approx(expected, rel=1e-9)
    scores = result.history["val_auprc_bar"]
    assert result.valid_auprc == max(scores) == scores[result.epochs - 1]


def test_search_keeps_the_candidate_that_wins_on_valid(data: HMCData) -> None:
    frozen = {"train": {"lr": 0.0}}  # cannot learn: loses on valid
    result = train_hmc(data, seed=0, progress=False, overrides=SMALL, train_overrides=FAST,
                       search=[frozen, {}])
    assert [t["candidate"] for t in result.trials] == [frozen, {}]
    assert result.trials[1]["valid_auprc"] > result.trials[0]["valid_auprc"]
    assert result.config["train"]["lr"] == HMC_CONFIG["train"]["lr"]
    assert result.valid_auprc == result.trials[1]["valid_auprc"]
    assert result.epochs == result.trials[1]["epoch"]
    assert result.violations == 0
    assert 0.0 < result.test_auprc <= 1.0


def test_refit_trains_on_train_and_valid_for_the_chosen_epochs(data: HMCData,
                                                               monkeypatch) -> None:
    """Batches of 16: the valid phase takes 160 / 16 = 10 steps an epoch, the refit on
    train + valid 240 / 16 = 15, for exactly the chosen number of epochs."""
    plain = train_hmc(data, seed=0, progress=False, overrides=SMALL, train_overrides=FAST)
    steps = _Steps(monkeypatch)
    refit = train_hmc(data, seed=0, progress=False, overrides=SMALL, train_overrides=FAST,
                      refit=True)
    assert refit.valid_auprc == plain.valid_auprc  # the valid phase is the same run
    chosen = plain.history.best_epoch
    assert plain.history is plain.valid_history and plain.epochs == chosen
    assert refit.valid_history.best_epoch == chosen == refit.epochs
    valid_phase, refit_phase = steps.runs
    assert len(valid_phase) == 10 * len(refit.valid_history)
    assert len(refit_phase) == 15 * chosen
    assert refit.model is not plain.model
    # the history describes the scored model: the refit's epochs, no validation scores
    assert refit.history is not refit.valid_history
    assert len(refit.history) == chosen and refit.history["epoch"] == list(range(1, chosen + 1))
    assert refit.history.best_epoch == chosen and not refit.history.stopped_early
    assert "val_auprc_bar" in refit.valid_history.keys()
    assert "val_auprc_bar" not in refit.history.keys()


def _perturb_global_rngs(k: int) -> None:
    """Leave torch, numpy and random in states that differ with ``k``."""
    import random

    torch.manual_seed(12345 + k)
    np.random.seed(777 + k)
    random.seed(999 + k)


def test_the_same_seed_gives_bit_identical_runs(data: HMCData) -> None:
    kwargs = dict(progress=False, overrides=SMALL, train_overrides=dict(FAST, epochs=3),
                  refit=True, samples=2, search=[{}, {"model": {"rounds": 0}}])
    runs = []
    for k in range(2):
        _perturb_global_rngs(k)  # whatever ran before must not matter
        runs.append(train_hmc(data, seed=0, **kwargs))
    a, b = runs
    state_a, state_b = a.model.state_dict(), b.model.state_dict()
    assert list(state_a) == list(state_b)
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert a.test_auprc == b.test_auprc and a.valid_auprc == b.valid_auprc
    assert [t["valid_auprc"] for t in a.trials] == [t["valid_auprc"] for t in b.trials]
    assert a.history["loss"] == b.history["loss"]  # records also hold wall-clock times
    assert a.valid_history["val_auprc_bar"] == b.valid_history["val_auprc_bar"]
    other = train_hmc(data, seed=1, **kwargs)
    state = other.model.state_dict()
    assert not all(torch.equal(state_a[k], state[k]) for k in state_a)


def test_each_phase_has_its_own_labelled_bar_with_a_total(data: HMCData, capsys) -> None:
    result = train_hmc(data, seed=0, progress=True, overrides=SMALL,
                       train_overrides=dict(FAST, epochs=3, patience=5), refit=True)
    err = capsys.readouterr().err.replace("\r", "\n")
    assert re.search(r"toy: valid phase: +100%.* 3/3 ", err), err
    e = result.epochs
    assert re.search(rf"toy: refit on train\+valid: +100%.* {e}/{e} ", err), err
