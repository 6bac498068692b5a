"""HMC baselines in one harness: taskgraph against HiClass, a flat MLP and C-HMCNN-style.

Every method sees the same preprocessed splits (``load_hmc(...).preprocessed()``: mean
imputation and standardization fitted on train + valid) and is scored the same way:

- **AU(PRC)-bar** on test: micro average precision over all labels but the roots
  (``taskgraph.metrics.hierarchical.auprc_bar(Y, P, exclude=roots)``, as benchmarks/hmc.py);
- **hierarchical F1** on test (``hierarchical_prf``: predicted and true sets closed under
  ancestors, hF = 2|P∩T| / (|P| + |T|), roots excluded) at the threshold that maximizes
  hF on **valid**, over the grid 0.05, 0.10, ..., 0.95;
- **coherence violations** on test: (example, edge) pairs with p(parent) < p(child);
- **wall time** of the method's fits and predictions.

Protocol: what a method chooses (epochs, threshold) is chosen with a model trained on
train and scored on valid; the model scored on test is then trained on train + valid
(``--no-refit``: the train-only model is scored), as C-HMCNN does.

Methods (``--methods``, comma-separated):

- ``taskgraph``: the default recipe (``train_hmc(refit=True)``); ``taskgraph-search``:
  the same with ``search="optuna"`` under ``--search-trials`` / ``--search-timeout``;
- ``flat``: the flat MLP: the same recipe on the same hierarchy with its edges removed
  (``rounds`` 0, no coherence): the MLP encoder and one independent sigmoid per label,
  trained exactly like taskgraph (so the difference is what the hierarchy and the
  message passing buy);
- ``chmcnn``: the C-HMCNN-style re-implementation of benchmarks/chmcnn_speed.py (MLP
  500 x 2, dropout 0.7, max constraint over descendants, MC loss, Adam lr 1e-4,
  batch 4), epochs chosen on valid (patience ``--chmcnn-patience``, at most
  ``--chmcnn-epochs``). Its training constraint is the dense float64 (B, T, T) product,
  as in C-HMCNN, up to ``--dense-max-labels`` labels; above that (the GO sets, where one
  epoch would take half an hour) it is taskgraph's O(B(T+E)) ``Coherence`` sweep, which
  computes the same maximum. Predictions always use the sweep;
- ``hiclass-{lcpn,lcppn}-{lr,rf}``: HiClass's multi-label local classifier per node /
  per parent node with logistic regression / a random forest (``--rf-trees``), in the
  HiClass 4.13 interpreter given by ``--hiclass-python`` (see benchmarks/_hiclass.py:
  HiClass 5 has no multi-label classifiers, and HiClass 4 cannot share taskgraph's
  scikit-learn). GO DAGs are given to HiClass as their first-parent spanning tree.

The markdown table is rewritten after every data set and seed. With ``--records FILE``
every (data set, seed, method) run is also appended to that JSON-lines file, and the
table is made from all its records for ``--datasets`` and ``--methods`` (the last record
of a (data set, seed, method) wins), so runs split over processes or sessions fill one
table; ``--table-only`` trains nothing and writes the table from the records.

Run:
    python benchmarks/hmc_baselines.py --datasets cellcycle_FUN,derisi_GO --seeds 3 \\
        --hiclass-python /opt/hiclass4/bin/python --out benchmarks/results/hmc_baselines.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from published import BEST  # noqa: E402

HICLASS = [f"hiclass-{k}-{b}" for k in ("lcpn", "lcppn") for b in ("lr", "rf")]
METHODS = ["taskgraph", "taskgraph-search", "flat", "chmcnn", *HICLASS]
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)
DEFAULT_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "hmc")


@dataclasses.dataclass
class Run:
    """One method on one data set and seed: valid and test scores, time, notes."""

    P_valid: np.ndarray
    P_test: np.ndarray
    seconds: float
    note: str = ""


def edges_of(data: Any) -> np.ndarray:
    """``(E, 2)`` (parent, child) label columns of the data set's hierarchy."""
    index = {n: i for i, n in enumerate(data.hierarchy.task_names)}
    return np.array([(index[p], index[c]) for p, c in data.hierarchy.graph.edges],
                     dtype=np.int64).reshape(-1, 2)


def roots_of(data: Any) -> list[int]:
    return sorted(set(range(len(data.hierarchy))) - set(np.asarray(data.eval_columns).tolist()))


