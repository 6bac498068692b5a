"""Benchmark: training time per epoch, taskgraph's HMC recipe vs a C-HMCNN-style baseline.

C-HMCNN (Giunchiglia & Lukasiewicz, NeurIPS 2020) trains an MLP with batch size 4 and a
dense coherence layer: for every batch it forms the (B, T, T) product of the ancestor
matrix R with the sigmoid outputs, in float64, twice (the output and the MC-loss input).
Its code is not part of this project, so the baseline here is a re-implementation of
that training step from the paper's description: MLP ``in -> hidden x (layers - 1) ->
T`` with ReLU and dropout 0.7, sigmoid, the dense max-constraint and MC loss, BCE on
the non-root labels, Adam (lr 1e-4, weight decay 1e-5), batch size 4.

Both are timed in the same process on the same data (train + valid, the final-fit
set): taskgraph runs one full epoch of ``taskgraph.recipes.hmc.HMC_CONFIG``; the
baseline runs ``--batches`` batches and its epoch time is extrapolated (time per batch x
batches per epoch). Whole-run time is epochs x epoch time: C-HMCNN's published runs use 13 to 177
epochs per data set; taskgraph's recipe stops early on valid (``epochs (valid)`` in
benchmarks/results/hmc_*.md).

Run:
    python benchmarks/chmcnn_speed.py --datasets cellcycle_FUN,cellcycle_GO --seed 0
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import emit, machine_info  # noqa: E402

DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "hmc")


class DenseConstrained(nn.Module):
    """The C-HMCNN-style baseline: MLP + dense (B, T, T) max-constraint."""

    def __init__(self, in_features: int, hidden: int, layers: int, R: torch.Tensor) -> None:
        super().__init__()
        sizes = [in_features] + [hidden] * (layers - 1) + [R.size(0)]
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.drop = nn.Dropout(0.7)
        self.register_buffer("R", R.double())  # (T, T): R[i, j] = 1 if j is i or below i

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.fc):
            x = layer(x)
            if i < len(self.fc) - 1:
                x = self.drop(torch.relu(x))
        return torch.sigmoid(x)  # (B, T)

    def constrain(self, p: torch.Tensor) -> torch.Tensor:
        B, T = p.shape
        dense = self.R.unsqueeze(0) * p.double().unsqueeze(1)  # (B, T, T)
        return dense.max(dim=2).values  # (B, T)


def ancestor_matrix(hierarchy) -> torch.Tensor:
    import networkx as nx

    names = list(hierarchy.task_names)
    index = {n: i for i, n in enumerate(names)}
    R = torch.zeros(len(names), len(names))
    for n in names:
        R[index[n], index[n]] = 1
        for d in nx.descendants(hierarchy.graph, n):
            R[index[n], index[d]] = 1
    return R


def baseline_epoch_seconds(X: np.ndarray, Y: np.ndarray, evals: np.ndarray, R: torch.Tensor,
                           *, hidden: int, layers: int, batches: int, seed: int) -> float:
    torch.manual_seed(seed)
    model = DenseConstrained(X.shape[1], hidden, layers, R)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    criterion = nn.BCELoss()
    Xt, Yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float64)
    cols = torch.as_tensor(evals)
    order = torch.randperm(len(Xt), generator=torch.Generator().manual_seed(seed))
    per_epoch = math.ceil(len(Xt) / 4)
    batches = min(batches, per_epoch)
    model.train()
    tic = time.perf_counter()
    for b in range(batches):
        idx = order[b * 4:(b + 1) * 4]
        x, y = Xt[idx], Yt[idx]
        optimizer.zero_grad()
        p = model(x)
        full = model.constrain(p)
        positive = model.constrain(y * p.double())
        out = (1 - y) * full + y * positive
        loss = criterion(out[:, cols], y[:, cols])
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - tic) / batches * per_epoch


def taskgraph_epoch_seconds(data, X: np.ndarray, Y: np.ndarray, seed: int) -> float:
    import taskgraph as tg
    from taskgraph.recipes.hmc import HMC_CONFIG
    from taskgraph.train import TaskDataset, make_loader
    from taskgraph.train.fit import make_optimizer

    cfg = HMC_CONFIG["train"]
    torch.manual_seed(seed)
    model = tg.compile(data.hierarchy, in_features=X.shape[1], **HMC_CONFIG["model"])
    optimizer = make_optimizer(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    loader = make_loader(TaskDataset(X, Y, data.hierarchy), batch_size=cfg["batch_size"],
                         seed=seed)
    tic = time.perf_counter()
    tg.fit(model, loader, epochs=1, optimizer=optimizer, progress=False,
           kl_weight=cfg["kl_weight"], val_metrics=False, seed=seed)
    return time.perf_counter() - tic


def main() -> int:
    from taskgraph.datasets.hmc import load_hmc

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--datasets", default="cellcycle_FUN,cellcycle_GO")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", type=int, default=300,
                        help="baseline batches timed per data set")
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    lines = ["# Epoch time: taskgraph vs a C-HMCNN-style baseline", "",
             f"`python benchmarks/chmcnn_speed.py --datasets {args.datasets} --seed {args.seed}"
             f" --batches {args.batches}`", "", *machine_info(args.seed), "",
             f"Baseline: MLP {args.layers - 1} x {args.hidden} hidden, batch 4, dense "
             "float64 (B, T, T) constraint twice per step; its epoch time is extrapolated "
             f"from {args.batches} batches.", "",
             "| data set | labels | train+valid rows | C-HMCNN-style s/epoch | taskgraph s/epoch "
             "| ratio | C-HMCNN-style, 13 / 177 epochs |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in (n.strip() for n in args.datasets.split(",") if n.strip()):
        data = load_hmc(name, args.root).preprocessed()
        X = np.concatenate([data.train.X, data.valid.X]).astype(np.float32)
        Y = np.concatenate([data.train.Y, data.valid.Y]).astype(np.float32)
        R = ancestor_matrix(data.hierarchy)
        base = baseline_epoch_seconds(X, Y, data.eval_columns, R, hidden=args.hidden,
                                      layers=args.layers, batches=args.batches, seed=args.seed)
        ours = taskgraph_epoch_seconds(data, X, Y, args.seed)
        lines.append(f"| {name} | {Y.shape[1]:,} | {len(X):,} | {base:.1f} | {ours:.1f} | "
                     f"{base / ours:.1f}x | {13 * base / 60:.0f} / {177 * base / 60:.0f} min |")
        print(lines[-1], file=sys.stderr, flush=True)
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
