"""Data for taskgraph models: a Dataset from arrays or a DataFrame, and batch unpacking.

Targets are one matrix ``Y`` with the tasks' target columns in hierarchy order: one
column for a binary, multiclass or single-output regression task, K columns for a
multilabel task, k for a k-output regression task (:func:`target_columns`). A missing
label is −1 or NaN (NaN for regression). Batches are ``(x, Y)`` or
``(x, {task: target})``; both reach :meth:`TaskGraphModel.loss` unchanged.

Labels given by name or value (a mapping of task -> labels, :func:`encode_labels`) are
checked in one pass: every unusable label is reported, one line each, up to
:data:`MAX_PROBLEMS` lines, each saying where it is (``row 3 (0-based)``, or the
``rows`` a caller names, such as file lines) and what the task's type expects.

Example:
    >>> import numpy as np, taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> [name for name, _ in target_columns(h)]
    ['mammal', 'diet', 'species', 'weight_kg']
    >>> ds = TaskDataset(np.zeros((5, 3)), np.full((5, 4), -1.0), h)
    >>> x, y = ds[0]
    >>> x.shape, y.shape
    (torch.Size([3]), torch.Size([4]))
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from taskgraph.errors import DataError, Problem
from taskgraph.hierarchy import Hierarchy, TaskSpec
from taskgraph.vocabulary import suggest

__all__ = ["TaskDataset", "target_columns", "split_batch", "make_loader", "encode_labels",
           "label_counts", "to_device", "MAX_PROBLEMS"]


def target_columns(hierarchy: Hierarchy) -> list[tuple[str, int]]:
    """``[(task, number of target columns)]`` in hierarchy order."""
    out = []
    for name, spec in hierarchy.tasks.items():
        width = spec.num_outputs if spec.type in ("multilabel", "regression") else 1
        out.append((name, width))
    return out


MAX_PROBLEMS = 20
"""At most this many problems are listed in one :class:`DataError`; the rest are counted."""

_TRUTH = {"1": 1.0, "true": 1.0, "yes": 1.0, "0": 0.0, "false": 0.0, "no": 0.0}


class _Problems:
    """Problems found in one pass over some data, one :class:`Problem` each, as
    :class:`~taskgraph.hierarchy.report.ProblemReport` collects them for hierarchies: at
    most ``limit`` are kept and the rest counted in ``dropped``."""

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


def _show(value: Any) -> str:
    """A label as the user wrote it: ``'heavy'``, ``1.5``."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _label_encoder(spec: TaskSpec) -> Callable[[Any], tuple[float, str | None]]:
    """``encode(value) -> (number, None)`` for one label of ``spec`` (NaN: missing), or
    ``(NaN, why)`` where ``why`` says what the task's type expects."""
    kind, name, classes = spec.type, spec.name, spec.classes or ()
    lookup = {c: float(i) for i, c in enumerate(classes)}
    if kind == "multiclass":
        shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        want = (f"a class index 0..{len(classes) - 1}" if spec.count_only else
                f"a class name ({shown}) or an integer index 0..{len(classes) - 1}")
    else:
        want = {"binary": "0/1, true/false or yes/no", "multilabel": "0 or 1",
                "regression": "a number"}[kind]

    def encode(value: Any) -> tuple[float, str | None]:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return np.nan, None
            if kind == "multiclass" and text in lookup:
                return lookup[text], None
            if kind == "binary" and text.lower() in _TRUTH:
                return _TRUTH[text.lower()], None
        elif value is None:
            return np.nan, None
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            hint = suggest(value.strip(), classes) if kind == "multiclass" and isinstance(
                value, str) else ""
            return np.nan, f"{kind} task {name!r} expects {want}, got {_show(value)}{hint}"
        if np.isnan(number):
            return np.nan, None
        if kind == "regression":
            if np.isinf(number):
                return np.nan, (f"regression task {name!r} expects a finite number (blank or "
                                f"NaN for missing), got {_show(value)}")
            return number, None
        if number == -1 or (number in (0.0, 1.0) if kind != "multiclass" else
                            number.is_integer() and 0 <= number < len(classes)):
            return number, None
        return np.nan, f"{kind} task {name!r} expects {want}, got {_show(value)}"

    return encode


def _bad_numbers(spec: TaskSpec, y: np.ndarray) -> np.ndarray:
    """Where a float array holds labels ``spec``'s task cannot take (vectorized)."""
    if spec.type == "regression":
        return np.isinf(y)
    ok = np.isnan(y) | (y == -1)
    if spec.type == "multiclass":
        return ~(ok | ((y == np.round(y)) & (y >= 0) & (y < len(spec.classes or ()))))
    return ~(ok | (y == 0) | (y == 1))


