"""Benchmark: message passing when the child task is label-scarce (Fashion-MNIST, 1 % items).

The setting of ``examples/images_hierarchy.py``: ``hierarchies/fashion.yaml`` (kind ->
group -> item), every training image keeps its kind and group, only ``--labelled`` (1 %)
of them keep the item; a small CNN encoder; the same number of batches of 64 for every
run, about half of each batch drawn from the item-labelled images. Scored: item accuracy
and item NLL on the test images.

Variants (same seed, same data, same batches):

- ``full``: the hierarchy's model (``rounds: 2``, messages along the edges);
- ``rounds0``: no message passing (``rounds: 0``);
- ``zeroed``: the ``full`` model with every message multiplied by 0, everything else
  kept (``TaskGraphModel.zero_messages``), trained and scored that way.

Mean ± std over seeds and the paired difference full − variant with a paired t-test.

Data: ``apt-get install dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``)
or ``--data DIR``.

Run:
    python benchmarks/fashion_scarce.py --seeds 5 --train-size 20000 --epochs 2 \\
        --out benchmarks/results/fashion_scarce.md
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "examples"))

import taskgraph as tg  # noqa: E402
from images_hierarchy import DATA, FILES, cnn, has_fashion, load_split  # noqa: E402
from taskgraph.atomic import atomic_write  # noqa: E402
from taskgraph.train import make_loader  # noqa: E402

VARIANTS = ("full", "rounds0", "zeroed")


def scarce_targets(h, y_train: np.ndarray, fraction: float, rng: np.random.Generator):
    """Kind and group for every image, the item for ``fraction`` of each class."""
    items = h["item"].classes
    to_group = dict(dict(h["item"].class_parents)["group"])
    to_kind = dict(dict(h["group"].class_parents)["kind"])
    keep = np.concatenate([rng.permutation(np.flatnonzero(y_train == c))[
        :max(1, round(fraction * (y_train == c).sum()))] for c in range(len(items))])
    item = np.full(len(y_train), -1)
    item[keep] = y_train[keep]
    names = [items[c] for c in y_train]
    return ({"kind": [to_kind[to_group[n]] for n in names],
             "group": [to_group[n] for n in names], "item": item}, keep)


def run(h, variant: str, seed: int, x_train, targets, keep, x_test, y_test, steps: int,
        device: str) -> dict[str, float]:
    """Train one variant for exactly ``steps`` batches; item accuracy and NLL on test."""
    torch.manual_seed(seed)
    override = {"rounds": 0} if variant == "rounds0" else {}
    model = tg.compile(h, encoder=cnn(), encoder_dim=128, task_dim=32, **override).to(device)
    model.zero_messages = variant == "zeroed"
    data = tg.TaskDataset(x_train, targets, h)
    weight = np.full(len(data), 0.5 / len(data))
    weight[keep] += 0.5 / len(keep)
    sampler = WeightedRandomSampler(weight.tolist(), num_samples=64 * steps,
                                    generator=torch.Generator().manual_seed(seed))
    tic = time.perf_counter()
    tg.fit(model, DataLoader(data, batch_size=64, sampler=sampler), epochs=1, lr=2e-3,
           progress=False, seed=seed)
    seconds = time.perf_counter() - tic
    test = make_loader(tg.TaskDataset(x_test, {"item": y_test}, h), batch_size=512,
                       shuffle=False)
    probs = []
    with torch.no_grad():
        for x, _ in ((b[0], b[1]) if isinstance(b, (tuple, list)) else (b["x"], None)
                     for b in test):
            probs.append(model.predict(x.to(device))["item"].probs.cpu())
    p = torch.cat(probs).numpy().astype(np.float64)  # (N, 10)
    p_true = np.clip(p[np.arange(len(y_test)), y_test], 1e-7, 1.0)
    return {"accuracy": float((p.argmax(1) == y_test).mean()),
            "nll": float(-np.log(p_true).mean()), "seconds": seconds}


def fmt(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def markdown(results: dict[int, dict[str, dict[str, float]]], args, n_keep: int) -> str:
    from scipy.stats import ttest_rel

    seeds = sorted(s for s, r in results.items() if len(r) == len(VARIANTS))
    lines = ["# Label-scarce child task: Fashion-MNIST items with 1 % labels", "",
             f"`python benchmarks/fashion_scarce.py --seed-list {','.join(map(str, seeds))} "
             f"--train-size {args.train_size} --epochs {args.epochs} --labelled {args.labelled}`",
             "", f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch "
             f"{torch.__version__} ({torch.get_num_threads()} threads), device {args.device}. "
             f"{args.train_size} training images (all with kind and group), {n_keep} with an item "
             f"label; {args.test_size} test images; {args.steps} batches of 64 per run. "
             "Seeds " + ", ".join(map(str, seeds)) + "; mean ± std (sample std) over seeds, "
             "paired differences full − variant with a paired t-test.", ""]
    if not seeds:
        return "\n".join(lines + ["(no seed finished yet)", ""])
    for metric, better in (("accuracy", "higher"), ("nll", "lower")):
        lines += [f"## Item {metric} on test ({better} is better)", "",
                  f"| variant | item {metric} | full − variant | paired t-test p |",
                  "|---|---:|---:|---:|"]
        full = [results[s]["full"][metric] for s in seeds]
        for v in VARIANTS:
            vals = [results[s][v][metric] for s in seeds]
            if v == "full":
                lines.append(f"| {v} | {fmt(vals)} | – | – |")
                continue
            diff = [a - b for a, b in zip(full, vals)]
            p = ttest_rel(full, vals).pvalue if len(seeds) > 1 else float("nan")
            lines.append(f"| {v} | {fmt(vals)} | {fmt(diff)} | {p:.3g} |")
        lines.append("")
    secs = {v: statistics.mean(results[s][v]["seconds"] for s in seeds) for v in VARIANTS}
    lines += ["Training time per run (mean): " + ", ".join(
        f"{v} {secs[v]:.0f} s" for v in VARIANTS) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--labelled", type=float, default=0.01)
    parser.add_argument("--train-size", type=int, default=20_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2, help="passes over the training images")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seed-list", default=None, help="comma-separated seeds")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                      "fashion_scarce.md"))
    args = parser.parse_args(argv)
    if not has_fashion(args.data):
        print(f"Fashion-MNIST is not in {args.data} (apt-get install dataset-fashion-mnist, "
              "or --data DIR)", file=sys.stderr)
        return 2
    h = tg.load_hierarchy(os.path.join(ROOT, "hierarchies", "fashion.yaml"))
    (x_all, y_all), (x_test, y_test) = (load_split(args.data, s) for s in FILES)
    x_test, y_test = x_test[:args.test_size], y_test[:args.test_size]
    args.steps = args.epochs * math.ceil(args.train_size / 64)
    seeds = ([int(s) for s in args.seed_list.split(",")] if args.seed_list
             else list(range(args.seeds)))
    results: dict[int, dict[str, dict[str, float]]] = {}
    n_keep = 0
    for seed in seeds:
        rng = np.random.default_rng(seed)  # the images and which of them keep the item
        pick = rng.permutation(len(y_all))[:args.train_size]
        x_train, y_train = x_all[pick], y_all[pick]
        targets, keep = scarce_targets(h, y_train, args.labelled, rng)
        n_keep = len(keep)
        results[seed] = {}
        for variant in VARIANTS:
            r = run(h, variant, seed, x_train, targets, keep, x_test, y_test, args.steps,
                    args.device)
            results[seed][variant] = r
            print(f"seed {seed} {variant}: item accuracy {r['accuracy']:.4f}, NLL "
                  f"{r['nll']:.4f} ({r['seconds']:.0f} s)", flush=True)
        with atomic_write(args.out) as fh:  # the table so far, after every seed
            fh.write(markdown(results, args, n_keep))
    print(markdown(results, args, n_keep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
