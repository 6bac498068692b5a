"""A hierarchical linear classifier with the scikit-learn interface.

``hierarchies/cell_functions.yaml`` is a small Gene-Ontology-style label DAG: seven
yes/no functions of a gene, where a gene with a function also has every ancestor
function (``lipid_signaling`` sits under two parents). This example makes synthetic
genes (numpy features; labels from linear rules that respect the DAG), hides 30 % of the
labels as -1 (missing), and fits :class:`taskgraph.sklearn.TaskGraphClassifier` with no
hidden encoder layer (``hidden=()``): each task reads a linear projection of the
features, and message passing along the DAG shares what related tasks learned. The
model is coherent (a parent is never less likely than its child).

It prints the per-task test accuracy, a few predictions, and saves the weight-sharing
picture: the cosine similarity of the learned task embeddings (``model_.task_embeddings()``).

Run:
    python examples/linear_hierarchy_sklearn.py [--n 3000] [--epochs 60] [--out example-output/]
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import taskgraph as tg
from taskgraph.sklearn import TaskGraphClassifier

HIERARCHY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "hierarchies",
                         "cell_functions.yaml")


def make_genes(h: tg.Hierarchy, n: int, d: int, rng: np.random.Generator) -> tuple:
    """Features (n, d) and coherent 0/1 labels (n, T): a gene has a function when its own
    linear rule fires and it has all the parent functions."""
    X = rng.normal(size=(n, d))
    rules = rng.normal(size=(len(h), d))
    Y = np.zeros((n, len(h)), dtype=np.int64)
    for j, task in enumerate(h.task_names):  # hierarchy order lists parents first
        own = X @ rules[j] > -0.3
        parents = [Y[:, h.task_names.index(p)] == 1 for p in h.parents(task)]
        Y[:, j] = np.logical_and.reduce([own, *parents])
    return X.astype(np.float32), Y


def weight_sharing_png(model, path: str) -> None:
    """Cosine similarity of the task embeddings, drawn with taskgraph.viz if it is there."""
    try:
        import taskgraph.viz as viz
    except ImportError:
        viz = None
    if viz is not None:
        viz.plot_weight_sharing(model, path)
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    emb = model.task_embeddings().numpy()
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    names = model.hierarchy.task_names
    fig = Figure(figsize=(6, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(emb @ emb.T, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_title("cosine similarity of learned task embeddings")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="genes (train + test)")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--missing", type=float, default=0.3, help="fraction of labels hidden")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="600 genes, 8 epochs, one thread")
    parser.add_argument("--out", default="example-output/linear_hierarchy_sklearn")
    args = parser.parse_args()
    if args.quick:
        import torch

        torch.set_num_threads(1)
        args.n, args.epochs = min(args.n, 600), min(args.epochs, 8)
    os.makedirs(args.out, exist_ok=True)

    h = tg.load_hierarchy(HIERARCHY)
    rng = np.random.default_rng(args.seed)
    X, Y = make_genes(h, args.n, args.features, rng)
    n_train = int(0.8 * args.n)
    Y_train = Y[:n_train].copy()
    Y_train[rng.random(Y_train.shape) < args.missing] = -1  # -1: label not known
    print(f"{n_train} training genes, {args.n - n_train} test genes, {len(h)} functions; "
          f"{(Y_train == -1).mean():.0%} of the training labels missing")

    clf = TaskGraphClassifier(h, hidden=(), task_dim=16, epochs=args.epochs, lr=3e-3,
                              random_state=args.seed)
    clf.fit(X[:n_train], Y_train)
    X_test, Y_test = X[n_train:], Y[n_train:]
    P = clf.predict(X_test)  # (n_test, T) 0/1
    print(f"\nmean per-task test accuracy (score): {clf.score(X_test, Y_test):.3f}")
    print(f"{'function':<24} {'positives':>9} {'accuracy':>9}")
    for j, task in enumerate(h.task_names):
        print(f"{task:<24} {Y_test[:, j].mean():>9.2f} {(P[:, j] == Y_test[:, j]).mean():>9.3f}")

    proba = clf.predict_proba(X_test[:3])  # one (n, 2) array per task
    print("\nthree test genes: P(function) / true label")
    for i in range(3):
        cells = ", ".join(f"{t} {proba[j][i, 1]:.2f}/{Y_test[i, j]}"
                          for j, t in enumerate(h.task_names))
        print(f"  gene {i}: {cells}")
    parent, child = np.array([[h.task_names.index(p), h.task_names.index(c)]
                              for p, c in h.graph.edges]).T
    probs = np.stack([p[:, 1] for p in clf.predict_proba(X_test)], axis=1)
    print(f"coherence violations (child more likely than parent): "
          f"{int((probs[:, child] > probs[:, parent] + 1e-6).sum())}")

    path = os.path.join(args.out, "weight_sharing.png")
    weight_sharing_png(clf.model_, path)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