def _encode_task(spec: TaskSpec, values: np.ndarray, problems: _Problems, *,
                 rows: Sequence[str] | None = None,
                 columns: Sequence[str] | None = None) -> np.ndarray:
    """``(N, w)`` labels of one task as numbers; each unusable one goes to ``problems``,
    located as ``"{rows[i]}, column {columns[j]!r}"`` (default ``row i (0-based)`` and,
    for a task with several columns, its class name or output index)."""
    n, w = values.shape
    out = np.full((n, w), np.nan)
    encode, found = None, []
    for j in range(w):
        cells = values[:, j]
        numeric = None
        if cells.dtype.kind in "biuf":
            numeric = cells.astype(np.float64)
        elif spec.type != "multiclass":  # names of multiclass classes may look like numbers
            try:
                numeric = cells.astype(np.float64)
            except (TypeError, ValueError):
                pass
        check = range(n) if numeric is None else np.flatnonzero(_bad_numbers(spec, numeric))
        if numeric is not None:
            out[:, j] = numeric
        if len(check):
            encode = encode or _label_encoder(spec)
            items = cells.tolist()
        for i in check:
            number, why = encode(items[i])
            out[i, j] = number
            if why is not None:
                found.append((int(i), j, why))
    for i, j, why in sorted(found):  # row by row
        where = rows[i] if rows is not None else f"row {i} (0-based)"
        if columns is not None:
            where += f", column {columns[j]!r}"
        elif w > 1:
            where += (f", class {spec.classes[j]!r}" if spec.type == "multilabel"
                      else f", output {j}")
        problems.add(f"{where}: {why}")
    return out


def _label_array(raw: Any) -> np.ndarray:
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
    width = spec.num_outputs if spec.type in ("multilabel", "regression") else 1
    array = _label_array(values)
    if width == 1 and array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.shape != ((len(array), width) if width > 1 else (len(array),)):
        raise DataError(f"labels of task {task!r}: expected {len(array)} rows of {width}, "
                        f"got shape {array.shape}")
    if rows is not None and len(rows) != len(array):
        raise ValueError(f"rows: expected {len(array)} labels, got {len(rows)}")
    problems = _Problems()
    out = _encode_task(spec, array.reshape(len(array), width), problems, rows=rows)
    problems.check()
    return out[:, 0] if width == 1 else out


def label_counts(dataset: TaskDataset) -> dict[str, int]:
    """``{task: number of rows with a known label}`` (NaN, and −1 outside regression,
    are missing).

    >>> import taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> label_counts(TaskDataset(np.zeros((2, 1)), {"diet": ["carnivore", None]}, h))
    {'mammal': 0, 'diet': 1, 'species': 0, 'weight_kg': 0}
    """
    y = dataset.targets  # (N, C)
    regression = torch.tensor([dataset.hierarchy[name].type == "regression"
                               for name, w in dataset.columns for _ in range(w)])
    known = ~torch.isnan(y) & ((y != -1) | regression)  # (N, C)
    widths = [w for _, w in dataset.columns]
    starts = np.cumsum([0] + widths[:-1]).tolist()
    single = [s for s, w in zip(starts, widths) if w == 1]  # one vectorized sum for these
    per_column = dict(zip(single, known[:, single].sum(0).tolist()))
    return {name: per_column[s] if w == 1 else int(known[:, s:s + w].any(1).sum())
            for (name, w), s in zip(dataset.columns, starts)}


