"""The text of a node in a task-graph picture and the size of the box around it.

A node shows its name (wrapped at ``_ - . / :``) and a detail line (class or label
count); in an overview, a node whose subtree is cut off has a dashed stub below it
with ``+N``, the tasks below it that are not drawn. Boxes are sized from the measured
text, so :func:`~taskgraph.viz.graph.draw` and the overview's
width budget (:mod:`taskgraph.viz.overview`) agree on every box.

Example:
    >>> [text for text, _ in node_lines("glycolysis", None)], hidden_text(1234)
    (['glycolysis'], '+1,234')
    >>> round(Measure().width("01/01", None, hidden=3), 2) > 0.3
    True
"""

from __future__ import annotations

from typing import Any, Hashable

from taskgraph.viz.shapes import shape_extra
from taskgraph.viz.style import INK, MUTED, TYPE_STYLE, detail_line, figure, type_of, \
    wrap_label
from taskgraph.viz.view import Collapsed

__all__ = ["NAME_PT", "DETAIL_PT", "PAD_X", "PAD_Y", "HIDDEN_STYLE", "node_kind", "node_lines",
           "add_texts", "box_size", "hidden_text", "Measure"]

NAME_PT, DETAIL_PT = 8.5, 7.0
PAD_X, PAD_Y = 0.09, 0.06   # text to box edge (inches)


def node_kind(node: Hashable, spec: Any) -> str:
    """The style key of a node: its task type, or ``"collapsed"`` for a ``+N`` box."""
    return "collapsed" if isinstance(node, Collapsed) else type_of(spec)


def hidden_text(hidden: int) -> str:
    """``+N``: the tasks below a node that are not drawn (the overview's legend and
    subtitle say so)."""
    return f"+{hidden:,}"


def node_lines(node: Hashable, spec: Any) -> list[tuple[str, dict[str, Any]]]:
    """``[(text, text properties)]`` of a node, top to bottom."""
    kind = node_kind(node, spec)
    if isinstance(node, Collapsed):
        name, detail = str(node), "" if node.parent is not None else "(more roots)"
    else:
        name, detail = str(node), detail_line(spec)
    lines = [("\n".join(wrap_label(name)),
              {"fontsize": NAME_PT, "color": MUTED if kind == "collapsed" else INK,
               "linespacing": 1.15})]
    if detail:
        lines.append((detail, {"fontsize": DETAIL_PT, "color": TYPE_STYLE[kind]["color"],
                               "style": "italic"}))
    return lines


#: Text properties of the ``+N`` under a node whose subtree is cut off.
HIDDEN_STYLE: dict[str, Any] = {"fontsize": DETAIL_PT, "color": MUTED, "style": "italic"}


def add_texts(ax: Any, lines: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Text artists of ``lines`` (placed later), centred, above the boxes."""
    return [ax.text(0, 0, text, ha="center", va="center", zorder=3, **props)
            for text, props in lines]


def box_size(texts: list[Any], kind: str, *, vertical: bool = False
             ) -> tuple[float, float, list[tuple[float, float]]]:
    """``(width, height, [(text width, text height)])`` in inches of the box of ``texts``
    (shape extras included; ``vertical``: the texts are rotated, side by side)."""
    fig = texts[0].figure
    renderer = fig.canvas.get_renderer()
    sizes = []
    for t in texts:
        e = t.get_window_extent(renderer)
        sizes.append((float(e.width) / fig.dpi, float(e.height) / fig.dpi))
    if vertical:
        w = sum(s[0] for s in sizes) + 2 * PAD_Y
        h = max(s[1] for s in sizes) + 2 * PAD_X
    else:
        w = max(s[0] for s in sizes) + 2 * PAD_X
        h = sum(s[1] for s in sizes) + 2 * PAD_Y
        w = max(w, h * 1.2)
    extra_w, extra_h = shape_extra(kind, h)
    return w + extra_w, h + extra_h, sizes


class Measure:
    """Widths (inches) of nodes as :func:`~taskgraph.viz.graph.draw` will draw them:
    the box, or the ``+N`` under it when wider; measured once each on a scratch figure
    (matplotlib, house settings)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], float] = {}
        self._axes: Any = None

    def _text_width(self, key: tuple[str, str], lines: list[tuple[str, dict[str, Any]]]
                    ) -> float:
        if key not in self._cache:
            import matplotlib

            from taskgraph.viz.style import RC

            if self._axes is None:
                with figure(4, 2, dpi=100) as fig:
                    self._axes = fig.add_axes((0, 0, 1, 1))
            with matplotlib.rc_context(RC):
                texts = add_texts(self._axes, lines)
                if key[0] == "hidden":
                    self._cache[key] = box_size(texts, "binary")[0] - 2 * PAD_X
                else:
                    self._cache[key] = box_size(texts, key[1])[0]
                for t in texts:
                    t.remove()
        return self._cache[key]

    def width(self, node: Hashable, spec: Any, *, hidden: int = 0) -> float:
        kind = node_kind(node, spec)
        w = self._text_width((str(node), kind), node_lines(node, spec))
        if hidden:
            text = hidden_text(hidden)
            w = max(w, self._text_width(("hidden", text), [(text, HIDDEN_STYLE)]))
        return w
