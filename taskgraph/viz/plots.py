"""Figures of a training run: loss curves (:func:`plot_training_curves`) and per-task
scores (:func:`plot_metrics`).

Each function takes the object ``taskgraph`` returns (a :class:`~taskgraph.History`,
a :class:`~taskgraph.Report`), its ``to_dict()`` form, or the JSON file that
``taskgraph train`` writes, and saves one figure (.png, .svg or .pdf, or PNG to a
binary file object). matplotlib is imported inside the functions.

Example:
    >>> import os, tempfile
    >>> from taskgraph.train import History
    >>> h = History([{"epoch": e, "loss": 1 / e, "data": 0.9 / e, "kl": 0.1,
    ...               "per_task": {"a": 0.5 / e, "b": 0.4 / e}, "val_loss": 1.1 / e}
    ...              for e in (1, 2, 3)])
    >>> out = plot_training_curves(h, os.path.join(tempfile.mkdtemp(), "curves.png"))
    >>> os.path.getsize(out) > 1000
    True
"""

from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Sequence

from taskgraph.errors import DataError
from taskgraph.viz.style import INK, MUTED, PALETTE, TYPE_STYLE, check_target, figure, save

__all__ = ["plot_training_curves", "plot_metrics", "load_history", "load_report",
           "SCORE_NAME"]

#: The primary score of each task type, in a few words (see ``taskgraph.metrics.PRIMARY``).
SCORE_NAME = {"binary": "average precision", "multiclass": "accuracy",
              "multilabel": "micro F1", "regression": "clipped R²"}

_CURVES = [("loss", "train loss", INK, "-"), ("data", "train data term", "#0072B2", "--"),
           ("kl", "KL divergence (sum)", "#E69F00", ":"),
           ("val_loss", "validation loss", "#D55E00", "-")]


