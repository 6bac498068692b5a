"""Label cells to numbers: class names, words and blanks in, target values out, every
unusable label reported.

A hierarchy is all it needs (no model): :class:`~taskgraph.train.data.TaskDataset`, the
CSV reader and the scikit-learn wrapper read labels through :func:`encode_labels` and
:func:`encode_task`. What a cell of each task type may hold, and the message for one
that it may not, come from the type (:mod:`taskgraph.model.task_types`). Problems are
found in one pass: each one line, up to :data:`MAX_PROBLEMS` lines, saying where it is
(``row 3 (0-based)``, or the ``rows`` a caller names, such as file lines) and what the
task's type expects.

Example:
    >>> import taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> encode_labels(h, "mammal", ["yes", "No", "", 0, None]).tolist()
    [1.0, 0.0, nan, 0.0, nan]
    >>> encode_labels(h, "diet", ["carnivor"])
    Traceback (most recent call last):
    ...
    taskgraph.errors.DataError: row 0 (0-based): multiclass task 'diet' expects a class \
name (herbivore, carnivore, omnivore) or an integer index 0..2, got 'carnivor' (did you \
mean 'carnivore'?)
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from torch import Tensor

from taskgraph.errors import ArgumentError, DataError, Problem
from taskgraph.hierarchy import Hierarchy, TaskSpec
from taskgraph.model.task_types import TASK_TYPES

__all__ = ["encode_labels", "encode_task", "label_array", "Problems", "MAX_PROBLEMS"]

MAX_PROBLEMS = 20
"""At most this many problems are listed in one :class:`DataError`; the rest are counted."""


class Problems:
    """Problems found in one pass over some data, one :class:`Problem` each, as
    :class:`~taskgraph.hierarchy.report.ProblemReport` collects them for hierarchies: at
    most ``limit`` are kept and the rest counted in ``dropped``.

    >>> p = Problems("data.csv", limit=1); p.add("line 2: bad"); p.add("line 3: bad")
    >>> p.check()
    Traceback (most recent call last):
    ...
    taskgraph.errors.DataError: data.csv: line 2: bad
    ... and 1 more problem(s) not shown
    """

    def __init__(self, file: str | None = None, limit: int = MAX_PROBLEMS) -> None:
        self.file, self.limit = file, limit
        self.problems: list[Problem] = []
        self.dropped = 0

    def __bool__(self) -> bool:
        return bool(self.problems)

    def add(self, message: str) -> None:
        if len(self.problems) >= self.limit:
            self.dropped += 1
            return
        self.problems.append(Problem(message, file=self.file, kind="data"))

    def check(self) -> None:
        """Raise one :class:`DataError`, one line per problem, if any were found."""
        if self.problems:
            lines = [str(p) for p in self.problems]
            if self.dropped:
                lines.append(f"... and {self.dropped} more problem(s) not shown")
            raise DataError("\n".join(lines))


def _read_cells(items: list[Any], read_word: Callable[[str], float | None]
                ) -> tuple[np.ndarray, list[int]]:
    """Cells as numbers (blank / None: NaN), and the positions of unreadable ones."""
    out = np.full(len(items), np.nan)
    unreadable = []
    for i, value in enumerate(items):
        if value is None:
            continue
        if isinstance(value, str):
            text = value.strip()
            if not text:
                continue
            word = read_word(text)
            if word is not None:
                out[i] = word
                continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError, OverflowError):
            unreadable.append(i)
    return out, unreadable


def encode_task(spec: TaskSpec, values: np.ndarray, problems: Problems, *,
                rows: Sequence[str] | None = None,
                columns: Sequence[str] | None = None) -> np.ndarray:
    """``(N, w)`` label cells of one task as numbers; each unusable one goes to
    ``problems`` (and becomes NaN), located as ``"{rows[i]}, column {columns[j]!r}"``
    (default ``row i (0-based)`` and, for a task with several columns, its class name
    or output index).

    Numeric columns are checked in one vectorized pass; text columns (and every column of
    a type whose class names may look like numbers) are read cell by cell first.
    """
    kind = TASK_TYPES[spec.type]
    width = kind.head_width(spec)
    read_word = kind.word_reader(spec)
    n, w = values.shape
    out = np.full((n, w), np.nan)
    found: list[tuple[int, int, str]] = []
    for j in range(w):
        cells = values[:, j]
        numeric, items = None, None
        if cells.dtype.kind in "biuf":
            numeric = cells.astype(np.float64)
        elif not kind.class_names:  # a class named "2" is a name, not the index 2
            try:
                numeric = cells.astype(np.float64)
            except (TypeError, ValueError):
                pass
        if numeric is None:
            items = cells.tolist()
            numeric, unreadable = _read_cells(items, read_word)
            found += [(i, j, kind.cell_problem(spec, items[i], np.nan)) for i in unreadable]
        bad = np.flatnonzero(kind.bad_targets(numeric, width, hard=True))
        if len(bad):
            items = items if items is not None else cells.tolist()
            found += [(int(i), j, kind.cell_problem(spec, items[i], numeric[i])) for i in bad]
            numeric[bad] = np.nan
        out[:, j] = numeric
    for i, j, why in sorted(found):  # row by row
        where = rows[i] if rows is not None else f"row {i} (0-based)"
        if columns is not None:
            where += f", column {columns[j]!r}"
        elif w > 1:
            where += ", " + kind.column_label(spec, j)
        problems.add(f"{where}: {why}")
    return out


def label_array(raw: Any) -> np.ndarray:
    """Labels of one task as a NumPy array (object dtype for Python lists)."""
    if isinstance(raw, Tensor):
        return raw.detach().cpu().numpy()
    if isinstance(raw, np.ndarray):
        return raw
    items = raw.tolist() if hasattr(raw, "tolist") else list(raw)  # plain values
    try:
        return np.asarray(items, dtype=object)
    except ValueError:  # ragged rows: one object each, and a shape error later
        out = np.empty(len(items), dtype=object)
        for i, v in enumerate(items):
            out[i] = v
        return out


def encode_labels(hierarchy: Hierarchy, task: str, values: Sequence[Any], *,
                  rows: Sequence[str] | None = None) -> np.ndarray:
    """Labels of one task as numbers: class names -> indices, blanks -> missing (NaN).

    Multiclass labels may be class names or integer indices; binary labels 0/1,
    true/false or yes/no; multilabel labels 0/1 (``values`` is ``(N, K)``); regression
    labels finite numbers (``(N, k)`` for k outputs). Missing: ``None``, ``""``, NaN,
    and −1 except for regression. Returns ``(N,)`` for a one-column task, else ``(N, w)``.

    Args:
        rows: where each value is, for messages (``"line 7"``); default
            ``"row i (0-based)"``.

    Raises:
        DataError: every unusable label (up to :data:`MAX_PROBLEMS`), one line each,
            saying where it is and what the task's type expects.
        ArgumentError: ``rows`` does not name every value.

    Example:
        >>> import taskgraph as tg
        >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
        >>> encode_labels(h, "diet", ["omnivore", "", 0]).tolist()
        [2.0, nan, 0.0]
        >>> encode_labels(h, "weight_kg", ["4.2", "heavy", "inf"])
        Traceback (most recent call last):
        ...
        taskgraph.errors.DataError: row 1 (0-based): regression task 'weight_kg' expects a \
number, got 'heavy'
        row 2 (0-based): regression task 'weight_kg' expects a finite number (blank or NaN \
for missing), got 'inf'
    """
    spec = hierarchy[task]
    kind = TASK_TYPES[spec.type]
    width = kind.target_width(kind.head_width(spec))
    array = label_array(values)
    if width == 1 and array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.shape != ((len(array), width) if width > 1 else (len(array),)):
        raise DataError(f"labels of task {task!r}: expected {len(array)} rows of {width}, "
                        f"got shape {array.shape}")
    if rows is not None and len(rows) != len(array):
        raise ArgumentError(f"encode_labels: rows: expected {len(array)} labels, got "
                            f"{len(rows)}")
    problems = Problems()
    out = encode_task(spec, array.reshape(len(array), width), problems, rows=rows)
    problems.check()
    return out[:, 0] if width == 1 else out
