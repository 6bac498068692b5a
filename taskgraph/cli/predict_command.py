r"""``taskgraph predict``: a saved model's predictions for a CSV or NPZ file.

One output row per input row, in input order. The file's feature columns are read as
``taskgraph evaluate`` reads them; label columns, if the file has any, are ignored. The
output format follows the extension of ``-o``: ``.csv`` or ``.npz``.

Columns, per task ``T`` (``C``: each class of the task, in the hierarchy's order):

==========  ===============================================  ==============================
task        columns                                          added by ``--samples K > 0``
==========  ===============================================  ==============================
binary      ``T`` (0/1, at probability 0.5), ``T.prob``      ``T.std``, ``T.entropy``,
                                                             ``T.mutual_info``
multiclass  ``T`` (the class name), ``T.prob.C``             ``T.entropy``, ``T.mutual_info``,
                                                             ``T.std.C``
multilabel  ``T.C`` (0/1), ``T.C.prob``                      ``T.C.std``, ``T.C.entropy``,
                                                             ``T.C.mutual_info``
regression  ``T`` (k outputs: ``T.0`` … ``T.k-1``)           ``T.std`` (``T.0.std`` …)
==========  ===============================================  ==============================

A multiclass task's class is decoded consistently with ``class_parents`` (a cat is
never predicted under a herbivore diet); it is blank (``""``) where no class of the task
fits the class decoded for its parent. ``.prob`` is the probability of the class (of 1
for binary), ``.std`` the standard deviation of that probability over the K Monte-Carlo
samples (of the value, for regression), ``.entropy`` the predictive entropy and
``.mutual_info`` its epistemic part (both in nats). Labels and decoded classes therefore
sit in the columns a training file uses for them (``T``, ``T.C``, ``T.0``), and the
probabilities beside them.

NPZ: one array per column, named like the CSV column (``np.load(path)[name]``, no
pickle needed): 0/1 labels as ``int64``, class names as a fixed-width unicode array,
numbers as ``float32``; ``np.load(path).files`` lists the columns in order.

Example:
    >>> import torch, taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=3, task_dim=4)
    >>> columns = prediction_columns(model.hierarchy, model.predict(torch.randn(2, 3)))
    >>> list(columns)[:5]
    ['mammal', 'mammal.prob', 'diet', 'diet.prob.herbivore', 'diet.prob.carnivore']
    >>> columns["diet"].dtype.kind, columns["weight_kg"].shape
    ('U', (2,))
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from typing import Any, Mapping

import numpy as np

from taskgraph.cli.options import add_runtime_options, apply_runtime, integer
from taskgraph.errors import DataError

__all__ = ["add_predict", "run_predict", "prediction_columns", "write_columns", "FORMATS"]

#: output extensions, and the writer of each
FORMATS = (".csv", ".npz")

_EPILOG = """\
output columns, per task T (C: each class of T):
  binary      T (0/1 at probability 0.5), T.prob
  multiclass  T (class name; blank where no class fits the parent's class), T.prob.C
  multilabel  T.C (0/1), T.C.prob
  regression  T, or T.0 ... T.k-1 for k outputs
with --samples K > 0 also:
  binary      T.std, T.entropy, T.mutual_info
  multiclass  T.entropy, T.mutual_info, T.std.C
  multilabel  T.C.std, T.C.entropy, T.C.mutual_info
  regression  T.std (T.0.std ...)
(.std: standard deviation over the K samples; entropy and mutual information in nats)
.npz: one array per column, named like the CSV column.
"""


def add_predict(sub: Any) -> argparse.ArgumentParser:
    """Register ``taskgraph predict`` on the sub-parsers ``sub``.

    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> add_predict(sub).parse_args(["m.pt", "--data", "x.csv", "-o", "p.csv"]).samples
    0
    """
    p = sub.add_parser("predict", help="predict with a saved model",
                       description="Predictions of a model saved by 'taskgraph train' (or\n"
                       "taskgraph.save) for every row of a CSV or NPZ file, one output row\n"
                       "per input row, in input order.",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="the saved model (model.pt)")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="input rows (.csv, .npz); label columns, if any, are ignored")
    p.add_argument("-o", "--out", required=True, metavar="OUT",
                   help="output file, .csv or .npz (its folder is created if missing)")
    p.add_argument("--samples", type=integer(low=0), default=0, metavar="K",
                   help="Monte-Carlo samples of the stochastic synapses; K > 0 adds the "
                   "uncertainty columns (default: 0, the expected weights)")
    p.add_argument("--batch-size", type=integer(low=1), default=256, metavar="B",
                   help="rows per forward pass (default: 256)")
    p.add_argument("--seed", type=integer(low=0), default=0,
                   help="seed of the samples drawn with --samples (default: 0)")
    add_runtime_options(p)
    p.set_defaults(run=run_predict)
    return p


def _output_path(out: str) -> str:
    """``out``, checked: a known extension, not a folder; its folder is created."""
    from taskgraph.cli.options import output_file

    if os.path.isdir(out):
        raise DataError(f"-o {out}: is a folder; name the output file in it, e.g. "
                        f"{os.path.join(out, 'predictions.csv')}")
    ext = os.path.splitext(out)[1].lower()
    if ext not in FORMATS:
        raise DataError(f"-o {out}: unknown output format "
                        f"{repr(ext) if ext else '(no extension)'}; expected a file name "
                        f"ending in {' or '.join(FORMATS)}")
    return output_file(out, "-o")


def _read_features(path: str, hierarchy: Any) -> Any:
    """The features of ``path``; its label columns (if any) are skipped unread."""
    from taskgraph.datasets import read_table

    return read_table(path, hierarchy, labels="ignore").features


def _put(columns: dict[str, np.ndarray], name: str, values: Any, task: str) -> None:
    if name in columns:
        raise DataError(f"task {task!r}: its output column {name!r} is also a column of "
                        "another task; rename one of the two tasks")
    columns[name] = values


def prediction_columns(hierarchy: Any, pred: Mapping[str, Any], *,
                       uncertainty: bool = False) -> dict[str, np.ndarray]:
    """The output columns (module docstring) of one prediction, as numpy arrays.

    Args:
        hierarchy: the model's :class:`~taskgraph.hierarchy.Hierarchy`.
        pred: ``model.predict(x, samples=K)``, task -> :class:`TaskPrediction` (any device).
        uncertainty: add the ``std`` / ``entropy`` / ``mutual_info`` columns.

    Returns:
        ``{column name: (B,) array}`` in output order.

    Raises:
        DataError: two tasks would write a column of the same name.
    """
    from taskgraph.model.task_types import TASK_TYPES

    cols: dict[str, np.ndarray] = {}
    for name, spec in hierarchy.tasks.items():  # the columns of each task, from its type
        for column, values in TASK_TYPES[spec.type].output_columns(spec, pred[name],
                                                                   uncertainty):
            _put(cols, column, values, name)
    return cols


def write_columns(path: str, columns: Mapping[str, np.ndarray]) -> None:
    """Write ``columns`` to ``path`` (``.csv`` or ``.npz``) atomically: a temporary file
    in the same folder, renamed into place.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "p.csv")
    >>> write_columns(path, {"a": np.array([1, 0]), "a.prob": np.float32([0.75, 0.1])})
    >>> open(path).read().splitlines()
    ['a,a.prob', '1,0.75', '0,0.1']
    """
    from taskgraph.atomic import atomic_write, write_text_atomic

    if path.lower().endswith(".npz"):
        with atomic_write(path, "wb") as fh:
            np.savez(fh, **columns)
        return
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(list(columns))
    # str() of a float32 is its shortest exact form: 0.1, not 0.100000001
    writer.writerows(zip(*(values.astype(str) for values in columns.values())))
    write_text_atomic(path, text.getvalue())


def run_predict(args: argparse.Namespace) -> int:
    """Load, read, predict in batches, write; prints one line."""
    import torch

    import taskgraph as tg
    from taskgraph.memory import reuse_freed_memory

    out = _output_path(args.out)
    reuse_freed_memory()
    model = tg.load(args.checkpoint)
    x = _read_features(args.data, model.hierarchy)  # (N, F)
    expected = model.config.in_features
    if expected is not None and (x.dim() != 2 or x.shape[1] != expected):
        found = f"{x.shape[1]} feature columns" if x.dim() == 2 else \
            f"features of shape {tuple(x.shape)}"
        raise DataError(f"{args.data}: {found}, but the model in "
                        f"{args.checkpoint} takes {expected} (is the data for hierarchy "
                        f"{model.hierarchy.name!r}?)")
    rows = min(len(x), args.batch_size)
    device = apply_runtime(args, work=rows * model.layout.num_tasks * model.config.task_dim)
    model.to(device).eval()
    parts: list[dict[str, np.ndarray]] = []
    torch.manual_seed(args.seed)  # the synapse noise of --samples: reproducible
    with torch.no_grad():
        for start in range(0, len(x), args.batch_size):
            batch = x[start:start + args.batch_size].to(device)  # (B, F)
            pred = model.predict(batch, samples=args.samples)
            parts.append(prediction_columns(model.hierarchy, pred,
                                            uncertainty=args.samples > 0))
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    write_columns(out, columns)
    print(f"predicted {len(x)} rows ({len(columns)} columns, {len(model.hierarchy)} tasks); "
          f"wrote {out}", file=sys.stdout)
    return 0
