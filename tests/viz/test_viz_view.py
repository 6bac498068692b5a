"""What gets drawn: subtrees by root and depth, collapsed views, and their errors."""

from __future__ import annotations

import random
import time

import networkx as nx
import pytest
from viz_helpers import tree_hierarchy

import taskgraph as tg
from taskgraph.errors import TaskGraphError
from taskgraph.viz import Collapsed, DrawingError, GraphTooLargeError, draw, graph_view


def boxes(view):
    return [n for n in view if isinstance(n, Collapsed)]


def test_collapsed_view_of_5000_tasks_fits_and_counts_hidden_tasks(big):
    view = graph_view(big, max_nodes=150)
    g = view.graph
    assert g["collapsed"] and len(view) <= 150
    tasks = [n for n in view if not isinstance(n, Collapsed)]
    assert g["shown"] == len(tasks) and g["total"] == 5000
    assert g["shown"] + g["hidden"] == 5000
    # every box counts exactly the tasks below its parent that are not drawn
    for box in boxes(view):
        below = nx.descendants(big.graph, box.parent) - set(tasks)
        assert box.hidden == len(below) > 1
        assert view.has_edge(box.parent, box)
    assert sum(b.hidden for b in boxes(view)) == g["hidden"]  # a tree: no overlap
    # whole top levels, then opened subtrees: every drawn task's parent is drawn too
    depths = big.depths
    assert all(depths[t] <= g["levels"] - 1 for t in big.task_names[:1])
    assert {t for t in big.task_names if depths[t] < g["levels"]} <= set(tasks)
    assert all(view.has_edge(p, t) for t in tasks for p in big.parents(t))
    assert len(view) >= 140  # the room left after whole levels is used


def test_a_graph_within_max_nodes_is_drawn_whole():
    h = tg.load_hierarchy("hierarchies/cell_functions.yaml")
    view = graph_view(h)
    assert set(view) == set(h.task_names) and not view.graph["collapsed"]
    assert set(view.edges) == set(h.graph.edges)


def test_root_and_depth_give_the_breadth_first_subtree(big):
    root = "t1"
    for depth in (0, 1, 2, 3):
        view = graph_view(big, root=root, depth=depth, max_nodes=5000)
        expected = nx.single_source_shortest_path_length(big.graph, root, cutoff=depth)
        assert {n for n in view if not isinstance(n, Collapsed)} == set(expected)
        for box in boxes(view):  # the cut-off subtrees, each with its size
            assert expected[box.parent] == depth
            assert box.hidden == len(nx.descendants(big.graph, box.parent))
    whole = graph_view(big, root=root, max_nodes=10_000)
    assert len(whole) == 1 + len(nx.descendants(big.graph, root))


def test_root_without_depth_collapses_a_large_subtree(big):
    view = graph_view(big, root="t0", max_nodes=60)
    assert view.graph["collapsed"] and len(view) <= 60
    assert "t0" in view


def test_a_subtree_over_max_nodes_is_an_error_that_says_what_fits(big):
    with pytest.raises(GraphTooLargeError) as info:
        graph_view(big, root="t0", depth=6, max_nodes=50)
    message = str(info.value)
    n = len(nx.single_source_shortest_path_length(big.graph, "t0", cutoff=6))
    assert f"{n:,} tasks" in message and "max_nodes=50" in message
    assert "--depth" in message and "--root" in message and "fits" in message
    assert isinstance(info.value, TaskGraphError) and isinstance(info.value, ValueError)


def test_unknown_root_suggests_a_name():
    h = tg.load_hierarchy("hierarchies/animals.yaml")
    with pytest.raises(DrawingError, match=r"unknown root task 'mamal'.*did you mean 'mammal'"):
        graph_view(h, root="mamal")


@pytest.mark.parametrize("kw", [{"depth": -1}, {"max_nodes": 1}, {"max_nodes": "9"},
                                {"depth": True}])
def test_bad_options_are_refused(kw):
    with pytest.raises(DrawingError):
        graph_view(tg.load_hierarchy("hierarchies/animals.yaml"), **kw)


def test_too_many_roots_still_fit():
    g = nx.DiGraph()
    g.add_edges_from((f"r{i}", f"c{i}") for i in range(300))
    view = graph_view(g, max_nodes=40)
    assert len(view) <= 40
    other = [b for b in boxes(view) if b.parent is None]
    assert len(other) == 1
    shown = [n for n in view if not isinstance(n, Collapsed)]
    hidden = sum(b.hidden for b in boxes(view))
    assert len(shown) + hidden == 600


def test_wordnet_sized_subtree_is_fast(tmp_path):
    rng = random.Random(0)  # a random recursive tree of 82,000 tasks
    g = nx.DiGraph((rng.randrange(i), i) for i in range(1, 82_000))
    start = time.perf_counter()
    view = graph_view(g, root=0, depth=3, max_nodes=100_000)
    assert time.perf_counter() - start < 2.0  # linear: ~0.1 s; quadratic would take minutes
    expected = nx.single_source_shortest_path_length(g, 0, cutoff=3)
    assert view.graph["shown"] == len(expected)
    deep = max(g, key=lambda n: (len(g[n]) if len(g[n]) < 40 else -1, -n))
    start = time.perf_counter()
    drawing = draw(g, tmp_path / "sub.png", root=deep, depth=1)
    assert time.perf_counter() - start < 10.0
    assert drawing.view.graph["shown"] == 1 + len(g[deep])


def test_large_generated_hierarchy_draws_collapsed(tmp_path):
    h = tree_hierarchy(800, seed=3, window=50)
    drawing = draw(h, tmp_path / "big.svg", max_nodes=80, overview=False)
    assert len(drawing.view) <= 80 and drawing.view.graph["collapsed"]
    assert (tmp_path / "big.svg").stat().st_size > 0
