"""Benchmark: do the learned synapses of a real hierarchy track what the labels say?

The HMC recipe's default model (``taskgraph.recipes.hmc.train_hmc``, early stopping on
valid, no refit) is trained on a FunCat/GO set; for every edge ``parent -> child`` and
each direction (``down``: the child receives from the parent, ``up``: the reverse) the
learned synapse gives ``|E[w]|``, ``std`` and the signal-to-noise ``|E[w]| / std``. From
the training labels, per edge (natural logarithms, nats):

.. math::
    H(C) = -\\sum_c \\hat p(c) \\log \\hat p(c), \\qquad
    H(C \\mid P) = \\sum_{a} \\hat p(P{=}a) \\, H(C \\mid P{=}a), \\qquad
    U(C \\mid P) = 1 - H(C \\mid P) / H(C)

(``U``: the uncertainty coefficient, the fraction of the child's label entropy that the
parent's label explains; 0: independent, 1: the parent determines the child), and the
same with the roles swapped for ``up`` edges (what the child says about the parent).
Reported per set over seeds: the spread of each synapse statistic across edges
(quantiles and coefficient of variation) and Spearman's rank correlation between each
statistic and ``U``, ``H(C | P)`` and — the obvious confounder — the receiving task's
number of training positives (mean ± std over seeds; a correlation is called present
when it keeps its sign on every seed and its permutation-free p from
``scipy.stats.spearmanr`` is < 0.01 on every seed).

Run:
    python benchmarks/synapse_information.py --datasets cellcycle_FUN --seeds 3 \\
        --out benchmarks/results/synapse_information.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

import numpy as np
import torch

from taskgraph.atomic import atomic_write
from taskgraph.datasets.hmc import load_hmc
from taskgraph.recipes.hmc import train_hmc

DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "hmc")
STATS = ("|E[w]|", "std", "|E[w]|/std")


def entropy(p: np.ndarray) -> np.ndarray:
    """Binary entropy in nats of probabilities ``p`` (any shape); 0 at 0 and 1."""
    p = np.clip(p, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    return np.nan_to_num(h)


def edge_information(Y: np.ndarray, receiver: np.ndarray, sender: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """Per edge: ``H(R)``, ``H(R | S)`` and ``U(R | S)`` from 0/1 labels ``Y`` (N, T).

    ``receiver`` / ``sender``: (E,) column indices. Rows where either label is missing
    (not 0/1) are left out of that edge's counts.

    Example:
        >>> Y = np.array([[1, 1], [1, 0], [0, 0], [0, 0]], float)
        >>> info = edge_information(Y, np.array([1]), np.array([0]))
        >>> round(float(info["U"][0]), 4)  # H(C)=0.5623, H(C|P)=0.5*log 2=0.3466
        0.3837
    """
    R, S = Y[:, receiver], Y[:, sender]  # (N, E)
    known = np.isin(R, (0, 1)) & np.isin(S, (0, 1))
    n = known.sum(0).astype(float)
    r1 = ((R == 1) & known).sum(0) / n
    s1 = ((S == 1) & known).sum(0) / n
    both = ((R == 1) & (S == 1) & known).sum(0)
    s_pos = ((S == 1) & known).sum(0)
    s_neg = ((S == 0) & known).sum(0)
    r_given_s1 = np.divide(both, s_pos, out=np.zeros_like(n), where=s_pos > 0)
    r_given_s0 = np.divide(((R == 1) & (S == 0) & known).sum(0), s_neg,
                           out=np.zeros_like(n), where=s_neg > 0)
    h = entropy(r1)
    h_cond = s1 * entropy(r_given_s1) + (1 - s1) * entropy(r_given_s0)
    u = np.divide(h - h_cond, h, out=np.zeros_like(h), where=h > 0)
    return {"H": h, "H_cond": h_cond, "U": u}


def partial_spearman(a: np.ndarray, b: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Spearman correlation of ``a`` and ``b`` with ``z`` held fixed: the Pearson
    correlation of the ranks' residuals after a least-squares fit on the ranks of ``z``;
    p from the t distribution with n − 3 degrees of freedom.

    Example:
        >>> z = np.arange(20.0)
        >>> a, b = z + np.sin(z), z + np.cos(3 * z)
        >>> rho, p = partial_spearman(a, b, z)
        >>> abs(rho) < 0.5
        True
    """
    from scipy.stats import rankdata, t

    ra, rb, rz = (rankdata(v) for v in (a, b, z))
    Z = np.stack([np.ones_like(rz), rz], 1)
    res = [v - Z @ np.linalg.lstsq(Z, v, rcond=None)[0] for v in (ra, rb)]
    rho = float(np.corrcoef(*res)[0, 1])
    n = len(a)
    stat = rho * np.sqrt((n - 3) / max(1e-12, 1 - rho * rho))
    return rho, float(2 * t.sf(abs(stat), n - 3))


