r"""Uncertainty baselines in one harness: taskgraph's stochastic predictions against a
deterministic model, post-hoc temperature scaling, MC dropout and a deep ensemble.

Protocol, per data set and seed (HMC sets, DESIGN.md §5 preprocessing): the default
recipe (:func:`taskgraph.recipes.hmc.train_hmc`, early stopping on valid, no refit on
train + valid, so that valid stays unseen for the temperatures) trains one model; M - 1
more are trained with the seeds ``seed + 1000 m`` for the ensemble. Each method then
predicts the test split once:

- **deterministic**: the model, expected synapse weights, dropout off (``samples=0``);
- **temperature**: the same model after :func:`taskgraph.model.temperature.calibrate` on
  valid (``--temperature-per``: one temperature for all labels by default);
- **MC dropout**: ``samples=K, dropout=True`` (dropout on, synapses at their means);
- **ensemble**: :class:`taskgraph.model.ensemble.Ensemble` of the M models, ``samples=0``;
- **stochastic**: ``samples=K, dropout=False`` (the synapses sampled, dropout off; what
  ``samples=K`` draws for a model without dropout).

Measures on test: AU(PRC)-bar (micro AP over the evaluated labels, the protocol's
score, higher is better); over the evaluated labels (the roots left out) that have a
positive in test: per label, then averaged over labels, the NLL
:math:`-\frac1n\sum_i y_i \log p_i + (1-y_i)\log(1-p_i)`, the Brier score
:math:`\frac1n\sum_i (p_i - y_i)^2`, the ECE with 15 equal-width bins and the adaptive
ECE with 15 equal-mass bins (:mod:`taskgraph.metrics.calibration`); pooled over all
(example, label) entries, with errors :math:`e = [(p \ge 1/2) \ne y]`, the AURC with the
predictive entropy as the uncertainty and the error-detection AUROC of the entropy and
of the mutual information (:mod:`taskgraph.metrics.selective`; MI is 0 for a single
deterministic prediction, so it has no AUROC there). Cost: training seconds behind the
method (the ensemble: all M models; temperature: the model plus the fit) and test
prediction seconds. The table: mean ± std over seeds (sample std; one seed is said as
such), and per seed the paired difference stochastic − temperature.

Run:
    OMP_NUM_THREADS=1 python benchmarks/uncertainty.py --root ../shared/data/hmc \
        --datasets cellcycle_FUN,derisi_FUN,eisen_FUN --seed-list 0,1,2,3,4 \
        --members 5 --samples 32 --out benchmarks/results/uncertainty.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from taskgraph.atomic import write_text_atomic
from taskgraph.datasets.hmc import load_hmc
from taskgraph.metrics.calibration import binary_calibration_columns, equal_mass_ece_columns
from taskgraph.metrics.hierarchical import auprc_bar
from taskgraph.metrics.selective import aurc, error_detection_auroc
from taskgraph.model.ensemble import Ensemble
from taskgraph.model.temperature import PER, calibrate
from taskgraph.recipes.hmc import train_hmc

DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "hmc")
METHODS = ("deterministic", "temperature", "MC dropout", "ensemble", "stochastic")
MEASURES = ("auprc_bar", "nll", "brier", "ece", "adaptive_ece", "aurc", "auroc_entropy",
            "auroc_mi")
HEADERS = {"auprc_bar": "AU(PRC)-bar", "nll": "NLL", "brier": "Brier", "ece": "ECE (15)",
           "adaptive_ece": "adaptive ECE",
           "aurc": "AURC", "auroc_entropy": "err. AUROC (entropy)",
           "auroc_mi": "err. AUROC (MI)", "train_s": "train s", "predict_s": "predict s"}
BATCH = 512
#: The paired differences of the table: each candidate against the two references.
PAIRS = (("stochastic", "temperature"), ("stochastic", "ensemble"),
         ("MC dropout", "temperature"), ("MC dropout", "ensemble"))


def mean_std(values: Sequence[float | None], digits: int = 5) -> str:
    """``mean ± std`` (sample std) over seeds; one seed as ``x (1 seed)``; — if none."""
    vals = [v for v in values if v is not None and np.isfinite(v)]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{vals[0]:.{digits}f} (1 seed)"
    return f"{np.mean(vals):.{digits}f} ± {np.std(vals, ddof=1):.{digits}f}"


def paired(seeds: Sequence[dict], a: str, b: str, measure: str) -> str:
    """``mean ± std (p)`` of method ``a`` − method ``b`` over the seeds, paired by seed."""
    d = [s[a][measure] - s[b][measure] for s in seeds
         if s[a][measure] is not None and s[b][measure] is not None]
    text = mean_std(d)
    if len(d) >= 2 and np.std(d, ddof=1) > 0:
        from scipy.stats import ttest_1samp  # scikit-learn's dependency
        text += f" ({ttest_1samp(d, 0.0).pvalue:.2g})"
    return text


@torch.no_grad()
def predict_arrays(model: Any, X: np.ndarray, *, samples: int = 0, dropout: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per example and label (hierarchy order, all binary): probability, predictive
    entropy and mutual information, each ``(N, T)`` float64."""
    device = next(model.parameters()).device
    tasks = np.asarray(model.layout.groups[0].tasks)
    out = [np.empty((len(X), model.layout.num_tasks)) for _ in range(3)]
    for s in range(0, len(X), BATCH):
        x = torch.as_tensor(X[s:s + BATCH]).to(device)
        block = model.predict(x, samples=samples, dropout=dropout).blocks[0]
        for arr, key in zip(out, ("mean", "entropy", "mi")):
            arr[s:s + len(x), tasks] = block[key].double().cpu().numpy()
    return out[0], out[1], out[2]


