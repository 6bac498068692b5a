"""Tabular data files (CSV, NPZ) with task-named target columns, as a `TaskDataset`.

CSV: a header row; a column named like a task holds its labels (class names or indices,
blank or −1 for missing); a multilabel task ``T`` has one 0/1 column per class named
``T.CLASS``, a k-output regression task columns ``T.0`` … ``T.k-1``. Every other column
is a numeric feature (or only ``feature_columns`` when given).

NPZ: an array ``X`` (features), and either ``Y`` (the target matrix in
:func:`~taskgraph.train.data.target_columns` order) or one array per task named by the
task.

Example:
    >>> import os, tempfile, taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> path = os.path.join(tempfile.mkdtemp(), "zoo.csv")
    >>> _ = open(path, "w").write("f1,f2,mammal,diet,species,weight_kg\\n"
    ...                           "0.5,1,1,carnivore,cat,4.2\\n0.1,2,0,,eagle,\\n")
    >>> ds = read_table(path, h)
    >>> ds.features.shape, ds.targets[1].tolist()[:3]
    (torch.Size([2, 2]), [0.0, nan, 3.0])
"""

from __future__ import annotations

import csv
import math
import os
from typing import Sequence

import numpy as np

from taskgraph.errors import DataError
from taskgraph.hierarchy import Hierarchy
from taskgraph.hierarchy.schema import suggest
from taskgraph.train.data import TaskDataset, target_columns

__all__ = ["read_table", "target_column_names"]


def target_column_names(hierarchy: Hierarchy) -> dict[str, list[str]]:
    """``{task: [its CSV column names]}``."""
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


def _read_csv(path: str, hierarchy: Hierarchy,
              feature_columns: Sequence[str] | None) -> TaskDataset:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not rows or not rows[0]:
        raise DataError(f"{path}: empty file (a header row with column names is needed)")
    header = [h.strip() for h in rows[0]]
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise DataError(f"{path}: duplicate column {sorted(dupes)[0]!r}")
    numbered = [(n, r) for n, r in enumerate(rows[1:], 2) if any(cell.strip() for cell in r)]
    if not numbered:
        raise DataError(f"{path}: no data rows")
    lines = [n for n, _ in numbered]  # file line of each data row (blank lines skipped)
    body = [r for _, r in numbered]
    for n, r in numbered:
        if len(r) != len(header):
            raise DataError(f"{path}: line {n} has {len(r)} fields, the header has "
                            f"{len(header)}")
    columns = {h: [r[j].strip() for r in body] for j, h in enumerate(header)}
    per_task = target_column_names(hierarchy)
    target_cols = {c for cols in per_task.values() for c in cols}
    if feature_columns is None:
        features = [h for h in header if h not in target_cols]
    else:
        features = list(feature_columns)
        for c in features:
            if c not in columns:
                raise DataError(f"{path}: no feature column {c!r}{suggest(c, header)}")
    if not features:
        raise DataError(f"{path}: no feature columns (every column is named like a task)")
    X = np.empty((len(body), len(features)), dtype=np.float32)
    for j, c in enumerate(features):
        for i, cell in enumerate(columns[c]):
            try:
                value = float(cell)
            except ValueError:
                raise DataError(f"{path}: line {lines[i]}, column {c!r}: {cell!r} is not a number"
                                + (" (is it a task column? tasks: "
                                   f"{', '.join(list(hierarchy.tasks)[:8])}"
                                   f"{suggest(c, hierarchy.tasks)})" if cell else "")) from None
            if not math.isfinite(value):
                raise DataError(f"{path}: line {lines[i]}, column {c!r}: {cell!r} is not a finite "
                                "number; impute or drop missing features first")
            X[i, j] = value
    targets: dict[str, object] = {}
    for task, cols in per_task.items():
        present = [c for c in cols if c in columns]
        if not present:
            continue
        if len(present) != len(cols):
            missing = [c for c in cols if c not in columns]
            raise DataError(f"{path}: task {task!r} needs columns {', '.join(cols)}; missing "
                            f"{', '.join(missing)}")
        if len(cols) == 1:
            targets[task] = [cell if cell != "" else None for cell in columns[cols[0]]]
        else:
            try:
                targets[task] = np.array([[float(columns[c][i]) if columns[c][i] != "" else np.nan
                                           for c in cols] for i in range(len(body))])
            except ValueError as err:
                raise DataError(f"{path}: task {task!r}: {err}") from None
    try:
        return TaskDataset(X, targets, hierarchy)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None


def _read_npz(path: str, hierarchy: Hierarchy) -> TaskDataset:
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: not a readable .npz archive ({err})") from None
    with archive:
        if "X" not in archive.files:
            raise DataError(f"{path}: no array 'X' (features); arrays: {', '.join(archive.files)}")
        X = archive["X"]
        if "Y" in archive.files:
            targets: object = archive["Y"]
        else:
            unknown = [k for k in archive.files if k != "X" and k not in hierarchy.tasks]
            if unknown:
                raise DataError(f"{path}: array {unknown[0]!r} is neither 'X', 'Y' nor a task"
                                f"{suggest(unknown[0], hierarchy.tasks)}")
            targets = {k: archive[k] for k in archive.files if k != "X"}
    try:
        return TaskDataset(X, targets, hierarchy)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None


def read_table(path: str | os.PathLike, hierarchy: Hierarchy, *,
               feature_columns: Sequence[str] | None = None) -> TaskDataset:
    """Read a CSV or NPZ file into a :class:`TaskDataset` for ``hierarchy``.

    Raises:
        DataError: naming the file, line, column or task at fault.
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    if path.endswith(".npz"):
        return _read_npz(path, hierarchy)
    return _read_csv(path, hierarchy, feature_columns)
