"""The one table of defaults and search ranges (``HMC_SPACE``) is what the docs show,
and its defaults are the recipe's."""

from __future__ import annotations

import math
from pathlib import Path

from taskgraph.recipes.hmc import HMC_CONFIG, merge_config
from taskgraph.recipes.search import (DEFAULT_BUDGET, HMC_SPACE, config_change,
                                      default_params, space_markdown)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hmc_recipe.md"


def _leaves(config: dict, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in config.items():
        path = f"{prefix}{key}"
        out |= _leaves(value, path + ".") if isinstance(value, dict) else {path}
    return out


def test_the_docs_show_the_table_as_rendered() -> None:
    assert space_markdown() in DOCS.read_text(encoding="utf-8")


def test_the_table_says_what_the_docs_promise() -> None:
    lr = HMC_SPACE["lr"]
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-2, True)
    assert math.log10(lr.high / lr.low) >= 2  # at least two orders of magnitude
    assert HMC_SPACE["width"].choices == (256, 512, 1024)
    assert HMC_SPACE["depth"].choices == (1, 2, 3)
    assert (HMC_SPACE["dropout"].low, HMC_SPACE["dropout"].high) == (0.0, 0.8)
    assert HMC_SPACE["task_dim"].choices == (4, 8, 16)
    assert HMC_SPACE["rounds"].choices == (0, 1)
    assert HMC_SPACE["synapse"].choices == ("gaussian", "bernoulli", "fixed")
    assert {n for n, p in HMC_SPACE.items() if p.when == "rounds"} == {
        "directions", "message", "synapse"}
    assert DEFAULT_BUDGET == {"n_trials": 30, "timeout": 3600.0}
    assert "30 trials or one hour" in DOCS.read_text(encoding="utf-8")
    row = "| lr | `train.lr` | 0.001 | log-uniform [0.0001, 0.01] | Adam's initial learning rate |"
    assert row in space_markdown().splitlines()


def test_the_defaults_are_hmc_config() -> None:
    assert default_params() == {"lr": 1e-3, "width": 512, "depth": 2, "dropout": 0.7,
                                "task_dim": 8, "rounds": 1, "directions": "down+up",
                                "message": "sum", "synapse": "gaussian"}
    # the defaults, applied as a change, leave HMC_CONFIG as it is (plus the schema's
    # default message kind, which HMC_CONFIG leaves implicit)
    merged = merge_config(HMC_CONFIG, config_change(default_params()))
    assert merged == merge_config(HMC_CONFIG, {"model": {"message": "sum"}})


def test_every_setting_of_hmc_config_has_a_row() -> None:
    covered = {p.key for p in HMC_SPACE.values()}
    assert _leaves(HMC_CONFIG) - covered == set()
    for name, p in HMC_SPACE.items():
        if not p.searched:
            assert name == p.key and p.key in _leaves(HMC_CONFIG)
