"""`Report`: what :func:`taskgraph.metrics.evaluate` returns, with JSON, Markdown and
DataFrame views.

Example:
    >>> r = Report(tasks={"a": {"type": "binary", "n": 4, "score": 0.5, "accuracy": 0.75,
    ...                         "auroc": None}},
    ...            hierarchy={}, overall=0.5, n_examples=4)
    >>> r
    Report(tasks=1, n_examples=4, samples=0, overall=0.5)
    >>> print(r.to_json(indent=None))  # doctest: +ELLIPSIS
    {"overall": 0.5, ..."tasks": {"a": {"type": "binary", "n": 4, "score": 0.5, "accuracy": 0.75, "auroc": null}}, ...}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from taskgraph.atomic import write_text_atomic
from taskgraph.metrics.task_scores import SCORERS

__all__ = ["Report", "PRIMARY", "level_rows", "LEVEL_MEASURES"]

MARKDOWN_ROWS = 50

#: The measures :func:`level_rows` averages per (level, type), with their Markdown labels;
#: the two ``error_auroc`` scores of Monte-Carlo samples join them where tasks have them.
LEVEL_MEASURES = (("score", "score"), ("nll", "NLL"), ("brier", "Brier"), ("ece", "ECE"),
                  ("ece_adaptive", "ECE (equal mass)"), ("aurc", "AURC"),
                  ("error_auroc_entropy", "error AUROC (entropy)"))
_SAMPLED = (("error_auroc_mutual_info", "error AUROC (MI)"),
            ("error_auroc_std", "error AUROC (std)"))
#: Tasks in the "worst-calibrated" and "most uncertain" lists of a long Markdown report.
MARKDOWN_TOP = 10

#: Each task type's primary metric (a task's ``score``), in words.
PRIMARY = {kind: scorer.description for kind, scorer in SCORERS.items()}

# (key, label) of the metrics shown per task type in the Markdown table.
_SHOWN = {kind: list(scorer.shown) for kind, scorer in SCORERS.items()}
_CALIBRATION = [("ece", "ECE"), ("ece_adaptive", "ECE eq-mass"), ("nll", "NLL"),
                ("brier", "Brier"), ("aurc", "AURC"), ("error_auroc_entropy", "err-AUROC H"),
                ("error_auroc_mutual_info", "err-AUROC MI"), ("error_auroc_std", "err-AUROC std"),
                ("entropy", "entropy"), ("mutual_info", "MI")]
_HIERARCHY = [("h_precision", "hierarchical precision"), ("h_recall", "hierarchical recall"),
              ("h_f1", "hierarchical F1"), ("auprc_bar", "AU(PRC)-bar (micro AP, non-root)"),
              ("coherence_violation_rate", "coherence violation rate"),
              ("binary_tasks", "binary tasks"), ("evaluated_tasks", "tasks evaluated"),
              ("edges", "binary edges"), ("excluded", "not evaluated (roots)")]


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN / inf -> None, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray)
                                       else value)]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return f"{v:.3f}" if v == 0 or 1e-3 <= abs(v) < 1e3 else f"{v:.3g}"
    if isinstance(value, (list, tuple)):
        shown = ", ".join(map(str, value[:10]))
        return shown + (f", … ({len(value) - 10} more)" if len(value) > 10 else "")
    return str(value)


def _names(names: Any, first: int = 10) -> str:
    """A list of task names as "none", or its count and the first ``first`` names.

    >>> _names([]), _names(["root"]), _names([f"t{i}" for i in range(12)], first=2)
    ('none', '1: root', '12: t0, t1, … (10 more)')
    """
    names = [str(n) for n in (names or [])]
    if not names:
        return "none"
    more = f", … ({len(names) - first:,} more)" if len(names) > first else ""
    return f"{len(names):,}: " + ", ".join(names[:first]) + more


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _mean(values: list[Any]) -> float | None:
    defined = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return float(np.mean(defined)) if defined else None


def level_rows(tasks: dict[str, dict[str, Any]], depths: dict[str, int]
               ) -> list[dict[str, Any]]:
    """One row per (hierarchy level, task type): the number of tasks and the mean of each
    of :data:`LEVEL_MEASURES` over the tasks where it is defined (``None`` if none).

    Args:
        tasks: ``Report.tasks``.
        depths: a task's level: the longest path from a root (roots: 0), as
            :attr:`Hierarchy.depths <taskgraph.Hierarchy.depths>` gives it.

    Returns:
        Rows ``{"level", "type", "tasks", "score", "nll", ...}`` by level, then in the
        order of :data:`PRIMARY`'s types; ``error_auroc_mutual_info`` and
        ``error_auroc_std`` are keys where some task has them (Monte-Carlo samples).

    Example:
        >>> tasks = {"a": {"type": "binary", "score": .5, "ece": .1},
        ...          "b": {"type": "binary", "score": .7, "ece": None},
        ...          "c": {"type": "regression", "score": .2}}
        >>> rows = level_rows(tasks, {"a": 0, "b": 1, "c": 1})
        >>> [(r["level"], r["type"], r["tasks"], r["score"], r["ece"]) for r in rows]
        [(0, 'binary', 1, 0.5, 0.1), (1, 'binary', 1, 0.7, None), (1, 'regression', 1, 0.2, None)]
    """
    kinds = list(PRIMARY)
    cells: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for name, metrics in tasks.items():
        kind = metrics.get("type", "")
        rank = kinds.index(kind) if kind in kinds else len(kinds)
        cells.setdefault((int(depths[name]), rank, kind), []).append(metrics)
    sampled = [key for key, _ in _SAMPLED if any(key in m for m in tasks.values())]
    keys = [key for key, _ in LEVEL_MEASURES] + sampled
    return [{"level": level, "type": kind, "tasks": len(group),
             **{key: _mean([m.get(key) for m in group]) for key in keys}}
            for (level, _, kind), group in sorted(cells.items())]


@dataclass(repr=False)
class Report:
    """Evaluation results.

    Attributes:
        tasks: ``{task: {metric: value}}`` in hierarchy order; every entry has ``type``,
            ``n`` (labelled examples) and ``score`` (the task's primary score, see
            :data:`PRIMARY`); undefined metrics are ``None``.
        hierarchy: label-hierarchy metrics (empty with fewer than two binary tasks).
        overall: mean ``score`` over the tasks where it is defined (``None`` if none).
        samples: Monte-Carlo samples used (0: expected synapse weights).
        draws: what the samples were: ``"MC dropout"`` or ``"synapses"``; ``None``
            without samples.
        n_examples: examples seen.
        threshold: the decision threshold of binary and multilabel predictions.
        single_class: the binary tasks whose labelled examples all have one class: their
            AP and AUROC are undefined, so they have no ``score`` and are not in
            ``overall``.
        data_name: what the report was computed on (a file name and, e.g., which split),
            shown in the Markdown header; ``None``: not said.
        levels: per (hierarchy level, task type) the task count and mean measures
            (:func:`level_rows`); empty where not computed.
    """

    tasks: dict[str, dict[str, Any]]
    hierarchy: dict[str, Any]
    overall: float | None
    samples: int = 0
    n_examples: int = 0
    threshold: float = 0.5
    single_class: list[str] = field(default_factory=list)
    data_name: str | None = None
    levels: list[dict[str, Any]] = field(default_factory=list)
    draws: str | None = None

    def __repr__(self) -> str:
        overall = "None" if self.overall is None else f"{self.overall:.4g}"
        return (f"Report(tasks={len(self.tasks)}, n_examples={self.n_examples}, "
                f"samples={self.samples}, overall={overall})")

    @property
    def scored_tasks(self) -> int:
        """The number of tasks with a score (the tasks ``overall`` is the mean of)."""
        return sum(1 for m in self.tasks.values() if m.get("score") is not None)

    def summary(self) -> str:
        """One line: the overall score, over how many tasks, and which are not scored.

        Example:
            >>> r = Report(tasks={"a": {"type": "binary", "n": 4, "score": 0.5},
            ...                   "b": {"type": "binary", "n": 4, "score": None}},
            ...            hierarchy={}, overall=0.5, single_class=["b"])
            >>> print(r.summary().replace("; ", ";\\n"))
            overall 0.500 (mean score over 1 of 2 tasks);
            1 binary task has a single class in these data and is not scored
        """
        return self._summary(_number(self.overall))

    def _summary(self, overall: str) -> str:
        scored, total = self.scored_tasks, len(self.tasks)
        text = f"overall {overall} (mean score over {scored:,} of {total:,} task" \
               f"{'s' if total != 1 else ''})"
        single = len(self.single_class)
        if single:
            text += (f"; {single:,} binary task{'s have' if single != 1 else ' has'} a single "
                     f"class in these data and {'are' if single != 1 else 'is'} not scored")
        other = total - scored - single
        if other > 0:
            text += (f"; {other:,} other task{'s have' if other != 1 else ' has'} too few "
                     "labelled examples for a score")
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy: plain Python types, ``None`` for undefined values."""
        return _jsonable({"overall": self.overall, "data_name": self.data_name,
                          "n_examples": self.n_examples, "samples": self.samples,
                          "draws": self.draws,
                          "threshold": self.threshold, "scored_tasks": self.scored_tasks,
                          "single_class": list(self.single_class), "levels": self.levels,
                          "tasks": self.tasks, "hierarchy": self.hierarchy})

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = 2) -> str:
        """The report as JSON text (``null`` for undefined values, never ``NaN``).

        Args:
            path: also write the text to this file.
            indent: JSON indentation (``None``: one line).

        Returns:
            The JSON text.
        """
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)
        if path is not None:
            write_text_atomic(path, text + "\n")
        return text

    def to_markdown(self, *, max_rows: int = MARKDOWN_ROWS) -> str:
        """A readable Markdown summary: the per-level table (:attr:`levels`), one row per
        task, then the hierarchy metrics.

        With more than ``max_rows`` tasks, the ``max_rows`` with the most labelled
        examples are shown and the number hidden is said, and two short lists come
        before the task table: the :data:`MARKDOWN_TOP` worst-calibrated tasks (highest
        ECE) and the most uncertain ones (highest mean predictive entropy).

        Returns:
            Markdown text.

        Example:
            >>> r = Report(tasks={"a": {"type": "regression", "n": 3, "score": 0.2,
            ...                         "mse": 1.5, "mae": 1.0, "r2": 0.2}},
            ...            hierarchy={}, overall=0.2, n_examples=3)
            >>> print(r.to_markdown().splitlines()[-3])
            | a | regression | 3 | 0.200 | MSE 1.500, MAE 1.000, R² 0.200 |  |
        """
        lines = ["# Evaluation report", ""]
        if self.data_name is not None:
            lines += [f"data: {self.data_name}", ""]
        lines.append(f"{self._summary(f'**{_number(self.overall)}**')} · "
                     f"{self.n_examples:,} examples · samples {self.samples}"
                     f"{f' ({self.draws})' if self.draws else ''} · "
                     f"threshold {self.threshold:g}")
        lines += self._levels_markdown()
        if len(self.tasks) > max_rows:
            lines += self._top_markdown("ece", "Worst-calibrated tasks", "ECE")
            lines += self._top_markdown("entropy", "Most uncertain tasks",
                                        "mean predictive entropy")
        lines += ["", f"## Tasks ({len(self.tasks):,})", ""]
        names = list(self.tasks)
        if len(names) > max_rows:
            order = sorted(range(len(names)), key=lambda i: -(self.tasks[names[i]].get("n") or 0))
            names = [names[i] for i in sorted(order[:max_rows])]
        lines += ["| task | type | n | score | metrics | calibration |",
                  "|---|---|---:|---:|---|---|"]
        for name in names:
            m = self.tasks[name]
            kind = m.get("type", "")
            main = ", ".join(f"{label} {_number(m[k])}" for k, label in _SHOWN.get(kind, [])
                             if k in m)
            calib = ", ".join(f"{label} {_number(m[k])}" for k, label in _CALIBRATION if k in m)
            lines.append(f"| {_cell(name)} | {kind} | {_number(m.get('n'))} | "
                         f"{_number(m.get('score'))} | {main} | {calib} |")
        hidden = len(self.tasks) - len(names)
        if hidden:
            lines += ["", f"_Showing the {len(names)} tasks with the most labelled examples; "
                          f"{hidden:,} more are hidden (see `to_dict()`)._"]
        kinds = sorted({m.get("type") for m in self.tasks.values()} & set(PRIMARY))
        lines += ["", "score: " + "; ".join(f"{k}: {PRIMARY[k]}" for k in kinds) + "."]
        if self.hierarchy:
            lines += ["", "## Hierarchy", "", "| metric | value |", "|---|---:|"]
            for key, label in _HIERARCHY:
                if key in self.hierarchy:
                    value = self.hierarchy[key]
                    shown = _names(value) if key == "excluded" else _number(value)
                    lines.append(f"| {label} | {_cell(shown)} |")
        return "\n".join(lines) + "\n"

    def _levels_markdown(self) -> list[str]:
        """The per-level table (no lines without :attr:`levels`)."""
        if not self.levels:
            return []
        shown = [(k, label) for k, label in LEVEL_MEASURES + _SAMPLED
                 if any(k in row for row in self.levels)]
        lines = ["", "## Levels", "",
                 "| level | type | tasks | " + " | ".join(label for _, label in shown) + " |",
                 "|---:|---|---:|" + "---:|" * len(shown)]
        for row in self.levels:
            lines.append(f"| {row.get('level')} | {row.get('type', '')} | "
                         f"{_number(row.get('tasks'))} | "
                         + " | ".join(_number(row.get(k)) for k, _ in shown) + " |")
        return lines

    def _top_markdown(self, key: str, title: str, label: str) -> list[str]:
        """The :data:`MARKDOWN_TOP` tasks with the highest ``key``, as a numbered list."""
        ranked = [(-float(m[key]), i, name) for i, (name, m) in enumerate(self.tasks.items())
                  if m.get(key) is not None and math.isfinite(float(m[key]))]
        if not ranked:
            return []
        lines = ["", f"## {title} (top {min(MARKDOWN_TOP, len(ranked))} by {label})", ""]
        for rank, (_, _, name) in enumerate(sorted(ranked)[:MARKDOWN_TOP], 1):
            m = self.tasks[name]
            lines.append(f"{rank}. {_cell(name)}: {label} {_number(m[key])} "
                         f"({m.get('type', '')}, n {_number(m.get('n'))})")
        return lines

    def to_dataframe(self) -> Any:
        """A pandas DataFrame with one row per task (index ``task``), one column per metric.

        Raises:
            ImportError: pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("Report.to_dataframe needs pandas, which is not installed: "
                              "pip install pandas (or use Report.to_dict())") from err
        rows = self.to_dict()["tasks"]
        columns: list[str] = []
        for metrics in rows.values():
            columns += [k for k in metrics if k not in columns]
        frame = pd.DataFrame([[m.get(c) for c in columns] for m in rows.values()],
                             index=pd.Index(list(rows), name="task"), columns=columns)
        return frame
