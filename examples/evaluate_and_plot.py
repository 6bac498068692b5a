"""Train, evaluate and draw: the animals hierarchy on synthetic tabular data.

``hierarchies/animals.yaml`` asks whether an animal is a mammal, what it eats and which
species it is (cat, dog, cow, eagle; each species' diet is fixed by ``class_parents``),
and regresses its weight. This example makes synthetic animals (16 numeric features
around a centre per species; 30 % of the species labels missing), trains with a
validation set, prints ``tg.evaluate(...).to_markdown()`` and saves pictures:

* ``training_curves.png``: loss per epoch (training, its KL part, validation);
* ``reliability.png``: reliability diagrams of the classification tasks;
* ``task_graph.png`` and ``synapses.png``: the task graph with the learned synapses and
  the distributions of their sampled weights.

The pictures come from ``taskgraph.viz``; without it, the training curves are drawn with
matplotlib here and the other pictures are skipped with a note.

Run:
    python examples/evaluate_and_plot.py [--n 4000] [--epochs 20] [--out example-output/]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

import taskgraph as tg
from taskgraph.train import make_loader

HIERARCHY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hierarchies",
                         "animals.yaml")
SPECIES = {"cat": ("carnivore", 4.0), "dog": ("omnivore", 20.0), "cow": ("herbivore", 600.0),
           "eagle": ("carnivore", 5.0)}  # diet, typical weight in kg


def make_animals(n: int, d: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    names = list(SPECIES)
    centres = rng.normal(scale=0.5, size=(len(names), d))
    species = rng.integers(0, len(names), n)
    X = centres[species] + rng.normal(size=(n, d))
    kg = np.array([SPECIES[names[s]][1] for s in species]) * np.exp(0.2 * rng.normal(size=n))
    labels = {"mammal": [int(names[s] != "eagle") for s in species],
              "diet": [SPECIES[names[s]][0] for s in species],
              "species": [names[s] if rng.random() > 0.3 else None for s in species],
              "weight_kg": np.log10(kg)}  # regress log10(kg)
    return X.astype(np.float32), labels


def curves_by_hand(history: tg.History, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for key in ("loss", "kl", "val_loss"):
        if key in history.keys():
            ax.plot(history["epoch"], history[key], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000, help="animals (train/val/test)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="800 animals, 4 epochs, one thread")
    parser.add_argument("--out", default="example-output/evaluate_and_plot")
    args = parser.parse_args()
    if args.quick:
        torch.set_num_threads(1)
        args.n, args.epochs = min(args.n, 800), min(args.epochs, 4)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)

    h = tg.load_hierarchy(HIERARCHY)
    X, labels = make_animals(args.n, 16, np.random.default_rng(args.seed))
    parts = np.split(np.arange(args.n), [int(0.7 * args.n), int(0.85 * args.n)])
    train, val, test = (tg.TaskDataset(X[i], {k: [v[j] for j in i] for k, v in labels.items()},
                                       h) for i in parts)
    model = tg.compile(h, in_features=X.shape[1], encoder_spec={"hidden": [64]}, task_dim=32)
    test_loader = make_loader(test, batch_size=256, shuffle=False)
    history = tg.fit(model, make_loader(train, batch_size=64, seed=args.seed),
                     val_loader=make_loader(val, batch_size=256, shuffle=False),
                     epochs=args.epochs, lr=3e-3, progress=False, seed=args.seed)
    print(f"{len(train)} train / {len(val)} validation / {len(test)} test synthetic animals; "
          f"final training loss {history['loss'][-1]:.4f}, validation loss "
          f"{history['val_loss'][-1]:.4f}\n")
    report = tg.evaluate(model, test_loader, samples=16)
    print(report.to_markdown())

    print("learned synapses (expected weight, std, release probability):")
    for row in model.synapses():
        print(f"  {row['parent']:>8} -> {row['child']:<9} {row['direction']:<4} "
              f"{row['kind']:<9} mean {row['mean']:.3f}  std {row['std']:.3f}  p {row['p']:.3f}")

    try:
        import taskgraph.viz as viz
    except ImportError:
        viz = None
    out = {name: os.path.join(args.out, name) for name in
           ("training_curves.png", "reliability.png", "task_graph.png", "synapses.png")}
    if viz is not None:
        viz.plot_training_curves(history, out["training_curves.png"])
        viz.plot_reliability(model, test_loader, out["reliability.png"], samples=16)
        viz.draw(model, out["task_graph.png"], directions="both")
        viz.plot_synapses(model, out["synapses.png"])
    else:
        curves_by_hand(history, out["training_curves.png"])
        print("\nnote: taskgraph.viz is not available; only the training curves were drawn "
              "(the task graph, reliability and synapse pictures need taskgraph.viz)")
        out = {"training_curves.png": out["training_curves.png"]}
    print("\nwrote " + ", ".join(out.values()))


if __name__ == "__main__":
    main()
