"""Data for taskgraph models: a Dataset from arrays or a DataFrame, a seeded loader, and
the number of labels per task.

Targets are one matrix ``Y`` with the tasks' target columns in hierarchy order: one
column for a binary, multiclass or single-output regression task, K columns for a
multilabel task, k for a k-output regression task (:func:`target_columns`). A missing
label is −1 or NaN (NaN for regression). Batches are ``(x, Y)`` or
``(x, {task: target})``; both reach :meth:`TaskGraphModel.loss` unchanged.

Labels given by name or value (a mapping of task -> labels) are read by
:func:`~taskgraph.model.labels.encode_labels`: every unusable label is reported, one line
each, up to :data:`MAX_PROBLEMS` lines. Targets, batches and label encoding live in the
model layer (:mod:`taskgraph.model.targets`, :mod:`~taskgraph.model.batches`,
:mod:`~taskgraph.model.labels`); their names are importable from here too.

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
# batches, targets and label encoding live in the model layer; importable from here as before
from taskgraph.model.batches import split_batch, to_device
from taskgraph.model.labels import MAX_PROBLEMS, Problems, encode_labels, encode_task, label_array
from taskgraph.model.targets import target_columns, target_slices
from taskgraph.model.task_types import TASK_TYPES
from taskgraph.vocabulary import suggest

__all__ = ["TaskDataset", "target_columns", "split_batch", "make_loader", "encode_labels",
           "label_counts", "to_device", "MAX_PROBLEMS"]


def label_counts(dataset: TaskDataset) -> dict[str, int]:
    """``{task: number of rows with a known label}`` (NaN, and −1 outside regression,
    are missing).

    >>> import taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> label_counts(TaskDataset(np.zeros((2, 1)), {"diet": ["carnivore", None]}, h))
    {'mammal': 0, 'diet': 1, 'species': 0, 'weight_kg': 0}
    """
    y = dataset.targets  # (N, C)
    kinds = [dataset.hierarchy[name].type for name, w in dataset.columns for _ in range(w)]
    known = torch.zeros_like(y, dtype=torch.bool)  # (N, C)
    for kind in set(kinds):  # one vectorized check per task type
        cols = torch.tensor([c for c, k in enumerate(kinds) if k == kind])
        known[:, cols] = TASK_TYPES[kind].known(y[:, cols])
    slices = target_slices(dataset.hierarchy)
    single = [s.start for _, s in slices if s.stop - s.start == 1]  # one vectorized sum
    per_column = dict(zip(single, known[:, single].sum(0).tolist()))
    return {name: per_column[s.start] if s.stop - s.start == 1 else int(known[:, s].any(1).sum())
            for name, s in slices}


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
        problems = Problems()
        for k in targets:
            if k not in self.hierarchy.tasks:
                problems.add(f"targets: unknown task {k!r}"
                             f"{suggest(k, self.hierarchy.task_names)}")
        for name, cols in target_slices(self.hierarchy):
            w = cols.stop - cols.start
            if name in targets:
                values = label_array(targets[name])
                if w == 1 and values.ndim == 2 and values.shape[1] == 1:
                    values = values[:, 0]
                if values.shape != ((n, w) if w > 1 else (n,)):
                    problems.add(f"targets for task {name!r}: expected {n} rows of {w}, "
                                 f"got shape {values.shape}")
                else:
                    y[:, cols] = encode_task(self.hierarchy[name], values.reshape(n, w),
                                             problems)
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


def make_loader(dataset: Dataset, *, batch_size: int = 64, shuffle: bool = True,
                seed: int = 0, drop_last: bool = False) -> DataLoader:
    """A DataLoader with its own seeded generator (reproducible order, resumable)."""
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                      drop_last=drop_last)
