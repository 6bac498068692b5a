"""Benchmark: torch thread counts for taskgraph training, on a quiet and a loaded machine.

Why: on a 2-core machine ``taskgraph train`` with torch's default thread count (one per
core) took 55-71 s where one thread took 8 s while another process was busy. OpenMP
threads spin-wait for each other between operations; when another process holds a
core, every one of a small model's thousands of small operations waits for a thread
that is not running. This script measures that, so the CLI's ``--threads auto``
(:func:`taskgraph.cli.options.choose_threads`) can be checked against it.

Cases, each timed in a fresh process (median of ``--repeats``):

- ``small``: ``tg.fit`` of the ``animals`` hierarchy (4 tasks, MLP [256, 256],
  task_dim 64) for 5 epochs on 2,000 random rows at batch 64;
- ``dag-N``: 4 train steps (after one warm-up) of a generated N-task DAG at B=32,
  task_dim 16, as in ``benchmarks/scale.py``.

Thread settings: ``1``, ``2``, ``default`` (torch's own choice: one per core) and
``auto`` (what ``taskgraph train --threads auto`` picks, decided inside the timed
process so it sees the load). Conditions: ``quiet`` and ``loaded`` (one other process
spins on one core for the whole measurement).

Run:
    python benchmarks/threads.py --cases small,dag-10000,dag-100000 --repeats 3 \\
        --out benchmarks/results/threads.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

SETTINGS = ("1", "2", "default", "auto")


def _small() -> tuple[object, float]:
    import torch

    import taskgraph as tg
    from taskgraph.train import TaskDataset, make_loader

    h = tg.load_hierarchy(ROOT / "hierarchies" / "animals.yaml")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 16, generator=gen)
    y = torch.stack([(x[:, 0] > 0).float(), torch.randint(0, 3, (2000,), generator=gen).float(),
                     torch.randint(0, 4, (2000,), generator=gen).float(), x[:, 1]], 1)
    model = tg.compile(h, in_features=16)
    loader = make_loader(TaskDataset(x, y, h), batch_size=64, seed=0)
    work = 64 * len(h) * model.config.task_dim

    def run() -> None:
        tg.fit(model, loader, epochs=5, progress=False, seed=0, val_metrics=False)

    return run, work


def _dag(n: int) -> tuple[object, float]:
    import torch

    import taskgraph as tg
    from _common import hierarchy_dict, random_dag_tasks

    h = tg.load_hierarchy(hierarchy_dict(random_dag_tasks(n, seed=0)))
    torch.manual_seed(0)
    model = tg.compile(h, in_features=64, task_dim=16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(32, 64)
    y = torch.randint(0, 2, (32, n)).float()

    def step() -> None:
        out = model(x)
        loss = model.loss(out, y, dataset_size=1000).total
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up

    def run() -> None:
        for _ in range(4):
            step()

    return run, 32 * n * 16


def worker(case: str, setting: str) -> dict:
    import torch

    from taskgraph.cli.options import choose_threads

    run, work = _small() if case == "small" else _dag(int(case.split("-")[1]))
    if setting == "auto":
        torch.set_num_threads(choose_threads(int(work)))
    elif setting != "default":
        torch.set_num_threads(int(setting))
    threads = torch.get_num_threads()
    tic = time.perf_counter()
    run()
    return {"seconds": time.perf_counter() - tic, "threads": threads}


def measure(case: str, setting: str) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, __file__, "--worker", case, setting], env=env,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def spinner(seconds: float) -> subprocess.Popen:
    """Another process keeping one core busy (bounded: it stops by itself)."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="small,dag-10000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", nargs=2, metavar=("CASE", "SETTING"))
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return 0
    from _common import emit, machine_info

    lines = ["# Thread counts: quiet vs loaded machine", "",
             "`python benchmarks/threads.py " + " ".join(sys.argv[1:]) + "`", "",
             *[f"- {line}" for line in machine_info(0)],
             f"- median of {args.repeats} fresh processes per cell; 'loaded': one other "
             "process spins on one core throughout", "",
             "| case | condition | " + " | ".join(f"threads {s}" for s in SETTINGS)
             + " | auto chose |", "|---|---|" + "---:|" * (len(SETTINGS) + 1)]
    for case in args.cases.split(","):
        for condition in ("quiet", "loaded"):
            spin = spinner(36000) if condition == "loaded" else None
            try:
                if spin is not None:
                    time.sleep(1.0)
                cells, chose = [], "?"
                for setting in SETTINGS:
                    runs = [measure(case, setting) for _ in range(args.repeats)]
                    cells.append(f"{statistics.median(r['seconds'] for r in runs):.2f} s")
                    if setting == "auto":
                        chose = ", ".join(sorted({str(r["threads"]) for r in runs}))
            finally:
                if spin is not None:
                    spin.kill()
                    spin.wait()
            lines.append(f"| {case} | {condition} | " + " | ".join(cells) + f" | {chose} |")
            emit(lines, args.out)  # the table so far, so an interrupted run keeps it
    return 0


if __name__ == "__main__":
    sys.exit(main())