def scores(data: Any, run: Run) -> dict[str, Any]:
    """AU(PRC)-bar and hF1 (threshold chosen on valid) on test, and violations."""
    from taskgraph.metrics.hierarchical import (auprc_bar, coherence_violations,
                                                hierarchical_prf)

    edges, roots = edges_of(data), roots_of(data)
    valid_f1 = [hierarchical_prf(data.valid.Y, run.P_valid, edges, threshold=t,
                                 exclude=roots)["f1"] or 0.0 for t in THRESHOLDS]
    t = float(THRESHOLDS[int(np.argmax(valid_f1))])
    test = hierarchical_prf(data.test.Y, run.P_test, edges, threshold=t, exclude=roots)
    return {"auprc": auprc_bar(data.test.Y, run.P_test, exclude=roots), "hf1": test["f1"],
            "threshold": t, "violations": coherence_violations(run.P_test, edges),
            "seconds": run.seconds, "note": run.note}


class _ValidPredictions:
    """A ``fit`` callback: per valid phase, the valid score and predictions of its best
    epoch so far (the scored, moving-average weights)."""

    def __init__(self, X: np.ndarray) -> None:
        self.X, self.phases = X, []

    def on_epoch_start(self, state: Any, epoch: int) -> None:
        if epoch == 1:
            self.phases.append((None, None))

    def on_epoch_end(self, state: Any, record: dict) -> None:
        from taskgraph.recipes.hmc import predict_matrix

        if "val_auprc_bar" in record and state.history.best_epoch == record["epoch"]:
            model = state.scored
            was = model.training
            self.phases[-1] = (record["val_auprc_bar"], predict_matrix(model.eval(), self.X))
            model.train(was)

    def chosen(self, valid_auprc: float) -> np.ndarray:
        """The predictions of the phase whose best valid score is the winner's."""
        return next(P for score, P in self.phases if score == valid_auprc)


def run_taskgraph(data: Any, seed: int, args: argparse.Namespace, *, search: bool = False,
                  flat: bool = False) -> Run:
    import taskgraph as tg
    from taskgraph.recipes.hmc import predict_matrix, train_hmc

    overrides = None
    if flat:  # the same tasks without edges: no messages, no coherence to keep
        tasks = {name: {"type": "binary"} for name in data.hierarchy.task_names}
        h = tg.load_hierarchy({"taskgraph": 1, "name": f"{data.name}_flat", "tasks": tasks})
        data, overrides = dataclasses.replace(data, hierarchy=h), {"rounds": 0,
                                                                     "coherent": False}
    watch = _ValidPredictions(data.valid.X)
    budget = {"n_trials": args.search_trials, "timeout": args.search_timeout}
    tic = time.perf_counter()
    result = train_hmc(data, seed=seed, epochs=args.epochs, progress=False, refit=args.refit,
                       overrides=overrides,
                       search="optuna" if search else False,
                       search_budget=budget if search else None, callbacks=[watch])
    seconds = time.perf_counter() - tic
    note = f"{result.epochs} epochs"
    if search:  # the winner: the best complete trial (ties: the first)
        won = next(t for t in result.trials
                   if t["state"] == "complete" and t["valid_auprc"] == result.valid_auprc)
        note = f"trial {won['number']} of {len(result.trials)}: {won['params']}, " + note
    return Run(watch.chosen(result.valid_auprc), predict_matrix(result.model, data.test.X),
               seconds, note)


