"""The HMC benchmark: taskgraph's default recipe against published C-HMCNN / HMCN-F.

Protocol (DESIGN.md §5, as in C-HMCNN): mean imputation and standardization fitted on
train + valid; the number of epochs is chosen on valid (early stopping on valid
AU(PRC)-bar), then a fresh model is trained on train + valid for that many epochs and
scored once on test; the roots (``root``, and for GO GO0003674, GO0005575, GO0008150)
are not evaluated; the score is micro AU(PRC) over all other labels. Mean ± std over
seeds. One configuration for every data set (``taskgraph.recipes.hmc.HMC_CONFIG``); with
``--search``, per-data-set tuning only through the automatic search on valid
(``taskgraph.recipes.hmc.HMC_SEARCH``: each candidate trained on train with early stopping on
valid, the best valid AU(PRC)-bar refitted and scored once on test).

Also measured on the same seeds: ablations (message passing off, stochastic synapses
off, coherence off) and calibration (per-label ECE of MC-sampled predictions with
``samples=32`` against the same model's deterministic predictions).

Run:
    python benchmarks/hmc.py --root ../shared/data/hmc --datasets cellcycle_FUN,derisi_GO \\
        --seeds 3 --out benchmarks/results/hmc.md [--search] [--ablations] [--calibration]

Ablations and calibration use the default configuration (no search) on the same seeds.

It works on any folder of HMC sets in that layout (NAME.train/valid/test.arff.gz; FunCat
path hierarchies or GO pair lists; numeric and nominal attributes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Callable, Sequence

import numpy as np
import torch

from taskgraph.datasets.hmc import load_hmc
from taskgraph.memory import reuse_freed_memory
from taskgraph.metrics.calibration import binary_calibration_columns
from taskgraph.metrics.hierarchical import auprc_bar
from taskgraph.recipes.hmc import HMC_SEARCH, predict_matrix, train_hmc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from published import BEST, PUBLISHED  # noqa: E402

ABLATIONS = {
    "no message passing": {"rounds": 0},
    "messages zeroed": {"zero_messages": True},
    "fixed synapses": {"synapse": {"kind": "fixed", "mean": 1.0}},
    "no coherence": {"coherent": False},
}
#: More variants, run only when named with ``--variants``.
VARIANTS = {**ABLATIONS,
            "stochastic dense layers": {"stochastic": {"heads": True, "projections": True}}}
DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "hmc")


def mean_std(values: list[float]) -> str:
    """``mean ± std`` (sample std, 4 decimals) over seeds; one seed is said as such."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1):.4f}"


def per_label_ece(model, data, samples: int) -> float:
    """Mean over evaluated labels (with a positive in test) of the 15-bin ECE."""
    P = predict_matrix(model, data.test.X, samples=samples)
    Y = data.test.Y
    cols = [c for c in data.eval_columns if Y[:, c].any()]
    out = binary_calibration_columns(Y[:, cols], P[:, cols], np.ones_like(Y[:, cols], bool))
    return float(np.nanmean(out["ece"]))


def rare_columns(data, fraction: float = 1 / 3) -> np.ndarray:
    """The evaluated labels with the fewest training positives: the rarest ``fraction``
    of ``data.eval_columns`` (ties broken by column order), the label-scarce tasks."""
    cols = np.asarray(data.eval_columns)
    positives = (np.asarray(data.train.Y)[:, cols] == 1).sum(axis=0)
    order = np.argsort(positives, kind="stable")
    return np.sort(cols[order[:max(1, int(round(len(cols) * fraction)))]])


def rare_auprc(model, data) -> float:
    """Test AU(PRC)-bar (micro AP) over :func:`rare_columns` only."""
    P = predict_matrix(model, data.test.X)
    keep = set(rare_columns(data).tolist())
    return auprc_bar(data.test.Y, P, exclude=[c for c in range(P.shape[1]) if c not in keep])


def candidate_label(index: int) -> str:
    """``#i`` for the i-th candidate of HMC_SEARCH (``#0`` is the default)."""
    return f"#{index}"


