"""The baseline harness's table cells and HiClass label paths (benchmarks/ on sys.path)."""

from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))

from _hiclass import tree_paths  # noqa: E402
from hmc_baselines import _cell  # noqa: E402


def test_cell_says_one_seed_and_identical_seeds_instead_of_a_zero_std():
    assert _cell([0.25]) == "0.2500 (1 seed)"
    assert _cell([0.17, 0.17, 0.17]) == "0.1700 (all 3 seeds)"
    # mean 0.2, sample std sqrt(((0.1)^2 + 0 + (0.1)^2) / 2) = 0.1
    assert _cell([0.1, 0.2, 0.3]) == "0.2000 ± 0.1000"
    assert _cell([None, None]) == "—"
    assert _cell([3.0, 5.0], "{:.0f}") == "4 ± 1"


def test_tree_paths_are_the_label_sets_leaves():
    # tree: t0 -> t1 -> t2, t0 -> t3; row 0 has t0, t1, t3 (two leaves), row 1 nothing
    parent = np.array([-1, 0, 1, 0])
    Y = np.array([[1, 1, 0, 1], [0, 0, 0, 0]])
    assert tree_paths(Y, parent) == [[["t0", "t1"], ["t0", "t3"]], []]


def test_records_from_two_runs_fill_one_table(tmp_path):
    from hmc_baselines import append_record, main

    records = str(tmp_path / "runs.jsonl")
    run = {"auprc": 0.25, "hf1": 0.3, "threshold": 0.2, "violations": np.int64(0),
           "seconds": 10.0, "note": ""}
    append_record(records, "toy_FUN", "flat", {**run, "seed": 0})
    append_record(records, "toy_FUN", "flat", {**run, "seed": 1, "auprc": 0.35})
    append_record(records, "toy_FUN", "flat", {**run, "seed": 1, "auprc": 0.27})  # wins
    append_record(records, "other_FUN", "flat", {**run, "seed": 0})  # not asked for
    out = tmp_path / "table.md"
    assert main(["--table-only", "--records", records, "--datasets", "toy_FUN",
                 "--methods", "flat", "--out", str(out)]) == 0
    text = out.read_text()
    # seeds 0 and 1: mean 0.26, sample std sqrt(2 * 0.01^2 / 1) = 0.0141
    assert "| toy_FUN | — | 0.2600 ± 0.0141 |" in text
    assert "other_FUN" not in text


def test_table_only_needs_records(tmp_path, capsys):
    from hmc_baselines import main

    assert main(["--table-only", "--methods", "flat", "--out", str(tmp_path / "t.md")]) == 2
    assert "--records" in capsys.readouterr().err


def test_paired_differences_by_hand():
    from hmc_baselines import paired_lines

    def runs(values):
        return [{"seed": s, "auprc": v} for s, v in enumerate(values)]

    rows = {"toy_FUN": {"taskgraph": runs([0.30, 0.31, 0.32]), "flat": runs([0.29, 0.30, 0.30]),
                        "other": runs([0.10, 0.10, 0.10])}}
    line = next(l for l in paired_lines(rows, ["flat", "other"]) if l.startswith("| toy_FUN"))
    # flat: differences 0.01, 0.01, 0.02: mean 0.0133, std 0.0058, t = 4.0, p = 0.057 (df 2)
    # other: 0.20, 0.21, 0.22: mean 0.21, std 0.01, t = 36.4, p < 0.001
    assert line == "| toy_FUN | +0.0133 ± 0.0058 (3 seeds) | +0.2100 ± 0.0100 ** (3 seeds) |"
