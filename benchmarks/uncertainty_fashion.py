r"""Uncertainty baselines on the Fashion-MNIST class-path hierarchy (kind -> group -> item).

The harness of ``benchmarks/uncertainty.py`` on images: ``hierarchies/fashion.yaml``, a
small CNN encoder with dropout ``--dropout`` after its last layer, every training image
labelled at all three levels. Per seed: ``--train-size`` training and ``--valid-size``
validation images drawn from the 60,000 training images (disjoint; the draw depends on
the seed), the 10,000 test images; one model trained for ``--epochs`` passes with
:func:`taskgraph.fit` (Adam, batches of 64), and ``M - 1`` more with the seeds
``seed + 1000 m`` on the same images for the ensemble. Each method predicts the test
images once:

- **deterministic**: expected synapse weights, dropout off (``samples=0``);
- **temperature**: the same model after :func:`taskgraph.calibrate` on the validation
  images (``--temperature-per``: one temperature per task by default);
- **MC dropout**: ``samples=K, dropout=True``;
- **ensemble**: :class:`taskgraph.Ensemble` of the M models, ``samples=0``;
- **stochastic**: ``samples=K, dropout=False`` (synapses sampled, dropout off).

Measures per task on test (multiclass, top label): accuracy; NLL
:math:`-\frac1N\sum_i \log p_{i, y_i}`; Brier :math:`\frac1N\sum_i\sum_k (p_{ik} -
[y_i = k])^2`; ECE of the top-label confidence with 15 equal-width and 15 equal-mass
bins; AURC with the predictive entropy as the uncertainty and errors :math:`[\hat y_i
\ne y_i]`; the error-detection AUROC of the entropy and of the mutual information.
Cost: training seconds behind each method and test prediction seconds.

Data: ``apt-get install dataset-fashion-mnist`` or ``--data DIR``.

Run:
    OMP_NUM_THREADS=1 python benchmarks/uncertainty_fashion.py --seed-list 0,1,2,3,4 \
        --records benchmarks/results/uncertainty_fashion_records.jsonl \
        --out benchmarks/results/uncertainty_fashion.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "examples"))
sys.path.insert(0, HERE)

import taskgraph as tg  # noqa: E402
from fashion_scarce import scarce_targets  # noqa: E402
from images_hierarchy import DATA, FILES, cnn, has_fashion, load_split  # noqa: E402
from taskgraph.atomic import write_text_atomic  # noqa: E402
from taskgraph.metrics.calibration import (  # noqa: E402
    expected_calibration_error, multiclass_brier_score)
from taskgraph.metrics.selective import aurc, error_detection_auroc  # noqa: E402
from taskgraph.model.temperature import PER  # noqa: E402
from taskgraph.train import make_loader  # noqa: E402
from uncertainty import (METHODS, PAIRS, append_record, load_records,  # noqa: E402
                         mean_std, paired, threads_of)

TASKS = ("kind", "group", "item")
MEASURES = ("accuracy", "nll", "brier", "ece", "adaptive_ece", "aurc", "auroc_entropy",
            "auroc_mi")
HEADERS = {"accuracy": "accuracy", "nll": "NLL", "brier": "Brier", "ece": "ECE (15)",
           "adaptive_ece": "adaptive ECE", "aurc": "AURC",
           "auroc_entropy": "err. AUROC (entropy)", "auroc_mi": "err. AUROC (MI)",
           "train_s": "train s", "predict_s": "predict s"}
BATCH = 1000


def encoder(dropout: float) -> nn.Module:
    """The CNN of ``examples/images_hierarchy.py`` with dropout on its 128 features."""
    return nn.Sequential(cnn(), nn.Dropout(dropout))  # (B, 1, 28, 28) -> (B, 128)


def train(h: Any, x: torch.Tensor, targets: dict, seed: int, args: argparse.Namespace
          ) -> tuple[Any, float]:
    """One model on ``(x, targets)``; the model and its training seconds."""
    torch.manual_seed(seed)
    model = tg.compile(h, encoder=encoder(args.dropout), encoder_dim=128, task_dim=32)
    loader = DataLoader(tg.TaskDataset(x, targets, h), batch_size=64, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    tic = time.perf_counter()
    tg.fit(model, loader, epochs=args.epochs, lr=2e-3, progress=False, seed=seed)
    return model, time.perf_counter() - tic


@torch.no_grad()
def predict_tasks(predictor: Any, x: torch.Tensor, **options: Any
                  ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per task: class probabilities ``(N, K)``, entropy ``(N,)`` and MI ``(N,)``."""
    parts: dict[str, list[list[np.ndarray]]] = {t: [[], [], []] for t in TASKS}
    for s in range(0, len(x), BATCH):
        pred = predictor.predict(x[s:s + BATCH], **options)
        for t in TASKS:
            p = pred[t]
            mi = p.mutual_info if p.mutual_info is not None else torch.zeros_like(p.entropy)
            for arr, v in zip(parts[t], (p.probs, p.entropy, mi)):
                arr.append(v.double().numpy())
    return {t: tuple(np.concatenate(a) for a in parts[t]) for t in TASKS}


