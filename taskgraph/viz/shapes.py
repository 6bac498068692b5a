"""Matplotlib pieces of the task-graph picture: node shapes, edge curves, synapse styles.

All sizes are in inches (the graph axes use inches as data units). matplotlib is
imported inside the functions.

Example:
    >>> style = SynapseScale([{"kind": "gaussian", "mean": 0.5, "std": 0.1, "p": 1.0},
    ...                       {"kind": "bernoulli", "mean": 1.0, "std": 0.3, "p": 0.6}])
    >>> s = style({"kind": "bernoulli", "mean": 1.0, "std": 0.3, "p": 0.6})
    >>> round(s["linewidth"], 2), s["dashed"], round(s["alpha"], 2)  # the larger of the two
    (3.2, True, 0.25)
    >>> style.mean.label()
    '0.51 – 0.99 (2nd–98th percentile)'
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from taskgraph.viz.scales import QUANTILES, RobustRange
from taskgraph.viz.style import MUTED, TYPE_STYLE

__all__ = ["SynapseScale", "shape_extra", "text_center", "add_node", "edge_path", "add_edge",
           "uncertainty"]

EDGE_GREY = "#5F5F5F"
_MIN_LW, _MAX_LW = 0.6, 3.2


def uncertainty(row: Mapping[str, Any]) -> float:
    """In [0, 1]: std / |mean| of a gaussian synapse, 1 - p of a bernoulli one, 0 if fixed."""
    kind = row.get("kind")
    if kind == "bernoulli":
        return min(max(1.0 - float(row.get("p", 1.0)), 0.0), 1.0)
    if kind == "gaussian":
        return min(float(row.get("std", 0.0)) / max(abs(float(row.get("mean", 0.0))), 1e-6), 1.0)
    return 0.0


class SynapseScale:
    r"""Maps a synapse row to an edge style; every encoding spreads over the values the
    rows actually have (:class:`~taskgraph.viz.scales.RobustRange`: the 2nd to 98th
    percentile, clipped beyond), so a model whose synapses all lie in 0.973–0.979 still
    gets its whole colour and width range:

    * colour: :math:`\mathbb{E}[w]` (the row's ``mean``), a sequential map over its range,
      or a diverging one centred on 0 (blue negative, red positive) when the range
      holds both signs;
    * width: :math:`|\mathbb{E}[w]|`, 0.6 pt at its 2nd percentile to 3.2 pt at its 98th;
    * opacity: the uncertainty (:func:`uncertainty`: std / :math:`|\mathbb{E}[w]|` of a
      gaussian synapse, 1 − p of a bernoulli one), opaque at its 2nd percentile, 0.25 at
      its 98th;
    * dashes: bernoulli synapses, the gaps growing as p falls.

    A statistic whose values are all equal gets the middle colour, a middle width and
    the opacity ``1 - 0.8 * uncertainty``.

    Args:
        rows: synapse rows (``model.synapses()``): ``kind``, ``mean``, ``std``, ``p``.
        quantiles: the percentiles the scales span.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]],
                 quantiles: tuple[float, float] = QUANTILES) -> None:
        rows = list(rows)
        means = [float(r["mean"]) for r in rows] or [1.0]
        self.kinds = sorted({str(r.get("kind")) for r in rows})
        self.mean = RobustRange(means, quantiles)
        self.magnitude = RobustRange([abs(m) for m in means], quantiles)
        self.spread = RobustRange([uncertainty(r) for r in rows] or [0.0], quantiles)
        self.vmin, self.vmax = self.mean.low, self.mean.high
        self.diverging = self.vmin < 0 < self.vmax

    @property
    def spread_name(self) -> str:
        """What the opacity shows, in words, for the kinds present."""
        names = [n for k, n in (("gaussian", "std / |E[w]|"), ("bernoulli", "1 − p"))
                 if k in self.kinds]
        return " or ".join(names) or "uncertainty"

    def cmap(self) -> Any:
        from matplotlib.colors import LinearSegmentedColormap

        if self.diverging:
            return LinearSegmentedColormap.from_list(
                "synapse_diverging", ["#2166AC", "#9DB9D3", "#BDBDBD", "#E0A18B", "#B2182B"])
        return LinearSegmentedColormap.from_list(
            "synapse", ["#8FB5D9", "#3B75AF", "#2A3F8F", "#5B1A72"])

    def norm(self) -> Any:
        """The colour norm: exactly ``[vmin, vmax]`` (the percentiles of the means)."""
        from matplotlib.colors import Normalize, TwoSlopeNorm

        if self.diverging:
            return TwoSlopeNorm(0.0, self.vmin, self.vmax)
        if self.vmax <= self.vmin:  # a single value: a small range around it
            pad = max(1e-3 * abs(self.vmin), 1e-6)
            return Normalize(self.vmin - pad, self.vmax + pad, clip=True)
        return Normalize(self.vmin, self.vmax, clip=True)

    def width(self, mean: float) -> float:
        """Line width (points) for a synapse of mean ``mean``."""
        return _MIN_LW + (_MAX_LW - _MIN_LW) * self.magnitude.fraction(abs(float(mean)))

    def alpha(self, row: Mapping[str, Any]) -> float:
        """Opacity for a synapse row (see the class docstring)."""
        u = uncertainty(row)
        if self.spread.span <= 0:
            return 1.0 - 0.8 * u
        return 1.0 - 0.75 * self.spread.fraction(u)

    def __call__(self, row: Mapping[str, Any]) -> dict[str, Any]:
        mean = float(row["mean"])
        gap = 1.0 - float(row.get("p", 1.0))
        out = {"linewidth": self.width(mean), "alpha": self.alpha(row),
               "dashed": row.get("kind") == "bernoulli", "dashes": (3.0, 1.0 + 8.0 * gap),
               "color": None}
        try:
            out["color"] = self.cmap()(self.norm()(mean))
        except ImportError:  # pragma: no cover - only the DOT writer runs without matplotlib
            pass
        return out