def _read_json(path: str | os.PathLike, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as err:
        raise DataError(f"{os.fspath(path)}: not a {what} JSON file ({err})") from None


def load_history(history: Any) -> list[dict[str, Any]]:
    """Epoch records from a History, its ``to_dict()`` form or a ``history.json`` path."""
    if isinstance(history, (str, os.PathLike)):
        history = _read_json(history, "history")
    if isinstance(history, Mapping):
        records = history.get("epochs")
    else:
        records = getattr(history, "records", None)
    if not isinstance(records, list) or not records:
        raise DataError("history: expected a History (or history.json) with at least one "
                        "epoch, got none")
    return records


def load_report(report: Any) -> dict[str, Any]:
    """A report dict from a Report, its ``to_dict()`` form or a ``report.json`` path."""
    if isinstance(report, (str, os.PathLike)):
        report = _read_json(report, "report")
    if hasattr(report, "to_dict"):
        report = report.to_dict()
    if not isinstance(report, Mapping) or not isinstance(report.get("tasks"), Mapping):
        raise DataError("report: expected a Report (or report.json) with a 'tasks' table")
    return dict(report)


def _finite(values: Sequence[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _log_if_wide(ax: Any, values: Sequence[float]) -> None:
    """Log y scale when positive values span more than two decades."""
    pos = [v for v in values if v > 0]
    if pos and len(pos) == len(values) and max(pos) / min(pos) > 100:
        ax.set_yscale("log")


def plot_training_curves(history: Any, path: str | os.PathLike | Any, *,
                         tasks: Sequence[str] | None = None, top: int = 8) -> Any:
    """Loss per epoch (total, data term, KL, validation) and per-task training losses.

    Args:
        history: a :class:`~taskgraph.History`, its ``to_dict()``, or ``history.json``.
        path: the output file (.png, .svg, .pdf) or a binary file object (PNG).
        tasks: the tasks of the second panel (default: the ``top`` with the highest
            mean loss).
        top: how many tasks to show by default.

    Returns:
        ``path``.

    Raises:
        DataError: an empty history, or a task that is not in it.
    """
    check_target(path)
    records = load_history(history)
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(records)]
    per_task: dict[str, list[float | None]] = {}
    for r in records:
        for name in r.get("per_task") or {}:
            per_task.setdefault(name, [])
    for name in per_task:
        per_task[name] = [(r.get("per_task") or {}).get(name) for r in records]
    if tasks is None:
        def mean_loss(name: str) -> float:
            values = _finite(per_task[name])
            return sum(values) / len(values) if values else -math.inf
        tasks = sorted(per_task, key=mean_loss, reverse=True)[:top]
    else:
        missing = [t for t in tasks if t not in per_task]
        if missing:
            raise DataError(f"tasks: {missing[0]!r} has no per-task loss in the history")
    best = _best(records)
    marker = {"marker": "o", "markersize": 3} if len(records) <= 25 else {}
    score = [r.get("val_overall") for r in records]
    has_score = bool(_finite(score))
    panels = 1 + bool(tasks) + has_score
    with figure(4.2 * panels + (0.9 if tasks else 0.3), 3.4, layout="constrained") as fig:
        axes = fig.subplots(1, panels, squeeze=False)[0]
        ax = axes[0]
        shown: list[float] = []
        for key, label, color, style in _CURVES:
            values = [r.get(key) for r in records]
            if not _finite(values):
                continue
            ys = [v if isinstance(v, (int, float)) else math.nan for v in values]
            ax.plot(epochs, ys, style, color=color, label=label, **marker)
            shown += _finite(values)
        _log_if_wide(ax, shown)
        if best is not None:
            ax.axvline(best, color=MUTED, linewidth=0.8, linestyle=(0, (2, 2)))
            ax.annotate("best", (best, 1), xycoords=("data", "axes fraction"),
                        xytext=(3, -2), textcoords="offset points", fontsize=7,
                        color=MUTED, va="top")
        ax.set_title("Loss", loc="left")
        ax.set(xlabel="epoch", ylabel="loss")
        ax.legend(loc="best")
        if tasks:
            ax2 = axes[1]
            values: list[float] = []
            for i, name in enumerate(tasks):
                ys = [v if isinstance(v, (int, float)) else math.nan for v in per_task[name]]
                ax2.plot(epochs, ys, color=PALETTE[i % len(PALETTE)], label=name, **marker)
                values += _finite(per_task[name])
            _log_if_wide(ax2, values)
            hidden = len(per_task) - len(tasks)
            ax2.set_title("Per-task training loss" + (
                f" (top {len(tasks)} of {len(per_task)})" if hidden else ""), loc="left")
            ax2.set(xlabel="epoch", ylabel="loss")
            ax2.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        if has_score:
            ax3 = axes[-1]
            ax3.plot(epochs, [v if isinstance(v, (int, float)) else math.nan for v in score],
                     color="#009E73", **marker)
            ax3.set_title("Validation score", loc="left")
            ax3.set(xlabel="epoch", ylabel="mean primary score")
        for a in axes:
            a.xaxis.get_major_locator().set_params(integer=True)
        return save(fig, path)


def _best(records: list[dict[str, Any]]) -> int | None:
    values = [(r["val_loss"], r.get("epoch", i + 1)) for i, r in enumerate(records)
              if isinstance(r.get("val_loss"), (int, float)) and math.isfinite(r["val_loss"])]
    return min(values)[1] if len(values) > 1 else None


def plot_metrics(report: Any, path: str | os.PathLike | Any, *, max_tasks: int = 40) -> Any:
    """The primary score of every task as sorted bars, coloured by task type.

    With more than ``max_tasks`` tasks, the best and the worst ``max_tasks // 2`` are
    shown and the number left out is said.

    Args:
        report: a :class:`~taskgraph.Report`, its ``to_dict()``, or ``report.json``.
        path: the output file (.png, .svg, .pdf) or a binary file object (PNG).
        max_tasks: the most bars.

    Returns:
        ``path``.

    Example:
        >>> import io
        >>> r = {"overall": 0.7, "tasks": {"a": {"type": "binary", "n": 9, "score": 0.9},
        ...                                "b": {"type": "regression", "n": 9, "score": 0.5}}}
        >>> plot_metrics(r, io.BytesIO()).getvalue()[:4]
        b'\\x89PNG'
    """
    check_target(path)
    data = load_report(report)
    scored = [(name, m) for name, m in data["tasks"].items()
              if isinstance(m.get("score"), (int, float))]
    if not scored:
        raise DataError("report: no task has a score to plot")
    scored.sort(key=lambda item: -item[1]["score"])
    gap = None
    if len(scored) > max_tasks:
        half = max(max_tasks // 2, 1)
        gap = len(scored) - 2 * half
        scored = scored[:half] + [("", {})] + scored[-half:]
    unscored = len(data["tasks"]) - sum(1 for n, _ in scored if n) - (gap or 0)
    height = 1.3 + 0.2 * len(scored)
    label_w = min(max(len(n) for n, _ in scored), 40) * 0.065
    with figure(5.2 + label_w, height, layout="constrained") as fig:
        ax = fig.subplots()
        ys = list(range(len(scored)))[::-1]
        kinds_seen = []
        low = min(0.0, min(m["score"] for _, m in scored if m))
        for y, (name, m) in zip(ys, scored):
            if not m:
                ax.text(0.5 * (low + 1), y, f"⋯ {gap:,} more tasks ⋯", ha="center",
                        va="center", color=MUTED, fontsize=8)
                continue
            kind = m.get("type", "binary") if m.get("type") in TYPE_STYLE else "binary"
            label = None
            if kind not in kinds_seen:
                kinds_seen.append(kind)
                label = f"{kind} ({SCORE_NAME[kind]})"
            ax.barh(y, m["score"], height=0.7, color=TYPE_STYLE[kind]["color"], alpha=0.85,
                    label=label)
            if len(scored) - (gap is not None) <= 40:  # the value beside the bar (the
                # gap row is not a bar), right of 0 for negatives
                score = m["score"]
                ax.text(max(score, 0.0) + 0.01, y, f"{score:.3f}", va="center", ha="left",
                        fontsize=7, color=INK)
        ax.set_yticks(ys, [n[:40] for n, _ in scored])
        ax.tick_params(axis="y", length=0)
        ax.set_ylim(-0.7, len(scored) - 0.3)
        ax.set_xlim(low - (0.05 if low < 0 else 0), 1.1)
        ax.grid(axis="y", visible=False)
        ax.axvline(0, color="#444444", linewidth=0.8)
        if isinstance(data.get("overall"), (int, float)):
            ax.axvline(data["overall"], color=MUTED, linestyle=(0, (3, 2)), linewidth=0.9,
                       label=f"overall {data['overall']:.3f}")
        ax.set_xlabel("primary score (higher is better)")
        title = "Per-task score"
        if unscored > 0:
            title += f" ({unscored} task{'s' if unscored != 1 else ''} without a score)"
        ax.set_title(title, loc="left")
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: labels[i].startswith("overall"))
        fig.legend([handles[i] for i in order], [labels[i] for i in order],
                   loc="outside lower center", ncol=2 if len(labels) > 2 else len(labels))
        return save(fig, path)
