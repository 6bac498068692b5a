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

Selective prediction (:mod:`taskgraph.selective`). ``--confidence C`` (in (0, 1]) adds,
per class path ``P`` (a chain of multiclass tasks linked by ``class_parents``, named by
its deepest task), the climbed prediction: ``P.selective`` (the class of the deepest
node whose confidence reaches C, blank when even the root task's does not: rejected),
``P.selective_depth`` (its level, 1 = the root task, 0 = rejected) and
``P.selective_confidence``; and, for a label DAG (binary tasks with edges between
them), ``label_set``: the coherent set of labels whose score reaches C, names joined by
``;``. ``--max-std S`` (with ``--samples K > 0``) withholds from the set every label
whose probability's std over the samples exceeds S, with its descendants, listed in
``label_set.withheld``. ``--target-accuracy A --val FILE`` chooses C on the labelled
rows of FILE instead: per class path the smallest threshold whose Clopper–Pearson bound
on the error rate of the accepted climbed predictions is at most 1 - A, and for the
label sets the smallest whose Hoeffding–Bentkus bound on the mean false-discovery
proportion of the non-empty sets is at most 1 - A, both Bonferroni-corrected over the
100 thresholds 0.01, 0.02, ..., 1; it prints each threshold with its guarantee (which
holds with probability 1 - D, ``--delta D``, default 0.05, when the rows of FILE and
the rows predicted are i.i.d. and FILE was not used to train or select the model).

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

from taskgraph.cli.options import add_runtime_options, apply_runtime, integer, number
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
with --confidence C or --target-accuracy A --val FILE also:
  per class path P  P.selective (class, blank: rejected), P.selective_depth (0: rejected),
                    P.selective_confidence
  label DAG         label_set (labels joined by ';'), label_set.withheld (with --max-std)
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
    p.add_argument("--dropout", action=argparse.BooleanOptionalAction, default=None,
                   help="what the --samples K draws are: --dropout MC dropout (synapses at "
                   "their means), --no-dropout synapse draws (dropout off); default: MC "
                   "dropout where the model has dropout, else synapse draws")
    p.add_argument("--samples", type=integer(low=0), default=0, metavar="K",
                   help="Monte-Carlo samples of the stochastic synapses; K > 0 adds the "
                   "uncertainty columns (default: 0, the expected weights)")
    p.add_argument("--batch-size", type=integer(low=1), default=256, metavar="B",
                   help="rows per forward pass (default: 256)")
    p.add_argument("--seed", type=integer(low=0), default=0,
                   help="seed of the samples drawn with --samples (default: 0)")
    s = p.add_argument_group("selective prediction (see 'taskgraph.selective')")
    s.add_argument("--confidence", type=number(low=0, low_open=True, high=1), metavar="C",
                   help="add the climbed class of each class path (the deepest node whose "
                   "confidence is >= C; rejected when the root's is not) and the coherent "
                   "label set of a label DAG at threshold C")
    s.add_argument("--target-accuracy", type=number(low=0, high=1, low_open=True,
                                                    high_open=True), metavar="A",
                   help="choose C on --val instead: the accepted predictions' accuracy (label "
                   "sets: mean precision) is >= A with probability 1 - delta")
    s.add_argument("--val", metavar="FILE",
                   help="labelled rows (.csv, .npz) for --target-accuracy; not rows the model "
                   "was trained or selected on")
    s.add_argument("--delta", type=number(low=0, high=1, low_open=True, high_open=True),
                   metavar="D", help="for --target-accuracy: the allowed probability that "
                   "the guarantee fails (default: 0.05)")
    s.add_argument("--max-std", type=number(low=0), metavar="S",
                   help="with --samples K > 0: withhold from the label set each label whose "
                   "probability's std over the samples exceeds S, and its descendants")
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


def _check_features(x: Any, path: str, args: argparse.Namespace, model: Any) -> None:
    expected = model.config.in_features
    if expected is not None and (x.dim() != 2 or x.shape[1] != expected):
        found = f"{x.shape[1]} feature columns" if x.dim() == 2 else \
            f"features of shape {tuple(x.shape)}"
        raise DataError(f"{path}: {found}, but the model in "
                        f"{args.checkpoint} takes {expected} (is the data for hierarchy "
                        f"{model.hierarchy.name!r}?)")


def _check_selective(args: argparse.Namespace) -> bool:
    """The selective options, checked together; whether any is in use."""
    chosen = args.target_accuracy is not None
    if args.confidence is not None and chosen:
        raise DataError("--confidence and --target-accuracy: give one (a threshold, or a "
                        "target for which --val chooses it)")
    if chosen and not args.val:
        raise DataError("--target-accuracy: choosing the threshold needs labelled "
                        "validation rows (--val FILE)")
    if args.val and not chosen:
        raise DataError("--val: the validation rows are only read to choose the threshold "
                        "for --target-accuracy A")
    if args.delta is not None and not chosen:
        raise DataError("--delta: it belongs to the guarantee of --target-accuracy A")
    if args.max_std is not None and args.confidence is None and not chosen:
        raise DataError("--max-std: it withholds labels of the label sets of --confidence "
                        "or --target-accuracy")
    if args.max_std is not None and args.samples == 0:
        raise DataError("--max-std: the std of a probability needs Monte-Carlo samples "
                        "(--samples K > 0)")
    return args.confidence is not None or chosen


class _Selective:
    """The class paths and label DAG of a model, with their thresholds (given by
    ``--confidence`` or chosen on ``--val``), and the columns they add to a batch."""

    def __init__(self, args: argparse.Namespace, model: Any) -> None:
        from taskgraph.selective import LabelDag, class_paths

        h = model.hierarchy
        self.paths = class_paths(h)
        dag = LabelDag(h)
        self.dag = dag if dag.num_edges else None
        self.max_std = args.max_std
        option = "--confidence" if args.confidence is not None else "--target-accuracy"
        if not self.paths and self.dag is None:
            raise DataError(f"{option}: hierarchy {h.name!r} has no class path (multiclass "
                            "tasks linked by class_parents) and no label DAG (binary tasks "
                            "with edges between them)")
        if self.max_std is not None and self.dag is None:
            raise DataError(f"--max-std: hierarchy {h.name!r} has no label DAG to withhold "
                            "labels from")
        if args.confidence is not None:
            self.confidence = {p.name: args.confidence for p in self.paths}
            self.threshold = args.confidence
        else:
            self._choose(args, model)

    def _choose(self, args: argparse.Namespace, model: Any) -> None:
        import torch

        from taskgraph.datasets import read_table
        from taskgraph.selective import choose_confidence, choose_label_threshold
        from taskgraph.train import make_loader

        val = read_table(args.val, model.hierarchy, labels="none")
        _check_features(val.features, args.val, args, model)
        loader = make_loader(val, batch_size=args.batch_size, shuffle=False)
        target, delta = args.target_accuracy, 0.05 if args.delta is None else args.delta
        choices = []
        if self.paths:
            torch.manual_seed(args.seed)
            found = choose_confidence(model, loader, target_accuracy=target, delta=delta,
                                      samples=args.samples, dropout=args.dropout)
            choices += [(f"class path {p.name} ({' > '.join(p.tasks)})", found[p.name])
                        for p in self.paths]
        if self.dag is not None:
            torch.manual_seed(args.seed)
            choices.append(("label sets", choose_label_threshold(
                model, loader, target_precision=target, delta=delta, samples=args.samples,
                dropout=args.dropout, max_uncertainty=self.max_std)))
        for what, choice in choices:
            if choice.threshold is None:
                raise DataError(f"--target-accuracy {target:g}: {what}: {choice.guarantee}; "
                                "lower the target or give more validation rows")
            print(f"{what}: on {args.val}, {choice}", file=sys.stdout)
        self.confidence = {p.name: c.threshold for p, (_, c) in zip(self.paths, choices)}
        self.threshold = choices[-1][1].threshold if self.dag is not None else None

    def add(self, cols: dict[str, np.ndarray], pred: Any, hierarchy: Any) -> None:
        """Append this batch's selective columns to ``cols``."""
        from taskgraph.selective import climb, label_sets

        if self.paths:
            for name, sel in climb(hierarchy, pred, confidence=self.confidence).items():
                _put(cols, f"{name}.selective", sel.class_names(), name)
                _put(cols, f"{name}.selective_depth", sel.depth.cpu().numpy().astype(np.int64),
                     name)
                _put(cols, f"{name}.selective_confidence",
                     sel.confidence.float().cpu().numpy(), name)
        if self.dag is not None:
            sets = label_sets(self.dag, pred, threshold=self.threshold,
                              max_uncertainty=self.max_std)
            _put(cols, "label_set", sets.joined(), "label_set")
            if self.max_std is not None:
                _put(cols, "label_set.withheld", sets.joined(withheld=True), "label_set")


def run_predict(args: argparse.Namespace) -> int:
    """Load, read, predict in batches, write; prints one line (and, choosing thresholds
    on ``--val``, one line per threshold)."""
    import torch

    import taskgraph as tg
    from taskgraph.memory import reuse_freed_memory

    out = _output_path(args.out)
    selective_on = _check_selective(args)
    reuse_freed_memory()
    model = tg.load(args.checkpoint)
    x = _read_features(args.data, model.hierarchy)  # (N, F)
    _check_features(x, args.data, args, model)
    rows = min(len(x), args.batch_size)
    device = apply_runtime(args, work=rows * model.layout.num_tasks * model.config.task_dim)
    model.to(device).eval()
    selective = _Selective(args, model) if selective_on else None
    parts: list[dict[str, np.ndarray]] = []
    torch.manual_seed(args.seed)  # the synapse noise of --samples: reproducible
    with torch.no_grad():
        for start in range(0, len(x), args.batch_size):
            batch = x[start:start + args.batch_size].to(device)  # (B, F)
            pred = model.predict(batch, samples=args.samples, dropout=args.dropout)
            cols = prediction_columns(model.hierarchy, pred, uncertainty=args.samples > 0)
            if selective is not None:
                selective.add(cols, pred, model.hierarchy)
            parts.append(cols)
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    write_columns(out, columns)
    print(f"predicted {len(x)} rows ({len(columns)} columns, {len(model.hierarchy)} tasks); "
          f"wrote {out}", file=sys.stdout)
    return 0
