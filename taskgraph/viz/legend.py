"""The legend band under a task-graph picture: node types, and the edge encodings of
learned synapses: a colour bar for E[w] whose ends are the range it spans (the 2nd and
98th percentile of the means drawn), the widths and opacities at both ends of their
ranges, and the dashes of bernoulli synapses.

It is drawn in the graph's own axes (inches as data units) so node shapes in the legend
are the very shapes of the graph.

Example:
    >>> legend_height(False) < legend_height(True)
    True
"""

from __future__ import annotations

from typing import Any

from taskgraph.viz.scales import distinct_format
from taskgraph.viz.shapes import SynapseScale, add_node
from taskgraph.viz.style import INK, MUTED, TYPE_STYLE

__all__ = ["add_legend", "legend_height"]

_ROW = 0.42            # height of one legend row (inches)


def legend_height(model: bool) -> float:
    """Inches the legend needs: one row of task types, one more for synapses."""
    return _ROW * (3 if model else 1)


def _label(ax: Any, x: float, y: float, text: str, **kw: Any) -> float:
    """Write ``text`` left-aligned at ``(x, y)``; returns its width in inches."""
    t = ax.text(x, y, text, ha="left", va="center", fontsize=kw.pop("fontsize", 7.5),
                color=kw.pop("color", INK), **kw)
    renderer = ax.figure.canvas.get_renderer()
    return t.get_window_extent(renderer).width / ax.figure.dpi


def _sample(ax: Any, x: float, y: float, *, linewidth: float = 1.2, alpha: float = 1.0,
            color: Any = "#3B4F9A", dashes: tuple[float, float] | None = None) -> float:
    from matplotlib.lines import Line2D

    line = Line2D([x, x + 0.34], [y, y], color=color, linewidth=linewidth, alpha=alpha,
                  solid_capstyle="butt")
    if dashes is not None:
        line.set_dashes(dashes)
    ax.add_line(line)
    return 0.4


def add_legend(ax: Any, kinds: list[str], scale: SynapseScale | None,
               directions: tuple[str, ...], *, bottom: float, height: float,
               bernoulli: bool = False, hidden: bool = False, left: float = 0.3) -> float:
    """Draw the legend in the band ``[bottom, bottom + height]`` of ``ax`` (inches).

    Returns:
        The x of its right end (inches), so the figure can be made wide enough.
    """
    y = bottom + height - _ROW / 2
    x = left
    x += _label(ax, x, y, "Tasks", fontweight="bold") + 0.15
    for kind in kinds:
        w, h = 0.34, 0.17
        add_node(ax, kind, x + w / 2, y, w, h)
        x += w + 0.08
        x += _label(ax, x, y, TYPE_STYLE[kind]["name"]) + 0.22
    if hidden:  # the overview's stub under a task whose subtree is cut off
        ax.plot([x + 0.05] * 2, [y + 0.08, y - 0.08], color=MUTED, linewidth=0.9,
                dashes=(1.5, 1.5))
        x += 0.15
        x += _label(ax, x, y, "+N", color=MUTED, style="italic") + 0.06
        x += _label(ax, x, y, "tasks below, not drawn") + 0.22
    right = x
    if scale is None:
        return right
    from matplotlib.cm import ScalarMappable

    y -= _ROW
    x = left
    indent = _label(ax, x, y, "Synapses", fontweight="bold") + 0.15
    x += indent
    x += _label(ax, x, y, f"colour: E[w] ({'/'.join(directions)})", color=MUTED) + 0.14
    below, above = scale.mean.clipped
    extend = {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        (below, above), "neither")
    cax = ax.inset_axes((x, y - 0.045, 1.3, 0.09), transform=ax.transData)
    bar = ax.figure.colorbar(ScalarMappable(norm=scale.norm(), cmap=scale.cmap()), cax=cax,
                             orientation="horizontal", extend=extend, extendfrac=0.08)
    bar.outline.set_linewidth(0.4)
    bar.ax.tick_params(labelsize=6.5, length=2, pad=1, width=0.5)
    ticks = [scale.vmin, scale.vmax] if scale.vmax > scale.vmin else [scale.vmin]
    if scale.diverging:
        ticks.insert(1, 0.0)
    bar.set_ticks(ticks, labels=[distinct_format(t, ticks) for t in ticks])
    x += 1.3 + 0.2
    quantiles = scale.mean.label().rsplit("(", 1)[-1].rstrip(")")
    x += _label(ax, x, y, (f"{quantiles} of {scale.mean.n:,} synapses; arrows: beyond"
                           if scale.mean.span > 0 else "all equal"), color=MUTED) + 0.3
    right = max(right, x)
    color = scale.cmap()(0.92)
    y -= _ROW
    x = left + indent
    x += _label(ax, x, y, "width: |E[w]|", color=MUTED) + 0.14
    mag = scale.magnitude
    for value in ((mag.low, mag.high) if mag.span > 0 else (mag.low,)):
        x += _sample(ax, x, y, linewidth=scale.width(value), color=color)
        x += _label(ax, x, y, distinct_format(value, [mag.low, mag.high])) + 0.15
    x += 0.15
    x += _label(ax, x, y, f"opacity: {scale.spread_name}", color=MUTED) + 0.14
    spread = scale.spread
    if spread.span > 0:
        for alpha, value in ((1.0, spread.low), (0.25, spread.high)):
            x += _sample(ax, x, y, linewidth=2.0, alpha=alpha, color=color)
            x += _label(ax, x, y, distinct_format(value, [spread.low, spread.high])) + 0.15
    else:
        x += _sample(ax, x, y, linewidth=2.0, alpha=1.0 - 0.8 * min(spread.low, 1.0),
                     color=color)
        x += _label(ax, x, y, f"all {spread.low:.3g}") + 0.15
    if bernoulli:
        x += 0.1
        x += _sample(ax, x, y, linewidth=1.6, color=color, dashes=(3.0, 2.6))
        x += _label(ax, x, y, "bernoulli (gaps grow as p falls)")
    return max(right, x)
