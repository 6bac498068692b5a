"""Tabular data files (CSV, NPZ) with task-named target columns, as a `TaskDataset`.

CSV: a header row; a column named like a task holds its labels (class names or indices,
blank or −1 for missing); a multilabel task ``T`` has one 0/1 column per class named
``T.CLASS``, a k-output regression task columns ``T.0`` … ``T.k-1``. Every other column
is a numeric feature (or only ``feature_columns`` when given); a label column is never
read as a feature.

NPZ: an array ``X`` (features), and either ``Y`` (the target matrix in
:func:`~taskgraph.train.data.target_columns` order; it counts as every task's labels) or
one array per task named by the task.

``labels`` says which label columns (or arrays) the file must have:

- ``"required"`` (the default; for training and evaluation): every task's, else a
  :class:`DataError` naming each missing column; blank cells mark missing labels.
- ``"partial"``: tasks without columns get no labels, with a
  :class:`MissingLabelsWarning` naming them.
- ``"none"``: label columns may be absent; those present are read as targets, never
  as features.
- ``"ignore"`` (for prediction): label columns are skipped, whatever they hold; the
  targets are all missing.

With ``"required"`` and ``"partial"`` a file without a single known label is an error.
Every problem of a file is reported in one :class:`DataError`, one line each (at most
:data:`~taskgraph.train.data.MAX_PROBLEMS`), as ``FILE: line N, column 'C': ...``: the
file line counts the header as line 1 and blank lines too; NPZ rows are ``row i
(0-based)``.

Example:
    >>> import os, tempfile, taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> path = os.path.join(tempfile.mkdtemp(), "zoo.csv")
    >>> _ = open(path, "w").write("f1,f2,mammal,diet,species,weight_kg\\n"
    ...                           "0.5,1,1,carnivore,cat,4.2\\n0.1,2,0,,eagle,\\n")
    >>> ds = read_table(path, h)
    >>> ds.features.shape, ds.targets[1].tolist()[:3]
    (torch.Size([2, 2]), [0.0, nan, 3.0])
    >>> _ = open(path, "w").write("f1,diet\\n0.5,carnivore\\n")
    >>> read_table(path, h, labels="none").targets[0].tolist()
    [nan, 1.0, nan, nan]
    >>> read_table(path, h, labels="ignore").targets[0].tolist()
    [nan, nan, nan, nan]
"""

from __future__ import annotations

import csv
import os
import warnings
from collections import Counter
from typing import Sequence

import numpy as np

from taskgraph.errors import DataError
from taskgraph.hierarchy import Hierarchy
from taskgraph.model.labels import Problems, encode_task
from taskgraph.model.targets import target_columns
from taskgraph.train.data import TaskDataset, label_counts
from taskgraph.vocabulary import suggest

__all__ = ["read_table", "target_column_names", "MissingLabelsWarning", "LABEL_MODES"]

LABEL_MODES = ("required", "partial", "none", "ignore")
"""The values :func:`read_table` accepts for ``labels``."""


class MissingLabelsWarning(UserWarning):
    """A file read with ``labels="partial"`` has no label column for some tasks."""


def target_column_names(hierarchy: Hierarchy) -> dict[str, list[str]]:
    """``{task: [its CSV column names]}``.

    >>> import taskgraph as tg
    >>> target_column_names(tg.load_hierarchy("hierarchies/animals.yaml"))["diet"]
    ['diet']
    """
    out = {}
    for name, width in target_columns(hierarchy):
        spec = hierarchy[name]
        if width == 1:
            out[name] = [name]
        elif spec.type == "multilabel":
            out[name] = [f"{name}.{c}" for c in spec.classes or ()]
        else:
            out[name] = [f"{name}.{i}" for i in range(width)]
    return out


