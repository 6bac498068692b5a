"""`draw`: a picture of a task hierarchy, or of a trained model's learned synapses.

The layout is layered (:mod:`taskgraph.viz.layout`): every parent above its
children, crossings reduced, boxes sized from their measured labels; a layer too wide
for horizontal labels gets vertical ones. Node colour and shape give the task type;
with a model, edge colour and width give the learned synapse mean, opacity its
uncertainty (std / |mean| of a gaussian, 1 - p of a bernoulli) and dashes a
bernoulli synapse. Large graphs are drawn as a subtree or a collapsed view
(:func:`taskgraph.viz.view.graph_view`).

Example:
    >>> import os, tempfile, taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> out = os.path.join(tempfile.mkdtemp(), "animals.png")
    >>> drawing = draw(h, out)
    >>> sorted(drawing.view), os.path.getsize(out) > 1000
    (['diet', 'mammal', 'species', 'weight_kg'], True)
    >>> drawing  # doctest: +ELLIPSIS
    Drawing('...animals.png', tasks=4, boxes=0, collapsed=False)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Hashable

import networkx as nx

from taskgraph.viz.labels import HIDDEN_STYLE, Measure, add_texts, box_size, hidden_text, \
    node_kind, node_lines
from taskgraph.viz.layout import Dummy, Layout, assign_layers, compute_layout
from taskgraph.viz.legend import add_legend, legend_height
from taskgraph.viz.overview import GAP, MAX_WIDTH_PX, OVERVIEW_DPI, OVERVIEW_WIDTH, \
    overview_view
from taskgraph.viz.shapes import SynapseScale, add_edge, add_node, text_center
from taskgraph.viz.style import INK, LARGE, MUTED, TYPE_STYLE, check_format, figure, save, \
    wrap_label
from taskgraph.viz.view import Collapsed, DrawingError, as_graph, attach_synapses, graph_view

__all__ = ["draw", "Drawing", "FORMATS", "check_output", "MAX_WIDTH_PX"]

FORMATS = ("png", "svg", "pdf", "dot", "gv")
_GAP = GAP          # least space between two boxes of a layer (inches)
_VGAP = 0.6         # space between layers
_WIDE = 30.0        # a layer wider than this (inches) gets vertical labels


@dataclass
class Drawing:
    """What :func:`draw` made.

    Attributes:
        path: the file written.
        view: the drawn graph (tasks and ``+N tasks`` boxes).
        layout: the computed :class:`~taskgraph.viz.layout.Layout`.
        figure: the matplotlib ``Figure`` (``None`` for DOT output).
        labels: the text artists of each node.
        boxes: ``{node: (x, y, width, height)}`` of each node, inches.
    """

    path: str
    view: nx.DiGraph
    layout: Layout
    figure: Any = None
    labels: dict[Hashable, list[Any]] = field(default_factory=dict)
    boxes: dict[Hashable, tuple[float, float, float, float]] = field(default_factory=dict)

    def __repr__(self) -> str:
        g = self.view.graph
        return (f"Drawing({self.path!r}, tasks={g.get('shown', len(self.view))}, "
                f"boxes={g.get('boxes', 0)}, collapsed={bool(g.get('collapsed'))})")


def _kind(view: nx.DiGraph, node: Hashable) -> str:
    return node_kind(node, None if isinstance(node, Collapsed) else view.nodes[node].get("spec"))


def _subtitle(view: nx.DiGraph, directions: tuple[str, ...], model: bool) -> list[str]:
    g = view.graph
    edges = sum(1 for u, v in view.edges if not isinstance(v, Collapsed))
    parts = [f"{g['shown']:,} tasks", f"{edges:,} edges"]
    if g.get("root") is not None:
        parts.insert(0, f"below {g['root']}")
    if g.get("depth") is not None:
        parts.insert(1 if g.get("root") is not None else 0, f"depth {g['depth']}")
    if g.get("overview"):
        parts += [f"overview of {g['total']:,} tasks: the top levels",
                  "+N under a task: its undrawn descendants",
                  "--root / --depth draw the rest"]
    elif g.get("collapsed"):
        parts.append(f"collapsed view of {g['total']:,} tasks: {g['hidden']:,} in "
                     f"{g['boxes']} '+N' box{'es' if g['boxes'] != 1 else ''} "
                     f"(--root / --depth draw the rest)")
    if model:
        parts.append("edges: learned synapses (" + ", ".join(directions) + ")")
    return parts


def _make_labels(ax: Any, view: nx.DiGraph, layers: dict) -> tuple[dict, set]:
    """Text artists per node and the layers that get vertical labels."""
    labels: dict[Hashable, list[Any]] = {}
    per_layer: dict[int, float] = {}
    for node in view:
        spec = None if isinstance(node, Collapsed) else view.nodes[node].get("spec")
        texts = add_texts(ax, node_lines(node, spec))
        labels[node] = texts
        w = box_size(texts, _kind(view, node))[0]
        per_layer[layers[node]] = per_layer.get(layers[node], 0.0) + w + _GAP
    wide = _WIDE if not view.graph.get("overview") else float("inf")
    vertical = {layer for layer, width in per_layer.items() if width > wide}
    for node, texts in labels.items():
        if layers[node] in vertical:
            name = str(node)
            texts[0].set_text("\n".join(wrap_label(name, 24, 2)))
            for t in texts:
                t.set_rotation(90)
    return labels, vertical


def _sizes(view: nx.DiGraph, labels: dict, layers: dict, vertical: set) -> dict:
    """``{node: (box width incl. shape extras, height, [text sizes])}`` in inches."""
    return {node: box_size(texts, _kind(view, node), vertical=layers[node] in vertical)
            for node, texts in labels.items()}


def _wrap_parts(ax: Any, parts: list[str], width: float) -> list[str]:
    """Join ``parts`` with `` · `` into lines at most ``width`` inches wide (8 pt)."""
    renderer = ax.figure.canvas.get_renderer()
    probe = ax.text(0, 0, "", fontsize=8)
    lines: list[str] = []
    for part in parts:
        candidate = f"{lines[-1]} · {part}" if lines else part
        probe.set_text(candidate)
        if lines and probe.get_window_extent(renderer).width / ax.figure.dpi <= width:
            lines[-1] = candidate
        else:
            lines.append(part)
    probe.remove()
    return lines


def _ports(layout: Layout, node: Hashable, neighbours: list, x: dict, width: float) -> dict:
    """Where each edge leaves / enters ``node``: spread along its side, in x order."""
    k = len(neighbours)
    if k <= 1:
        return {m: x[node] for m in neighbours}
    step = min(0.1, 0.6 * width / (k - 1))
    order = sorted(neighbours, key=lambda m: x[m])
    return {m: x[node] + (i - (k - 1) / 2) * step for i, m in enumerate(order)}


def _draw_edges(ax: Any, view: nx.DiGraph, layout: Layout, pos: dict, size: dict,
                row: dict, directions: tuple[str, ...], scale: SynapseScale | None) -> None:
    x = layout.x
    first = {}  # the next point after u on edge (u, v), and the point before v
    for u, v in view.edges:
        route = layout.routes.get((u, v), [])
        first[(u, v)] = (route[0] if route else v, route[-1] if route else u)
    out_ports = {u: _ports(layout, u, [first[(u, v)][0] for v in view.successors(u)], x,
                           size[u][0]) for u in view}
    in_ports = {v: _ports(layout, v, [first[(u, v)][1] for u in view.predecessors(v)], x,
                          size[v][0]) for v in view}
    for u, v in view.edges:
        route = layout.routes.get((u, v), [])
        nxt, prev = first[(u, v)]
        syn = view.edges[u, v].get("synapse", {})
        for direction in directions if syn else ("down",):
            shift = 0.0 if len(directions) == 1 or not syn else \
                (-0.035 if direction == "down" else 0.035)
            pts = [(out_ports[u][nxt] + shift, pos[u][1] - size[u][1] / 2)]
            corners = [False]
            for d in route:
                top, bottom = row[d.layer]
                pts += [(x[d] + shift, top), (x[d] + shift, bottom)]
                corners += [True, False]
            pts.append((in_ports[v][prev] + shift, pos[v][1] + size[v][1] / 2))
            style: dict[str, Any] = {}
            if isinstance(v, Collapsed):
                style = {"color": MUTED, "linewidth": 0.8, "alpha": 0.7, "dashes": (1.5, 1.5)}
            elif syn and scale is not None and direction in syn:
                s = scale(syn[direction])
                style = {"color": s["color"], "linewidth": s["linewidth"], "alpha": s["alpha"],
                         "dashes": s["dashes"] if s["dashed"] else None}
            elif syn:
                continue  # this direction has no synapse on this edge
            if direction == "up":
                pts, corners = pts[::-1], corners[::-1]
            add_edge(ax, pts, corners, arrow_up=direction == "up", **style)


def _render(view: nx.DiGraph, *, title: str | None, directions: tuple[str, ...],
            model: bool, max_width: float | None = None
            ) -> tuple[Any, Layout, dict, dict, float]:
    layers = assign_layers(view)
    with figure(8, 6, dpi=100) as fig:
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        labels, vertical = _make_labels(ax, view, layers)
        size = _sizes(view, labels, layers, vertical)
        layout = compute_layout(view, widths={n: s[0] for n, s in size.items()}, gap=_GAP,
                                dummy_width=0.12, max_width=max_width)
        depth = max(layers.values(), default=0) + 1
        heights = [0.0] * depth
        for node, (w, h, _) in size.items():
            heights[layers[node]] = max(heights[layers[node]], h)
        rows = [r for r in view.edges if "synapse" in view.edges[r]]
        scale = SynapseScale([s for r in rows for d, s in view.edges[r]["synapse"].items()
                              if d in directions]) if model and rows else None
        graph_w = max((layout.x[n] + size[n][0] / 2 for n in view), default=1.0)
        legend_h = legend_height(scale is not None)
        kinds = [k for k in TYPE_STYLE if any(_kind(view, n) == k for n in view)]
        legend_w = add_legend(ax, kinds, scale, directions, bottom=0.15, height=legend_h,
                              bernoulli=any(s.get("kind") == "bernoulli" for r in rows
                                            for s in view.edges[r]["synapse"].values()),
                              hidden=any(view.nodes[n].get("hidden") for n in view))
        width = max(graph_w + 0.8, legend_w + 0.3, 5.0)
        subtitle = _wrap_parts(ax, _subtitle(view, directions, model), width - 0.6)
        top_h = 0.6 + 0.15 * len(subtitle)
        height = top_h + sum(heights) + _VGAP * (depth - 1) + 0.35 + legend_h
        shift = (width - graph_w) / 2
        row, y = {}, height - top_h
        for i, h in enumerate(heights):
            row[i] = (y, y - h)
            y -= h + _VGAP
        pos = {n: (layout.x[n] + shift, (row[layers[n]][0] + row[layers[n]][1]) / 2)
               for n in view}
        for d in (d for level in layout.levels for d in level if isinstance(d, Dummy)):
            layout.x[d] += shift
        for n in view:
            layout.x[n] = pos[n][0]
        fig.set_size_inches(width, height)
        ax.set_xlim(0, width)
        ax.set_ylim(0, height)
        boxes = {}
        for node, (w, h, sizes) in size.items():
            kind = _kind(view, node)
            add_node(ax, kind, pos[node][0], pos[node][1], w, h)
            boxes[node] = (pos[node][0], pos[node][1], w, h)
            x0, y0 = text_center(kind, *pos[node])
            texts = labels[node]
            if layers[node] in vertical:  # side by side, reading bottom to top
                left = x0 - sum(s[0] for s in sizes) / 2
                for t, (tw, _) in zip(texts, sizes):
                    t.set_position((left + tw / 2, y0))
                    left += tw
            else:
                top = y0 + sum(s[1] for s in sizes) / 2
                for t, (_, th) in zip(texts, sizes):
                    t.set_position((x0, top - th / 2))
                    top -= th
            if not isinstance(node, Collapsed) and view.nodes[node].get("hidden"):
                bottom = pos[node][1] - h / 2  # a dashed stub: the subtree goes on
                ax.plot([pos[node][0]] * 2, [bottom, bottom - 0.13], color=MUTED,
                        linewidth=0.9, dashes=(1.5, 1.5), zorder=1)
                ax.text(pos[node][0], bottom - 0.22, hidden_text(view.nodes[node]["hidden"]),
                        ha="center", va="center", zorder=3.5, **HIDDEN_STYLE,
                        bbox={"boxstyle": "round,pad=0.08", "facecolor": "white",
                              "edgecolor": "none"})
        _draw_edges(ax, view, layout, pos, size, row, directions, scale)
        name = title if title is not None else view.graph.get("name", "")
        ax.text(0.3, height - 0.28, name, fontsize=12, fontweight="bold", ha="left",
                va="center", color=INK)
        for i, line in enumerate(subtitle):
            ax.text(0.3, height - 0.52 - 0.15 * i, line, fontsize=8, ha="left",
                    va="center", color=MUTED)
        dpi = min(OVERVIEW_DPI if view.graph.get("overview") else 150.0,
                  16000.0 / max(width, height), (6e7 / (width * height)) ** 0.5)
    return fig, layout, labels, boxes, dpi


def check_output(path: str | os.PathLike) -> str:
    """The format of a :func:`draw` output file from its extension.

    Raises:
        DrawingError: an extension other than .png, .svg, .pdf, .dot or .gv.

    Example:
        >>> check_output("graph.svg")
        'svg'
    """
    return check_format(path, FORMATS)


def draw(source: Any, path: str | os.PathLike, *, root: Hashable | None = None,
         depth: int | None = None, max_nodes: int = 200, layout: str = "layered",
         title: str | None = None, directions: str = "down",
         overview: bool | None = None) -> Drawing:
    """Draw a hierarchy (or a trained model's hierarchy and synapses) to ``path``.

    Args:
        source: a :class:`~taskgraph.hierarchy.Hierarchy`, a trained
            :class:`~taskgraph.TaskGraphModel` or an ``nx.DiGraph``.
        path: the output file; its extension picks the format: ``.png``, ``.svg``,
            ``.pdf`` (matplotlib) or ``.dot`` / ``.gv`` (Graphviz source, written
            directly, no Graphviz needed).
        root: draw this task and its descendants only.
        depth: draw this many levels below ``root`` (or below the roots).
        max_nodes: the most boxes in one drawing; a larger graph is collapsed (see
            :func:`~taskgraph.viz.view.graph_view`).
        overview: draw the screen-wide overview of the top levels
            (:func:`~taskgraph.viz.overview.overview_view`; at most
            :data:`MAX_WIDTH_PX` pixels wide as PNG). Default (``None``): when no
            ``depth`` is given and the part to draw has more than
            :data:`~taskgraph.viz.style.LARGE` tasks. ``False``: the collapsed view
            with one ``+N tasks`` box per cut-off subtree.
        layout: ``"layered"`` (the only layout).
        title: the figure title (default: the hierarchy's name).
        directions: with a model, which synapses to draw: ``"down"``, ``"up"`` or
            ``"both"`` (two slightly offset arrows per edge).

    Returns:
        A :class:`Drawing`.

    Raises:
        DrawingError: unknown format, layout, direction or root; ``overview=True``
            with a ``depth``.
        GraphTooLargeError: ``depth`` given and the subtree exceeds ``max_nodes``.
    """
    fmt = check_output(path)
    if layout != "layered":
        raise DrawingError(f"layout: expected 'layered', got {layout!r}")
    if directions not in ("down", "up", "both"):
        raise DrawingError(f"directions: expected 'down', 'up' or 'both', got {directions!r}")
    if overview not in (None, True, False):
        raise DrawingError(f"overview: expected True, False or None, got {overview!r}")
    if overview and depth is not None:
        raise DrawingError("overview=True draws the top levels that fit the screen; it "
                           "cannot be combined with depth (draw a depth without overview)")
    graph, _, model = as_graph(source)
    if overview is None:
        part = (graph.number_of_nodes() if root is None or root not in graph
                else 1 + len(nx.descendants(graph, root)))
        overview = depth is None and part > LARGE
    view = None if overview else graph_view(source, root=root, depth=depth,
                                            max_nodes=max_nodes)
    chosen: tuple[str, ...] = ("down", "up") if directions == "both" else (directions,)
    rows = model.synapses() if model is not None else []
    if model is not None:
        have = set(model.config.directions) if model.edge_synapses is not None else set()
        chosen = tuple(d for d in chosen if d in have) or tuple(sorted(have)) or ("down",)
    path = os.fspath(path)
    budget, measure = OVERVIEW_WIDTH, Measure()
    for attempt in range(4):  # the layout may come out wider than the layers' sum
        if overview:
            view = overview_view(source, root=root, width=budget, max_nodes=max_nodes,
                                 measure=measure)
        attach_synapses(view, rows)
        if fmt in ("dot", "gv"):
            from taskgraph.viz.dot import write_dot

            write_dot(view, path, title=title, directions=chosen)
            return Drawing(path, view, compute_layout(view))
        fig, lay, labels, boxes, dpi = _render(view, title=title, directions=chosen,
                                               model=model is not None,
                                               max_width=budget if overview else None)
        wide = fig.get_size_inches()[0] * dpi - MAX_WIDTH_PX
        if not overview or wide <= 0 or attempt == 3:
            break
        budget -= wide / dpi + 0.2
    save(fig, path, dpi=dpi)
    return Drawing(path, view, lay, fig, labels, boxes)
