"""The automatic search on valid (``taskgraph.recipes.search``, Optuna) on a tiny set."""

from __future__ import annotations

import pytest

from taskgraph.recipes.hmc import HMC_CONFIG, merge_config, train_hmc
from taskgraph.recipes.search import HMC_SPACE, config_change, default_params, search_hmc

optuna = pytest.importorskip("optuna")

FAST = {"epochs": 4, "batch_size": 16, "patience": 2}


def _key(record: dict) -> tuple:
    return (record["number"], sorted(record["params"].items()), record["state"],
            record["valid_auprc"], record["epoch"], record["curve"])


def test_three_trials_return_their_records_and_repeat_with_the_seed(toy) -> None:
    a = search_hmc(toy, n_trials=3, seed=0, train_overrides=FAST)
    assert [r["number"] for r in a.records] == [0, 1, 2]
    assert a.records[0]["params"] == default_params()  # trial 0 is the default
    for r in a.records:
        assert r["state"] == "complete" and len(r["curve"]) == r["epochs"] <= 4
        assert r["valid_auprc"] == max(r["curve"]) == r["curve"][r["epoch"] - 1]
        assert r["candidate"] == config_change(r["params"])
        lr = r["params"]["lr"]
        assert HMC_SPACE["lr"].low <= lr <= HMC_SPACE["lr"].high
    best = max(a.records, key=lambda r: r["valid_auprc"])
    assert a.best is best and a.valid_auprc == best["valid_auprc"]
    assert a.config == merge_config(merge_config(HMC_CONFIG, {"train": FAST}), best["candidate"])
    assert a.phase.history.best_epoch == best["epoch"]
    b = search_hmc(toy, n_trials=3, seed=0, train_overrides=FAST)
    assert [_key(r) for r in a.records] == [_key(r) for r in b.records]
    other = search_hmc(toy, n_trials=2, seed=1, train_overrides=FAST)  # another sampler seed
    assert other.records[0]["params"] == default_params()
    assert other.records[1]["params"] != a.records[1]["params"]


class _PruneAllButTheFirst(optuna.pruners.BasePruner):
    """Prunes every trial after trial 0 once it has reported two epochs."""

    def prune(self, study, trial) -> bool:
        return trial.number > 0 and len(trial.intermediate_values) >= 2


def test_pruned_trials_stop_early_and_are_recorded(toy) -> None:
    found = search_hmc(toy, n_trials=3, seed=0, train_overrides=FAST,
                       pruner=_PruneAllButTheFirst())
    assert [r["state"] for r in found.records] == ["complete", "pruned", "pruned"]
    assert [r["epochs"] for r in found.records[1:]] == [2, 2]
    assert found.best["number"] == 0
    states = [t.state for t in found.study.trials]
    assert states == [optuna.trial.TrialState.COMPLETE] + [optuna.trial.TrialState.PRUNED] * 2
    # what was reported to each trial is its per-epoch valid score
    for trial, record in zip(found.study.trials, found.records):
        assert [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)] \
            == record["curve"]


def test_train_hmc_runs_the_search_and_refits_the_winner(toy) -> None:
    result = train_hmc(toy, seed=0, progress=False, train_overrides=FAST, refit=True,
                       search="optuna", search_budget={"n_trials": 2})
    assert [t["number"] for t in result.trials] == [0, 1]
    winner = max(result.trials, key=lambda t: t["valid_auprc"])
    assert result.valid_auprc == winner["valid_auprc"] and result.epochs == winner["epoch"]
    assert len(result.history) == result.epochs  # the refit's epochs
    assert result.violations == 0 and 0.0 < result.test_auprc <= 1.0
