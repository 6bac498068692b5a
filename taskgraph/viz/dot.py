"""Graphviz DOT source of a drawn view, written by hand (no Graphviz needed to write it).

Nodes carry the same encodings as the matplotlib picture: shape and colours by task
type, ``+N tasks`` boxes dashed; with learned synapses, edge ``penwidth`` from the
mean, colour from the same colour map (opacity as the colour's alpha) and ``dashed``
for bernoulli synapses. ``dot -Tsvg graph.dot`` renders it where Graphviz is installed.

Example:
    >>> import networkx as nx
    >>> text = to_dot(nx.DiGraph([("a", 'say "hi"')], name="toy"))
    >>> print(text.splitlines()[0])
    digraph "toy" {
    >>> '"a" -> "say \\\\"hi\\\\"";' in text
    True
"""

from __future__ import annotations

import os
from typing import Any, Hashable

import networkx as nx

from taskgraph.atomic import write_text_atomic
from taskgraph.viz.labels import hidden_text
from taskgraph.viz.shapes import SynapseScale
from taskgraph.viz.style import TYPE_STYLE, detail_line, type_of
from taskgraph.viz.view import Collapsed

__all__ = ["to_dot", "write_dot", "quote"]


def quote(text: str) -> str:
    """A DOT double-quoted string (backslashes, quotes and newlines escaped)."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{body}"'


def _hex(color: Any, alpha: float = 1.0) -> str:
    if isinstance(color, str):
        return color if alpha >= 1.0 else color + f"{round(alpha * 255):02x}"
    r, g, b = (round(c * 255) for c in color[:3])
    return f"#{r:02x}{g:02x}{b:02x}" + (f"{round(alpha * 255):02x}" if alpha < 1.0 else "")


def _node_id(node: Hashable, index: int) -> str:
    if isinstance(node, Collapsed):
        return quote(f"+collapsed:{index}:{node.parent}")
    return quote(str(node))


def _attrs(pairs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in pairs.items())


def to_dot(view: nx.DiGraph, *, title: str | None = None,
           directions: tuple[str, ...] = ("down",)) -> str:
    """DOT text of ``view`` (a graph from :func:`~taskgraph.viz.view.graph_view`).

    Returns:
        The source text: one ``"name" [...]`` line per node, one line per edge.
    """
    name = title if title is not None else str(view.graph.get("name", "taskgraph"))
    lines = [f"digraph {quote(name)} {{",
             f"  graph [rankdir=TB, label={quote(name)}, labelloc=t, fontname=Helvetica, "
             "fontsize=14, nodesep=0.25, ranksep=0.5];",
             "  node [fontname=Helvetica, fontsize=10, penwidth=1.2, margin=\"0.12,0.06\"];",
             "  edge [color=\"#5f5f5f\", arrowsize=0.6];"]
    ids = {}
    for i, node in enumerate(view):
        ids[node] = _node_id(node, i)
        if isinstance(node, Collapsed):
            kind, label = "collapsed", str(node)
        else:
            spec = view.nodes[node].get("spec")
            kind = type_of(spec)
            detail = detail_line(spec)
            label = str(node) + (f"\n{detail}" if detail else "")
            if view.nodes[node].get("hidden"):
                label += "\n" + hidden_text(view.nodes[node]["hidden"])
        style = TYPE_STYLE[kind]
        lines.append(f"  {ids[node]} [" + _attrs({
            "label": quote(label), "shape": style["dot_shape"],
            "style": quote(style["dot_style"]), "color": quote(style["color"]),
            "fillcolor": quote(style["fill"]),
            "fontcolor": quote("#777777" if kind == "collapsed" else "#222222"),
            "tooltip": quote(f"{style['name']} task" if kind != "collapsed" else str(node)),
        }) + "];")
    rows = [s for _, _, syn in view.edges(data="synapse") if syn for d, s in syn.items()
            if d in directions]
    scale = SynapseScale(rows) if rows else None
    for u, v, data in view.edges(data=True):
        syn = data.get("synapse") or {}
        if isinstance(v, Collapsed):
            lines.append(f"  {ids[u]} -> {ids[v]} [style=dotted, color=\"#777777\"];")
            continue
        if scale is None or not syn:
            lines.append(f"  {ids[u]} -> {ids[v]};")
            continue
        for direction in directions:
            if direction not in syn:
                continue
            row = syn[direction]
            s = scale(row)
            pairs = {"penwidth": f"{s['linewidth']:.2f}",
                     "color": quote(_hex(s["color"] or "#5f5f5f", s["alpha"])),
                     "tooltip": quote(f"{direction} {row['kind']} synapse: mean "
                                      f"{row['mean']:.3g}, std {row['std']:.3g}, "
                                      f"p {row['p']:.3g}")}
            if s["dashed"]:
                pairs["style"] = "dashed"
            if direction == "up":
                pairs["dir"] = "back"  # drawn parent -> child, arrow at the parent
            lines.append(f"  {ids[u]} -> {ids[v]} [{_attrs(pairs)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_dot(view: nx.DiGraph, path: str | os.PathLike, *, title: str | None = None,
              directions: tuple[str, ...] = ("down",)) -> str:
    """Write :func:`to_dot` text to ``path``; returns the path."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    write_text_atomic(path, to_dot(view, title=title, directions=directions))
    return path
