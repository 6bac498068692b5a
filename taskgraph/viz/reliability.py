"""Reliability diagrams: is a predicted probability of 0.8 right 80 % of the time?

For each classification task the predictions are put in 15 equal-width confidence bins
(:func:`taskgraph.metrics.calibration_bins`, the binning of
:func:`taskgraph.metrics.expected_calibration_error`); a bar shows the
observed accuracy of a bin, the diagonal perfect calibration, the shaded gap the
miscalibration; the panel title gives the task's ECE. Binary tasks use the predicted
probability of the positive class against the observed frequency, multiclass tasks the
top-label confidence against top-label accuracy, multilabel tasks every (example,
label) pair as one binary event.

Example:
    >>> import io, torch, taskgraph as tg
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=5, task_dim=4)
    >>> Y = torch.randint(0, 2, (60, 7)).float()
    >>> loader = DataLoader(TensorDataset(torch.randn(60, 5), Y), batch_size=32)
    >>> data = reliability_data(model, loader, tasks=["metabolism", "glycolysis"])
    >>> sorted(data), data["metabolism"][0].shape
    (['glycolysis', 'metabolism'], (60,))
    >>> plot_reliability(model, loader, io.BytesIO()).getvalue()[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from taskgraph.errors import ArgumentError, DataError
from taskgraph.viz.style import INK, LARGE, MUTED, TYPE_STYLE, check_target, figure, save
from taskgraph.vocabulary import suggest

__all__ = ["plot_reliability", "reliability_data", "reliability_bins", "reliability_panels",
           "has_data", "Panel"]


def reliability_bins(outcome: Any, confidence: Any, n_bins: int = 15) -> dict[str, Any]:
    """Per bin ``count``, mean ``confidence``, ``accuracy``, the ``edges`` and the ECE:
    :func:`taskgraph.metrics.calibration_bins` (torch and the metrics load on first use).

    Example:
        >>> import numpy as np
        >>> b = reliability_bins(np.array([1., 0., 1., 1.]), np.array([.9, .9, .2, .2]), 5)
        >>> b["count"].tolist(), round(b["ece"], 3)
        ([0, 2, 0, 0, 2], 0.6)
    """
    from taskgraph.metrics.calibration import calibration_bins

    return calibration_bins(outcome, confidence, n_bins)


def reliability_data(model: Any, loader: Iterable[Any], *, tasks: Sequence[str] | None = None,
                     samples: int = 0, max_tasks: int = 12) -> dict[str, tuple[Any, Any]]:
    """``{task: (outcome, confidence)}`` over the labelled examples of ``loader``.

    Args:
        model: a :class:`~taskgraph.TaskGraphModel`.
        loader: batches ``(x, Y)`` / ``(x, {task: target})`` / ``{"x", "y"}``.
        tasks: classification tasks to collect (default: up to ``max_tasks`` of them,
            those with the most labels first; order of the hierarchy kept).
        samples: Monte-Carlo samples per prediction (0: mean synapse weights).

    Raises:
        DataError: an unknown or non-classification task, no classification task, an
            empty loader, batches without targets, or a bad target.
    """
    from taskgraph.model.batches import predict_loader
    from taskgraph.model.task_types import TASK_TYPES

    h = model.hierarchy
    calibrated = [t for t in h.task_names if TASK_TYPES[h[t].type].probabilistic]
    if tasks is not None:
        for t in tasks:
            if t not in h.tasks:
                raise DataError(f"tasks: unknown task {t!r}{suggest(t, h.task_names)}")
            if not TASK_TYPES[h[t].type].probabilistic:
                raise DataError(f"tasks: {t!r} is a {h[t].type} task; reliability diagrams "
                                f"need a binary, multiclass or multilabel task")
        chosen = set(tasks)
    else:
        if not calibrated:
            raise DataError(f"hierarchy {h.name!r} has no classification task to calibrate")
        chosen = set(calibrated)
    out: dict[str, tuple[Any, Any]] = {}
    for pred in predict_loader(model, loader, samples=samples, who="reliability diagrams"):
        kind = pred.group.task_type
        for j, name in enumerate(pred.group.names):
            if name in chosen:
                outcome, conf = kind.calibration_events(kind.task_view(pred.mean, j),
                                                        pred.target[:, j])
                if outcome.size:
                    out[name] = (outcome, conf)
    order = dict.fromkeys(tasks if tasks is not None else h.task_names)  # the caller's order
    out = {t: out[t] for t in order if t in out}
    if tasks is None and len(out) > max_tasks:
        keep = sorted(out, key=lambda t: -out[t][0].size)[:max_tasks]
        out = {t: out[t] for t in out if t in keep}
    if not out:
        raise DataError("reliability diagrams: no labelled example for the chosen tasks")
    return out


@dataclass
class Panel:
    """One reliability diagram: a task, or the tasks of one type at one hierarchy level.

    Attributes:
        label: the panel's name (a task, or ``"level 2 · binary"``).
        outcome, confidence: ``(n,)`` events (see :func:`reliability_data`).
        kind: the task type.
        tasks: how many tasks are pooled (1 for a task panel).
    """

    label: str
    outcome: Any
    confidence: Any
    kind: str
    tasks: int = 1

    @property
    def note(self) -> str:
        """The line under the panel title: what is pooled and how many events."""
        n = f"n={self.outcome.size:,}"
        return f"{self.kind}, {n}" if self.tasks == 1 and not self.label.startswith(
            "level ") else f"{self.tasks:,} task{'s' if self.tasks != 1 else ''}, {n}"


def has_data(outcome: Any, confidence: Any, n_bins: int = 15, *, min_count: int = 5,
             least: float = 0.1) -> bool:
    """Whether a reliability diagram of these events shows something: at least two of
    its ``n_bins`` equal-width bins hold ``m = max(1, min(min_count, n // 10))`` events
    or more (``n`` events in all), and in one of those the observed frequency reaches
    ``least`` (a bar a tenth of the panel high).

    A rare label predicted near 0 everywhere fails: its bars would all lie flat on
    the axis.

    Example:
        >>> import numpy as np
        >>> conf = np.r_[np.full(50, 0.02), np.full(50, 0.6)]
        >>> has_data(np.r_[np.zeros(50), np.ones(30), np.zeros(20)], conf)
        True
        >>> has_data(np.r_[np.ones(1), np.zeros(99)], np.full(100, 0.03))  # one bin, flat
        False
    """
    b = reliability_bins(outcome, confidence, n_bins)
    filled = b["count"] >= max(1, min(min_count, int(b["count"].sum()) // 10))
    return int(filled.sum()) >= 2 and bool((b["accuracy"][filled] >= least).any())


def reliability_panels(model: Any, loader: Iterable[Any], *, by: str = "auto",
                       tasks: Sequence[str] | None = None, samples: int = 0,
                       n_bins: int = 15, max_panels: int = 12) -> tuple[list[Panel], int]:
    """The panels of :func:`plot_reliability` and how many were left out for want of data.

    Args:
        model, loader, samples: as :func:`reliability_data`.
        by: ``"task"``: one panel per task (``tasks``, or those with the most labelled
            events); ``"level"``: the events of all tasks of one type at one hierarchy
            level (``hierarchy.depths``) pooled; ``"auto"``: ``"level"`` for a
            hierarchy of more than :data:`~taskgraph.viz.style.LARGE` tasks (unless
            ``tasks`` are named), else ``"task"``.
        n_bins: bins of :func:`has_data`.
        max_panels: the most panels (task panels: the most events first).

    Returns:
        ``(panels, left_out)``: only panels that pass :func:`has_data`, in hierarchy
        (or level) order.

    Raises:
        DataError: see :func:`reliability_data`; no panel has data.
        ArgumentError: an unknown ``by``.
    """
    if by not in ("auto", "task", "level"):
        raise ArgumentError(f"reliability diagrams: by: expected 'auto', 'task' or 'level', "
                            f"got {by!r}")
    h = model.hierarchy
    if by == "auto":
        by = "level" if tasks is None and len(h.task_names) > LARGE else "task"
    data = reliability_data(model, loader, tasks=tasks, samples=samples,
                            max_tasks=len(h.task_names))
    if by == "level":
        import numpy as np

        groups: dict[tuple[int, str], list[str]] = {}
        for t in data:
            groups.setdefault((h.depths[t], h[t].type), []).append(t)
        panels = [Panel(f"level {level} · {kind}",
                        np.concatenate([data[t][0] for t in names]),
                        np.concatenate([data[t][1] for t in names]), kind, len(names))
                  for (level, kind), names in sorted(groups.items())]
    else:
        panels = [Panel(t, o, c, h[t].type) for t, (o, c) in data.items()]
    kept = [p for p in panels if has_data(p.outcome, p.confidence, n_bins)]
    if len(kept) > max_panels:
        chosen = set(sorted(range(len(kept)), key=lambda k: -kept[k].outcome.size)
                     [:max_panels])
        kept = [p for k, p in enumerate(kept) if k in chosen]
    if not kept:
        raise DataError(f"reliability diagrams: none of the {len(panels)} "
                        f"{'levels' if by == 'level' else 'tasks'} has enough data (two "
                        "bins of 5 or more events, one with a frequency of 0.1 or more)")
    return kept, len(panels) - len(kept)


def plot_reliability(model: Any, loader: Iterable[Any], path: str | os.PathLike | Any, *,
                     tasks: Sequence[str] | None = None, samples: int = 0,
                     n_bins: int = 15, max_tasks: int = 12, by: str = "auto") -> Any:
    """Reliability diagrams, ECE in each panel title: one per classification task, or,
    for a large hierarchy, one per hierarchy level and task type (events pooled). Only
    panels with something to show are drawn (:func:`has_data`); the title says how
    many were left out.

    Args:
        model: a :class:`~taskgraph.TaskGraphModel`.
        loader: labelled batches, as for :func:`taskgraph.evaluate`.
        path: the output file (.png, .svg, .pdf) or a binary file object (PNG).
        tasks: which tasks (default: up to ``max_tasks``, most labels first).
        samples: Monte-Carlo samples per prediction (0: mean synapse weights).
        n_bins: confidence bins (15, as the ECE of the reports).
        max_tasks: the most panels.
        by: ``"task"``, ``"level"`` or ``"auto"`` (:func:`reliability_panels`).

    Returns:
        ``path``.

    Raises:
        DataError: see :func:`reliability_panels`.
        ArgumentError: ``n_bins`` is not an integer >= 2, or an unknown ``by``.
    """
    check_target(path)
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise ArgumentError(f"plot_reliability: n_bins: expected an integer >= 2, got "
                            f"{n_bins!r}")
    panels, left_out = reliability_panels(model, loader, by=by, tasks=tasks, samples=samples,
                                          n_bins=n_bins, max_panels=max_tasks)
    n = len(panels)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    with figure(2.55 * cols + 0.3, 2.65 * rows + 0.35, layout="constrained") as fig:
        axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        for k, panel in enumerate(panels):
            ax = axes[k // cols][k % cols]
            kind = panel.kind
            b = reliability_bins(panel.outcome, panel.confidence, n_bins)
            left, width = b["edges"][:-1], 1.0 / n_bins
            filled = b["count"] > 0
            color = TYPE_STYLE[kind]["color"]
            ax.bar(left[filled], b["accuracy"][filled], width=width, align="edge",
                   color=color, alpha=0.8, edgecolor="white", linewidth=0.5)
            expected = b["confidence"][filled]  # what a calibrated model would score
            gap_lo = [min(a, c) for a, c in zip(b["accuracy"][filled], expected)]
            gap_hi = [abs(a - c) for a, c in zip(b["accuracy"][filled], expected)]
            ax.bar(left[filled], gap_hi, bottom=gap_lo, width=width, align="edge",
                   color="#D55E00", alpha=0.18, edgecolor="#D55E00", linewidth=0.4,
                   hatch="////")
            ax.plot([0, 1], [0, 1], color=INK, linewidth=0.9, linestyle=(0, (3, 2)))
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_aspect("equal")
            ax.set_title(f"{panel.label[:28]} · ECE {b['ece']:.3f}", loc="left", fontsize=9)
            ax.text(0.03, 0.96, panel.note, transform=ax.transAxes, fontsize=7, color=MUTED,
                    va="top")
        for k in range(n, rows * cols):
            axes[k // cols][k % cols].set_visible(False)
        for r in range(rows):
            axes[r][0].set_ylabel("accuracy / frequency")
        for c in range(cols):
            axes[rows - 1][c].set_xlabel("confidence")
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles = [Patch(facecolor="#8C8C8C", label="observed accuracy (colour: task type)"),
                   Patch(facecolor="#D55E00", alpha=0.18, edgecolor="#D55E00", hatch="////",
                         label="gap to mean confidence"),
                   Line2D([], [], color=INK, linewidth=0.9, linestyle=(0, (3, 2)),
                          label="perfect calibration")]
        fig.legend(handles=handles, loc="outside lower center", ncol=3)
        note = f"{n_bins} bins" + (f", {samples} MC samples" if samples else "")
        if left_out:
            note += (f"; {left_out} {'panel' if left_out == 1 else 'panels'} without enough "
                     "data left out")
        fig.suptitle(f"Reliability ({note})", x=0.02, ha="left")
        return save(fig, path)
