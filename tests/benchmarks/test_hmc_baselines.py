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
