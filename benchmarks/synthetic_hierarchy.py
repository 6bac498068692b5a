"""Benchmark: do messages and synapses carry what the data says they should?

A synthetic hierarchy where the truth is known. ``P`` parent tasks are binary,
``P_i = 1[x · u_i > 0]``, labelled on every example. ``C`` child tasks each have two
parents: one *informative* parent ``a`` and one *noise* parent ``b``, and

    C_j = P_a AND 1[x · v_j > q_j]        (q_j: the 30 % quantile, a weak own signal)

so the child's label is a function of its informative parent and a signal of its own,
and independent of its noise parent (the directions ``u``, ``v`` are random in 32
dimensions). Children are labelled on only ``--child-labels`` examples (label-scarce),
parents on all ``--train`` examples.

For each seed and variant the model is trained on the same data and scored on a test
set: child average precision (mean over children), and, from the learned down
synapses of the child <- parent edges, the AUROC with which a synapse statistic
separates informative from noise edges (``|E[w]|``, ``|E[w]| / std`` and, for bernoulli
synapses, ``p``).

Variants: ``embedding`` (messages carry task embeddings, ``send: embedding``),
``prediction`` (messages carry what the parent's head predicts, ``send: prediction``),
``rounds0`` (no message passing) and ``zeroed`` (the ``embedding`` model with every
message multiplied by 0, everything else kept: ``TaskGraphModel.zero_messages``).
Paired differences (same seed, same data) with a paired t-test.

Run:
    python benchmarks/synthetic_hierarchy.py --seeds 5 --out benchmarks/results/synthetic.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def make_data(seed: int, *, parents: int, children: int, train: int, test: int,
              child_labels: int, dim: int = 32):
    """``(hierarchy dict, X_train, Y_train, X_test, Y_test, informative edge set)``."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(parents, dim))
    V = rng.normal(size=(children, dim))
    n = train + test
    X = rng.normal(size=(n, dim)).astype(np.float32)
    P = (X @ U.T > 0).astype(np.float32)  # (n, P)
    own = X @ V.T  # (n, C)
    q = np.quantile(own, 0.3, axis=0)
    tasks: dict[str, dict] = {f"p{i}": {"type": "binary"} for i in range(parents)}
    informative = set()
    C = np.zeros((n, children), dtype=np.float32)
    for j in range(children):
        a, b = rng.choice(parents, size=2, replace=False)
        C[:, j] = P[:, a] * (own[:, j] > q[j])
        tasks[f"c{j}"] = {"type": "binary", "parents": sorted([f"p{a}", f"p{b}"])}
        informative.add((f"p{a}", f"c{j}"))
    Y = np.concatenate([P, C], axis=1)  # (n, P + C)
    Ytr = Y[:train].copy()
    unlabelled = rng.permutation(train)[child_labels:]
    Ytr[np.ix_(unlabelled, np.arange(parents, parents + children))] = -1.0
    doc = {"taskgraph": 1, "name": "synthetic", "tasks": tasks}
    return doc, X[:train], Ytr, X[train:], Y[train:], informative


