"""``taskgraph demo``: train the default model on the HMC data shipped with taskgraph.

It trains on cellcycle_FUN (yeast gene expression, 499 FunCat labels; see
``taskgraph/data/DATA_NOTICE.md``) on the train split with early stopping on the
validation split (the default recipe, no search), scores the test split once, and writes
the hierarchy, model, history, reports, a picture of the hierarchy and one HTML report into
the output folder it names. That takes about two minutes on two cores.

With ``--refit`` it follows C-HMCNN's protocol, the one of the published numbers: a fresh
model is trained on train + valid for the number of epochs chosen on valid and scored on
test, beside C-HMCNN's published 0.255 (about twice as long). Without it, the model has
seen only the train split, so its score is not comparable with the published one, and the
demo says so. ``history.json`` describes the saved model: with ``--refit`` its ``epochs``
are the refit's and ``valid_phase`` holds the run on train that chose their number;
without, both are the run on train.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> add_demo(sub).prog.endswith("demo")
    True
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from taskgraph.atomic import write_text_atomic
from taskgraph.cli.options import add_runtime_options, apply_runtime, integer, output_dir

__all__ = ["add_demo", "run_demo", "CHMCNN_CELLCYCLE_FUN"]

#: C-HMCNN's published test AU(PRC)-bar on cellcycle_FUN, the mean of 10 seeds
#: (Giunchiglia & Lukasiewicz, NeurIPS 2020; its README), printed beside the demo's score.
CHMCNN_CELLCYCLE_FUN = 0.255


def add_demo(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="train on the shipped HMC data set and report",
                       description="Train taskgraph's default hierarchical model on "
                       "cellcycle_FUN (shipped with the package) and compare with C-HMCNN.")
    p.add_argument("--out", default="taskgraph-demo", metavar="DIR",
                   help="output folder, created if missing (default: ./taskgraph-demo)")
    p.add_argument("--epochs", type=integer(low=1), default=None,
                   help="cap on epochs of the valid phase (default: the recipe's)")
    p.add_argument("--seed", type=integer(low=0), default=0,
                   help="fixes the whole run: the same seed gives the same model (default 0)")
    p.add_argument("--samples", type=integer(low=0), default=32,
                   help="MC samples for the uncertainty report (default 32)")
    p.add_argument("--refit", action="store_true",
                   help="C-HMCNN's protocol: after choosing the epochs on valid, train a "
                   "fresh model on train + valid and score that one (about twice as long; "
                   "the protocol of the published 0.255)")
    add_runtime_options(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_demo)
    return p


def _history_json(result: Any) -> str:
    """``history.json`` of a :func:`~taskgraph.recipes.hmc.train_hmc` result: the saved model's
    epochs at the top level (what :func:`~taskgraph.write_report` plots and counts), the
    run on train that chose their number under ``valid_phase``."""
    data = result.history.to_dict()
    data["model"] = (f"refit on train + valid for {result.epochs} epochs (the best epoch "
                     "of the valid phase)" if result.refit else
                     f"the valid phase's best epoch ({result.epochs})")
    data["valid_phase"] = result.valid_history.to_dict()
    return json.dumps(data, indent=2, allow_nan=False)


def run_demo(args: argparse.Namespace) -> int:
    import torch

    import taskgraph as tg
    from taskgraph.datasets.hmc import load_hmc
    from taskgraph.recipes.hmc import HMC_CONFIG, train_hmc
    from taskgraph.memory import reuse_freed_memory
    from taskgraph.metrics import evaluate
    from taskgraph.train import TaskDataset, make_loader

    out = output_dir(args.out)
    data = load_hmc("cellcycle_FUN").preprocessed()
    h = data.hierarchy
    device = apply_runtime(args, work=HMC_CONFIG["train"]["batch_size"] * len(h)
                           * HMC_CONFIG["model"]["task_dim"])
    reuse_freed_memory()  # large tensors: no page faults on every step
    print(f"taskgraph demo: {h.name}, {len(h)} FunCat labels ({h.graph.number_of_edges()} "
          f"edges), {len(data.train.X)} train / {len(data.valid.X)} valid / "
          f"{len(data.test.X)} test genes, {data.train.X.shape[1]} features; "
          f"torch {torch.__version__}, {device}, {torch.get_num_threads()} threads")
    # --refit, C-HMCNN's protocol: epochs chosen on valid, then a fresh model trained on
    # train + valid for that many epochs is scored on test
    result = train_hmc(data, seed=args.seed, epochs=args.epochs, refit=args.refit,
                       device=device,
                       progress=not args.no_progress and sys.stderr.isatty())
    model = result.model
    test = make_loader(TaskDataset(data.test.X, data.test.Y, h), batch_size=512, shuffle=False)
    torch.manual_seed(args.seed)  # the MC draws of the report
    report = evaluate(model, test, samples=args.samples, roots=data.roots,
                      data_name=f"cellcycle_FUN test split ({len(data.test.X):,} genes)")
    model = model.cpu()
    h.to_yaml(os.path.join(out, "hierarchy.yaml"))
    tg.save(model, os.path.join(out, "model.pt"), extra={"data": "cellcycle_FUN",
                                                         "seed": args.seed,
                                                         "epochs": result.epochs})
    write_text_atomic(os.path.join(out, "history.json"), _history_json(result))
    write_text_atomic(os.path.join(out, "report.json"), report.to_json())
    title, rest = report.to_markdown().split("\n", 1)
    write_text_atomic(os.path.join(out, "report.md"),
                      f"{title}\n\nmodel: {_trained(result)}\n{rest}")
    written = ["hierarchy.yaml", "model.pt", "history.json", "report.json", "report.md"]
    try:  # pictures need matplotlib (the 'plot' extra); the run is complete without them
        import matplotlib  # noqa: F401
    except ImportError:
        print("(matplotlib is not installed: no pictures; pip install 'taskgraph[plot]')")
    else:
        tg.draw(model, os.path.join(out, "hierarchy.png"), max_nodes=120)
        tg.write_report(out, os.path.join(out, "report.html"), data=test)
        written += ["hierarchy.png", "report.html"]
    valid = result.valid_history
    if result.refit:
        print(f"\ntest AU(PRC)-bar: {result.test_auprc:.3f}   (C-HMCNN, published: "
              f"{CHMCNN_CELLCYCLE_FUN:.3f}, the same protocol)")
    else:
        print(f"\ntest AU(PRC)-bar: {result.test_auprc:.3f}   (trained on train only; "
              f"C-HMCNN's published {CHMCNN_CELLCYCLE_FUN:.3f} is for a model refit on "
              "train + valid: taskgraph demo --refit)")
    print(f"valid phase (train only): AU(PRC)-bar {result.valid_auprc:.3f}, best at epoch "
          f"{result.epochs} of {len(valid)}{' (stopped early)' if valid.stopped_early else ''}")
    print(f"saved model: {_trained(result)}; coherence violations on test: "
          f"{result.violations}; training time {result.seconds:.0f} s")
    print(f"test report: {report.summary()}")
    print(f"\nwrote {out}/: {', '.join(written)}")
    return 0


def _trained(result: Any) -> str:
    epochs = f"{result.epochs} epoch{'s' if result.epochs != 1 else ''}"
    if result.refit:
        return f"trained on train + valid for {epochs}"
    return f"trained on train for {epochs} (the best epoch on valid)"