class TaskDataset(Dataset):
    """Features and a target matrix, checked once up front.

    Args:
        features: ``(N, in_features)`` array (or a tensor of any shape ``(N, ...)``).
        targets: ``(N, C)`` target matrix (:func:`target_columns` order), a mapping
            task -> ``(N,)`` / ``(N, K)`` labels (class names allowed), or ``None``.
        hierarchy: the hierarchy the targets belong to.

    Raises:
        DataError: NaN or infinite features, a row-count mismatch, a wrong number of
            target columns; for a mapping, every unknown task and every label its task
            cannot take (up to :data:`MAX_PROBLEMS`, one line each, ``row i (0-based)``).
            A target matrix is taken as numbers; the loss checks its values.
    """

    def __init__(self, features: Any, targets: Any, hierarchy: Hierarchy) -> None:
        # a copy: normalizing the data set in place must never change the caller's arrays.
        # Integer features (token ids for an embedding encoder) keep an integer dtype.
        try:
            x = features.detach().clone() if isinstance(features, Tensor) else torch.tensor(
                np.asarray(features))
        except (TypeError, ValueError, RuntimeError) as err:
            raise DataError(f"features: not a numeric array ({err})") from None
        x = x.long() if not (x.is_floating_point() or x.dtype == torch.bool) else x.float()
        if x.dim() == 0 or x.shape[0] == 0:
            raise DataError("features: no rows")
        if x.is_floating_point() and not torch.isfinite(x).all():
            bad = (~torch.isfinite(x)).nonzero()[0].tolist()
            column = f", column {bad[1]}" if len(bad) > 1 else ""
            raise DataError(f"features: non-finite value {float(x[tuple(bad)])} at row {bad[0]} "
                            f"(0-based){column}; impute or drop it")
        self.features = x
        self.hierarchy = hierarchy
        self.columns = target_columns(hierarchy)
        width = sum(w for _, w in self.columns)
        n = x.shape[0]
        if targets is None:
            y = np.full((n, width), np.nan)
        elif isinstance(targets, Mapping):
            y = self._from_mapping(targets, n, width)
        else:
            try:
                y = np.asarray(targets, dtype=np.float64)
            except (TypeError, ValueError) as err:
                raise DataError(f"targets: not a numeric matrix ({err}); give class names "
                                "in a mapping task -> labels") from None
            if y.ndim == 1:
                y = y[:, None]
            if y.shape != (n, width):
                raise DataError(f"targets: expected shape ({n}, {width}) — columns "
                                f"{', '.join(name for name, _ in self.columns)[:200]} — "
                                f"got {y.shape}")
        self.targets = torch.as_tensor(y, dtype=torch.float32)

    def _from_mapping(self, targets: Mapping[str, Any], n: int, width: int) -> np.ndarray:
        y = np.full((n, width), np.nan)
        problems = _Problems()
        for k in targets:
            if k not in self.hierarchy.tasks:
                problems.add(f"targets: unknown task {k!r}"
                             f"{suggest(k, self.hierarchy.task_names)}")
        col = 0
        for name, w in self.columns:
            if name in targets:
                values = _label_array(targets[name])
                if w == 1 and values.ndim == 2 and values.shape[1] == 1:
                    values = values[:, 0]
                if values.shape != ((n, w) if w > 1 else (n,)):
                    problems.add(f"targets for task {name!r}: expected {n} rows of {w}, "
                                 f"got shape {values.shape}")
                else:
                    y[:, col:col + w] = _encode_task(self.hierarchy[name],
                                                     values.reshape(n, w), problems)
            col += w
        problems.check()
        return y

    def __len__(self) -> int:
        return self.features.shape[0]

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.features[i], self.targets[i]

    @classmethod
    def from_dataframe(cls, frame: Any, hierarchy: Hierarchy,
                       feature_columns: Sequence[str] | None = None) -> "TaskDataset":
        """Columns named like tasks are targets; the others (or ``feature_columns``) features."""
        tasks = [c for c in frame.columns if c in hierarchy.tasks]
        features = list(feature_columns) if feature_columns is not None else [
            c for c in frame.columns if c not in hierarchy.tasks]
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise DataError(f"feature column {missing[0]!r} is not in the data"
                            f"{suggest(missing[0], list(map(str, frame.columns)))}")
        return cls(frame[features].to_numpy(dtype=np.float32),
                   {t: frame[t].tolist() for t in tasks}, hierarchy)


def split_batch(batch: Any) -> tuple[Any, Any]:
    """``(x, targets)`` from a batch: a pair / list, or a dict with ``"x"`` and ``"y"``."""
    if isinstance(batch, Mapping) and "x" in batch:
        return batch["x"], batch.get("y")
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise DataError(f"a batch must be (x, targets) or {{'x': ..., 'y': ...}}, got "
                    f"{type(batch).__name__}" + (f" of length {len(batch)}"
                                                 if isinstance(batch, (tuple, list)) else ""))


def make_loader(dataset: Dataset, *, batch_size: int = 64, shuffle: bool = True,
                seed: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader with its own seeded generator (reproducible order, resumable)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      drop_last=drop_last)


def to_device(value: Any, device: torch.device) -> Any:
    """Move tensors (also inside dicts, lists and tuples) to ``device``."""
    if isinstance(value, Tensor):
        return value.to(device, non_blocking=True)
    if isinstance(value, Mapping):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value