def _chmcnn_epochs(model: Any, X: np.ndarray, Y: np.ndarray, cols: torch.Tensor, *,
                   epochs: int, seed: int, dense: bool, on_epoch: Callable[[int], bool]
                   ) -> None:
    """C-HMCNN's training step (batch 4, BCE of the MC-constrained outputs on the
    non-root labels), for up to ``epochs`` epochs; ``on_epoch(e)`` True stops."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    Yt = torch.as_tensor(Y, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in torch.randperm(len(Xt), generator=generator).split(4):
            x, y = Xt[idx], Yt[idx]
            optimizer.zero_grad()
            p = model(x).double()  # (B, T)
            constrain = model.constrain if dense else model.sweep
            out = (1 - y) * constrain(p) + y * constrain(y * p)
            loss = torch.nn.functional.binary_cross_entropy(out[:, cols], y[:, cols])
            loss.backward()
            optimizer.step()
        if on_epoch(epoch):
            return


def run_chmcnn(data: Any, seed: int, args: argparse.Namespace) -> Run:
    from chmcnn_speed import DenseConstrained, ancestor_matrix

    from taskgraph.metrics.hierarchical import auprc_bar
    from taskgraph.nn.coherence import Coherence

    T = len(data.hierarchy)
    dense = T <= args.dense_max_labels
    R = ancestor_matrix(data.hierarchy) if dense else torch.zeros(1, 1)
    sweep = Coherence(torch.as_tensor(edges_of(data).T), T)
    cols, roots = torch.as_tensor(np.asarray(data.eval_columns)), roots_of(data)

    def build() -> Any:
        torch.manual_seed(seed)
        model = DenseConstrained(data.train.X.shape[1], 500, 3, R)
        model.sweep = sweep
        return model

    @torch.no_grad()
    def predict(model: Any, X: np.ndarray) -> np.ndarray:
        model.eval()
        return torch.cat([sweep(model(x)) for x in torch.as_tensor(X).split(512)]).numpy()

    tic = time.perf_counter()
    model, best = build(), {"score": -1.0, "epoch": 0, "P": None, "bad": 0}

    def watch(epoch: int) -> bool:
        P = predict(model, data.valid.X)
        score = auprc_bar(data.valid.Y, P, exclude=roots)
        if score > best["score"]:
            best.update(score=score, epoch=epoch, P=P, bad=0, test=None)
            if not args.refit:
                best["test"] = predict(model, data.test.X)
        else:
            best["bad"] += 1
        return best["bad"] >= args.chmcnn_patience

    _chmcnn_epochs(model, data.train.X, data.train.Y, cols, epochs=args.chmcnn_epochs,
                   seed=seed, dense=dense, on_epoch=watch)
    P_test = best["test"]
    if args.refit:
        model = build()
        _chmcnn_epochs(model, np.concatenate([data.train.X, data.valid.X]),
                       np.concatenate([data.train.Y, data.valid.Y]), cols,
                       epochs=best["epoch"], seed=seed, dense=dense, on_epoch=lambda e: False)
        P_test = predict(model, data.test.X)
    return Run(best["P"], P_test, time.perf_counter() - tic,
               f"{best['epoch']} epochs, {'dense' if dense else 'sweep'} constraint")


def first_parent_tree(data: Any) -> np.ndarray:
    """``(T,)`` the column of each label's first parent (``-1``: a root)."""
    index = {n: i for i, n in enumerate(data.hierarchy.task_names)}
    return np.array([index[data.hierarchy[n].parents[0]] if data.hierarchy[n].parents else -1
                     for n in data.hierarchy.task_names], dtype=np.int64)


def run_hiclass(data: Any, seed: int, args: argparse.Namespace, method: str) -> Run:
    """Fit on train (valid scores), and on train + valid (test scores) unless no refit;
    in ``args.hiclass_python``'s interpreter (benchmarks/_hiclass.py as the worker)."""
    _, kind, base = method.split("-")
    parent = first_parent_tree(data)
    fits = [(data.train.X, data.train.Y, [data.valid.X] + ([] if args.refit else [data.test.X]))]
    if args.refit:
        fits.append((np.concatenate([data.train.X, data.valid.X]),
                     np.concatenate([data.train.Y, data.valid.Y]), [data.test.X]))
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_hiclass.py")
    out: list[np.ndarray] = []
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i, (X, Y, X_score) in enumerate(fits):
            source, target = os.path.join(tmp, f"in{i}.npz"), os.path.join(tmp, f"out{i}.npz")
            np.savez(source, kind=kind, base=base, X_fit=X, Y_fit=Y, parent=parent,
                     n_score=len(X_score), seed=seed, trees=args.rf_trees, jobs=args.jobs,
                     **{f"X_score{j}": x for j, x in enumerate(X_score)})
            subprocess.run([args.hiclass_python, worker, source, target], check=True,
                           env={**os.environ, "OMP_NUM_THREADS": str(args.jobs)})
            with np.load(target) as z:
                out += [z[f"S{j}"] for j in range(len(X_score))]
    dag = any(len(data.hierarchy[n].parents) > 1 for n in data.hierarchy.task_names)
    return Run(out[0], out[-1], time.perf_counter() - tic,
               "DAG given as its first-parent spanning tree" if dag else "")


