"""One look for every picture: palette, fonts, node styles, label wrapping, saving.

Colours are the Okabe-Ito palette (distinguishable with the common colour-vision
deficiencies); each task type has one colour and one node shape in every figure.
matplotlib is imported inside the functions that need it, never at import time.

Example:
    >>> wrap_label("carbohydrate_metabolism", 14)
    ['carbohydrate_', 'metabolism']
    >>> detail_line(TaskSpec("diet", "multiclass", classes=("a", "b", "c")))
    '3 classes'
    >>> check_format("graph.PNG", ("png", "svg"))
    'png'
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from typing import Any, Iterator

from taskgraph.hierarchy.specs import TaskSpec  # noqa: F401  (the module docstring's example)

__all__ = ["TYPE_STYLE", "PALETTE", "INK", "MUTED", "RC", "LARGE", "wrap_label", "detail_line",
           "check_format", "check_target", "figure", "save", "type_of", "require_matplotlib"]

#: A hierarchy with more tasks than this is *large*: its pictures summarize (an overview
#: of the top levels, per-level panels, the outlying synapses) instead of listing tasks.
LARGE = 60

INK = "#222222"     # text and axes
MUTED = "#777777"   # secondary text, collapsed boxes
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442",
           "#000000"]

#: Per task type: stroke colour, fill, matplotlib shape, DOT shape / style, legend text.
TYPE_STYLE: dict[str, dict[str, str]] = {
    "binary": {"color": "#0072B2", "fill": "#E1EEF7", "shape": "pill",
               "dot_shape": "box", "dot_style": "rounded,filled", "name": "binary"},
    "multiclass": {"color": "#D55E00", "fill": "#FBE8DC", "shape": "rect",
                   "dot_shape": "box", "dot_style": "filled", "name": "multiclass"},
    "multilabel": {"color": "#009E73", "fill": "#DDF3EC", "shape": "stack",
                   "dot_shape": "box3d", "dot_style": "filled", "name": "multilabel"},
    "regression": {"color": "#9C4F96", "fill": "#F3E6F2", "shape": "hexagon",
                   "dot_shape": "hexagon", "dot_style": "filled", "name": "regression"},
    "collapsed": {"color": MUTED, "fill": "#F4F4F4", "shape": "dashed",
                  "dot_shape": "box", "dot_style": "dashed,filled", "name": "collapsed subtree"},
}

#: matplotlib settings of every figure (applied with ``rc_context``, never globally).
RC: dict[str, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.edgecolor": "#444444",
    "axes.labelcolor": INK,
    "axes.linewidth": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#E6E6E6",
    "grid.linewidth": 0.6,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "lines.linewidth": 1.6,
    "figure.titlesize": 11,
    "figure.titleweight": "bold",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "text.color": INK,
}

_BREAK = re.compile(r"(?<=[_\-./: ])")


def type_of(spec: Any) -> str:
    """The task type of a node's spec (``binary`` when unknown)."""
    kind = getattr(spec, "type", None)
    return kind if kind in TYPE_STYLE else "binary"


def wrap_label(text: str, width: int = 16, max_lines: int = 3) -> list[str]:
    """Split ``text`` into lines of at most ``width`` characters.

    Lines break after ``_ - . / :`` or a space where possible, else mid-word; beyond
    ``max_lines`` the last line ends in an ellipsis.
    """
    lines: list[str] = []
    current = ""
    for part in _BREAK.split(text):
        while len(part) > width:  # a piece longer than a line: cut it
            room = width - len(current)
            lines.append(current + part[:room])
            part, current = part[room:], ""
        if len(current) + len(part) > width and current:
            lines.append(current)
            current = ""
        current += part
    if current or not lines:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return [ln.strip() or ln for ln in lines]


def detail_line(spec: Any) -> str:
    """The second line of a node: class, label or output count (``""`` if none)."""
    kind = getattr(spec, "type", None)
    if kind == "multiclass":
        return f"{len(spec.classes or ())} classes"
    if kind == "multilabel":
        return f"{len(spec.classes or ())} labels"
    if kind == "regression" and getattr(spec, "outputs", 1) != 1:
        return f"{spec.outputs} outputs"
    return ""


def check_format(path: str | os.PathLike, allowed: tuple[str, ...]) -> str:
    """The file format of ``path`` from its extension, if it is one of ``allowed``."""
    from taskgraph.viz.view import DrawingError

    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    if ext not in allowed:
        shown = ", ".join(f".{a}" for a in allowed[:-1]) + f" or .{allowed[-1]}"
        raise DrawingError(f"{os.fspath(path)}: unknown picture format "
                           f"{'.' + ext if ext else '(no extension)'}; expected {shown}")
    return ext


def require_matplotlib() -> Any:
    """``matplotlib``, or an ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - matplotlib is in the test env
        raise ImportError("taskgraph's pictures need matplotlib: pip install "
                          "'taskgraph[plot]' (or pip install matplotlib)") from err
    return matplotlib


@contextmanager
def figure(width: float, height: float, **kwargs: Any) -> Iterator[Any]:
    """A ``Figure`` on an Agg canvas inside the house ``rc_context`` (pyplot untouched)."""
    matplotlib = require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), **kwargs)
        FigureCanvasAgg(fig)
        yield fig


def save(fig: Any, path: str | os.PathLike | Any, *, dpi: float = 150) -> Any:
    """Write ``fig`` to ``path`` (.png, .svg or .pdf), or as PNG to a binary file object,
    under the house settings (so an SVG keeps its text as text).

    Returns:
        ``path`` (as a string when it is a path).
    """
    matplotlib = require_matplotlib()
    with matplotlib.rc_context(RC):
        if hasattr(path, "write"):
            fig.savefig(path, format="png", dpi=dpi, facecolor="white")
            return path
        fmt = check_format(path, ("png", "svg", "pdf"))
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        fig.savefig(path, format=fmt, dpi=dpi, facecolor="white",
                    metadata={"Software": "taskgraph"} if fmt == "png" else None)
    return path


def check_target(path: Any) -> None:
    """Fail early (before any work) when ``path`` has an unknown picture extension."""
    if not hasattr(path, "write"):
        check_format(path, ("png", "svg", "pdf"))
