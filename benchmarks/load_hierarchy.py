"""Benchmark: load and validate generated task DAGs of growing size.

Generates a random layered DAG YAML (binary tasks, 1-3 parents each, like a Gene
Ontology slice), then times ``load_hierarchy`` (read + validate + networkx graph),
against a baseline in the same run: ``yaml.load`` with the C loader, which reads the
same file without marks, duplicate-key checks or validation.

Run:
    python benchmarks/load_hierarchy.py --sizes 1000,10000,100000 --seed 0
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time

import yaml

import taskgraph as tg


def generate_dag_yaml(num_tasks: int, *, seed: int = 0, max_parents: int = 3) -> str:
    """YAML text of a random DAG: task i's parents are drawn from tasks before it."""
    rng = random.Random(seed)
    lines = ["taskgraph: 1", f"name: dag{num_tasks}", "model: {coherent: true}", "tasks:"]
    for i in range(num_tasks):
        if i < max(1, num_tasks // 1000):
            lines.append(f"  t{i}: {{type: binary}}")
            continue
        k = rng.randint(1, max_parents) if rng.random() < 0.2 else 1
        lo = max(0, i - 5000)
        parents = sorted({rng.randrange(lo, i) for _ in range(k)})
        lines.append(f"  t{i}: {{type: binary, parents: [{', '.join(f't{p}' for p in parents)}]}}")
    return "\n".join(lines) + "\n"


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, Python "
          f"{platform.python_version()}, libyaml: {yaml.__with_libyaml__}, seed {args.seed}")
    print("| tasks | edges | file MB | yaml.CSafeLoader s | load_hierarchy s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            path = os.path.join(tmp, f"dag{n}.yaml")
            with open(path, "w") as fh:
                fh.write(generate_dag_yaml(n, seed=args.seed))

            def baseline() -> None:
                with open(path, "rb") as fh:
                    yaml.load(fh, Loader=yaml.CSafeLoader)

            base = best_of(baseline, args.repeat)
            ours = best_of(lambda: tg.load_hierarchy(path), args.repeat)
            h = tg.load_hierarchy(path)
            mb = os.path.getsize(path) / 1e6
            print(f"| {n:,} | {h.graph.number_of_edges():,} | {mb:.1f} | {base:.2f} | "
                  f"{ours:.2f} | {ours / base:.1f}x |")


if __name__ == "__main__":
    main()
