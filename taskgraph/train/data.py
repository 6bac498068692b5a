"""Data for taskgraph models: a Dataset from arrays or a DataFrame, and batch unpacking.

Targets are one matrix ``Y`` with the tasks' target columns in hierarchy order: one
column for a binary, multiclass or single-output regression task, K columns for a
multilabel task, k for a k-output regression task (:func:`target_columns`). A missing
label is −1 or NaN (NaN for regression). Batches are ``(x, Y)`` or
``(x, {task: target})``; both reach :meth:`TaskGraphModel.loss` unchanged.

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

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from taskgraph.errors import DataError
from taskgraph.hierarchy import Hierarchy
from taskgraph.hierarchy.schema import suggest

__all__ = ["TaskDataset", "target_columns", "split_batch", "make_loader", "encode_labels",
           "to_device"]


def target_columns(hierarchy: Hierarchy) -> list[tuple[str, int]]:
    """``[(task, number of target columns)]`` in hierarchy order."""
    out = []
    for name, spec in hierarchy.tasks.items():
        width = spec.num_outputs if spec.type in ("multilabel", "regression") else 1
        out.append((name, width))
    return out


def encode_labels(hierarchy: Hierarchy, task: str, values: Sequence[Any]) -> np.ndarray:
    """Labels of one task as numbers: class names -> indices, blanks -> missing.

    Multiclass labels may be class names or indices; binary labels 0/1, true/false, or
    the names ``yes``/``no``. Missing: ``None``, ``""``, NaN, −1.

    Raises:
        DataError: a label outside the task's classes (named, with a suggestion).
    """
    spec = hierarchy[task]
    classes = spec.classes or ()
    lookup = {c: i for i, c in enumerate(classes)}
    truthy = {"1": 1.0, "true": 1.0, "yes": 1.0, "0": 0.0, "false": 0.0, "no": 0.0}
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)) \
                or (isinstance(value, str) and value == ""):
            out[row] = np.nan
            continue
        if isinstance(value, str) and spec.type == "multiclass" and value in lookup:
            out[row] = lookup[value]
            continue
        if isinstance(value, str) and spec.type == "binary" and value.strip().lower() in truthy:
            out[row] = truthy[value.strip().lower()]
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            hint = suggest(value, classes) if classes else ""
            raise DataError(f"task {task!r}, row {row}: label {value!r} is not one of its "
                            f"classes{hint}") from None
        if spec.type == "multiclass" and number != -1 and (
                number != int(number) or not 0 <= number < len(classes)):
            raise DataError(f"task {task!r}, row {row}: class index {value!r} is outside "
                            f"0..{len(classes) - 1}")
        if spec.type == "binary" and number not in (0.0, 1.0, -1.0):
            raise DataError(f"task {task!r}, row {row}: binary label {value!r} is not 0 or 1")
        out[row] = number
    return out


class TaskDataset(Dataset):
    """Features and a target matrix, checked once up front.

    Args:
        features: ``(N, in_features)`` array (or a tensor of any shape ``(N, ...)``).
        targets: ``(N, C)`` target matrix (:func:`target_columns` order), a mapping
            task -> ``(N,)`` / ``(N, K)`` labels (class names allowed), or ``None``.
        hierarchy: the hierarchy the targets belong to.

    Raises:
        DataError: NaN or infinite features, a row-count mismatch, a wrong number of
            target columns, an unknown task, or a label outside a task's classes.
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
            raise DataError(f"features: non-finite value {float(x[tuple(bad)])} at row {bad[0]}"
                            f"{', column ' + str(bad[1]) if len(bad) > 1 else ''}; impute or drop it")
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
            y = np.asarray(targets, dtype=np.float64)
            if y.ndim == 1:
                y = y[:, None]
            if y.shape != (n, width):
                raise DataError(f"targets: expected shape ({n}, {width}) — columns "
                                f"{', '.join(name for name, _ in self.columns)[:200]} — "
                                f"got {y.shape}")
        self.targets = torch.as_tensor(y, dtype=torch.float32)

    def _from_mapping(self, targets: Mapping[str, Any], n: int, width: int) -> np.ndarray:
        y = np.full((n, width), np.nan)
        unknown = [k for k in targets if k not in self.hierarchy.tasks]
        if unknown:
            raise DataError(f"targets: unknown task {unknown[0]!r}"
                            f"{suggest(unknown[0], self.hierarchy.task_names)}")
        col = 0
        for name, w in self.columns:
            if name in targets:
                raw = targets[name]
                items = raw.tolist() if hasattr(raw, "tolist") else list(raw)  # plain values
                values = (encode_labels(self.hierarchy, name, items) if w == 1
                          else np.asarray(items, dtype=np.float64))
                values = values.reshape(len(values), -1) if np.ndim(values) else values
                if values.shape != (n, w):
                    raise DataError(f"targets for task {name!r}: expected {n} rows of {w}, "
                                    f"got shape {values.shape}")
                y[:, col:col + w] = values
            col += w
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
