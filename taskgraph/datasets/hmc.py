"""The HMC benchmark data sets (Vens et al. 2008, as redistributed with C-HMCNN).

A data set ``NAME`` is three files in one folder: ``NAME.train.arff.gz``,
``NAME.valid.arff.gz`` and ``NAME.test.arff.gz``. :func:`load_hmc` reads them into
arrays with one label column per task of the hierarchy (declared in the files), and
:meth:`HMCData.preprocessed` applies the published protocol: mean imputation and
standardization fitted on train + valid.

Example:
    >>> data = load_hmc("cellcycle_FUN")          # the copy shipped with taskgraph
    >>> data.train.X.shape[1] == data.test.X.shape[1], data.hierarchy.name
    (True, 'cellcycle_FUN')
    >>> len(data.eval_columns) == len(data.hierarchy)  # FunCat has no root node to skip
    True
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, replace

import numpy as np

from taskgraph.datasets.arff import ArffData, hierarchy_from_arff, read_arff
from taskgraph.errors import DataError

__all__ = ["HMCData", "Split", "load_hmc", "ROOTS", "SHIPPED", "shipped_root"]

#: Labels never evaluated (the roots of the HMC protocol).
ROOTS = ("root", "GO0003674", "GO0005575", "GO0008150")
#: The data set shipped inside the package (with its data notice).
SHIPPED = ("cellcycle_FUN",)


def shipped_root() -> str:
    """The folder of the data shipped with taskgraph."""
    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")


@dataclass
class Split:
    """Features ``X`` (N, F) with NaN for missing values, labels ``Y`` (N, T) in 0/1."""

    X: np.ndarray
    Y: np.ndarray


@dataclass
class HMCData:
    """One HMC data set: three splits, the hierarchy and what to evaluate.

    ``eval_columns``: label columns scored by the protocol (all but :data:`ROOTS`).
    """

    name: str
    train: Split
    valid: Split
    test: Split
    hierarchy: object
    feature_names: list[str]
    eval_columns: np.ndarray

    @property
    def roots(self) -> list[str]:
        return [t for t in self.hierarchy.task_names if t in ROOTS]

    def preprocessed(self) -> "HMCData":
        """Mean-impute and standardize every split with statistics of train + valid."""
        fit = np.concatenate([self.train.X, self.valid.X]).astype(np.float64)
        with warnings.catch_warnings():  # an all-missing column has no mean: use 0
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nan_to_num(np.nanmean(fit, axis=0))
        filled = np.where(np.isnan(fit), mean, fit)
        std = filled.std(axis=0)
        std[std < 1e-12] = 1.0

        def apply(split: Split) -> Split:
            x = np.where(np.isnan(split.X), mean, split.X)
            return Split(((x - mean) / std).astype(np.float32), split.Y)

        return replace(self, train=apply(self.train), valid=apply(self.valid),
                       test=apply(self.test))


def _same_schema(a: ArffData, b: ArffData, what: str) -> None:
    if a.labels != b.labels or a.feature_names != b.feature_names:
        raise DataError(f"{what}: its attributes or class hierarchy differ from the train file")


def load_hmc(name: str, root: str | os.PathLike | None = None) -> HMCData:
    """Read ``NAME.{train,valid,test}.arff.gz`` from ``root``.

    Args:
        name: e.g. ``"cellcycle_FUN"`` or ``"derisi_GO"``.
        root: the folder; default: the copy shipped with taskgraph (cellcycle_FUN only).

    Raises:
        FileNotFoundError: a split is missing (the message lists what the folder holds).
        DataError: a file is malformed or the splits disagree.
    """
    root = os.fspath(root) if root is not None else shipped_root()
    splits = {}
    for split in ("train", "valid", "test"):
        path = os.path.join(root, f"{name}.{split}.arff.gz")
        if not os.path.exists(path) and os.path.exists(path[:-3]):
            path = path[:-3]
        if not os.path.exists(path):
            have = sorted({f.split(".")[0] for f in os.listdir(root) if ".arff" in f}) \
                if os.path.isdir(root) else []
            raise FileNotFoundError(2, f"no {name}.{split}.arff(.gz) in {root}; data sets "
                                       f"there: {', '.join(have) or 'none'}", path)
        splits[split] = read_arff(path)
    for split in ("valid", "test"):
        _same_schema(splits["train"], splits[split], f"{name}.{split}")
    train = splits["train"]
    hierarchy = hierarchy_from_arff(train, name=name)
    eval_columns = np.array([i for i, label in enumerate(train.labels) if label not in ROOTS])
    return HMCData(name, *(Split(splits[s].X, splits[s].Y) for s in ("train", "valid", "test")),
                   hierarchy=hierarchy, feature_names=train.feature_names,
                   eval_columns=eval_columns)
