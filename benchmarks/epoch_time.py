"""Benchmark: seconds per training epoch of the HMC recipe's default model.

For each data set: the model of ``taskgraph.recipes.hmc.HMC_CONFIG`` is trained with
``taskgraph.fit`` on the train split exactly as the recipe's valid phase does (batch 32,
Adam, the moving average of the weights, the synapses' KL), one warm-up epoch and then
``--epochs`` timed ones, with freed memory kept for reuse as ``taskgraph train`` does.
It prints the mean seconds per timed epoch and the last epoch's loss, which must be the
same for two checkouts that compute the same thing: to compare two versions, run it
with each on ``PYTHONPATH``, alternating, on the same machine.

Run:
    python benchmarks/epoch_time.py --datasets cellcycle_FUN,cellcycle_GO --epochs 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "hmc")


def epoch_time(name: str, root: str, epochs: int, seed: int) -> tuple[float, float]:
    """(mean seconds per timed epoch, last epoch's loss) of the default model on ``name``."""
    import taskgraph as tg
    from taskgraph.datasets.hmc import load_hmc
    from taskgraph.recipes.hmc import HMC_CONFIG
    from taskgraph.train import TaskDataset, make_loader

    data = load_hmc(name, root).preprocessed()
    cfg, train = HMC_CONFIG["model"], HMC_CONFIG["train"]
    torch.manual_seed(seed)
    model = tg.compile(data.hierarchy, in_features=data.train.X.shape[1], **cfg)
    loader = make_loader(TaskDataset(data.train.X, data.train.Y, data.hierarchy),
                         batch_size=train["batch_size"], seed=seed)

    def run(n: int):
        return tg.fit(model, loader, epochs=n, lr=train["lr"],
                      weight_decay=train["weight_decay"], kl_weight=train["kl_weight"],
                      weight_average=train["ema"], val_metrics=False, progress=False,
                      seed=seed)

    run(1)  # warm-up: allocations, first-call overheads
    tic = time.perf_counter()
    history = run(epochs)
    return (time.perf_counter() - tic) / epochs, history.records[-1]["loss"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="seconds per epoch of the HMC default model")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--datasets", default="cellcycle_FUN")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    from taskgraph.memory import reuse_freed_memory

    torch.set_num_threads(args.threads)
    reuse_freed_memory()
    import taskgraph

    for name in (n.strip() for n in args.datasets.split(",") if n.strip()):
        seconds, loss = epoch_time(name, args.root, args.epochs, args.seed)
        print(f"{name}: {seconds:.2f} s/epoch over {args.epochs} epochs, last loss {loss:.6f} "
              f"({os.path.dirname(taskgraph.__file__)}, {args.threads} thread(s))", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
