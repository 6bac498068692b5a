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

__all__ = ["add_train", "add_evaluate", "run_train", "run_evaluate"]


def add_train(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model on tabular data",
                       description="Compile HIERARCHY and train it on a CSV or NPZ file whose "
                       "task-named columns are the labels.")
    p.add_argument("hierarchy", metavar="HIERARCHY")
    p.add_argument("--data", required=True, metavar="FILE", help="training data (.csv, .npz)")
    p.add_argument("--val", metavar="FILE", help="validation data (early stopping, report)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weighting", default="static", choices=["static", "uncertainty", "pcgrad"])
    p.add_argument("--grad-noise", type=float, default=0.0)
    p.add_argument("--kl-weight", type=float, default=1.0)
    p.add_argument("--patience", type=int, default=0, help="early stopping on val_loss (0: off)")
    p.add_argument("--samples", type=int, default=0, help="MC samples for the report")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoints")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_train)
    return p


def add_evaluate(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("evaluate", help="evaluate a saved model on tabular data",
                       description="Per-task, hierarchical and calibration metrics of a model "
                       "saved by 'taskgraph train' (or taskgraph.save) on a CSV or NPZ file.")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--samples", type=int, default=0, help="MC samples (0: mean synapses)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--out", metavar="DIR", help="also write report.json and report.md here")
    p.set_defaults(run=run_evaluate)
    return p



def _positive(args: argparse.Namespace, *names: str) -> None:
    from taskgraph.errors import DataError

    for name in names:
        value = getattr(args, name)
        if value < (0 if name in ("samples", "patience") else 1):
            raise DataError(f"--{name.replace('_', '-')}: expected a "
                            f"{'non-negative' if name in ('samples', 'patience') else 'positive'}"
                            f" number, got {value}")


def run_train(args: argparse.Namespace) -> int:
    import taskgraph as tg
    from taskgraph.datasets import read_table
    from taskgraph.memory import reuse_freed_memory
    from taskgraph.metrics import evaluate
    from taskgraph.train import make_loader

    _positive(args, "epochs", "batch_size", "samples", "patience")
    reuse_freed_memory()  # large tensors: no page faults on every step
    h = tg.load_hierarchy(Path(args.hierarchy))
    train = read_table(args.data, h)
    val = read_table(args.val, h) if args.val else None
    model = tg.compile(h, in_features=int(train.features.shape[1]))
    os.makedirs(args.out, exist_ok=True)
    history = tg.fit(
        model, make_loader(train, batch_size=args.batch_size, seed=args.seed),
        val_loader=make_loader(val, batch_size=256, shuffle=False) if val else None,
        epochs=args.epochs, lr=args.lr, weighting=args.weighting, grad_noise=args.grad_noise,
        kl_weight=args.kl_weight, seed=args.seed, resume=args.resume,
        early_stopping=tg.EarlyStopping("val_loss", patience=args.patience)
        if args.patience and val else None,
        checkpoint_dir=os.path.join(args.out, "checkpoints"), progress=not args.no_progress)
    report = evaluate(model, make_loader(val or train, batch_size=256, shuffle=False),
                      samples=args.samples)
    tg.save(model, os.path.join(args.out, "model.pt"),
            extra={"data": os.path.basename(args.data), "features": int(train.features.shape[1])})
    write_text_atomic(os.path.join(args.out, "history.json"), history.to_json())
    write_text_atomic(os.path.join(args.out, "report.json"), report.to_json())
    write_text_atomic(os.path.join(args.out, "report.md"), report.to_markdown())
    print(report.to_markdown())
    print(f"\nwrote {args.out}/model.pt, history.json, report.json, report.md")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import taskgraph as tg
    from taskgraph.datasets import read_table
    from taskgraph.errors import DataError
    from taskgraph.memory import reuse_freed_memory
    from taskgraph.metrics import evaluate
    from taskgraph.train import make_loader

    _positive(args, "samples", "batch_size")
    reuse_freed_memory()
    model = tg.load(args.checkpoint)
    data = read_table(args.data, model.hierarchy)
    expected = model.config.in_features
    if expected is not None and data.features.shape[1] != expected:
        raise DataError(f"{args.data}: {data.features.shape[1]} feature columns, but the model "
                        f"in {args.checkpoint} takes {expected} (is the data for hierarchy "
                        f"{model.hierarchy.name!r}?)")
    report = evaluate(model, make_loader(data, batch_size=args.batch_size, shuffle=False),
                      samples=args.samples)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        write_text_atomic(os.path.join(args.out, "report.json"), report.to_json())
        write_text_atomic(os.path.join(args.out, "report.md"), report.to_markdown())
    print(report.to_json() if args.json else report.to_markdown(), file=sys.stdout)
    return 0

