"""The layered layout: parents above children, crossings reduced, boxes apart."""

from __future__ import annotations

import networkx as nx
import pytest
from viz_helpers import SHIPPED
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskgraph as tg
from taskgraph.viz import assign_layers, compute_layout, count_crossings, graph_view, \
    layered_layout
from taskgraph.viz.layout import Dummy

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def dags(draw, max_nodes: int = 25):
    """A random DAG: edges only from a lower to a higher node number."""
    n = draw(st.integers(1, max_nodes))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=3 * n, unique=True)) if pairs else []
    g = nx.DiGraph()
    g.add_nodes_from(draw(st.permutations(range(n))))  # any insertion order
    g.add_edges_from(chosen)
    return g


def check_layers(g: nx.DiGraph, pos: dict) -> None:
    assert set(pos) == set(g)
    for u, v in g.edges:
        assert pos[u][1] < pos[v][1], f"{u} -> {v}: parent layer {pos[u][1]} >= {pos[v][1]}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_hierarchies_put_every_parent_above_its_children(path):
    h = tg.load_hierarchy(path)
    pos = layered_layout(graph_view(h))
    check_layers(h.graph, pos)
    assert len(pos) == len(h)


@SETTINGS
@given(dags())
def test_random_dags_put_every_parent_above_its_children(g):
    check_layers(g, layered_layout(g))
    layers = assign_layers(g)
    for v in g:  # longest path: one below the deepest parent, sources on top
        assert layers[v] == max((layers[u] + 1 for u in g.predecessors(v)), default=0)


@SETTINGS
@given(dags())
def test_barycenter_sweeps_never_add_crossings(g):
    before = count_crossings(compute_layout(g, sweeps=0))
    after = count_crossings(compute_layout(g, sweeps=4))
    assert after <= before


@SETTINGS
@given(dags(), st.lists(st.floats(0.1, 3.0), min_size=25, max_size=25))
def test_boxes_of_a_layer_keep_their_gap(g, sizes):
    widths = {n: sizes[i % len(sizes)] for i, n in enumerate(g)}
    lay = compute_layout(g, widths=widths, gap=0.25)
    for level in lay.levels:
        for a, b in zip(level, level[1:]):
            wa = 0.1 if isinstance(a, Dummy) else widths[a]
            wb = 0.1 if isinstance(b, Dummy) else widths[b]
            assert lay.x[b] - lay.x[a] >= (wa + wb) / 2 + 0.25 - 1e-9


def test_sweeps_remove_the_crossings_of_a_bad_first_order():
    # depth-first order: [c, e, d] under [r1, r2]; r2 -> c and e -> f / d -> f cross
    g = nx.DiGraph([("r1", "c"), ("r2", "d"), ("r1", "e"), ("r2", "c"), ("e", "f"),
                    ("d", "f"), ("r1", "f")])
    first = compute_layout(g, sweeps=0)
    best = compute_layout(g, sweeps=4)
    assert count_crossings(first) > 0
    assert count_crossings(best) < count_crossings(first)


def test_count_crossings_counts_swapped_ends():
    g = nx.DiGraph([("a", "c"), ("b", "d")])
    lay = compute_layout(g, sweeps=0)
    assert count_crossings(lay) == 0
    lay.levels[1].reverse()
    assert count_crossings(lay) == 1


def test_long_edges_get_one_dummy_per_crossed_layer():
    g = nx.DiGraph([("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")])
    lay = compute_layout(g)
    assert [d.layer for d in lay.routes[("a", "d")]] == [1, 2]
    assert all(isinstance(n, Dummy) or n in g for level in lay.levels for n in level)


def test_a_cycle_is_refused():
    with pytest.raises(nx.NetworkXUnfeasible):
        layered_layout(nx.DiGraph([("a", "b"), ("b", "a")]))