def measures(Y: np.ndarray, P: np.ndarray, H: np.ndarray, MI: np.ndarray,
             cols: np.ndarray) -> dict[str, float | None]:
    """The module docstring's measures over the label columns ``cols``."""
    y, p = Y[:, cols].astype(np.float64), np.clip(P[:, cols], 0.0, 1.0)
    known = np.ones_like(y, dtype=bool)
    per_label = binary_calibration_columns(y, p, known)
    out: dict[str, float | None] = {k: float(np.nanmean(per_label[k]))
                                    for k in ("nll", "brier", "ece")}
    out["adaptive_ece"] = float(np.nanmean(equal_mass_ece_columns(y, p, known)))
    errors = ((p >= 0.5) != (y == 1)).astype(np.float64).reshape(-1)
    entropy, mi = H[:, cols].reshape(-1), MI[:, cols].reshape(-1)
    out["aurc"] = aurc(errors, entropy)
    out["auroc_entropy"] = error_detection_auroc(errors, entropy)
    out["auroc_mi"] = error_detection_auroc(errors, mi) if float(mi.max()) > 0 else None
    return out


def _valid_batches(data: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    X, Y = data.valid.X, data.valid.Y
    return [(torch.as_tensor(X[s:s + BATCH]), torch.as_tensor(Y[s:s + BATCH]))
            for s in range(0, len(X), BATCH)]


def run_seed(data: Any, seed: int, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """One seed: train M models, score every method; ``{method: {measure: value}}``."""
    kw = {"epochs": args.epochs, "progress": False, "refit": False, "device": args.device}
    results = [train_hmc(data, seed=seed + 1000 * m, **kw) for m in range(args.members)]
    model = results[0].model
    base_train = results[0].seconds
    cols = np.asarray([c for c in data.eval_columns if data.test.Y[:, c].any()])
    roots = sorted(set(range(data.test.Y.shape[1])) - set(data.eval_columns.tolist()))
    K = args.samples
    plans: list[tuple[str, Any, dict[str, Any], float]] = [
        ("deterministic", model, {}, base_train),
        ("stochastic", model, {"samples": K, "dropout": False}, base_train),
        ("MC dropout", model, {"samples": K, "dropout": True}, base_train),
        ("ensemble", Ensemble([r.model for r in results]).eval(), {},
         sum(r.seconds for r in results)),
    ]
    rows: dict[str, dict[str, Any]] = {}

    def score(method: str, predictor: Any, options: dict[str, Any], train_s: float) -> None:
        torch.manual_seed(seed)  # the draws depend on the seed only
        tic = time.perf_counter()
        P, H, MI = predict_arrays(predictor, data.test.X, **options)
        seconds = time.perf_counter() - tic
        rows[method] = {"auprc_bar": auprc_bar(data.test.Y, P, exclude=roots),
                        **measures(data.test.Y, P, H, MI, cols), "train_s": train_s,
                        "predict_s": seconds}
        print(f"  {data.name} seed {seed} {method}: " + ", ".join(
            f"{k} {v:.7g}" for k, v in rows[method].items() if v is not None), flush=True)

    for plan in plans:
        score(*plan)
    tic = time.perf_counter()  # last: calibrate sets the model's temperatures
    calibrate(model, _valid_batches(data), per=args.temperature_per)
    score("temperature", model, {}, base_train + time.perf_counter() - tic)
    with torch.no_grad():
        model.temperature.fill_(1.0)
    return {m: rows[m] for m in METHODS}


def run_dataset(name: str, args: argparse.Namespace, seeds: Sequence[int],
                on_seed: Callable[[dict, int, dict], None]) -> dict:
    data = load_hmc(name, args.root).preprocessed()
    row: dict = {"name": name, "labels": len(data.eval_columns), "seeds": [],
                 "seed_ids": []}
    for seed in seeds:
        result = run_seed(data, seed, args)
        row["seeds"].append(result)
        row["seed_ids"].append(seed)
        on_seed(row, seed, result)  # the table so far: a run that is stopped keeps its seeds
    return row


def append_record(path: str, name: str, labels: int, seed: int, result: dict) -> None:
    """Append one finished seed to the JSON-lines file ``path``."""
    record = {"dataset": name, "labels": labels, "seed": seed, "methods": result,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def load_records(path: str, names: Sequence[str]) -> list[dict]:
    """The table rows of ``names`` from a JSON-lines file (the last record of a
    (data set, seed) wins), in the order of ``names``, seeds ascending."""
    found: dict[tuple[str, int], dict] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    found[(r["dataset"], int(r["seed"]))] = r
    rows = []
    for name in names:
        recs = sorted((r for (n, _), r in found.items() if n == name), key=lambda r: r["seed"])
        if recs:
            rows.append({"name": name, "labels": recs[0]["labels"],
                         "seeds": [r["methods"] for r in recs],
                         "seed_ids": [r["seed"] for r in recs],
                         "threads": sorted({r.get("threads") for r in recs} - {None})})
    return rows


def seed_list(rows: list[dict]) -> str:
    """The seeds of the rows, comma-separated (empty when there are none)."""
    return ",".join(map(str, sorted({i for r in rows for i in r.get("seed_ids", [])})))


def threads_of(rows: list[dict]) -> str:
    """The torch thread counts the rows were measured with (this process's if unknown)."""
    found = sorted({t for r in rows for t in r.get("threads", [])})
    return "/".join(map(str, found)) if found else str(torch.get_num_threads())


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    columns = MEASURES + ("train_s", "predict_s")
    lines = [
        "# Uncertainty baselines (HMC)", "",
        f"`python benchmarks/uncertainty.py --datasets {args.datasets} --seed-list "
        f"{seed_list(rows) or args.seed_list} --members {args.members} --samples {args.samples} "
        f"--temperature-per {args.temperature_per}"
        f"{f' --epochs {args.epochs}' if args.epochs else ''}`", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__} ({threads_of(rows)} "
        f"threads), device {args.device or 'cpu'}. Test split; mean ± std over seeds. NLL, "
        "Brier, ECE (15 equal-width bins) and adaptive ECE (15 equal-mass bins): means over "
        "the evaluated labels with a test positive; AURC (entropy) and error-detection "
        "AUROC: pooled over (example, label) entries, errors at threshold 1/2. Lower is "
        "better except for AU(PRC)-bar and the AUROCs. K = samples, M = members.", "",
        *([args.note, ""] if args.note else [])]
    for r in rows:
        n = len(r["seeds"])
        lines += [f"## {r['name']} ({r['labels']} labels, {n} seed{'s' if n != 1 else ''}: "
                  f"{', '.join(map(str, r.get('seed_ids', [])))})", "",
                  "| method | " + " | ".join(HEADERS[c] for c in columns) + " |",
                  "|---|" + "---:|" * len(columns)]
        for method in METHODS:
            cells = [mean_std([s[method][c] for s in r["seeds"]],
                              1 if c.endswith("_s") else 5) for c in columns]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines += ["", "Paired differences (per seed, then mean ± std; paired t-test p in "
                  "brackets; lower is better except for AU(PRC)-bar and the AUROCs):", "",
                  "| difference | " + " | ".join(HEADERS[c] for c in MEASURES) + " |",
                  "|---|" + "---:|" * len(MEASURES)]
        for a, b in PAIRS:
            cells = [paired(r["seeds"], a, b, c) for c in MEASURES]
            lines.append(f"| {a} − {b} | " + " | ".join(cells) + " |")
        cost = [s[a]["train_s"] / s["ensemble"]["train_s"] for s in r["seeds"]
                for a in ("stochastic",)]
        lines += ["", f"Training cost of the stochastic model (= the deterministic and the "
                  f"MC-dropout model) / the {args.members}-member ensemble's: "
                  f"{mean_std(cost, 2)}; seeds {', '.join(map(str, r['seed_ids']))}.", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="uncertainty baselines (module docstring)")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="folder of NAME.*.arff.gz files")
    parser.add_argument("--datasets", default="cellcycle_FUN", help="comma-separated names")
    parser.add_argument("--seed-list", default="0", help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--epochs", type=int, default=None, help="cap on epochs")
    parser.add_argument("--members", type=int, default=5, help="M, ensemble members")
    parser.add_argument("--samples", type=int, default=32, help="K, MC samples")
    parser.add_argument("--temperature-per", choices=PER, default="global")
    parser.add_argument("--device", default=None, help="e.g. cuda (default: the CPU)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "uncertainty.md"))
    parser.add_argument("--records", default=None,
                        help="JSON-lines file: every finished seed is appended to it, and "
                             "the table is made from all its records for --datasets (so "
                             "runs in separate processes merge into one table)")
    parser.add_argument("--note", default=None, help="a paragraph for the table's header")
    parser.add_argument("--table-only", action="store_true",
                        help="train nothing: write the table from --records")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        print(f"no data folder {args.root}; pass --root DIR", file=sys.stderr)
        return 2
    if args.members < 1 or args.samples < 1:
        print("--members and --samples must be at least 1", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seed_list.split(",") if s.strip()]
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tic = time.perf_counter()
    rows: list[dict] = []

    def write(partial: list[dict]) -> str:
        text = markdown(load_records(args.records, names) if args.records else partial, args)
        write_text_atomic(args.out, text)  # after every seed
        return text

    def on_seed(row: dict, seed: int, result: dict) -> None:
        if args.records:
            append_record(args.records, row["name"], row["labels"], seed, result)
        write(rows + [row])

    if args.table_only:
        if not args.records:
            print("--table-only needs --records FILE", file=sys.stderr)
            return 2
        print(write([]))
        return 0
    text = ""
    for name in names:
        rows.append(run_dataset(name, args, seeds, on_seed))
        text = write(rows)
    print(text)
    print(f"total {time.perf_counter() - tic:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