def _listing(names: Sequence[str], limit: int = 20) -> str:
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _present_tasks(problems: Problems, per_task: dict[str, list[str]],
                   available: Sequence[str], labels: str, noun: str, blank: str) -> list[str]:
    """The tasks whose label columns (``noun``: "column" / "array") are all in
    ``available``; a task with only some of them, and under ``labels="required"`` a task
    with none, go to ``problems``; under ``"partial"`` absent tasks are warned about."""
    if labels == "ignore":
        return []
    present, missing, some = [], [], False
    labelled = {c for names in per_task.values() for c in names}
    others = [c for c in available if c not in labelled]
    available = set(available)
    for task, names in per_task.items():
        absent = [c for c in names if c not in available]
        if not absent:
            present.append(task)
        elif len(absent) < len(names):
            some = True
            problems.add(f"task {task!r} needs {noun}s {', '.join(names)}; missing "
                         f"{', '.join(absent)}")
        else:
            missing.append(task)
    if labels == "none" or not missing:
        return present
    if not present and not some:
        problems.add(f"no label {noun}s at all (expected {noun}s named like the tasks: "
                     f"{_listing(list(per_task))}); add them ({blank} marks a missing "
                     "label), or read the file with labels='none' to predict")
    elif labels == "required":
        for task in missing:
            names = per_task[task]
            hint = suggest(names[0], others) if len(names) == 1 else ""
            what = (f"{noun} {names[0]!r}{hint}; add it" if len(names) == 1 else
                    f"{noun}s {', '.join(names)}; add them")
            problems.add(f"task {task!r}: no label {what} ({blank} marks a missing label)")
    else:
        warnings.warn(MissingLabelsWarning(
            f"{problems.file}: no label {noun} for task(s) {_listing(missing)}; their "
            "labels are all missing"), stacklevel=4)
    return present


def _read_rows(path: str) -> list[tuple[int, list[str]]]:
    """``(file line, cells)`` of every row that is not blank, the header first."""
    out, end = [], 0
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            for cells in reader:
                start, end = end + 1, reader.line_num  # a quoted cell may span lines
                if any(cell.strip() for cell in cells):
                    out.append((start, cells))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise DataError(f"{path}: line {end + 1}: {err}") from None
    return out


def _read_csv(path: str, hierarchy: Hierarchy, feature_columns: Sequence[str] | None,
              labels: str) -> TaskDataset:
    rows = _read_rows(path)
    if not rows:
        raise DataError(f"{path}: empty file (a header row with column names is needed)")
    header = [h.strip() for h in rows[0][1]]
    dupes = sorted(h for h, k in Counter(header).items() if k > 1)
    if dupes:
        raise DataError(f"{path}: duplicate column(s) {', '.join(map(repr, dupes))}")
    if len(rows) == 1:
        raise DataError(f"{path}: no data rows")
    lines = [n for n, _ in rows[1:]]  # file line of each data row
    problems = Problems(path)
    for n, r in rows[1:]:
        if len(r) != len(header):
            problems.add(f"line {n} has {len(r)} fields, the header has {len(header)}")
    problems.check()
    columns = {h: [r[j].strip() for _, r in rows[1:]] for j, h in enumerate(header)}
    per_task = target_column_names(hierarchy)
    task_of = {c: task for task, cols in per_task.items() for c in cols}
    present = _present_tasks(problems, per_task, header, labels, "column", "a blank cell")
    features = ([h for h in header if h not in task_of] if feature_columns is None
                else list(feature_columns))
    for c in features:
        if c not in columns:
            problems.add(f"no feature column {c!r}{suggest(c, header)}")
        elif c in task_of:
            problems.add(f"column {c!r} holds the labels of task {task_of[c]!r}; it cannot "
                         "be a feature")
    if not features:
        problems.add("no feature columns (every column is named like a task)")
    X = np.zeros((len(lines), len(features)), dtype=np.float32)  # (N, F)
    for j, c in enumerate(features):
        if c in columns and c not in task_of:
            X[:, j] = _feature_column(problems, hierarchy, c, columns[c], lines)
    Y = np.full((len(lines), sum(w for _, w in target_columns(hierarchy))), np.nan)  # (N, C)
    where = [f"line {n}" for n in lines]
    col = 0
    for task, w in target_columns(hierarchy):
        if task in present:
            cells = np.array([columns[c] for c in per_task[task]], dtype=object).T  # (N, w)
            Y[:, col:col + w] = encode_task(hierarchy[task], cells, problems, rows=where,
                                             columns=per_task[task])
        col += w
    problems.check()
    return _dataset(path, X, Y, hierarchy, labels)