_STACK = 0.06  # how far the cards behind a multilabel node peek out (inches)


def shape_extra(kind: str, height: float) -> tuple[float, float]:
    """Width and height a shape adds to its text box (hexagon tips, stacked cards)."""
    shape = TYPE_STYLE[kind]["shape"]
    if shape == "hexagon":
        return 0.5 * height, 0.0
    if shape == "stack":
        return _STACK, _STACK
    return 0.0, 0.0


def text_center(kind: str, x: float, y: float) -> tuple[float, float]:
    """Where the label of a ``kind`` node centred at ``(x, y)`` goes."""
    if TYPE_STYLE[kind]["shape"] == "stack":  # on the front card, lower left
        return x - _STACK / 2, y - _STACK / 2
    return x, y


def add_node(ax: Any, kind: str, x: float, y: float, w: float, h: float, *,
             zorder: float = 2) -> list[Any]:
    """Draw the shape of a ``kind`` node centred at ``(x, y)``, ``w`` by ``h`` (inches)."""
    from matplotlib.patches import FancyBboxPatch, Polygon

    style = TYPE_STYLE[kind]
    common = {"facecolor": style["fill"], "edgecolor": style["color"], "linewidth": 1.1,
              "zorder": zorder}
    shape = style["shape"]
    patches = []
    if shape == "hexagon":
        tip = 0.25 * h
        core = w - 2 * tip
        pts = [(x - w / 2, y), (x - core / 2, y + h / 2), (x + core / 2, y + h / 2),
               (x + w / 2, y), (x + core / 2, y - h / 2), (x - core / 2, y - h / 2)]
        patches.append(Polygon(pts, closed=True, joinstyle="round", **common))
    elif shape == "stack":
        for d in (_STACK, _STACK / 2, 0.0):  # two cards behind, then the front one
            patches.append(FancyBboxPatch((x - w / 2 + d, y - h / 2 + d), w - _STACK,
                                          h - _STACK, boxstyle="round,pad=0,rounding_size=0.02",
                                          **common))
    else:
        radius = {"pill": min(h, w) / 2, "rect": 0.025, "dashed": 0.025}[shape]
        patch = FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                               boxstyle=f"round,pad=0,rounding_size={radius}", **common)
        if shape == "dashed":
            patch.set_linestyle((0, (3, 2)))
            patch.set_edgecolor(MUTED)
        patches.append(patch)
    for p in patches:
        ax.add_artist(p)
    return patches


def edge_path(points: Sequence[tuple[float, float]], corners: Sequence[bool]) -> Any:
    """A smooth path through ``points``: vertical S-curves across the gaps between
    layers, straight runs where ``corners[i]`` says point ``i`` starts a straight run."""
    from matplotlib.path import Path

    verts = [points[0]]
    codes = [Path.MOVETO]
    for i in range(1, len(points)):
        (x0, y0), (x1, y1) = points[i - 1], points[i]
        if corners[i - 1]:
            verts.append((x1, y1))
            codes.append(Path.LINETO)
        else:
            k = (y0 - y1) * 0.5
            verts += [(x0, y0 - k), (x1, y1 + k), (x1, y1)]
            codes += [Path.CURVE4] * 3
    return Path(verts, codes)


def add_edge(ax: Any, points: list[tuple[float, float]], corners: list[bool], *,
             color: Any = EDGE_GREY, linewidth: float = 0.9, alpha: float = 0.85,
             dashes: tuple[float, float] | None = None, arrow_up: bool = False,
             zorder: float = 1) -> list[Any]:
    """Draw one edge through ``points`` with an arrowhead at its last point.

    The head points down into a child (or up into a parent with ``arrow_up``); the
    line stops at the head's base so dashes never reach into it.
    """
    from matplotlib.patches import PathPatch, Polygon

    head = 0.075 + 0.012 * linewidth
    half = 0.42 * head + 0.004 * linewidth
    tip_x, tip_y = points[-1]
    sign = -1.0 if arrow_up else 1.0  # the base is above the tip for a downward head
    base_y = tip_y + sign * head
    line_points = points[:-1] + [(tip_x, base_y + sign * -0.2 * head)]
    line = PathPatch(edge_path(line_points, corners), facecolor="none", edgecolor=color,
                     linewidth=linewidth, alpha=alpha, capstyle="butt", zorder=zorder)
    if dashes is not None:
        line.set_linestyle((0, dashes))
    tri = Polygon([(tip_x, tip_y), (tip_x - half, base_y), (tip_x + half, base_y)],
                  closed=True, facecolor=color, edgecolor="none", alpha=alpha,
                  zorder=zorder + 0.1)
    ax.add_artist(line)
    ax.add_artist(tri)
    return [line, tri]
