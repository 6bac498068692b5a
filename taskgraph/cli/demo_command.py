"""``taskgraph demo``: train the default model on the HMC data shipped with taskgraph.

It trains on cellcycle_FUN (yeast gene expression, 499 FunCat labels; see
``taskgraph/data/DATA_NOTICE.md``), early-stops on the validation split, trains a fresh
model on train + valid for the chosen number of epochs (C-HMCNN's protocol), scores the
test split once, prints AU(PRC)-bar beside C-HMCNN's published 0.255, and writes the
hierarchy, model, history, reports, a picture of the hierarchy and one HTML report into
the output folder it names.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> add_demo(sub).prog.endswith("demo")
    True
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from taskgraph.atomic import write_text_atomic

__all__ = ["add_demo", "run_demo"]


def add_demo(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="train on the shipped HMC data set and report",
                       description="Train taskgraph's default hierarchical model on "
                       "cellcycle_FUN (shipped with the package) and compare with C-HMCNN.")
    p.add_argument("--out", default="taskgraph-demo", metavar="DIR",
                   help="output folder (default: ./taskgraph-demo)")
    p.add_argument("--epochs", type=int, default=None, help="cap on epochs (default: recipe)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=32,
                   help="MC samples for the uncertainty report (default 32)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: for this model's many small "
                   "operations, two threads measured 20x slower per epoch than one on a "
                   "2-core machine)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_demo)
    return p



def run_demo(args: argparse.Namespace) -> int:
    import torch

    import taskgraph as tg
    from taskgraph.datasets.hmc import load_hmc
    from taskgraph.hmc import PUBLISHED, train_hmc
    from taskgraph.memory import reuse_freed_memory
    from taskgraph.metrics import evaluate
    from taskgraph.train import TaskDataset, make_loader

    if args.epochs is not None and args.epochs < 1:
        raise tg.DataError(f"--epochs: expected a positive integer, got {args.epochs}")
    if args.threads < 1:
        raise tg.DataError(f"--threads: expected a positive integer, got {args.threads}")
    torch.set_num_threads(args.threads)
    reuse_freed_memory()  # large tensors: no page faults on every step
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    data = load_hmc("cellcycle_FUN").preprocessed()
    h = data.hierarchy
    print(f"taskgraph demo: {h.name}, {len(h)} FunCat labels ({h.graph.number_of_edges()} "
          f"edges), {len(data.train.X)} train / {len(data.valid.X)} valid / "
          f"{len(data.test.X)} test genes, {data.train.X.shape[1]} features; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    # C-HMCNN's protocol: epochs chosen on valid, then a fresh model trained on train +
    # valid for that many epochs is scored on test
    result = train_hmc(data, seed=args.seed, epochs=args.epochs, refit=True,
                       progress=not args.no_progress and sys.stderr.isatty())
    model = result.model
    test = make_loader(TaskDataset(data.test.X, data.test.Y, h), batch_size=512, shuffle=False)
    report = evaluate(model, test, samples=args.samples, roots=data.roots)
    h.to_yaml(os.path.join(out, "hierarchy.yaml"))
    tg.save(model, os.path.join(out, "model.pt"), extra={"data": "cellcycle_FUN",
                                                         "seed": args.seed})
    write_text_atomic(os.path.join(out, "history.json"), result.history.to_json())
    write_text_atomic(os.path.join(out, "report.json"), report.to_json())
    write_text_atomic(os.path.join(out, "report.md"), report.to_markdown())
    written = ["hierarchy.yaml", "model.pt", "history.json", "report.json", "report.md"]
    try:  # pictures need matplotlib (the 'plot' extra); the run is complete without them
        import matplotlib  # noqa: F401
    except ImportError:
        print("(matplotlib is not installed: no pictures; pip install 'taskgraph[plot]')")
    else:
        tg.draw(model, os.path.join(out, "hierarchy.png"), max_nodes=120)
        tg.write_report(out, os.path.join(out, "report.html"), data=test)
        written += ["hierarchy.png", "report.html"]
    published = PUBLISHED["cellcycle_FUN"]["C-HMCNN"]
    print(f"\ntest AU(PRC)-bar: {result.test_auprc:.3f}   (C-HMCNN, published: {published:.3f})")
    print(f"validation AU(PRC)-bar: {result.valid_auprc:.3f} at epoch "
          f"{result.history.best_epoch} of {len(result.history)} (then refitted on train + "
          f"valid for {result.history.best_epoch} epochs); coherence violations on "
          f"test: {result.violations}; training time {result.seconds:.0f} s")
    print(f"\nwrote {out}/: {', '.join(written)}")
    return 0
