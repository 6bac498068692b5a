"""Benchmark: what one synapse sample shared by a whole batch would save in message passing.

In training every example draws its own synapse weights, (B, D*E). One sample for the
batch, (1, D*E), would turn the per-example block-diagonal products into products with
one (T*D, T) matrix, and is the option to weigh before offering it (it changes the
noise the model trains with, so it would need a quality measurement too). This benchmark
times the part it can change, two rounds of message passing (forward + backward) of a
compiled model's ``HierarchyGNN``, with per-example and with shared weights, interleaved
in one process, and reports the paired ratio; a ratio inside its quartiles' spread of 1
means sharing buys no speed, and then its quality cost is not worth measuring.

Run:

    python benchmarks/shared_sample.py                      # about a minute, one thread
    python benchmarks/shared_sample.py --tasks 4000 --batch 128 --out results.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import taskgraph as tg  # noqa: E402

from _common import (  # noqa: E402
    Table, compare, emit, fmt_time, hierarchy_dict, machine_info, random_dag_tasks,
)


def quartiles(ratios: list[float]) -> str:
    if len(ratios) < 2:
        return f"{ratios[0]:.3f}"
    q1, q2, q3 = statistics.quantiles(ratios, n=4)
    return f"{q2:.3f} ({q1:.3f}-{q3:.3f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--task-dim", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    tg.reuse_freed_memory()

    torch.manual_seed(args.seed)
    h = tg.load_hierarchy(hierarchy_dict(random_dag_tasks(args.tasks, seed=args.seed)))
    model = tg.compile(h, in_features=8, task_dim=args.task_dim, rounds=args.rounds).train()
    gnn, edge_index = model.gnn, model.edge_index
    B, T, C = args.batch, args.tasks, args.task_dim
    DE = model.edge_synapses.num_edges
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(B, T, C, generator=g, requires_grad=True)  # (B, T, F)
    grad = torch.randn(B, T, C, generator=g)
    weights = {"per example": torch.rand(B, DE, generator=g, requires_grad=True),  # (B, D*E)
               "shared": torch.rand(1, DE, generator=g, requires_grad=True)}  # (1, D*E)

    def train_fn(w):
        def run() -> None:
            gnn(x, edge_index, w).backward(grad)
        return run

    def eval_fn(w):
        def run() -> None:
            with torch.no_grad():
                gnn(x, edge_index, w.detach())
        return run

    table = Table(["pass", "per-example weights (B, D*E)", "one shared sample (1, D*E)",
                   "per-example / shared, median of pairs (quartiles)"],
                  ["---", "---:", "---:", "---:"])
    for name, make in (("forward + backward", train_fn), ("forward, no grad", eval_fn)):
        t = compare({k: make(w) for k, w in weights.items()}, warmup=2, repeat=args.repeat)
        ratios = [a / b for a, b in zip(t["per example"].times, t["shared"].times)]
        table.add(name, fmt_time(t["per example"].median), fmt_time(t["shared"].median),
                  quartiles(ratios))

    lines = ["# One synapse sample per batch: what it saves in message passing", "",
             f"`python benchmarks/shared_sample.py --tasks {T} --batch {B} --task-dim {C} "
             f"--rounds {args.rounds} --repeat {args.repeat} --threads {args.threads}`", ""]
    lines += [f"- {line}" for line in machine_info(args.seed)]
    lines += ["", f"{T:,} tasks, {h.graph.number_of_edges():,} edges, {DE:,} synapse weights "
              f"(down + up), B={B}, task_dim {C}, {args.rounds} rounds; times are medians of "
              f"{args.repeat} interleaved repeats.", "", table.markdown(), ""]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