def _feature_column(problems: Problems, hierarchy: Hierarchy, name: str,
                    cells: list[str], lines: list[int]) -> np.ndarray:
    """One feature column as ``(N,)`` float32; every cell that is not a finite number
    goes to ``problems``."""
    try:
        values = np.array(cells, dtype=np.float64)
        if np.isfinite(values).all():
            return values.astype(np.float32)
    except ValueError:
        values = np.full(len(cells), np.nan)
    hint = (f" (is it a task column? tasks: {', '.join(list(hierarchy.tasks)[:8])}"
            f"{suggest(name, hierarchy.tasks)})")
    for i, cell in enumerate(cells):
        try:
            values[i] = float(cell)
        except ValueError:
            problems.add(f"line {lines[i]}, column {name!r}: {cell!r} is not a number"
                         + (hint if cell else ""))
            hint = hint if not cell else ""  # once per column
            continue
        if not np.isfinite(values[i]):
            problems.add(f"line {lines[i]}, column {name!r}: {cell!r} is not a finite "
                         "number; impute or drop missing features first")
    return values.astype(np.float32)


def _dataset(path: str, features: object, targets: object, hierarchy: Hierarchy,
             labels: str) -> TaskDataset:
    try:
        ds = TaskDataset(features, targets, hierarchy)
    except DataError as err:  # every line names the file
        raise DataError("\n".join(line if line.startswith("... and ") else f"{path}: {line}"
                                  for line in str(err).split("\n"))) from None
    if labels in ("required", "partial") and not any(label_counts(ds).values()):
        raise DataError(f"{path}: no labels at all: every label is blank, NaN or -1 (a file "
                        "to train or evaluate on needs at least one)")
    return ds


def _read_npz(path: str, hierarchy: Hierarchy, labels: str) -> TaskDataset:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: not a readable .npz archive ({err})") from None
    problems = Problems(path)
    with archive:
        if "X" not in archive.files:
            raise DataError(f"{path}: no array 'X' (features); arrays: {', '.join(archive.files)}")
        X = archive["X"]
        if "Y" in archive.files:
            for k in archive.files:
                if k in hierarchy.tasks:
                    problems.add(f"array {k!r} next to 'Y': give either 'Y' or one array "
                                 "per task")
            targets: object = archive["Y"] if labels != "ignore" else None
        else:
            for k in archive.files:
                if k != "X" and k not in hierarchy.tasks:
                    problems.add(f"array {k!r} is neither 'X', 'Y' nor a task"
                                 f"{suggest(k, hierarchy.tasks)}")
            present = _present_tasks(problems, {t: [t] for t in hierarchy.tasks},
                                     archive.files, labels, "array", "NaN or -1")
            targets = {k: archive[k] for k in archive.files
                       if k in hierarchy.tasks and k in present}
    problems.check()
    return _dataset(path, X, targets, hierarchy, labels)


def read_table(path: str | os.PathLike, hierarchy: Hierarchy, *,
               feature_columns: Sequence[str] | None = None,
               labels: str = "required") -> TaskDataset:
    """Read a CSV or NPZ file into a :class:`TaskDataset` for ``hierarchy``.

    Args:
        path: a ``.npz`` archive, or CSV text (any other name).
        hierarchy: the tasks whose labels the file holds.
        feature_columns: the CSV columns to use as features, in order (default: every
            column not named like a task).
        labels: ``"required"``, ``"partial"``, ``"none"`` or ``"ignore"``: which tasks
            must have label columns, and whether they are read (see the module docstring).

    Raises:
        DataError: every problem found (a missing label column, an unusable label or
            feature cell, ...), one line each naming the file, line, column and task;
            no known label at all (unless ``labels="none"``); a bad ``labels`` value.
        FileNotFoundError: no such file.

    Warns:
        MissingLabelsWarning: ``labels="partial"`` and some tasks have no label column.
    """
    if labels not in LABEL_MODES:
        raise DataError(f"labels: expected one of {', '.join(map(repr, LABEL_MODES))}, got "
                        f"{labels!r}")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    if path.endswith(".npz"):
        return _read_npz(path, hierarchy, labels)
    return _read_csv(path, hierarchy, feature_columns, labels)