def run_method(method: str, data: Any, seed: int, args: argparse.Namespace) -> Run:
    if method in ("taskgraph", "taskgraph-search", "flat"):
        return run_taskgraph(data, seed, args, search=method == "taskgraph-search",
                             flat=method == "flat")
    if method == "chmcnn":
        return run_chmcnn(data, seed, args)
    return run_hiclass(data, seed, args, method)


def _cell(values: list, fmt: str = "{:.4f}") -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{fmt.format(values[0])} (1 seed)"
    if len(set(values)) == 1:  # a deterministic fit (e.g. logistic regression)
        return f"{fmt.format(values[0])} (all {len(values)} seeds)"
    return f"{fmt.format(np.mean(values))} ± {fmt.format(np.std(values, ddof=1))}"


def markdown(rows: dict[str, dict[str, list[dict]]], args: argparse.Namespace,
             methods: list[str]) -> str:
    heads = {True: ("| data set | best published | " + " | ".join(methods) + " |",
                    "|---|---:|" + "---:|" * len(methods)),
             False: ("| data set | " + " | ".join(methods) + " |",
                     "|---|" + "---:|" * len(methods))}
    runs = [r for per in rows.values() for rs in per.values() for r in rs]
    machine = sorted({r["machine"] for r in runs if "machine" in r}) or [
        f"{platform.machine()}, {os.cpu_count()} CPUs"]
    threads = sorted({r["threads"] for r in runs if "threads" in r}) or [
        torch.get_num_threads()]
    seeds = sorted({r["seed"] for r in runs})
    lines = ["# HMC baselines (same splits, same metrics)", "",
             f"`python benchmarks/hmc_baselines.py {' '.join(sys.argv[1:])}`", "",
             f"Machine: {'; '.join(machine)}, torch {torch.__version__} "
             f"({', '.join(map(str, threads))} threads). Mean ± std over seeds "
             f"{', '.join(map(str, seeds))}; protocol and methods: the module "
             f"docstring of benchmarks/hmc_baselines.py; refit on train + valid: "
             f"{'yes' if args.refit else 'no'}.", ""]
    for title, key, fmt in (("Test AU(PRC)-bar", "auprc", "{:.4f}"),
                            ("Test hierarchical F1 at the threshold chosen on valid", "hf1",
                             "{:.4f}"),
                            ("Coherence violations on test (example, edge pairs)", "violations",
                             "{:.0f}"),
                            ("Wall time per seed (s)", "seconds", "{:.0f}")):
        lines += [f"## {title}", "", *heads[key == "auprc"]]
        for name, per in rows.items():
            cells = [_cell([r[key] for r in per.get(m, [])], fmt) for m in methods]
            best = "" if key != "auprc" else f" {BEST.get(name, '—')} |"
            lines.append(f"| {name} |{best} " + " | ".join(cells) + " |")
        lines.append("")
    if "taskgraph" in methods:
        lines += paired_lines(rows, [m for m in methods if m != "taskgraph"])
    lines += ["## Notes per seed", ""]
    for name, per in rows.items():
        for m in methods:
            for r in per.get(m, []):
                if r["note"]:
                    lines.append(f"- {name} {m} seed {r['seed']}: {r['note']}")
    return "\n".join(lines) + "\n"


def append_record(path: str, name: str, method: str, result: dict[str, Any]) -> None:
    """Append one finished (data set, seed, method) run to the JSON-lines file ``path``."""
    record = {"dataset": name, "method": method, **result,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "threads": torch.get_num_threads(), "torch": torch.__version__}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=lambda v: v.item()) + "\n")  # numpy scalars


def load_records(path: str, names: list[str], methods: list[str]
                 ) -> dict[str, dict[str, list[dict]]]:
    """``rows[name][method]``: the records of ``path`` for those data sets and methods,
    seeds ascending (the last record of a (data set, seed, method) wins)."""
    found: dict[tuple[str, str, int], dict] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    found[(r["dataset"], r["method"], int(r["seed"]))] = r
    rows: dict[str, dict[str, list[dict]]] = {}
    for name in names:
        per = {m: sorted((r for (n, mm, _), r in found.items() if n == name and mm == m),
                         key=lambda r: r["seed"]) for m in methods}
        if any(per.values()):
            rows[name] = per
    return rows


