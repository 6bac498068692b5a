"""import_arff: the class hierarchy declared in an HMC ARFF file, as a Hierarchy.

Label counts and edges are taken from the declaration line of the raw file text.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import networkx as nx
import pytest

from taskgraph.datasets.hmc import shipped_root
from taskgraph.hierarchy import load_hierarchy
from taskgraph.importers import import_arff

SHIPPED = Path(shipped_root()) / "cellcycle_FUN.train.arff.gz"
GO_SLICE = Path(__file__).resolve().parents[1] / "data" / "cellcycle_GO_slice.train.arff.gz"


def declaration(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if "hierarchical" in line:
                return line.split("hierarchical", 1)[1].strip().split(",")
    raise AssertionError("no hierarchical attribute")


@pytest.fixture(scope="module")
def fun():
    return import_arff(SHIPPED)


@pytest.fixture(scope="module")
def go():
    return import_arff(GO_SLICE)


def test_shipped_funcat_is_a_tree(fun):
    paths = declaration(SHIPPED)
    assert len(fun) == len(paths) == 499
    assert fun.name == "cellcycle_FUN"
    assert list(fun.task_names) == paths
    assert all(len(fun.parents(t)) <= 1 for t in fun)
    assert nx.is_forest(fun.graph.to_undirected())
    for path in paths:  # each path's parent is its prefix
        expected = (path.rsplit("/", 1)[0],) if "/" in path else ()
        assert fun.parents(path) == expected
    assert set(fun.roots) == {p for p in paths if "/" not in p}
    assert fun.model.coherent is True
    assert all(fun[t].type == "binary" for t in fun)


def test_shipped_round_trip(fun):
    assert load_hierarchy(fun.to_yaml()) == fun


def test_name_argument():
    assert import_arff(SHIPPED, name="yeast").name == "yeast"


def test_go_slice_is_a_dag_with_root(go):
    pairs = {tuple(item.split("/")) for item in declaration(GO_SLICE)}
    labels = {x for pair in pairs for x in pair}
    assert go.name == "cellcycle_GO_slice"
    assert set(go.task_names) == labels and len(go) == 4126
    assert set(go.graph.edges) == pairs
    assert go.roots == ("root",)
    assert set(go.children("root")) == {"GO0003674", "GO0005575", "GO0008150"}
    multi = [t for t in go if len(go.parents(t)) > 1]
    assert multi
    assert nx.is_directed_acyclic_graph(go.graph)
    t = multi[0]
    assert set(go.parents(t)) == {p for p, c in pairs if c == t}


def test_go_slice_round_trip(go):
    assert load_hierarchy(go.to_yaml()) == go
