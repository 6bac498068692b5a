r"""A layered (Sugiyama-style) layout of a DAG, in plain Python on networkx.

Three steps, each a function:

1. :func:`assign_layers`: a node's layer is the length of the longest path from a
   source to it, so every parent sits strictly above each of its children.
2. :func:`order_layers`: an edge spanning several layers gets one *dummy* node per
   layer it crosses, then a few down / up sweeps of the barycenter heuristic
   (Sugiyama et al., 1981), each followed by swaps of neighbours that remove crossings,
   reorder each layer; the best order seen is kept, so the result never has more
   crossings than the starting (depth-first) order.
3. x coordinates: each layer is pulled towards the mean position of its neighbours in
   the layer above (then below) by a least-squares placement that keeps the order and
   a minimum gap between boxes of given widths (isotonic regression, pool-adjacent-
   violators, O(n) per layer).

.. math::
    \mathrm{bary}(v) = \frac{1}{|N(v)|} \sum_{u \in N(v)} \mathrm{pos}(u)

Everything is O((V + D) log(V + D)) per sweep, D the number of dummy nodes.

Example:
    >>> import networkx as nx
    >>> g = nx.DiGraph([("a", "b"), ("a", "c"), ("b", "d"), ("a", "d")])
    >>> assign_layers(g)
    {'a': 0, 'b': 1, 'c': 1, 'd': 2}
    >>> pos = layered_layout(g)
    >>> sorted((n, layer) for n, (x, layer) in pos.items())
    [('a', 0), ('b', 1), ('c', 1), ('d', 2)]
    >>> count_crossings(compute_layout(g))
    0
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Mapping

import networkx as nx

__all__ = ["Dummy", "Layout", "assign_layers", "order_layers", "count_crossings",
           "compute_layout", "layered_layout"]


@dataclass(frozen=True)
class Dummy:
    """The point where the long edge ``parent -> child`` crosses layer ``layer``."""

    parent: Hashable
    child: Hashable
    layer: int


@dataclass
class Layout:
    """A computed layered layout.

    Attributes:
        layers: ``{node: layer}`` of the real nodes (0 at the top).
        levels: the nodes of each layer, dummies included, left to right.
        x: horizontal centre of every node and dummy, in the units of the widths.
        routes: for each long edge ``(u, v)``, its dummies from top to bottom.
        up / down: neighbours of every node in the layer above / below (dummies too).
    """

    layers: dict[Hashable, int]
    levels: list[list[Hashable]]
    x: dict[Hashable, float] = field(default_factory=dict)
    routes: dict[tuple[Hashable, Hashable], list[Dummy]] = field(default_factory=dict)
    up: dict[Hashable, list[Hashable]] = field(default_factory=dict)
    down: dict[Hashable, list[Hashable]] = field(default_factory=dict)

    @property
    def positions(self) -> dict[Hashable, tuple[float, int]]:
        """``{node: (x, layer)}`` of the real nodes."""
        return {n: (self.x[n], layer) for n, layer in self.layers.items()}


def assign_layers(graph: nx.DiGraph) -> dict[Hashable, int]:
    """Longest-path layering: sources on layer 0, every node one below its deepest parent.

    Raises:
        networkx.NetworkXUnfeasible: the graph has a cycle.
    """
    index = {n: i for i, n in enumerate(graph)}
    layer: dict[Hashable, int] = {}
    for node in nx.lexicographical_topological_sort(graph, key=index.__getitem__):
        layer[node] = max((layer[p] + 1 for p in graph.predecessors(node)), default=0)
    return layer


def _proper(graph: nx.DiGraph, layers: Mapping[Hashable, int]) -> Layout:
    """Split long edges with dummies; the first order of each layer is depth-first."""
    up: dict[Hashable, list[Hashable]] = {n: [] for n in graph}
    down: dict[Hashable, list[Hashable]] = {n: [] for n in graph}
    routes: dict[tuple[Hashable, Hashable], list[Dummy]] = {}
    for u, v in graph.edges():
        chain: list[Hashable] = [u]
        if layers[v] - layers[u] > 1:
            dummies = [Dummy(u, v, k) for k in range(layers[u] + 1, layers[v])]
            routes[(u, v)] = dummies
            for d in dummies:
                up[d], down[d] = [], []
            chain += dummies
        chain.append(v)
        for a, b in zip(chain, chain[1:]):
            down[a].append(b)
            up[b].append(a)
    # depth-first discovery order keeps subtrees together: a good first order
    seen: dict[Hashable, None] = {}
    for source in (n for n in graph if not up[n]):
        stack = [source]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen[node] = None
            stack.extend(reversed(down[node]))
    depth = max(layers.values(), default=-1) + 1
    levels: list[list[Hashable]] = [[] for _ in range(depth)]
    for node in seen:
        levels[node.layer if isinstance(node, Dummy) else layers[node]].append(node)
    return Layout(dict(layers), levels, routes=routes, up=up, down=down)


def _inversions(values: list[int]) -> int:
    """Pairs i < j with values[i] > values[j] (merge-sort count, O(n log n))."""
    if len(values) < 2:
        return 0
    mid = len(values) // 2
    left, right = sorted(values[:mid]), values[mid:]
    count = _inversions(values[:mid]) + _inversions(right)
    for v in right:  # elements of the left half greater than v
        count += len(left) - bisect_left(left, v + 1)
    return count


def count_crossings(layout: Layout) -> int:
    """Edge crossings between adjacent layers of ``layout`` (long edges through dummies).

    Two edges cross when their ends are in opposite order in the two layers; edges
    sharing an end never cross.

    Example:
        >>> import networkx as nx
        >>> g = nx.DiGraph([("a", "d"), ("b", "c")])
        >>> lay = compute_layout(g, sweeps=0)
        >>> lay.levels[1] = ["c", "d"]  # swap the children: the two edges now cross
        >>> count_crossings(lay)
        1
    """
    total = 0
    for top, bottom in zip(layout.levels, layout.levels[1:]):
        pos = {n: i for i, n in enumerate(bottom)}
        pairs = sorted((i, pos[c]) for i, n in enumerate(top) for c in layout.down[n])
        total += _inversions([b for _, b in pairs])
    return total


def _sweep(layout: Layout, i: int, neighbours: dict[Hashable, list[Hashable]],
           other: list[Hashable]) -> None:
    """Reorder layer ``i`` by the barycenters of its neighbours in layer ``other``."""
    level = layout.levels[i]
    scale_other = max(len(other) - 1, 1)
    scale_self = max(len(level) - 1, 1)
    pos = {n: k / scale_other for k, n in enumerate(other)}

    def key(item: tuple[int, Hashable]) -> float:
        k, node = item
        near = neighbours[node]
        return sum(pos[m] for m in near) / len(near) if near else k / scale_self

    layout.levels[i] = [n for _, n in sorted(enumerate(level), key=key)]


def _pair_crossings(a: Hashable, b: Hashable, layout: Layout,
                    pos: list[dict[Hashable, int]], i: int) -> int:
    """Crossings between the edges of ``a`` and of ``b`` (``a`` left of ``b``, layer i)."""
    count = 0
    for side, k in ((layout.up, i - 1), (layout.down, i + 1)):
        if 0 <= k < len(pos):
            where = pos[k]
            count += sum(1 for p in side[a] for q in side[b] if where[p] > where[q])
    return count


def _transpose(layout: Layout, rounds: int = 4) -> None:
    """Swap neighbours in a layer while that removes crossings (Gansner et al., 1993)."""
    for _ in range(rounds):
        pos = [{n: j for j, n in enumerate(level)} for level in layout.levels]
        improved = False
        for i, level in enumerate(layout.levels):
            for j in range(len(level) - 1):
                a, b = level[j], level[j + 1]
                if _pair_crossings(b, a, layout, pos, i) < _pair_crossings(a, b, layout, pos, i):
                    level[j], level[j + 1] = b, a
                    pos[i][a], pos[i][b] = j + 1, j
                    improved = True
        if not improved:
            break


def order_layers(layout: Layout, *, sweeps: int = 4) -> Layout:
    """Reduce crossings with ``sweeps`` down+up barycenter sweeps, each followed by
    adjacent swaps that remove crossings; keeps the best order seen.

    Returns:
        ``layout``, reordered in place.
    """
    best = [list(level) for level in layout.levels]
    best_count = count_crossings(layout)
    for _ in range(sweeps):
        if best_count == 0:
            break
        for i in range(1, len(layout.levels)):
            _sweep(layout, i, layout.up, layout.levels[i - 1])
        for i in range(len(layout.levels) - 2, -1, -1):
            _sweep(layout, i, layout.down, layout.levels[i + 1])
        _transpose(layout)
        count = count_crossings(layout)
        if count < best_count:
            best, best_count = [list(level) for level in layout.levels], count
    layout.levels = best
    return layout


def _isotonic(target: list[float], weight: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit of ``target`` (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for t, w in zip(target, weight):
        blocks.append([t * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, w2, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += w2
            blocks[-1][2] += c
    out: list[float] = []
    for s, w, c in blocks:
        out += [s / w] * int(c)
    return out


def _place(level: list[Hashable], desired: Mapping[Hashable, float],
           widths: Mapping[Hashable, float], gap: float) -> dict[Hashable, float]:
    """Centres as close as possible to ``desired``, in order, boxes ``gap`` apart."""
    offset, prev = [], None
    for node in level:
        offset.append(0.0 if prev is None else
                      offset[-1] + (widths[prev] + widths[node]) / 2 + gap)
        prev = node
    weight = [0.3 if isinstance(n, Dummy) else 1.0 for n in level]
    fit = _isotonic([desired[n] - o for n, o in zip(level, offset)], weight)
    return {n: f + o for n, f, o in zip(level, fit, offset)}


def _coordinates(layout: Layout, widths: Mapping[Hashable, float], gap: float,
                 passes: int) -> None:
    x: dict[Hashable, float] = {}
    for level in layout.levels:  # packed and centred: the starting point
        x.update(_place(level, {n: 0.0 for n in level}, widths, gap))

    def pull(i: int, sides: Iterable[dict[Hashable, list[Hashable]]]) -> None:
        desired = {}
        for n in layout.levels[i]:
            near = [m for side in sides for m in side[n]]
            desired[n] = sum(x[m] for m in near) / len(near) if near else x[n]
        x.update(_place(layout.levels[i], desired, widths, gap))

    n = len(layout.levels)
    for _ in range(passes):
        for i in range(1, n):
            pull(i, [layout.up])
        for i in range(n - 2, -1, -1):
            pull(i, [layout.down])
    for i in range(n):
        pull(i, [layout.up, layout.down])
    left = min((x[v] - widths[v] / 2 for v in x), default=0.0)
    layout.x = {v: c - left for v, c in x.items()}


def _fit_window(layout: Layout, widths: Mapping[Hashable, float], gap: float,
                width: float) -> None:
    """Bring every layer into one window ``width`` wide, order and least gaps kept.

    A layer's centres are ``x_i = o_i + f_i`` with ``o`` its packed offsets and ``f``
    non-decreasing (the least gaps); clipping ``f`` to a range ``width - packed`` long
    (around its median) keeps it non-decreasing, so the layer then spans at most
    ``width``; each layer is then shifted as little as possible into the window
    centred on the widest layer.
    """
    spans = []
    for level in layout.levels:
        offset, prev = [], None
        for v in level:
            offset.append(0.0 if prev is None else
                          offset[-1] + (widths[prev] + widths[v]) / 2 + gap)
            prev = v
        if not level:
            spans.append((0.0, 0.0))
            continue
        packed = offset[-1] + (widths[level[0]] + widths[level[-1]]) / 2
        f = sorted(layout.x[v] - o for v, o in zip(level, offset))
        slack = max(width - packed, 0.0)
        if f[-1] - f[0] > slack:
            lo = min(max(f[len(f) // 2] - slack / 2, f[0]), f[-1] - slack)
            for v, o in zip(level, offset):
                layout.x[v] = o + min(max(layout.x[v] - o, lo), lo + slack)
        spans.append((layout.x[level[0]] - widths[level[0]] / 2,
                      layout.x[level[-1]] + widths[level[-1]] / 2))
    lo, hi = max(spans, key=lambda s: s[1] - s[0], default=(0.0, 0.0))
    left = (lo + hi) / 2 - width / 2
    right = left + width
    for level, (a, b) in zip(layout.levels, spans):
        if b - a > width:  # a layer that cannot fit: centred
            shift = (left + right) / 2 - (a + b) / 2
        else:
            shift = max(0.0, left - a) + min(0.0, right - b)
        for v in level:
            layout.x[v] += shift
    start = min((layout.x[v] - widths[v] / 2 for v in layout.x), default=0.0)
    layout.x = {v: c - start for v, c in layout.x.items()}


def compute_layout(graph: nx.DiGraph, *, widths: Mapping[Hashable, float] | None = None,
                   gap: float = 0.25, dummy_width: float = 0.1, sweeps: int = 4,
                   passes: int = 3, max_width: float | None = None) -> Layout:
    """Layers, crossing-reduced order and x coordinates of ``graph`` (see the module doc).

    Args:
        graph: a DAG (edges parent -> child).
        widths: box width per node (default 1); x comes out in the same units.
        gap: the least space between two boxes of a layer.
        dummy_width: the width kept free for a long edge crossing a layer.
        sweeps: barycenter sweeps (0 keeps the depth-first order).
        passes: down / up passes of the x placement.
        max_width: keep the drawing this wide: each layer is narrowed (order and
            least gaps kept) and shifted into one window of this width, so a deep
            subtree slides under its neighbours instead of widening the picture (a
            layer whose packed width exceeds it is centred).

    Returns:
        A :class:`Layout`.

    Raises:
        networkx.NetworkXUnfeasible: the graph has a cycle.
    """
    layout = _proper(graph, assign_layers(graph))
    order_layers(layout, sweeps=sweeps)
    size = {n: (dummy_width if isinstance(n, Dummy) else
                float(widths[n]) if widths is not None else 1.0)
            for level in layout.levels for n in level}
    _coordinates(layout, size, gap, passes)
    if max_width is not None:
        _fit_window(layout, size, gap, float(max_width))
    return layout


def layered_layout(graph: nx.DiGraph, *, sweeps: int = 4) -> dict[Hashable, tuple[float, int]]:
    """``{node: (x, layer)}``: every parent's layer is smaller than each child's.

    Example:
        >>> import networkx as nx
        >>> pos = layered_layout(nx.DiGraph([("root", "a"), ("root", "b")]))
        >>> pos["root"][1], pos["a"][1], pos["a"][0] < pos["b"][0]
        (0, 1, True)
    """
    return compute_layout(graph, sweeps=sweeps).positions
