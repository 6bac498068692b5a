"""What part of a task graph to draw: a whole hierarchy, a subtree, or a collapsed view.

A drawing stays readable only up to a few hundred boxes. :func:`graph_view` picks them:

* ``root`` and/or ``depth``: the descendants of ``root`` (or of every root) up to
  ``depth`` levels, found by a breadth-first search that stops at ``depth`` (linear
  in what it visits, so a subtree of an 82,000-node WordNet costs only its own size).
  A subtree larger than ``max_nodes`` is an error that says which depth would fit.
* otherwise, a graph larger than ``max_nodes`` is *collapsed*: the top levels that fit,
  then the biggest cut-off subtrees opened while room is left; each subtree still cut
  off is one :class:`Collapsed` box ``+N tasks``.

The view is an ``nx.DiGraph`` whose nodes are task names (attribute ``spec``, the
:class:`~taskgraph.hierarchy.TaskSpec` when known) and :class:`Collapsed` boxes; its
``graph`` attributes say what was left out (``total``, ``shown``, ``hidden``, ...).

Example:
    >>> import networkx as nx
    >>> tree = nx.balanced_tree(3, 4, create_using=nx.DiGraph)  # 121 nodes
    >>> view = graph_view(tree, max_nodes=50)
    >>> view.graph["shown"], view.graph["hidden"], len(view) <= 50
    (31, 90, True)
    >>> sorted({n.hidden for n in view if isinstance(n, Collapsed)})  # "+3" and "+12" boxes
    [3, 12]
    >>> sub = graph_view(tree, root=1, depth=1)  # task 1, its 3 children, 3 boxes
    >>> sub.graph["shown"], sub.graph["boxes"], len(sub)
    (4, 3, 7)
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping

import networkx as nx

from taskgraph.errors import TaskGraphError
from taskgraph.vocabulary import suggest

__all__ = ["Collapsed", "DrawingError", "GraphTooLargeError", "graph_view", "as_graph",
           "attach_synapses"]


class DrawingError(TaskGraphError, ValueError):
    """A drawing cannot be made as asked (unknown root, format or option)."""


class GraphTooLargeError(DrawingError):
    """The requested part of the graph has more boxes than ``max_nodes``."""


@dataclass(frozen=True)
class Collapsed:
    """A box standing for ``hidden`` tasks below ``parent`` that are not drawn.

    ``parent`` is ``None`` for the box of roots that did not fit.
    """

    parent: Hashable | None
    hidden: int

    def __str__(self) -> str:
        return f"+{self.hidden:,} task{'s' if self.hidden != 1 else ''}"


def as_graph(source: Any) -> tuple[nx.DiGraph, str, Any]:
    """``(graph, name, model or None)`` for a Hierarchy, a TaskGraphModel or a DiGraph."""
    if isinstance(source, nx.DiGraph):
        return source, str(source.graph.get("name", "graph")), None
    hierarchy = getattr(source, "hierarchy", None)
    if hierarchy is not None and hasattr(source, "synapses"):
        return hierarchy.graph, hierarchy.name, source
    if hasattr(source, "graph") and hasattr(source, "tasks"):
        return source.graph, source.name, None
    raise DrawingError(f"expected a Hierarchy, a TaskGraphModel or a networkx DiGraph, "
                       f"got {type(source).__name__}")


def _check_int(name: str, value: Any, least: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < least):
        raise DrawingError(f"{name}: expected an integer >= {least}, got {value!r}")


def _bfs(graph: nx.DiGraph, sources: Iterable[Hashable], cutoff: int | None) -> dict:
    """``{node: distance}`` from ``sources``, not expanding beyond ``cutoff``."""
    dist = {s: 0 for s in sources}
    queue = deque(dist)
    while queue:
        node = queue.popleft()
        d = dist[node]
        if cutoff is not None and d >= cutoff:
            continue
        for child in graph.successors(node):
            if child not in dist:
                dist[child] = d + 1
                queue.append(child)
    return dist


def _longest_depths(graph: nx.DiGraph, nodes: Mapping[Hashable, Any]) -> dict:
    """Longest-path depth of each node within the induced subgraph on ``nodes`` (Kahn)."""
    indegree = {n: sum(1 for p in graph.predecessors(n) if p in nodes) for n in nodes}
    depth = {n: 0 for n, k in indegree.items() if k == 0}
    queue = deque(depth)
    while queue:
        node = queue.popleft()
        for child in graph.successors(node):
            if child in nodes:
                depth[child] = max(depth.get(child, 0), depth[node] + 1)
                indegree[child] -= 1
                if indegree[child] == 0:
                    queue.append(child)
    return depth


def _hidden_below(graph: nx.DiGraph, node: Hashable, shown: Mapping[Hashable, Any],
                  scope: Mapping[Hashable, Any] | None) -> int:
    """Tasks in ``scope`` (default: all) reachable from ``node`` through undrawn tasks."""
    count, seen = 0, set()
    stack = [c for c in graph.successors(node) if c not in shown]
    while stack:
        child = stack.pop()
        if child in seen or (scope is not None and child not in scope):
            continue
        seen.add(child)
        count += 1
        stack.extend(c for c in graph.successors(child) if c not in shown)
    return count


def _expand(graph: nx.DiGraph, shown: dict, depth: Mapping[Hashable, int],
            budget: int) -> None:
    """Open cut-off subtrees, biggest first, while their tasks and boxes fit in ``budget``.

    Opening the box of ``n`` costs its hidden children, plus one box for each child
    with hidden children of its own, minus ``n``'s box; boxes only ever disappear
    elsewhere, so the total never exceeds the budget.
    """
    size: dict[Hashable, int] = {}  # subtree sizes (over-counted in a DAG): the priority
    for node in sorted(depth, key=depth.__getitem__, reverse=True):
        size[node] = 1 + sum(size[c] for c in graph.successors(node) if c in size)
    heap = [(-size[n], i, n) for i, n in enumerate(shown)
            if any(c not in shown for c in graph.successors(n))]
    heapq.heapify(heap)
    tick = len(heap)
    while heap and budget > 0:
        _, _, node = heapq.heappop(heap)
        kids = [c for c in graph.successors(node) if c not in shown]
        grand = [c for c in kids
                 if any(g not in shown and g not in kids for g in graph.successors(c))]
        cost = len(kids) + len(grand) - 1
        if not kids or cost > budget:
            continue
        shown.update(dict.fromkeys(kids))
        budget -= cost
        for c in grand:
            tick += 1
            heapq.heappush(heap, (-size[c], tick, c))


def _collapse(graph: nx.DiGraph, scope: Mapping[Hashable, Any], sources: list[Hashable],
              max_nodes: int) -> tuple[dict, list[Collapsed], int]:
    """The top levels of ``scope`` that fit in ``max_nodes`` boxes, the biggest cut-off
    subtrees opened while room is left, and one box per subtree still cut off."""
    depth = _longest_depths(graph, scope)
    top = max(depth.values(), default=0)
    count = [0] * (top + 2)
    frontier = [0] * (top + 2)  # frontier[d]: shown nodes with a child deeper than d
    for node, d in depth.items():
        count[d] += 1
        deepest = max((depth[c] for c in graph.successors(node) if c in depth), default=d)
        if deepest > d:
            frontier[d] += 1
            frontier[deepest] -= 1
    best, cum, open_, used = -1, 0, 0, 0
    for d in range(top + 1):
        cum += count[d]
        open_ += frontier[d]
        if cum + open_ <= max_nodes:
            best, used = d, cum + open_
    if best >= 0:
        shown = {n: None for n, d in depth.items() if d <= best}
        _expand(graph, shown, depth, max_nodes - used)
        boxes = [Collapsed(n, _hidden_below(graph, n, shown, None)) for n in shown
                 if any(c not in shown for c in graph.successors(n))]
        # a box hiding one task takes the room of that task: draw the task instead
        single = [next(c for c in graph.successors(b.parent) if c not in shown)
                  for b in boxes if b.hidden == 1]
        shown.update(dict.fromkeys(single))
        boxes = [b for b in boxes if b.hidden != 1]
        return shown, boxes, best + 1
    # even the sources do not fit: show some of them, each with its box, and one box
    keep = max((max_nodes - 1) // 2, 1)
    shown = {n: None for n in sources[:keep]}
    boxes = [Collapsed(n, _hidden_below(graph, n, shown, scope)) for n in shown
             if any(True for _ in graph.successors(n))]
    covered = set(shown)
    for n in shown:
        covered |= nx.descendants(graph, n) & scope.keys()
    boxes.append(Collapsed(None, len(scope) - len(covered)))
    return shown, boxes, 1


def graph_view(source: Any, *, root: Hashable | None = None, depth: int | None = None,
               max_nodes: int = 200) -> nx.DiGraph:
    """The part of ``source`` to draw (see the module docstring).

    Args:
        source: a :class:`~taskgraph.hierarchy.Hierarchy`, a trained model, or an
            ``nx.DiGraph`` (edges parent -> child).
        root: draw only this task and its descendants.
        depth: draw only this many levels below ``root`` (or below every root).
        max_nodes: the most boxes (tasks and ``+N tasks`` boxes) in a drawing.

    Returns:
        An ``nx.DiGraph``; its ``graph`` dict holds ``name``, ``total`` (tasks in the
        requested part), ``shown``, ``hidden``, ``collapsed`` (bool), ``levels``,
        ``root`` and ``depth``.

    Raises:
        DrawingError: unknown ``root`` (with a suggestion) or a bad option.
        GraphTooLargeError: ``depth`` was given and the subtree still has more than
            ``max_nodes`` tasks.
    """
    graph, name, _ = as_graph(source)
    _check_int("depth", depth, 0)
    _check_int("max_nodes", max_nodes, 2)
    if root is not None and root not in graph:
        raise DrawingError(f"unknown root task {root!r}"
                           f"{suggest(root, graph.nodes) if isinstance(root, str) else ''}"
                           f"; the graph has {graph.number_of_nodes():,} tasks")
    sources = [root] if root is not None else [n for n in graph if graph.in_degree(n) == 0]
    scope = _bfs(graph, sources, depth)
    boxes: list[Collapsed] = []
    levels = None
    if depth is not None and len(scope) > max_nodes:
        fits = [d for d in range(depth) if sum(1 for v in scope.values() if v <= d) <= max_nodes]
        where = f"the subtree of {root!r}" if root is not None else "the graph"
        hint = (f"--depth {fits[-1]} fits" if fits else "no depth fits below this root")
        raise GraphTooLargeError(
            f"{where} to depth {depth} has {len(scope):,} tasks, more than max_nodes="
            f"{max_nodes}; {hint}: draw less with a smaller --depth or a deeper --root, "
            f"or raise --max-nodes")
    if depth is None and len(scope) > max_nodes:
        shown, boxes, levels = _collapse(graph, scope, sources, max_nodes)
    else:
        shown = scope
        if depth is not None:  # mark the subtrees cut off at the depth limit, if room
            cut = [Collapsed(n, _hidden_below(graph, n, shown, None)) for n, d in scope.items()
                   if d == depth and any(c not in shown for c in graph.successors(n))]
            if len(shown) + len(cut) <= max_nodes:
                boxes = cut
    view = nx.DiGraph()
    for node in graph:  # graph order keeps the file order of tasks
        if node in shown:
            view.add_node(node, **graph.nodes[node])
    view.add_edges_from((u, v) for u in view for v in graph.successors(u) if v in shown)
    for box in boxes:
        view.add_node(box)
        if box.parent is not None:
            view.add_edge(box.parent, box)
    hidden = len(scope) - len(shown)
    view.graph.update(name=name, total=len(scope), shown=len(shown), hidden=hidden,
                      collapsed=levels is not None, levels=levels, boxes=len(boxes),
                      root=root, depth=depth)
    return view


def attach_synapses(view: nx.DiGraph, rows: Iterable[Mapping[str, Any]]) -> nx.DiGraph:
    """Put each synapse row (``model.synapses()``) on its edge as ``synapse[direction]``.

    Example:
        >>> import networkx as nx
        >>> v = nx.DiGraph([("a", "b")])
        >>> row = {"parent": "a", "child": "b", "direction": "down", "kind": "fixed",
        ...        "mean": 1.0, "std": 0.0, "p": 1.0}
        >>> attach_synapses(v, [row]).edges["a", "b"]["synapse"]["down"]["mean"]
        1.0
    """
    for row in rows:
        u, v = row["parent"], row["child"]
        if view.has_edge(u, v):
            view.edges[u, v].setdefault("synapse", {})[row["direction"]] = dict(row)
    return view
