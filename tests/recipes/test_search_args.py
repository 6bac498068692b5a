"""Bad arguments of the search raise the project's errors; a missing Optuna names the
extra to install. None of these needs Optuna."""

from __future__ import annotations

import sys

import pytest

from taskgraph.errors import ArgumentError
from taskgraph.recipes.hmc import train_hmc
from taskgraph.recipes.search import config_change, search_hmc

SMALL = {"encoder_spec": {"hidden": [16]}, "task_dim": 4}


@pytest.mark.parametrize("kwargs, message", [
    ({"search": "grid"}, r"search: expected True, False, 'optuna' or a sequence.*'grid'"),
    ({"search": []}, r"search: expected a non-empty sequence of candidate dictionaries"),
    ({"search": [{}, 3]}, r"search: expected a non-empty sequence of candidate dictionaries"),
    ({"search_budget": {"n_trials": 2}}, r"search_budget: only used with search='optuna'"),
    ({"search": "optuna", "search_budget": 5}, r"search_budget: expected a mapping"),
    ({"search": "optuna", "search_budget": {"trials": 5}},
     r"search_budget: unknown key 'trials'; expected some of n_trials, timeout"),
    ({"search": "optuna", "search_budget": {"n_trials": 0}},
     r"search_hmc: n_trials: expected a positive integer, got 0"),
])
def test_bad_search_arguments_of_train_hmc(toy, kwargs, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        train_hmc(toy, progress=False, overrides=SMALL, **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({}, r"give n_trials, timeout or both"),
    ({"n_trials": 1.5}, r"n_trials: expected a positive integer, got 1\.5"),
    ({"n_trials": True}, r"n_trials: expected a positive integer, got True"),
    ({"timeout": 0}, r"timeout: expected a finite number of seconds > 0, got 0"),
    ({"timeout": float("inf")}, r"timeout: expected a finite number of seconds > 0, got inf"),
    ({"n_trials": 2, "warmup_epochs": -1}, r"warmup_epochs: expected an integer >= 0, got -1"),
    ({"n_trials": 2, "train_overrides": {"lr_factor": 3}}, r"search_hmc: train\.lr_factor"),
])
def test_bad_budgets_of_search_hmc(toy, kwargs, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        search_hmc(toy, **kwargs)


def test_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(ArgumentError, match=r"unknown parameter 'widht'"):
        config_change({"widht": 256})


def test_without_optuna_the_error_names_the_extra(toy, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)  # `import optuna` now fails
    with pytest.raises(ImportError, match=r'pip install "taskgraph\[search\]"'):
        search_hmc(toy, n_trials=1)
    with pytest.raises(ImportError, match=r'pip install "taskgraph\[search\]"'):
        train_hmc(toy, progress=False, search="optuna", search_budget={"n_trials": 1})
