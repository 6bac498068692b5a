"""Benchmark: taskgraph end to end on hierarchies of 1,000 to 100,000 tasks.

For generated DAGs (binary tasks, 1-3 parents, like a Gene Ontology slice) of growing
size and for two real hierarchies, ICD-10-CM (98,505 codes; needs the optional package
simple-icd-10-cm) and WordNet nouns (82,115 synsets; needs Debian's wordnet-base), it
measures, each case in a fresh process:

- load + validate: ``load_hierarchy`` of the YAML file;
- compile: ``tg.compile(h, in_features=64, task_dim=16)`` (MLP encoder 64->[256, 256],
  2 rounds of message passing down and up, gaussian synapses, coherence layer,
  ``projection_rank: auto``);
- one train step at B=32 (forward, loss with KL, backward, fused Adam): median of 3;
- ``predict(x, samples=8)`` at B=32 in eval mode: median of 3;
- ``tg.save`` + ``tg.load`` of the model;
- peak memory: the process's peak resident set size (``ru_maxrss``), which includes
  the Python interpreter and the imported libraries (about 0.4 GB on their own);

every case first calls ``tg.reuse_freed_memory()``, as ``taskgraph train`` does
(``--glibc-defaults``: without it);

and for the real ones, ``taskgraph info`` and ``taskgraph draw --root R --depth 2`` as
subprocesses (wall time, including interpreter start-up and imports). The growth from
1,000 to 100,000 tasks is summarized by the exponent k of time ~ tasks^k (k = 1 is
linear), computed from the 1k and 100k measurements of the same run.

Run:
    python benchmarks/scale.py --sizes 1000,10000,100000 --seed 0 --out benchmarks/results/scale.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import emit, machine_info  # noqa: E402
from load_hierarchy import generate_dag_yaml  # noqa: E402

COLUMNS = ("load_s", "compile_s", "step_s", "predict_s", "save_load_s", "peak_gib")
HEADER = ("load + validate", "compile", "train step B=32", "predict(samples=8) B=32",
          "save + load", "peak memory")


def median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return median(times)


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30


def worker(path: str, seed: int, repeat: int, glibc_defaults: bool = False) -> dict:
    """Measure one hierarchy file; runs in its own process."""
    import taskgraph as tg
    import taskgraph.nn  # noqa: F401  (torch_geometric: a one-time import, not timed)
    from taskgraph.train.fit import make_optimizer

    if not glibc_defaults:
        tg.reuse_freed_memory()  # as `taskgraph train` does

    torch.manual_seed(seed)
    start = time.perf_counter()
    h = tg.load_hierarchy(path)
    load_s = time.perf_counter() - start
    peaks = {"load": peak_gib()}

    start = time.perf_counter()
    model = tg.compile(h, in_features=64, task_dim=16)
    compile_s = time.perf_counter() - start

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 64, generator=g)  # (B, in_features)
    y = (torch.rand(32, len(h), generator=g) < 0.05).float()  # (B, T)
    optimizer = make_optimizer(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(model(x), y, dataset_size=10_000).total.backward()
        optimizer.step()

    step()  # warm-up: allocations, Adam state
    step_s = timed(step, repeat)
    peaks["train"] = peak_gib()

    model.eval()
    model.predict(x, samples=8)
    predict_s = timed(lambda: model.predict(x, samples=8), repeat)
    peaks["predict"] = peak_gib()

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = os.path.join(tmp, "model.pt")
        start = time.perf_counter()
        tg.save(model, ckpt)
        tg.load(ckpt)
        save_load_s = time.perf_counter() - start

    params = sum(p.numel() for p in model.parameters())
    peaks["save_load"] = peak_gib()
    return {"tasks": len(h), "edges": h.graph.number_of_edges(), "params": params,
            "rank": model.reduce.out_features if model.reduce is not None else None,
            "load_s": load_s, "compile_s": compile_s, "step_s": step_s,
            "predict_s": predict_s, "save_load_s": save_load_s, "peak_gib": peaks["save_load"],
            "peaks": peaks}


def run_case(path: str, seed: int, repeat: int, glibc_defaults: bool = False) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", path, "--seed", str(seed),
                          "--repeat", str(repeat)]
                         + (["--glibc-defaults"] if glibc_defaults else []),
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from taskgraph.cli.main import console; console()",
                    *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def real_hierarchies(tmp: str) -> dict[str, tuple[str, str]]:
    """name -> (YAML path, subtree root to draw) for the real hierarchies available here."""
    from taskgraph import importers

    found: dict[str, tuple[str, str]] = {}
    for name, load, file, root in (
            ("ICD-10-CM", importers.import_icd10cm, "icd10cm.yaml", "chapter 19"),
            ("WordNet nouns", importers.import_wordnet, "wordnet.yaml", "animal.00015388")):
        try:
            h = load()
        except FileNotFoundError as err:
            print(f"skipping {name}: {err}", file=sys.stderr)
            continue
        path = os.path.join(tmp, file)
        h.to_yaml(path)
        found[name] = (path, root)
    return found


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-real", dest="real", action="store_false",
                        help="only the generated DAGs")
    parser.add_argument("--out", default=None, help="also write the markdown here")
    parser.add_argument("--glibc-defaults", action="store_true",
                        help="leave glibc's malloc thresholds alone (by default every case "
                             "calls tg.reuse_freed_memory() first, as `taskgraph train` does)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.seed, args.repeat, args.glibc_defaults)))
        return 0

    flags = " --glibc-defaults" if args.glibc_defaults else ""
    lines = ["# Scale benchmark", "",
             f"`python benchmarks/scale.py --sizes {args.sizes} --seed {args.seed}{flags}`", "",
             *machine_info(args.seed),
             "malloc: " + ("glibc defaults" if args.glibc_defaults else
                           "freed memory kept for reuse (tg.reuse_freed_memory(), as "
                           "taskgraph train does)"), ""]
    rows: list[tuple[str, dict]] = []
    extra: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        sizes = [int(s) for s in args.sizes.split(",")]
        for n in sizes:
            path = os.path.join(tmp, f"dag{n}.yaml")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(generate_dag_yaml(n, seed=args.seed))
            rows.append((f"generated DAG {n:,}",
                         run_case(path, args.seed, args.repeat, args.glibc_defaults)))
            print(rows[-1], file=sys.stderr, flush=True)
        if args.real:
            for name, (path, root) in real_hierarchies(tmp).items():
                rows.append((name, run_case(path, args.seed, args.repeat, args.glibc_defaults)))
                info = cli_seconds(["info", path])
                draw = cli_seconds(["draw", path, "--root", root, "--depth", "2",
                                    "-o", os.path.join(tmp, "sub.png")])
                extra.append(f"| {name} | {fmt_s(info)} | `--root '{root}' --depth 2`: "
                             f"{fmt_s(draw)} |")
                print(rows[-1], extra[-1], file=sys.stderr, flush=True)

    lines += ["| hierarchy | tasks | edges | parameters | " + " | ".join(HEADER) + " |",
              "|---|---:|---:|---:|" + "---:|" * len(HEADER)]
    for name, r in rows:
        cells = [fmt_s(r[c]) for c in COLUMNS[:-1]] + [f"{r['peak_gib']:.2f} GiB"]
        rank = f" (rank {r['rank']})" if r["rank"] else ""
        lines.append(f"| {name} | {r['tasks']:,} | {r['edges']:,} | "
                     f"{r['params'] / 1e6:.1f} M{rank} | " + " | ".join(cells) + " |")
    generated = [r for name, r in rows if name.startswith("generated")]
    pairs = list(zip(generated, generated[1:]))
    if len(generated) > 2:
        pairs.append((generated[0], generated[-1]))
    for lo, hi in pairs:
        ratio = math.log(hi["tasks"] / lo["tasks"])
        exps = [f"{math.log(hi[c] / lo[c]) / ratio:.2f}" for c in COLUMNS]
        lines.append(f"| exponent k, {lo['tasks']:,} → {hi['tasks']:,} tasks | | | | "
                     + " | ".join(exps) + " |")
    if extra:
        lines += ["", "| hierarchy | `taskgraph info` | `taskgraph draw` of a subtree |",
                  "|---|---:|---:|", *extra]
    lines += ["", "Peak memory is the whole process (interpreter, torch, the hierarchy, the "
              "model, Adam state, activations). The exponent k fits time ~ tasks^k between "
              "two generated DAGs (k = 1: linear). Fixed costs (the interpreter, small "
              "kernels) dominate at 1,000 tasks; between 10,000 and 100,000 tasks the "
              "automatic projection rank drops (104 -> 16). Message passing works through "
              "the batch a few examples at a time and keeps two (B, T, F) tensors per "
              "round; rounds are recomputed in the backward pass only above 2**27 "
              "embedding elements (not reached here)."]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