def paired_lines(rows: dict[str, dict[str, list[dict]]], others: list[str]) -> list[str]:
    """Markdown: taskgraph minus each other method in test AU(PRC)-bar, paired by seed
    (the seeds both have), mean ± sample std, and the paired t-test's p (3+ seeds)."""
    from scipy.stats import ttest_rel

    lines = ["## Test AU(PRC)-bar, taskgraph minus each method, paired by seed", "",
             "Mean ± std of the per-seed differences; `**`: beyond the seed spread (|mean| >"
             " std and paired t-test p < 0.05).", "",
             "| data set | " + " | ".join(others) + " |", "|---|" + "---:|" * len(others)]
    for name, per in rows.items():
        ours = {r["seed"]: r["auprc"] for r in per.get("taskgraph", [])}
        cells = []
        for m in others:
            theirs = {r["seed"]: r["auprc"] for r in per.get(m, [])}
            both = sorted(set(ours) & set(theirs))
            d = np.array([ours[s] - theirs[s] for s in both])
            if len(d) < 2:
                cells.append("—" if not len(d) else f"{d[0]:+.4f} (1 seed)")
                continue
            mean, std = d.mean(), d.std(ddof=1)
            p = ttest_rel([ours[s] for s in both], [theirs[s] for s in both]).pvalue \
                if len(d) >= 3 and std > 0 else float("nan")
            mark = " **" if abs(mean) > std and p < 0.05 else ""
            cells.append(f"{mean:+.4f} ± {std:.4f}{mark} ({len(d)} seeds)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="HMC baselines (see the module docstring)")
    p.add_argument("--root", default=DEFAULT_ROOT)
    p.add_argument("--datasets", default="cellcycle_FUN")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed-list", default=None, help="comma-separated seeds (e.g. 3,4)")
    p.add_argument("--methods", default=",".join(METHODS), help=", ".join(METHODS))
    p.add_argument("--no-refit", dest="refit", action="store_false")
    p.add_argument("--epochs", type=int, default=None,
                   help="ceiling on taskgraph's valid-phase epochs (default: the recipe's)")
    p.add_argument("--search-trials", type=int, default=30)
    p.add_argument("--search-timeout", type=float, default=3600.0)
    p.add_argument("--chmcnn-epochs", type=int, default=200)
    p.add_argument("--chmcnn-patience", type=int, default=20)
    p.add_argument("--dense-max-labels", type=int, default=1000)
    p.add_argument("--hiclass-python", default=None,
                   help="interpreter with hiclass==4.13.3 (needed for the hiclass-* methods)")
    p.add_argument("--rf-trees", type=int, default=100)
    p.add_argument("--jobs", type=int, default=1, help="threads of the HiClass fits")
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                 "hmc_baselines.md"))
    p.add_argument("--records", default=None,
                   help="JSON-lines file: append every run to it and make the table from "
                        "all its records for --datasets and --methods")
    p.add_argument("--table-only", action="store_true",
                   help="train nothing: write the table from --records")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or (any(m in HICLASS for m in methods) and not args.hiclass_python
                   and not args.table_only):
        print(f"unknown methods {unknown}; expected some of {METHODS}" if unknown else
              "the hiclass-* methods need --hiclass-python (benchmarks/_hiclass.py)",
              file=sys.stderr)
        return 2
    from taskgraph.atomic import atomic_write
    from taskgraph.datasets.hmc import load_hmc

    seeds = ([int(s) for s in args.seed_list.split(",")] if args.seed_list
             else list(range(args.seeds)))
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    if args.table_only and not args.records:
        print("--table-only needs --records FILE", file=sys.stderr)
        return 2
    rows: dict[str, dict[str, list[dict]]] = {}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)

    def write_table() -> None:
        table = load_records(args.records, names, methods) if args.records else rows
        with atomic_write(args.out, "w", encoding="utf-8") as fh:
            fh.write(markdown(table, args, methods))

    for name in ([] if args.table_only else names):
        data = load_hmc(name, args.root).preprocessed()
        rows[name] = {m: [] for m in methods}
        for seed in seeds:
            for m in methods:
                r = dict(scores(data, run_method(m, data, seed, args)), seed=seed)
                rows[name][m].append(r)
                if args.records:
                    append_record(args.records, name, m, r)
                print(f"{name} seed {seed} {m}: AU(PRC)-bar {r['auprc']:.4f}, hF1 "
                      f"{r['hf1'] or 0:.4f} (t={r['threshold']}), {r['violations']} "
                      f"violations, {r['seconds']:.0f} s {r['note']}", flush=True)
            write_table()  # after every seed
    write_table()
    with open(args.out, encoding="utf-8") as fh:
        print(fh.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
