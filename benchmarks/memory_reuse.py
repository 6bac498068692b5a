"""Benchmark: train steps with and without :func:`taskgraph.reuse_freed_memory`.

A Gene-Ontology-sized model (a generated DAG of 4,130 binary tasks, MLP encoder
529 -> [512, 512], task_dim 8, full projections of 4,130 x 512 x 8 = 17 M weights, one
round of message passing down + up, coherence) takes train steps at B=32 with Adam. Its
projection weight, its gradient and Adam's two buffers are 68 MB each, above glibc's
largest mmap threshold (32 MiB), so without reuse every step maps, page-faults and
unmaps them afresh.

Once set, glibc's thresholds stay for the life of the process, so each case runs in a
fresh child process; the two cases alternate (off, on, off, on, ...) so that a slow phase
of the machine hits both alike. Reported: the median step time of each case and their
ratio. Run:

    python benchmarks/memory_reuse.py --repeats 3 --steps 20 --seed 0 [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TASKS, FEATURES, BATCH = 4130, 529, 32


def child(steps: int, seed: int, threads: int) -> None:
    """Runs in the child process: prints the median step time as JSON."""
    import torch

    import taskgraph as tg
    from _common import hierarchy_dict, random_dag_tasks

    applied = tg.reuse_freed_memory()  # off when TASKGRAPH_KEEP_FREED_MEMORY=0
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    h = tg.load_hierarchy(hierarchy_dict(random_dag_tasks(TASKS, seed=seed)))
    model = tg.compile(h, in_features=FEATURES, task_dim=8, rounds=1, projection_rank="full",
                       encoder_spec={"hidden": [512, 512], "dropout": 0.7})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, FEATURES, generator=g)
    y = (torch.rand(BATCH, TASKS, generator=g) < 0.05).float()
    times = []
    for i in range(steps + 2):  # two warm-up steps
        tic = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        model.loss(model(x), y, dataset_size=10_000).total.backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - tic)
    print(json.dumps({"applied": applied, "median": statistics.median(times)}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="child processes per case")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per child")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.steps, args.seed, args.threads)
        return 0
    from _common import machine_info

    for line in machine_info(args.seed):
        print(line)
    results: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.repeats):
        for case, flag in (("off", "0"), ("on", "1")):
            env = dict(os.environ, TASKGRAPH_KEEP_FREED_MEMORY=flag)
            out = subprocess.run([sys.executable, __file__, "--child", "--steps",
                                  str(args.steps), "--seed", str(args.seed), "--threads",
                                  str(args.threads)], env=env, capture_output=True, text=True,
                                 check=True)
            report = json.loads(out.stdout.strip().splitlines()[-1])
            if report["applied"] != (case == "on"):
                print(f"reuse_freed_memory applied={report['applied']} in case {case!r}: "
                      "not glibc?", file=sys.stderr)
                return 1
            results[case].append(report["median"])
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    print(f"\n{TASKS:,} tasks, B={BATCH}, {args.threads} thread(s), {args.steps} steps x "
          f"{args.repeats} processes per case")
    print("| case | median train step | per process |")
    print("|---|---:|---|")
    for case, label in (("off", "glibc defaults"), ("on", "reuse_freed_memory()")):
        med = statistics.median(results[case])
        print(f"| {label} | {med * 1e3:.0f} ms | "
              + ", ".join(f"{t * 1e3:.0f}" for t in results[case]) + " |")
    print(f"\nratio: {off / on:.2f}x faster with reuse_freed_memory()")
    return 0


if __name__ == "__main__":
    sys.exit(main())
