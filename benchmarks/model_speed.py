"""Benchmark: speed of a compiled taskgraph model, as ratios against baselines in the same run.

Measures, in one run:

1. a train step (forward + backward + Adam) of a 1,000-task model at B=256 against the
   same maths written with an ``nn.ModuleList`` of per-task Linear layers and Python
   loops over tasks and edges (``NaiveTaskGraph`` in ``_baselines.py``);
2. the FLOP rate of that step against ``torch.matmul``: FLOPs from ``FlopCounterMode``
   with sparse-aware formulas (``_common.count_flops``): a block-sparse product counts
   2 x nonzeros x width, each time it is computed (forward, the forward recomputed in
   the backward, the transposed product, the sampled product of the weight gradient);
3. the cost of message passing: the step with ``rounds=2`` against ``rounds=0``;
4. ``predict(samples=32)`` against 32 sampled forward calls, with a CNN and an MLP
   encoder;
5. the coherence layer against a dense T x T max (C-HMCNN style) at T=4,130.

Times are medians over interleaved repeats after a warm-up, and every figure that is
judged against a target is a ratio of two candidates timed back to back in one process
(each section runs in a fresh process). Run:

    python benchmarks/model_speed.py                 # 2-3 minutes on a quiet 2-core machine,
                                                     # 4-5 with two other busy processes
    python benchmarks/model_speed.py --quick         # about 1 minute (2 when busy)
    python benchmarks/model_speed.py --threads 1 --out results.md --seed 0

Other processes on the machine slow multi-threaded runs of many small operations far
more than runs of a few large ones, so the ratios move with the load; the load average
is printed, and ``--threads 1`` gives steadier figures on a busy machine. Like
``taskgraph train``, the benchmark first calls ``tg.reuse_freed_memory()`` (freed
blocks stay in the heap instead of being page-faulted in again on every step);
``--glibc-defaults`` measures without it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import torch
from torch import Tensor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import taskgraph as tg  # noqa: E402
from taskgraph.nn.coherence import Coherence  # noqa: E402

from _baselines import NaiveTaskGraph, SmallCNN, dense_max, descendant_matrix  # noqa: E402
from _common import (  # noqa: E402
    Table, compare, count_flops, fmt_bytes, fmt_time, hierarchy_dict, layered_dag,
    machine_info, paired_ratio, peak_tensor_bytes, random_dag_tasks,
)


# -- settings ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    tasks: int = 1000
    batch: int = 256
    in_features: int = 64
    hidden: int = 256
    task_dim: int = 32
    rounds: int = 2
    step_warmup: int = 2
    step_repeat: int = 7
    predict_tasks: int = 100
    predict_batch: int = 64
    samples: int = 32
    predict_chunk: int = 4
    predict_warmup: int = 1
    predict_repeat: int = 7
    coh_tasks: int = 4130
    coh_edges: int = 5000
    coh_layers: int = 13  # 13 layers of nodes -> longest path of 12 edges
    coh_batch: int = 256
    dense_batch: int = 8
    coh_repeat: int = 7


QUICK = Settings(step_warmup=1, step_repeat=3, predict_repeat=3, coh_repeat=3)


# -- helpers -----------------------------------------------------------------------------
def build_model(hierarchy, s: Settings, *, rounds: int, seed: int):
    torch.manual_seed(seed)
    return tg.compile(hierarchy, in_features=s.in_features, task_dim=s.task_dim, rounds=rounds,
                      encoder_spec={"hidden": [s.hidden], "dropout": 0.0})


def train_step_fn(model, optimizer, x: Tensor, y: Tensor, dataset_size: int):
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(model(x), y, dataset_size=dataset_size).total.backward()
        optimizer.step()
    return step


def naive_step_fn(model: NaiveTaskGraph, optimizer, x: Tensor, y: Tensor, dataset_size: int):
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.loss(model(x), y, dataset_size=dataset_size).backward()
        optimizer.step()
    return step


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


# -- the benchmark sections --------------------------------------------------------------
def bench_train(s: Settings, seed: int, table: Table, notes: list[str]) -> None:
    h = tg.load_hierarchy(hierarchy_dict(random_dag_tasks(s.tasks, seed=seed)))
    E = h.graph.number_of_edges()
    model = build_model(h, s, rounds=s.rounds, seed=seed)
    flat = build_model(h, s, rounds=0, seed=seed)
    edges = [tuple(e) for e in model.layout.edge_index.t().tolist()]
    naive = NaiveTaskGraph(s.tasks, edges, in_features=s.in_features, hidden=s.hidden,
                           task_dim=s.task_dim, rounds=s.rounds).load_from(model)
    notes.append(f"Train-step models: {s.tasks:,} binary tasks, {E:,} edges "
                 f"({E / (s.tasks - max(1, s.tasks // 200)):.2f} parents per non-root task), "
                 f"MLP encoder {s.in_features}->[{s.hidden}], task_dim {s.task_dim}, "
                 f"rounds {s.rounds}, directions down+up, gaussian synapses, B={s.batch}; "
                 f"Adam(lr=1e-3, foreach=True) for every model.")

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(s.batch, s.in_features, generator=g)
    y = (torch.rand(s.batch, s.tasks, generator=g) < 0.3).float()
    N = 10_000

    # the naive model computes the same function: same weights, same synapse noise
    with torch.no_grad():
        model.eval(), naive.eval()
        diff_eval = (model(x).blocks[0] - naive(x)).abs().max().item()
        model.train(), naive.train()
        torch.manual_seed(seed + 1)
        out_tg = model(x).blocks[0]
        torch.manual_seed(seed + 1)
        out_nv = naive(x)
        diff_train = (out_tg - out_nv).abs().max().item()
        loss_tg = model.loss(model(x, sample=False), y, dataset_size=N).total.item()
        loss_nv = naive.loss(naive(x, sample=False), y, dataset_size=N).item()
    notes.append(f"Naive reference check (same weights): max |logit difference| "
                 f"{diff_eval:.1e} in eval mode, {diff_train:.1e} in train mode with the same "
                 f"synapse noise; loss {loss_tg:.6f} vs {loss_nv:.6f}.")

    opt = lambda m: torch.optim.Adam(m.parameters(), lr=1e-3, foreach=True)  # noqa: E731
    step_tg = train_step_fn(model, opt(model), x, y, N)
    step_flat = train_step_fn(flat, opt(flat), x, y, N)
    step_nv = naive_step_fn(naive, opt(naive), x, y, N)

    # FLOPs of one taskgraph step (forward + backward; Adam does no matmul)
    flops, per_op = count_flops(step_tg)
    # reference matmuls: a square one of the same FLOPs, and the (B*T, F) x (F, F) shape
    n = max(64, round((flops / 2) ** (1 / 3)))
    a, b = torch.randn(n, n), torch.randn(n, n)
    rows, width = s.batch * s.tasks, s.task_dim
    skinny_a, skinny_b = torch.randn(rows, width), torch.randn(width, width)
    skinny_reps = max(1, round(flops / (2 * rows * width * width)))

    def mm_square() -> None:
        torch.matmul(a, b)

    def mm_skinny() -> None:
        for _ in range(skinny_reps):
            torch.matmul(skinny_a, skinny_b)

    t = compare({"taskgraph": step_tg, "naive": step_nv, "rounds0": step_flat,
                 "mm_square": mm_square, "mm_skinny": mm_skinny},
                warmup=s.step_warmup, repeat=s.step_repeat)
    t_tg, t_nv, t_flat = t["taskgraph"].median, t["naive"].median, t["rounds0"].median
    speedup = paired_ratio(t["naive"], t["taskgraph"])
    table.add("1. train step, 1,000 tasks, B=256: naive ModuleList + loops vs taskgraph",
              f"{fmt_time(t_nv)} vs {fmt_time(t_tg)}", f"{speedup:.2f}x faster", ">= 3x",
              verdict(speedup >= 3))

    rate = flops / t_tg
    flops_sq, flops_sk = 2 * n ** 3, skinny_reps * 2 * rows * width * width
    rate_sq, rate_sk = flops_sq / t["mm_square"].median, flops_sk / t["mm_skinny"].median
    # achieved fraction: (flops / t_step) / (flops_ref / t_ref), from paired repeats
    frac_sq = flops / flops_sq * paired_ratio(t["mm_square"], t["taskgraph"])
    frac_sk = flops / flops_sk * paired_ratio(t["mm_skinny"], t["taskgraph"])
    table.add(f"2. FLOP rate of the train step ({flops / 1e9:.1f} GFLOP) vs torch.matmul "
              f"({rows:,} x {width}) @ ({width} x {width}), x{skinny_reps} (same FLOPs)",
              f"{rate_sk / 1e9:.1f} vs {rate / 1e9:.1f} GFLOP/s",
              f"{100 * frac_sk:.0f} %", ">= 60 %", verdict(frac_sk >= 0.6))
    table.add(f"2b. same, vs a square torch.matmul {n}x{n} @ {n}x{n} (same FLOPs; "
              f"near the machine's peak, stricter)",
              f"{rate_sq / 1e9:.1f} vs {rate / 1e9:.1f} GFLOP/s", f"{100 * frac_sq:.0f} %",
              ">= 60 %", verdict(frac_sq >= 0.6))
    top = sorted(per_op.items(), key=lambda kv: -kv[1])
    notes.append("FLOPs of the train step by op (matmul-like ops only; sparse products "
                 "counted as 2 x nonzeros x width each time they are computed): "
                 + ", ".join(f"{k} {v / 1e9:.2f} G" for k, v in top) + ".")

    extra = paired_ratio(t["taskgraph"], t["rounds0"]) - 1
    table.add("3. train step with message passing (rounds=2, down+up) vs rounds=0: extra time",
              f"{fmt_time(t_flat)} vs {fmt_time(t_tg)}", f"+{100 * extra:.0f} %", "<= +50 %",
              verdict(extra <= 0.5))
    noisy = [k for k, v in t.items() if v.spread > 0.5]
    notes.append("Train-step repeats (s): " + "; ".join(
        f"{k} " + ", ".join(f"{x:.3f}" for x in v.times) for k, v in t.items())
        + (f". Spread over 50 % of the median for {', '.join(noisy)}: the machine was busy."
           if noisy else "."))


def bench_predict(s: Settings, seed: int, table: Table, notes: list[str]) -> None:
    h = tg.load_hierarchy(hierarchy_dict(random_dag_tasks(s.predict_tasks, seed=seed)))
    E = h.graph.number_of_edges()
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(s.predict_batch, 1, 28, 28, generator=g)
    tabular = torch.randn(s.predict_batch, s.in_features, generator=g)
    K = s.samples

    torch.manual_seed(seed)
    cnn_model = tg.compile(h, encoder=SmallCNN(128), encoder_dim=128, task_dim=s.task_dim,
                           rounds=s.rounds).eval()
    torch.manual_seed(seed)
    mlp_model = tg.compile(h, in_features=s.in_features, task_dim=s.task_dim, rounds=s.rounds,
                           encoder_spec={"hidden": [s.hidden], "dropout": 0.0}).eval()

    def loop_fn(model, x):
        @torch.no_grad()
        def run() -> Tensor:
            total = None
            for _ in range(K):
                p = torch.sigmoid(model(x, sample=True).blocks[0])  # (B, T)
                total = p if total is None else total + p
            return total / K
        return run

    def predict_fn(model, x):
        return lambda: model.predict(x, samples=K)

    rows = []
    chunk = s.predict_chunk
    rows = []
    for label, model, x in (("CNN", cnn_model, images), ("MLP", mlp_model, tabular)):
        t = compare({"loop": loop_fn(model, x), "predict": predict_fn(model, x),
                     "chunked": lambda model=model, x=x: model.predict(x, samples=K,
                                                                       chunk_size=chunk)},
                    warmup=s.predict_warmup, repeat=s.predict_repeat)
        torch.manual_seed(seed)  # the same synapse noise for both: same stream of draws
        mean_loop = loop_fn(model, x)()
        torch.manual_seed(seed)
        mean_pred = model.predict(x, samples=K).blocks[0]["mean"]
        rows.append((label, t, (mean_loop - mean_pred).abs().max().item()))

    (_, t_cnn, d_cnn), (_, t_mlp, d_mlp) = rows
    r_cnn = paired_ratio(t_cnn["loop"], t_cnn["predict"])
    r_mlp = paired_ratio(t_mlp["loop"], t_mlp["predict"])
    table.add(f"4a. predict(samples={K}) vs {K} x model(x, sample=True), CNN encoder, "
              f"{s.predict_tasks} tasks, B={s.predict_batch}",
              f"{fmt_time(t_cnn['loop'].median)} vs {fmt_time(t_cnn['predict'].median)}",
              f"{r_cnn:.2f}x faster", ">= 5x", verdict(r_cnn >= 5))
    table.add(f"4b. same, MLP encoder {s.in_features}->[{s.hidden}]",
              f"{fmt_time(t_mlp['loop'].median)} vs {fmt_time(t_mlp['predict'].median)}",
              f"{r_mlp:.2f}x faster", ">= 1x", verdict(r_mlp >= 1))
    for tag, label, t in (("4c", "CNN", t_cnn), ("4d", "MLP", t_mlp)):
        r = paired_ratio(t["loop"], t["chunked"])
        table.add(f"{tag}. context: predict(samples={K}, chunk_size={chunk}) vs the same loop, "
                  f"{label} encoder",
                  f"{fmt_time(t['loop'].median)} vs {fmt_time(t['chunked'].median)}",
                  f"{r:.2f}x faster", "-", "-")
    rows_per_chunk = K * s.predict_batch
    notes.append(f"Predict models: {s.predict_tasks} binary tasks, {E} edges, task_dim "
                 f"{s.task_dim}, rounds {s.rounds}, eval mode, no grad; the loop baseline "
                 f"only averages sigmoid probabilities, predict() also computes std, entropy "
                 f"and mutual information. Same result: with the same seed both draw the same "
                 f"synapse noise, max |mean probability difference| CNN {d_cnn:.1e}, "
                 f"MLP {d_mlp:.1e}. By default predict() folds all {K} samples into one "
                 f"batch of {rows_per_chunk:,} rows here, so each embedding tensor "
                 f"(rows, tasks, task_dim) is "
                 f"{fmt_bytes(rows_per_chunk * s.predict_tasks * s.task_dim * 4)} (message "
                 f"passing works through it a few examples at a time); rows 4c-4d fold "
                 f"{chunk} samples at a time.")


def bench_coherence(s: Settings, seed: int, table: Table, notes: list[str]) -> None:
    T = s.coh_tasks
    layer, edges = layered_dag(T, num_layers=s.coh_layers, num_edges=s.coh_edges, seed=seed)
    edge_index = torch.tensor(edges, dtype=torch.long).t()  # (2, E)
    coherence = Coherence(edge_index, T)
    R_np = descendant_matrix(T, edges)
    R = torch.from_numpy(R_np).float()  # (T, T)

    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(s.coh_batch, T, generator=g) * 3
    small = logits[: s.dense_batch].clone()
    probs_small = torch.sigmoid(small)

    with torch.no_grad():
        # same result on the small batch (sigmoid is monotone: max of logits <-> of probs)
        ours = torch.sigmoid(coherence(small))
        dense = dense_max(probs_small, R)
        diff = (ours - dense).abs().max().item()
        violations = coherence.violations(coherence(logits))

        t = compare({"dense_small": lambda: dense_max(probs_small, R),
                     "ours_small": lambda: coherence(small),
                     "ours_full": lambda: coherence(logits)},
                    warmup=1, repeat=s.coh_repeat)
        peak_dense, _ = peak_tensor_bytes(lambda: dense_max(probs_small, R))
        peak_ours_small, _ = peak_tensor_bytes(lambda: coherence(small))
        peak_ours_full, _ = peak_tensor_bytes(lambda: coherence(logits))

    B, b = s.coh_batch, s.dense_batch
    t_dense_full = t["dense_small"].median * B / b  # per-example cost scaled to B
    ratio_full = paired_ratio(t["dense_small"], t["ours_full"]) * B / b
    ratio_small = paired_ratio(t["dense_small"], t["ours_small"])
    dense_bytes_full = B * T * T * 4
    state_ours = sum(buf.numel() * buf.element_size() for buf in coherence.buffers())
    table.add(f"5. coherence forward, T={T:,}, {len(edges):,} edges, {coherence.num_levels} "
              f"levels, B={B}: dense T x T max (scaled from B={b}) vs Coherence",
              f"{fmt_time(t_dense_full)} vs {fmt_time(t['ours_full'].median)}",
              f"{ratio_full:.0f}x faster", ">= 50x", verdict(ratio_full >= 50))
    table.add(f"5b. same, both at B={b} (measured directly)",
              f"{fmt_time(t['dense_small'].median)} vs {fmt_time(t['ours_small'].median)}",
              f"{ratio_small:.0f}x faster", "-", "-")
    table.add(f"5c. coherence peak working memory, B={B}: dense (B*T^2*4 bytes, computed) vs "
              f"Coherence (measured)",
              f"{fmt_bytes(dense_bytes_full)} vs {fmt_bytes(peak_ours_full)}",
              f"{dense_bytes_full / max(peak_ours_full, 1):.0f}x less", "-", "-")
    table.add(f"5d. same at B={b}, both measured",
              f"{fmt_bytes(peak_dense)} vs {fmt_bytes(peak_ours_small)}",
              f"{peak_dense / max(peak_ours_small, 1):.0f}x less", "-", "-")
    notes.append(
        f"Coherence: random layered DAG, {T:,} nodes in {s.coh_layers} layers, "
        f"{len(edges):,} edges, {coherence.num_levels} levels (longest path). The dense "
        f"product needs B*T^2*4 bytes = {fmt_bytes(dense_bytes_full)} at B={B}, which does "
        f"not fit this machine comfortably, so it ran at B={b} and its time is scaled per "
        f"example (x{B // b}). Persistent state: dense R = T^2*4 bytes = {fmt_bytes(T * T * 4)}"
        f"; Coherence buffers {fmt_bytes(state_ours)}. Working memory = peak bytes of the "
        f"tensors created during the forward call (kernel-internal buffers not seen). "
        f"Same result at B={b}: max |sigmoid(Coherence(logits)) - dense(sigmoid(logits))| = "
        f"{diff:.1e}; hierarchy violations after Coherence at B={B}: {violations}.")


# -- main --------------------------------------------------------------------------------
SECTIONS = {"train": bench_train, "predict": bench_predict, "coherence": bench_coherence}


def run_section(name: str, s: Settings, seed: int, *, isolate: bool,
                child_args: list[str]) -> tuple[list[list[str]], list[str]]:
    """Rows and notes of one section, by default from a fresh Python process.

    A process's allocator remembers earlier large allocations (glibc raises its mmap and
    trim thresholds after big frees), which changes the cost of later large tensors;
    a fresh process per section keeps every section independent of the others.
    """
    if not isolate:
        table = Table(["m", "b", "r", "t", "s"])
        notes: list[str] = []
        SECTIONS[name](s, seed, table, notes)
        return table.rows, notes
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "section.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--only", name,
               "--section-json", path, *child_args]
        subprocess.run(cmd, check=True)
        with open(path) as fh:
            data = json.load(fh)
    return data["rows"], data["notes"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 1 minute)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="also write the markdown report to this file")
    parser.add_argument("--threads", type=int,
                        help="torch.set_num_threads(N) first (default: torch's choice)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    parser.add_argument("--same-process", action="store_true",
                        help="run all sections in this process instead of one process each")
    parser.add_argument("--glibc-defaults", action="store_true",
                        help="leave glibc's malloc thresholds alone (by default the benchmark "
                             "calls tg.reuse_freed_memory() first, as `taskgraph train` does)")
    parser.add_argument("--section-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    s = QUICK if args.quick else Settings()
    if args.threads:
        torch.set_num_threads(args.threads)
    reused = False if args.glibc_defaults else tg.reuse_freed_memory()
    torch.manual_seed(args.seed)
    sections = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; choose from {', '.join(SECTIONS)}")

    if args.section_json:  # a child process: one section, results as JSON
        rows, notes = run_section(sections[0], s, args.seed, isolate=False, child_args=[])
        with open(args.section_json, "w") as fh:
            json.dump({"rows": rows, "notes": notes}, fh)
        return 0

    start = time.perf_counter()
    header = machine_info(args.seed)
    isolate = not args.same_process
    header.append(f"mode: {'quick' if args.quick else 'default'} (train-step repeats "
                  f"{s.step_repeat} after {s.step_warmup} warm-up; predict {s.predict_repeat}; "
                  f"coherence {s.coh_repeat}); "
                  f"{'each section in a fresh process; ' if isolate else ''}"
                  + ("freed memory kept for reuse (tg.reuse_freed_memory(), as taskgraph "
                     "train does); " if reused else "glibc malloc defaults; ")
                  + "every time is the median of interleaved repeats; a ratio is the median "
                  "of the ratios of back-to-back repeats")
    print("\n".join(header), flush=True)

    child_args = ["--seed", str(args.seed)] + (["--quick"] if args.quick else []) \
        + (["--threads", str(args.threads)] if args.threads else []) \
        + (["--glibc-defaults"] if args.glibc_defaults else [])
    table = Table(["measurement", "baseline vs taskgraph", "ratio", "target", "status"],
                  ["---", "---:", "---:", "---:", "---"])
    notes: list[str] = []
    for name in sections:
        rows, section_notes = run_section(name, s, args.seed, isolate=isolate,
                                          child_args=child_args)
        table.rows.extend(rows)
        notes.extend(section_notes)
    load = (f", load average at the end {os.getloadavg()[0]:.2f}"
            if hasattr(os, "getloadavg") else "")
    notes.append(f"Total benchmark time: {time.perf_counter() - start:.0f} s{load}.")

    report = "\n".join(["", table.markdown(), ""] + [f"- {n}" for n in notes])
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(header) + "\n" + report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
