"""A tiny HMC data set for the recipe tests: a tree of 7 labels whose leaves follow the
features (a learning model beats one that cannot learn), in the ARFF data's layout."""

from __future__ import annotations

import numpy as np
import pytest

import taskgraph as tg
from taskgraph.datasets.hmc import HMCData, Split

TREE = """
taskgraph: 1
tasks:
  a: {type: binary}
  b: {type: binary}
  a1: {type: binary, parents: [a]}
  a2: {type: binary, parents: [a]}
  b1: {type: binary, parents: [b]}
  b2: {type: binary, parents: [b]}
  a11: {type: binary, parents: [a1]}
"""


def _split(rng: np.random.Generator, h: tg.Hierarchy, n: int) -> Split:
    X = rng.normal(size=(n, 6)).astype(np.float32)
    names = list(h.task_names)
    Y = np.zeros((n, len(names)), dtype=np.float32)
    leaf_rule = {"a11": X[:, 0] > 0.3, "a2": X[:, 1] > 0.5, "b1": X[:, 2] > 0.0,
                 "b2": X[:, 3] > 0.8}
    for leaf, on in leaf_rule.items():  # a positive label's ancestors are positive too
        for task in [leaf, *h.ancestors(leaf)]:
            Y[on, names.index(task)] = 1.0
    return Split(X, Y)


@pytest.fixture(scope="module")
def toy() -> HMCData:
    """160 train, 80 valid and 80 test examples; every label is evaluated."""
    h = tg.load_hierarchy(TREE)
    rng = np.random.default_rng(0)
    return HMCData("toy", _split(rng, h, 160), _split(rng, h, 80), _split(rng, h, 80), h,
                   [f"x{i}" for i in range(6)], np.arange(len(h)))