def task_measures(y: np.ndarray, P: np.ndarray, H: np.ndarray, MI: np.ndarray
                  ) -> dict[str, float | None]:
    """The module docstring's measures of one multiclass task."""
    P = np.clip(P, 0.0, 1.0)
    errors = (P.argmax(1) != y).astype(np.float64)
    p_true = np.clip(P[np.arange(len(y)), y], 1e-12, 1.0)
    return {"accuracy": float(1.0 - errors.mean()), "nll": float(-np.log(p_true).mean()),
            "brier": multiclass_brier_score(y, P),
            "ece": expected_calibration_error(y, P),
            "adaptive_ece": expected_calibration_error(y, P, binning="equal_mass"),
            "aurc": aurc(errors, H), "auroc_entropy": error_detection_auroc(errors, H),
            "auroc_mi": error_detection_auroc(errors, MI) if float(MI.max()) > 0 else None}


def run_seed(h: Any, seed: int, x_all: torch.Tensor, y_all: np.ndarray,
             x_test: torch.Tensor, y_test: np.ndarray, args: argparse.Namespace) -> dict:
    """One seed: ``{method: {"task.measure": value, "train_s": s, "predict_s": s}}``."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(y_all))[:args.train_size + args.valid_size]
    tr, va = pick[:args.train_size], pick[args.train_size:]
    train_targets, _ = scarce_targets(h, y_all[tr], 1.0, rng)  # every level labelled
    valid_targets, _ = scarce_targets(h, y_all[va], 1.0, rng)
    members = [train(h, x_all[tr], train_targets, seed + 1000 * m, args)
               for m in range(args.members)]
    model, base_train = members[0]
    truth = {t: np.asarray(test_targets(h, y_test)[t]) for t in TASKS}
    K = args.samples
    rows: dict[str, dict[str, Any]] = {}

    def score(method: str, predictor: Any, options: dict, train_s: float) -> None:
        torch.manual_seed(seed)
        tic = time.perf_counter()
        out = predict_tasks(predictor, x_test, **options)
        row: dict[str, Any] = {"train_s": train_s, "predict_s": time.perf_counter() - tic}
        for t in TASKS:
            for k, v in task_measures(truth[t], *out[t]).items():
                row[f"{t}.{k}"] = v
        rows[method] = row
        print(f"  fashion seed {seed} {method}: item " + ", ".join(
            f"{k} {row['item.' + k]:.5f}" for k in MEASURES if row["item." + k] is not None)
            + f", train {train_s:.0f} s", flush=True)

    score("deterministic", model, {}, base_train)
    score("stochastic", model, {"samples": K, "dropout": False}, base_train)
    score("MC dropout", model, {"samples": K, "dropout": True}, base_train)
    score("ensemble", tg.Ensemble([m for m, _ in members]).eval(), {},
          sum(s for _, s in members))
    tic = time.perf_counter()
    valid = make_loader(tg.TaskDataset(x_all[va], valid_targets, h), batch_size=512,
                        shuffle=False)
    tg.calibrate(model, valid, per=args.temperature_per)
    score("temperature", model, {}, base_train + time.perf_counter() - tic)
    return {m: rows[m] for m in METHODS}


def test_targets(h: Any, y: np.ndarray) -> dict[str, list[int]]:
    """Class indices of every level for item labels ``y``."""
    targets, _ = scarce_targets(h, y, 1.0, np.random.default_rng(0))
    return {t: [h[t].classes.index(c) if isinstance(c, str) else int(c) for c in targets[t]]
            for t in TASKS}


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    seeds = rows[0]["seed_ids"] if rows else []
    n = len(seeds)
    lines = ["# Uncertainty baselines (Fashion-MNIST hierarchy)", "",
             f"`python benchmarks/uncertainty_fashion.py --seed-list "
             f"{','.join(map(str, seeds))} --train-size {args.train_size} --valid-size "
             f"{args.valid_size} --epochs {args.epochs} --dropout {args.dropout} --members "
             f"{args.members} --samples {args.samples} --temperature-per "
             f"{args.temperature_per}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
             f"{platform.python_version()}, torch {torch.__version__} "
             f"({threads_of(rows)} threads). 10,000 test images; mean ± std over "
             f"{n} seed{'s' if n != 1 else ''} ({', '.join(map(str, seeds))}). Lower is "
             "better except for accuracy and the AUROCs. K = samples, M = members.", "",
             *([args.note, ""] if args.note else [])]
    if not rows:
        return "\n".join(lines) + "\n"
    seed_rows = rows[0]["seeds"]
    for t in TASKS:
        columns = [f"{t}.{m}" for m in MEASURES]
        lines += [f"## {t}", "", "| method | " + " | ".join(HEADERS[m] for m in MEASURES)
                  + " | train s | predict s |", "|---|" + "---:|" * (len(MEASURES) + 2)]
        for method in METHODS:
            cells = [mean_std([s[method][c] for s in seed_rows]) for c in columns]
            cells += [mean_std([s[method][c] for s in seed_rows], 1)
                      for c in ("train_s", "predict_s")]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
        lines += ["", f"Paired differences on {t} (per seed, then mean ± std; paired t-test "
                  "p in brackets):", "",
                  "| difference | " + " | ".join(HEADERS[m] for m in MEASURES) + " |",
                  "|---|" + "---:|" * len(MEASURES)]
        for a, b in PAIRS:
            lines.append(f"| {a} − {b} | " + " | ".join(
                paired(seed_rows, a, b, c) for c in columns) + " |")
        lines.append("")
    cost = [s["stochastic"]["train_s"] / s["ensemble"]["train_s"] for s in seed_rows]
    lines += [f"Training cost of one model / the {args.members}-member ensemble's: "
              f"{mean_std(cost, 2)}.", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--seed-list", default="0", help="comma-separated seeds")
    parser.add_argument("--train-size", type=int, default=20_000)
    parser.add_argument("--valid-size", type=int, default=5_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--temperature-per", choices=PER, default="task")
    parser.add_argument("--records", default=None, help="JSON-lines file of finished seeds")
    parser.add_argument("--note", default=None, help="a paragraph for the table's header")
    parser.add_argument("--table-only", action="store_true",
                        help="train nothing: write the table from --records")
    parser.add_argument("--out", default=os.path.join(HERE, "results",
                                                      "uncertainty_fashion.md"))
    args = parser.parse_args(argv)
    if args.members < 1 or args.samples < 1 or not 0.0 < args.dropout < 1.0:
        print("--members and --samples must be at least 1, --dropout in (0, 1)",
              file=sys.stderr)
        return 2
    if args.table_only:
        if not args.records:
            print("--table-only needs --records FILE", file=sys.stderr)
            return 2
        text = markdown(load_records(args.records, ["fashion"]), args)
        write_text_atomic(args.out, text)
        print(text)
        return 0
    if not has_fashion(args.data):
        print(f"Fashion-MNIST is not in {args.data} (apt-get install dataset-fashion-mnist, "
              "or --data DIR)", file=sys.stderr)
        return 2
    h = tg.load_hierarchy(os.path.join(ROOT, "hierarchies", "fashion.yaml"))
    (x_all, y_all), (x_test, y_test) = (load_split(args.data, s) for s in FILES)
    if args.train_size + args.valid_size > len(y_all):
        print(f"--train-size + --valid-size must be at most {len(y_all)}", file=sys.stderr)
        return 2
    done: list[dict] = []
    seed_ids: list[int] = []
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tic = time.perf_counter()
    for seed in (int(s) for s in args.seed_list.split(",") if s.strip()):
        result = run_seed(h, seed, x_all, y_all, x_test, y_test, args)
        done.append(result)
        seed_ids.append(seed)
        if args.records:
            append_record(args.records, "fashion", 10, seed, result)
            rows = load_records(args.records, ["fashion"])
        else:
            rows = [{"name": "fashion", "labels": 10, "seeds": done, "seed_ids": seed_ids}]
        write_text_atomic(args.out, markdown(rows, args))  # after every seed
    print(open(args.out, encoding="utf-8").read())
    print(f"total {time.perf_counter() - tic:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
