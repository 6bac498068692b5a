"""``taskgraph train`` and ``taskgraph evaluate`` for tabular data (CSV, NPZ).

``train`` writes into ``--out DIR``: ``model.pt`` (the model), ``history.json``,
``report.json`` / ``report.md`` (validation data, or the training data when no
``--val`` is given) and ``checkpoints/last.pt`` (for ``--resume``). Every file is
written to a temporary name and renamed, so an interrupted run leaves no half file.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> add_train(sub).prog.endswith("train")
    True
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from taskgraph.atomic import write_text_atomic
from taskgraph.cli.options import (
    add_runtime_options,
    apply_runtime,
    integer,
    number,
    output_dir,
)

__all__ = ["add_train", "add_evaluate", "run_train", "run_evaluate", "check_features"]


def add_train(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model on tabular data",
                       description="Compile HIERARCHY and train it on a CSV or NPZ file whose "
                       "task-named columns are the labels. --seed fixes the whole run "
                       "(initialization, data order, sampled synapses).",
                       epilog="DIR is created (with its parents) if missing. A DIR that "
                       "already holds a run is refused unless --resume continues it or "
                       "--force replaces it.")
    p.add_argument("hierarchy", metavar="HIERARCHY")
    p.add_argument("--data", required=True, metavar="FILE", help="training data (.csv, .npz)")
    p.add_argument("--val", metavar="FILE", help="validation data (early stopping, report)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--epochs", type=integer(low=1), default=20)
    p.add_argument("--batch-size", type=integer(low=1), default=64)
    p.add_argument("--lr", type=number(low=0, low_open=True), default=1e-3,
                   help="learning rate (> 0, default 1e-3)")
    p.add_argument("--weighting", default="static", choices=["static", "uncertainty", "pcgrad"])
    p.add_argument("--grad-noise", type=number(low=0), default=0.0,
                   help="η of annealed gradient noise (>= 0, default 0)")
    p.add_argument("--kl-weight", type=number(low=0), default=1.0,
                   help="β of the KL term (>= 0, default 1)")
    p.add_argument("--patience", type=integer(low=0), default=0,
                   help="early stopping on val_loss (0: off)")
    p.add_argument("--samples", type=integer(low=0), default=0, help="MC samples for the report")
    p.add_argument("--seed", type=integer(low=0, high=2**63 - 1), default=0)
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoints")
    p.add_argument("--force", action="store_true",
                   help="replace a run already in DIR instead of refusing")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="train regression tasks on the raw targets (default: standardized "
                   "with the training data's mean and std, inverted in predictions)")
    p.add_argument("--no-progress", action="store_true")
    add_runtime_options(p)
    p.set_defaults(run=run_train)
    return p


def add_evaluate(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="evaluate a saved model on tabular data",
                       description="Per-task, hierarchical and calibration metrics of a model "
                       "saved by 'taskgraph train' (or taskgraph.save) on a CSV or NPZ file.")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--samples", type=integer(low=0), default=0,
                   help="MC samples (0: mean synapses)")
    p.add_argument("--dropout", action=argparse.BooleanOptionalAction, default=None,
                   help="what the --samples K draws are: --dropout MC dropout (synapses at "
                   "their means), --no-dropout synapse draws (dropout off); default: MC "
                   "dropout where the model has dropout, else synapse draws")
    p.add_argument("--batch-size", type=integer(low=1), default=256)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", metavar="DIR", help="also write report.json and report.md here "
                   "(created if missing)")
    add_runtime_options(p)
    p.set_defaults(run=run_evaluate)
    return p


_RUN_FILES = ("model.pt", "history.json", "report.json", "report.md",
              os.path.join("checkpoints", "last.pt"))


def check_features(data: Any, expected: int | None, data_path: str, model_source: str,
                   hierarchy: str) -> None:
    """A data file must have the feature count its model takes (checked before any work)."""
    from taskgraph.errors import DataError

    got = int(data.features.shape[1]) if data.features.dim() > 1 else 1
    if expected is not None and got != expected:
        raise DataError(f"{data_path}: {got} feature columns, but {model_source} takes "
                        f"{expected} (is the data for hierarchy {hierarchy!r}?)")


def run_train(args: argparse.Namespace) -> int:
    import torch

    import taskgraph as tg
    from taskgraph.datasets import read_table
    from taskgraph.errors import DataError
    from taskgraph.memory import reuse_freed_memory
    from taskgraph.metrics import evaluate
    from taskgraph.train import make_loader

    # everything that can be wrong with the input is checked before training starts
    h = tg.load_hierarchy(Path(args.hierarchy))
    train = read_table(args.data, h)
    val = read_table(args.val, h) if args.val else None
    features = int(train.features.shape[1])
    if val is not None:
        check_features(val, features, args.val, f"the training data {args.data}", h.name)
    out = output_dir(args.out)
    ckpt = os.path.join(out, "checkpoints", "last.pt")
    if args.resume and not os.path.exists(ckpt):
        print(f"taskgraph train: --resume: no checkpoint in {args.out}/checkpoints; "
              "starting a fresh run", file=sys.stderr)
    elif not args.resume and not args.force:
        found = [f for f in _RUN_FILES if os.path.exists(os.path.join(out, f))]
        if found:
            raise DataError(f"--out {args.out}: already holds a run ({', '.join(found)}); "
                            "pass --resume to continue it, --force to replace it, or "
                            "another --out")
    if args.patience and val is None:
        raise DataError("--patience: early stopping needs validation data (--val FILE)")
    reuse_freed_memory()  # large tensors: no page faults on every step
    # the seed covers the initialization too: the model is compiled under it
    torch.manual_seed(args.seed)
    model = tg.compile(h, in_features=features)
    device = apply_runtime(args, work=args.batch_size * len(h) * model.config.task_dim)
    model.to(device)
    history = tg.fit(
        model, make_loader(train, batch_size=args.batch_size, seed=args.seed),
        val_loader=make_loader(val, batch_size=256, shuffle=False) if val else None,
        epochs=args.epochs, lr=args.lr, weighting=args.weighting, grad_noise=args.grad_noise,
        kl_weight=args.kl_weight, seed=args.seed, resume=args.resume,
        standardize_targets=args.standardize,
        early_stopping=tg.EarlyStopping("val_loss", patience=args.patience)
        if args.patience else None,
        checkpoint_dir=os.path.join(out, "checkpoints"), progress=not args.no_progress)
    report = evaluate(model, make_loader(val or train, batch_size=256, shuffle=False),
                      samples=args.samples,
                      data_name=f"{args.val} (validation data)" if val else
                      f"{args.data} (the training data: no --val given)")
    tg.save(model, os.path.join(out, "model.pt"),
            extra={"data": os.path.basename(args.data), "features": features,
                   "seed": args.seed})
    write_text_atomic(os.path.join(out, "history.json"), history.to_json())
    write_text_atomic(os.path.join(out, "report.json"), report.to_json())
    write_text_atomic(os.path.join(out, "report.md"), report.to_markdown())
    print(report.to_markdown())
    print(f"\nwrote {args.out}/model.pt, history.json, report.json, report.md")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import taskgraph as tg
    from taskgraph.datasets import read_table
    from taskgraph.memory import reuse_freed_memory
    from taskgraph.metrics import evaluate
    from taskgraph.train import make_loader

    model = tg.load(args.checkpoint)
    data = read_table(args.data, model.hierarchy)
    check_features(data, model.config.in_features, args.data, f"the model in {args.checkpoint}",
                   model.hierarchy.name)
    out = output_dir(args.out) if args.out else None
    reuse_freed_memory()
    device = apply_runtime(args, work=args.batch_size * len(model.hierarchy)
                           * model.config.task_dim)
    model.to(device)
    report = evaluate(model, make_loader(data, batch_size=args.batch_size, shuffle=False),
                      samples=args.samples, data_name=args.data, dropout=args.dropout)
    if out:
        write_text_atomic(os.path.join(out, "report.json"), report.to_json())
        write_text_atomic(os.path.join(out, "report.md"), report.to_markdown())
    print(report.to_json() if args.json else report.to_markdown(), file=sys.stdout)
    return 0