def seed_rows(data, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Train one model; per direction the synapse statistics and edge information."""
    result = train_hmc(data, seed=seed, progress=False)
    model = result.model
    column = {name: j for j, name in enumerate(data.hierarchy.task_names)}
    Y = np.asarray(data.train.Y)
    out: dict[str, dict[str, np.ndarray]] = {}
    for direction in model.config.directions:
        rows = [r for r in model.synapses() if r["direction"] == direction]
        parent = np.array([column[r["parent"]] for r in rows])
        child = np.array([column[r["child"]] for r in rows])
        receiver, sender = (child, parent) if direction == "down" else (parent, child)
        mean = np.abs(np.array([r["mean"] for r in rows], float))
        std = np.array([r["std"] for r in rows], float)
        info = edge_information(Y, receiver, sender)
        out[direction] = {"|E[w]|": mean, "std": std, "|E[w]|/std": mean / np.maximum(std, 1e-12),
                          "positives": (Y[:, receiver] == 1).sum(0).astype(float), **info}
    out["_score"] = {"test": np.array([result.test_auprc])}
    return out


def fmt(values: list[float], digits: int = 3) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1 seed)"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def markdown(name: str, runs: list[dict], seeds: list[int], args) -> list[str]:
    from scipy.stats import spearmanr

    lines = [f"## {name} (seeds {', '.join(map(str, seeds[:len(runs)]))}; test AU(PRC)-bar "
             f"{fmt([float(r['_score']['test'][0]) for r in runs], 4)})", ""]
    for direction in (d for d in runs[0] if not d.startswith("_")):
        E = len(runs[0][direction]["std"])
        lines += [f"### {direction} synapses ({E} edges; receiver = "
                  f"{'child' if direction == 'down' else 'parent'})", "",
                  "| statistic | 5 % | median | 95 % | CV across edges | Spearman vs U | "
                  "vs H(R given S) | vs receiver positives | vs U, receiver positives held "
                  "fixed (partial) |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for stat in STATS:
            q = [np.quantile(r[direction][stat], [0.05, 0.5, 0.95]) for r in runs]
            cv = [float(np.std(r[direction][stat]) / np.mean(r[direction][stat])) for r in runs]
            cells = []
            for other in ("U", "H_cond", "positives"):
                rho, p = zip(*(spearmanr(r[direction][stat], r[direction][other])
                               for r in runs))
                same_sign = all(np.sign(x) == np.sign(rho[0]) for x in rho)
                mark = " (p < 0.01 on every seed)" if same_sign and max(p) < 0.01 else ""
                cells.append(f"{fmt(list(rho))}{mark}")
            rho, p = zip(*(partial_spearman(r[direction][stat], r[direction]["U"],
                                            r[direction]["positives"]) for r in runs))
            same_sign = all(np.sign(x) == np.sign(rho[0]) for x in rho)
            mark = " (p < 0.01 on every seed)" if same_sign and max(p) < 0.01 else ""
            cells.append(f"{fmt(list(rho))}{mark}")
            lines.append(f"| {stat} | {fmt([x[0] for x in q])} | {fmt([x[1] for x in q])} | "
                         f"{fmt([x[2] for x in q])} | {fmt(cv)} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=DEFAULT_ROOT)
    parser.add_argument("--datasets", default="cellcycle_FUN")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        print(f"no data folder {args.root}; pass --root DIR", file=sys.stderr)
        return 2
    seeds = list(range(args.seeds))
    head = ["# Learned synapses against label statistics on real hierarchies", "",
            "`python benchmarks/synapse_information.py " + " ".join(sys.argv[1:]) + "`", "",
            f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads). The HMC recipe's default model "
            "(`taskgraph.recipes.hmc.HMC_CONFIG`, gaussian synapses), early stopping on valid, "
            "no refit. U = 1 − H(R | S) / H(R) from the training labels (R: the receiving "
            "task, S: the sending one). Spearman's rho per seed, mean ± std over seeds.", ""]
    body: list[str] = []
    for name in (n.strip() for n in args.datasets.split(",") if n.strip()):
        data = load_hmc(name, args.root).preprocessed()
        runs = []
        for seed in seeds:
            runs.append(seed_rows(data, seed))
            if args.out:  # every edge's numbers, for other analyses
                np.savez_compressed(f"{os.path.splitext(args.out)[0]}_{name}_seed{seed}.npz",
                                    **{f"{d}/{k}": v for d, cols in runs[-1].items()
                                       for k, v in cols.items()})
            text = "\n".join(head + body + markdown(name, runs, seeds, args)) + "\n"
            print(f"{name} seed {seed} done", flush=True)
            if args.out:
                with atomic_write(args.out) as fh:  # after every seed
                    fh.write(text)
        body += markdown(name, runs, seeds, args)
    print("\n".join(head + body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
