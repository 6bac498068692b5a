"""An overview of a large hierarchy that a screen can show: the top levels, each layer
no wider than a width budget, every cut-off subtree folded into its parent's box.

:func:`overview_view` starts from the roots and opens nodes level by level (within a
level, the node with the most descendants first): opening a node draws all its
undrawn children one layer below it; a node is opened only when every layer it
changes stays within ``width`` inches (boxes measured as :func:`~taskgraph.viz.draw`
draws them, 0.2 in apart) and the drawing stays within ``max_nodes`` boxes. A drawn
node with undrawn children carries ``hidden``, the number of tasks reachable from it
through undrawn tasks, written ``+N tasks`` under its name. When even the roots do not
fit, the roots with the most descendants are drawn and one box counts the others.

Unlike the collapsed view of :func:`~taskgraph.viz.view.graph_view` (one ``+N tasks``
box under every cut-off node), no layer gets a box per cut-off subtree, so 18 FunCat
roots with 499 tasks below them fit in one screen-wide picture.

Example:
    >>> import networkx as nx
    >>> tree = nx.balanced_tree(4, 4, create_using=nx.DiGraph)  # 341 nodes
    >>> view = overview_view(tree, width=6.0)
    >>> view.graph["overview"], view.graph["shown"] + view.graph["hidden"] == 341
    (True, True)
    >>> view.nodes[0].get("hidden", 0), sum(1 for n in view if view.nodes[n].get("hidden")) > 0
    (0, True)
"""

from __future__ import annotations

import heapq
from typing import Any, Hashable

import networkx as nx

from taskgraph.viz.labels import Measure
from taskgraph.viz.view import Collapsed, DrawingError, _check_int, _hidden_below, as_graph
from taskgraph.vocabulary import suggest

__all__ = ["overview_view", "OVERVIEW_WIDTH", "OVERVIEW_DPI", "MAX_WIDTH_PX", "GAP"]

#: An overview PNG is at most this many pixels wide, at :data:`OVERVIEW_DPI`
#: (8.5-pt task names are then 14 pixels tall: a screen shows it 1:1).
MAX_WIDTH_PX = 1600
OVERVIEW_DPI = 120
#: The widest layer of an overview (inches): the picture's margins (0.4 in a side) and
#: a little slack on top stay within :data:`MAX_WIDTH_PX`.
OVERVIEW_WIDTH = MAX_WIDTH_PX / OVERVIEW_DPI - 0.9
GAP = 0.2   # space between two boxes of a layer (inches), as draw() lays them out


def overview_view(source: Any, *, root: Hashable | None = None,
                  width: float = OVERVIEW_WIDTH, max_nodes: int = 200,
                  measure: Measure | None = None) -> nx.DiGraph:
    """The overview of ``source`` (see the module docstring).

    Args:
        source: a :class:`~taskgraph.hierarchy.Hierarchy`, a trained model or an
            ``nx.DiGraph`` (edges parent -> child).
        root: the overview of this task's descendants only.
        width: the widest a layer may be, in inches.
        max_nodes: the most boxes.
        measure: box widths (default: measured with matplotlib, as drawn).

    Returns:
        An ``nx.DiGraph`` as :func:`~taskgraph.viz.view.graph_view` returns, with
        ``graph["overview"] = True`` and node attribute ``hidden`` where a subtree is
        cut off.

    Raises:
        DrawingError: an unknown ``root``, a ``width`` that is not positive, or a bad
            ``max_nodes``.
    """
    graph, name, _ = as_graph(source)
    _check_int("max_nodes", max_nodes, 2)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise DrawingError(f"width: expected a positive number of inches, got {width!r}")
    if root is not None and root not in graph:
        raise DrawingError(f"unknown root task {root!r}"
                           f"{suggest(root, graph.nodes) if isinstance(root, str) else ''}"
                           f"; the graph has {graph.number_of_nodes():,} tasks")
    measure = measure or Measure()
    if root is not None:
        scope = {root: None, **dict.fromkeys(nx.descendants(graph, root))}
        graph = graph.subgraph(scope)
    sources = [n for n in graph if graph.in_degree(n) == 0]
    below: dict[Hashable, int] = {}

    def descendants(node: Hashable) -> int:
        if node not in below:
            below[node] = len(nx.descendants(graph, node))
        return below[node]

    def box(node: Hashable, shown: dict) -> float:
        spec = graph.nodes[node].get("spec")
        closed = any(c not in shown for c in graph.successors(node))
        return measure.width(node, spec, hidden=descendants(node) if closed else 0)

    shown: dict[Hashable, int] = {}  # node -> layer
    roots = sorted(sources, key=lambda n: -descendants(n))
    used, extra = 0.0, None
    for i, node in enumerate(roots):
        w = box(node, {})
        rest = len(roots) - i - 1
        room = measure.width(Collapsed(None, rest), None) + GAP if rest else 0.0
        if len(shown) + 1 + bool(rest) > max_nodes or used + w + room > width:
            extra = Collapsed(None, 0)  # counted once the drawn roots are known
            break
        shown[node] = 0
        used += w + GAP
    shown = {n: 0 for n in sources if n in shown}  # file order
    layer_width = {0: used - GAP}
    count = len(shown) + (extra is not None)
    heap = [(0, -descendants(n), i, n) for i, n in enumerate(shown)
            if any(True for _ in graph.successors(n))]
    heapq.heapify(heap)
    tick = len(heap)
    while heap:
        layer, _, _, node = heapq.heappop(heap)
        kids = [c for c in graph.successors(node) if c not in shown]
        if not kids or count + len(kids) > max_nodes:
            continue
        trial = dict(shown)
        trial.update({c: 0 for c in kids})
        grow: dict[int, float] = {}
        for c in kids:
            depth = 1 + max(shown[p] for p in graph.predecessors(c) if p in shown)
            trial[c] = depth
            grow[depth] = grow.get(depth, 0.0) + box(c, trial) + GAP
        layer = shown[node]
        grow[layer] = grow.get(layer, 0.0) + box(node, trial) - box(node, shown)
        if any(layer_width.get(d, -GAP) + g > width for d, g in grow.items()):
            continue
        for d, g in grow.items():
            layer_width[d] = layer_width.get(d, -GAP) + g
        shown = trial
        count += len(kids)
        for c in kids:
            if any(True for _ in graph.successors(c)):
                tick += 1
                heapq.heappush(heap, (shown[c], -descendants(c), tick, c))
    return _build(graph, name, shown, extra, root)


def _build(graph: nx.DiGraph, name: str, shown: dict, extra: Collapsed | None,
           root: Hashable | None) -> nx.DiGraph:
    view = nx.DiGraph()
    for node in graph:  # graph order keeps the file order of tasks
        if node in shown:
            hidden = _hidden_below(graph, node, shown, None)
            view.add_node(node, **graph.nodes[node], **({"hidden": hidden} if hidden else {}))
    view.add_edges_from((u, v) for u in view for v in graph.successors(u) if v in shown)
    total = graph.number_of_nodes()
    if extra is not None:
        covered = set(shown)
        for node in shown:
            covered |= nx.descendants(graph, node)
        view.add_node(Collapsed(None, total - len(covered)))
    view.graph.update(name=name, total=total, shown=len(shown), hidden=total - len(shown),
                      collapsed=True, overview=True, levels=max(shown.values(), default=0) + 1,
                      boxes=int(extra is not None), root=root, depth=None)
    return view