def run_dataset(name: str, root: str, seeds: Sequence[int], *, ablations: bool | Sequence[str],
                calibration: bool, epochs: int | None, refit: bool, search: str | None,
                search_budget: dict | None = None, train: dict | None = None,
                on_seed: Callable[[dict], None] = lambda row: None) -> dict:
    data = load_hmc(name, root).preprocessed()
    chosen_variants = ({k: VARIANTS[k] for k in ablations}
                       if ablations and not isinstance(ablations, bool) else ABLATIONS)
    row: dict = {"name": name, "labels": len(data.eval_columns), "scores": [], "violations": 0,
                 "seconds": [], "epochs": [], "ablations": {k: [] for k in chosen_variants},
                 "rare": [], "rare_ablations": {k: [] for k in chosen_variants},
                 "ece_mc": [], "ece_det": [], "chosen": [], "trials": []}
    for seed in seeds:
        result = train_hmc(data, seed=seed, epochs=epochs, progress=False, refit=refit,
                           train_overrides=train,
                           search="optuna" if search == "optuna" else bool(search),
                           search_budget=search_budget if search == "optuna" else None)
        done = [i for i, t in enumerate(result.trials)
                if t.get("state", "complete") == "complete"]
        chosen = max(done, key=lambda i: result.trials[i]["valid_auprc"])
        row["chosen"].append(candidate_label(chosen) if search != "optuna" else
                             f"trial {result.trials[chosen]['number']} "
                             f"{result.trials[chosen]['params']}")
        row["trials"].append([t["valid_auprc"] for t in result.trials])
        for i, trial in enumerate(result.trials):
            score = trial["valid_auprc"]
            print(f"  {name} seed {seed} candidate {candidate_label(i)}"
                  f"{' (' + trial['state'] + ')' if 'state' in trial else ''}: valid "
                  f"{'—' if score is None else f'{score:.4f}'} at epoch {trial['epoch']}",
                  flush=True)
        row["scores"].append(result.test_auprc)
        row["violations"] += result.violations
        row["seconds"].append(result.seconds)
        row["epochs"].append(result.history.best_epoch)
        print(f"  {name} seed {seed}: test AU(PRC)-bar {result.test_auprc:.4f} "
              f"(valid {result.valid_auprc:.4f}, epoch {result.history.best_epoch}, "
              f"{result.seconds:.0f} s, violations {result.violations})", flush=True)
        row["rare"].append(rare_auprc(result.model, data))
        print(f"  {name} seed {seed}: rarest third {row['rare'][-1]:.4f}", flush=True)
        if calibration:
            row["ece_mc"].append(per_label_ece(result.model, data, 32))
            row["ece_det"].append(per_label_ece(result.model, data, 0))
        if ablations:
            for label, override in chosen_variants.items():
                ab = train_hmc(data, seed=seed, epochs=epochs, progress=False, refit=refit,
                               overrides=override)
                row["ablations"][label].append(ab.test_auprc)
                row["rare_ablations"][label].append(rare_auprc(ab.model, data))
                print(f"    {label}: {ab.test_auprc:.4f}", flush=True)
                print(f"    {label} rarest third: {row['rare_ablations'][label][-1]:.4f}",
                      flush=True)
        on_seed(row)  # the table so far: a long run that is stopped keeps its seeds
    return row


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        "# HMC benchmark", "",
        f"`python benchmarks/hmc.py --datasets {args.datasets} "
        f"{'--seed-list ' + args.seed_list if args.seed_list else '--seeds ' + str(args.seeds)}"
        f"{' --ablations' if args.ablations else ''}{f' --variants {chr(34)}{args.variants}{chr(34)}' if args.variants else ''}{' --calibration' if args.calibration else ''}"
        f"{' --no-refit' if not args.refit else ''}{' --search' if args.search == 'candidates' else ''}{' --search optuna' if args.search == 'optuna' else ''}"
        f"{f' --epochs {args.epochs}' if args.epochs else ''}"
        f"{f' --train {chr(39)}{args.train}{chr(39)}' if args.train else ''}`", "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads). Seeds {args.seed_list or f'0..{args.seeds - 1}'}. "
        f"Scores: test AU(PRC)-bar, mean ± std over seeds; published numbers from "
        f"benchmarks/published.py (DESIGN.md §5)."
        + (" Search candidates (`taskgraph.recipes.hmc.HMC_SEARCH`): " + "; ".join(
            f"{candidate_label(i)} {c or 'the default'}" for i, c in enumerate(HMC_SEARCH))
           + "." if args.search == "candidates" else "")
        + (f" Optuna search: up to {args.search_trials} trials or {args.search_timeout:.0f} s "
           "per data set and seed." if args.search == "optuna" else ""), "",
        "| data set | labels | taskgraph | C-HMCNN | HMCN-F | DHN | best published | "
        "at or above best | coherence violations | epochs (valid) | chosen on valid | "
        "wall time per seed |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|"]
    for r in rows:
        pub = PUBLISHED.get(r["name"], {})
        best = BEST.get(r["name"], max(pub.values()) if pub else None)
        mean = float(np.mean(r["scores"]))
        beats = "—" if best is None else ("yes" if mean >= best else "no")
        lines.append(
            f"| {r['name']} | {r['labels']} | {mean_std(r['scores'])} | "
            f"{pub.get('C-HMCNN', '—')} | {pub.get('HMCN-F', '—')} | {pub.get('DHN', '—')} | "
            f"{'—' if best is None else best} | {beats} | "
            f"{r['violations']} | {', '.join(map(str, r['epochs']))} | "
            f"{', '.join(r['chosen'])} | {np.mean(r['seconds']):.0f} s |")
    if args.search == "optuna":
        lines += ["", "## The Optuna search on valid (per seed: trials with a valid score, "
                  "the best valid AU(PRC)-bar; the chosen trial is in the table above)", ""]
        for r in rows:
            lines.append(f"- {r['name']}: " + "; ".join(
                f"{sum(v is not None for v in t)} trials, best {max(v for v in t if v is not None):.4f}"
                for t in r["trials"]))
    elif args.search:
        lines += ["", "## The search on valid (valid AU(PRC)-bar of each candidate, per seed)",
                  "", "| data set | " + " | ".join(
                      candidate_label(i) for i in range(len(HMC_SEARCH))) + " |",
                  "|---|" + "---:|" * len(HMC_SEARCH)]
        for r in rows:
            lines.append(f"| {r['name']} | " + " | ".join(
                ", ".join(f"{t[i]:.4f}" for t in r["trials"]) for i in range(len(HMC_SEARCH)))
                + " |")
    if args.ablations:
        names = list(rows[0]["ablations"]) if rows else list(ABLATIONS)
        lines += ["", "## Ablations (same seeds, test AU(PRC)-bar)", "",
                  "| data set | full model | " + " | ".join(names) + " |",
                  "|---|---:|" + "---:|" * len(names)]
        for r in rows:
            lines.append(f"| {r['name']} | {mean_std(r['scores'])} | " + " | ".join(
                mean_std(r["ablations"][k]) for k in names) + " |")
        lines += ["", "## Ablations on the rarest third of labels (fewest training positives; "
                  "test AU(PRC)-bar over those labels)", "",
                  "| data set | full model | " + " | ".join(names) + " |",
                  "|---|---:|" + "---:|" * len(names)]
        for r in rows:
            lines.append(f"| {r['name']} | {mean_std(r['rare'])} | " + " | ".join(
                mean_std(r["rare_ablations"][k]) for k in names) + " |")
    if args.calibration:
        lines += ["", "## Calibration (mean per-label ECE on test, 15 bins; lower is better)", "",
                  "| data set | deterministic synapses (means) | MC, samples=32 |",
                  "|---|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['name']} | {mean_std(r['ece_det'])} | {mean_std(r['ece_mc'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HMC benchmark (see the module docstring)")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="folder of NAME.*.arff.gz files")
    parser.add_argument("--datasets", default="cellcycle_FUN",
                        help="comma-separated names, e.g. cellcycle_FUN,derisi_GO")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1")
    parser.add_argument("--seed-list", default=None,
                        help="comma-separated seeds instead of --seeds (e.g. 3,4)")
    parser.add_argument("--epochs", type=int, default=None, help="cap on epochs")
    parser.add_argument("--no-refit", dest="refit", action="store_false",
                        help="score the train-only model instead of refitting on train+valid")
    parser.add_argument("--search", nargs="?", const="candidates", default=None,
                        choices=["candidates", "optuna"],
                        help="choose on valid per data set: among "
                             "taskgraph.recipes.hmc.HMC_SEARCH (bare --search), or by the "
                             "Optuna search over taskgraph.recipes.search.HMC_SPACE")
    parser.add_argument("--search-trials", type=int, default=30,
                        help="--search optuna: trials per data set and seed")
    parser.add_argument("--search-timeout", type=float, default=3600.0,
                        help="--search optuna: seconds per data set and seed")
    parser.add_argument("--ablations", action="store_true",
                        help="also train the ablations (" + ", ".join(ABLATIONS) + ")")
    parser.add_argument("--variants", default=None,
                        help="with --ablations: comma-separated variants to run instead, "
                             "from: " + ", ".join(VARIANTS))
    parser.add_argument("--calibration", action="store_true")
    parser.add_argument("--train", default=None, metavar="JSON",
                        help='changes to HMC_CONFIG["train"] for every run, e.g. '
                             "'{\"weight_decay\": 0}' (a control for one setting)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                      "hmc.md"))
    args = parser.parse_args(argv)
    if not os.path.isdir(args.root):
        print(f"no data folder {args.root}; pass --root DIR", file=sys.stderr)
        return 2
    try:
        train = json.loads(args.train) if args.train else None
        if train is not None and not isinstance(train, dict):
            raise ValueError("expected a JSON object")
    except ValueError as err:
        print(f"--train: {err}", file=sys.stderr)
        return 2
    reuse_freed_memory()  # GO-sized projections: no page faults on every step
    tic = time.perf_counter()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    rows: list[dict] = []
    seeds = ([int(s) for s in args.seed_list.split(",")] if args.seed_list
             else list(range(args.seeds)))

    def write(partial: list[dict]) -> str:
        text = markdown(partial, args)
        with open(args.out, "w", encoding="utf-8") as fh:  # after every seed
            fh.write(text)
        return text

    wanted: bool | list[str] = args.ablations
    if args.ablations and args.variants:
        wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
        unknown = [v for v in wanted if v not in VARIANTS]
        if unknown:
            print(f"--variants: unknown {', '.join(map(repr, unknown))}; choose from "
                  + ", ".join(VARIANTS), file=sys.stderr)
            return 2
    text = ""
    for name in (n.strip() for n in args.datasets.split(",")):
        if name:
            rows.append(run_dataset(name, args.root, seeds, ablations=wanted,
                                    calibration=args.calibration, epochs=args.epochs,
                                    refit=args.refit, search=args.search,
                                    search_budget={"n_trials": args.search_trials,
                                                   "timeout": args.search_timeout},
                                    train=train, on_seed=lambda row: write(rows + [row])))
            text = write(rows)
    print(text)
    print(f"total {time.perf_counter() - tic:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