def run(seed: int, variant: str, args) -> dict:
    import taskgraph as tg
    from sklearn.metrics import average_precision_score, roc_auc_score

    doc, Xtr, Ytr, Xte, Yte, informative = make_data(
        seed, parents=args.parents, children=args.children, train=args.train,
        test=args.test, child_labels=args.child_labels)
    h = tg.load_hierarchy(doc)
    torch.manual_seed(seed)
    send = "prediction" if variant == "prediction" else "embedding"
    model = tg.compile(h, in_features=Xtr.shape[1], task_dim=16,
                       encoder_spec={"hidden": [64]}, directions=["down"],
                       rounds=0 if variant == "rounds0" else 1,
                       synapse={"kind": args.synapse}, send=send)
    if variant == "zeroed":
        model.zero_messages = True
    train = tg.TaskDataset(Xtr, Ytr, h)
    tic = time.perf_counter()
    tg.fit(model, tg.make_loader(train, batch_size=64, seed=seed), epochs=args.epochs,
           lr=3e-3, seed=seed, progress=False, val_metrics=False)
    seconds = time.perf_counter() - tic
    model.eval()
    with torch.no_grad():
        pred = model.predict(torch.from_numpy(Xte))
    P = args.parents
    aps = [average_precision_score(Yte[:, P + j], pred[f"c{j}"].probs.numpy())
           for j in range(args.children)]
    out = {"child_ap": float(np.mean(aps)), "seconds": seconds}
    rows = [r for r in model.synapses() if r["direction"] == "down"]
    if rows and variant != "zeroed":  # zeroed synapses get no gradient from the data
        truth = np.array([(r["parent"], r["child"]) in informative for r in rows])
        mean = np.abs(np.array([r["mean"] for r in rows]))
        snr = mean / np.maximum(np.array([r["std"] for r in rows]), 1e-12)
        out["auroc_mean"] = float(roc_auc_score(truth, mean))
        out["auroc_snr"] = float(roc_auc_score(truth, snr))
        if args.synapse == "bernoulli":
            out["auroc_p"] = float(roc_auc_score(truth, [r["p"] for r in rows]))
        std = np.array([r["std"] for r in rows])
        out["std_informative"] = float(std[truth].mean())
        out["std_noise"] = float(std[~truth].mean())
        out["mean_informative"] = float(mean[truth].mean())
        out["mean_noise"] = float(mean[~truth].mean())
    return out


def fmt(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.3f} (1 seed)"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--parents", type=int, default=8)
    parser.add_argument("--children", type=int, default=24)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=4000)
    parser.add_argument("--child-labels", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--synapse", default="gaussian")
    parser.add_argument("--variants", default="embedding,prediction,rounds0,zeroed")
    parser.add_argument("--out", default=None)
    parser.add_argument("--json", default=None, help="also write every run's numbers here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from _common import emit, machine_info

    variants = args.variants.split(",")
    results: dict[str, list[dict]] = {v: [] for v in variants}
    head = ["# Synthetic hierarchy: informative vs noise parents", "",
            "`python benchmarks/synthetic_hierarchy.py " + " ".join(sys.argv[1:]) + "`", "",
            *[f"- {line}" for line in machine_info(0)],
            f"- {args.parents} parents (all {args.train} training examples labelled), "
            f"{args.children} children (each: one informative and one noise parent; "
            f"{args.child_labels} labelled examples), {args.test} test examples, "
            f"{args.epochs} epochs, synapse kind {args.synapse}; seeds 0..{args.seeds - 1}",
            ""]
    for seed in range(args.seeds):
        for v in variants:
            results[v].append(run(seed, v, args))
        lines = head + ["| variant | seeds | child AP | AUROC |E[w]| | AUROC |E[w]|/std | "
                        "AUROC p | |E[w]| informative / noise | std informative / noise | "
                        "train s |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for v in variants:
            r = results[v]
            cell = (lambda k: fmt([x[k] for x in r]) if r and k in r[0] else "–")
            pair = (lambda a, b: f"{cell(a)} / {cell(b)}" if a in r[0] else "–")
            lines.append(f"| {v} | {len(r)} | {cell('child_ap')} | {cell('auroc_mean')} | "
                         f"{cell('auroc_snr')} | {cell('auroc_p')} | "
                         f"{pair('mean_informative', 'mean_noise')} | "
                         f"{pair('std_informative', 'std_noise')} | "
                         f"{statistics.mean(x['seconds'] for x in r):.1f} |")
        if len(results[variants[0]]) >= 2:
            from scipy.stats import ttest_rel

            first = variants[0]
            for v in variants[1:]:
                a = [x["child_ap"] for x in results[first]]
                b = [x["child_ap"] for x in results[v]]
                diff = [p - q for p, q in zip(a, b)]
                p_value = ttest_rel(a, b).pvalue
                lines.append(f"\npaired difference in child AP, {first} − {v}: {fmt(diff)} "
                             f"(paired t-test p = {p_value:.3g})")
        emit(lines, args.out)
        if args.json:
            import json

            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"args": vars(args), "results": results}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
