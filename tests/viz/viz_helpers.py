"""Helpers of the picture tests (a uniquely named module: tests/ has no packages)."""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import numpy as np

import taskgraph as tg

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "hierarchies").glob("*.yaml"))


def random_targets(hierarchy, n: int, rng: np.random.Generator) -> np.ndarray:
    """A target matrix (``target_columns`` order) of random labels, some missing."""
    from taskgraph.train.data import target_columns

    cols = []
    for name, width in target_columns(hierarchy):
        spec = hierarchy[name]
        if spec.type == "regression":
            block = rng.normal(size=(n, width))
        elif spec.type == "multiclass":
            block = rng.integers(0, len(spec.classes), (n, 1)).astype(float)
            block[rng.random((n, 1)) < 0.1] = -1
        else:
            block = (rng.random((n, width)) < 0.4).astype(float)
        cols.append(block)
    return np.concatenate(cols, axis=1)


def tree_hierarchy(n: int, *, seed: int = 0, window: int = 400) -> tg.Hierarchy:
    """A random tree of ``n`` binary tasks ``t0 .. t{n-1}`` (each parent precedes its child)."""
    rng = random.Random(seed)
    g = nx.DiGraph()
    g.add_node("t0")
    for i in range(1, n):
        g.add_edge(f"t{rng.randrange(max(0, i - window), i)}", f"t{i}")
    return tg.Hierarchy.from_networkx(g, name=f"tree{n}")
