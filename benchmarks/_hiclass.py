"""HiClass's multi-label local classifiers as HMC baselines: label paths in, scores out.

HiClass (Miranda et al., JMLR 2023) fits one scikit-learn classifier per node
(``MultiLabelLocalClassifierPerNode``: a binary classifier per label, trained with the
"siblings" policy: positives are the examples with the label, negatives those with a
sibling but not the label) or per parent node (``MultiLabelLocalClassifierPerParentNode``:
a multi-class classifier over a node's children). Its multi-label classifiers exist in
HiClass 4.5-4.13 only: 5.0 removed them (hiclass issue #151), and HiClass 4 needs
scikit-learn < 1.5 while taskgraph needs >= 1.6, so they run in an interpreter of their
own (``python -m venv V && V/bin/pip install "hiclass==4.13.3"``), called with this file
as a script; it imports numpy, scikit-learn and HiClass only.

**Label paths.** HiClass takes each example's labels as root-to-leaf paths of a tree.
FunCat hierarchies are trees. A Gene Ontology DAG is turned into its spanning tree with
every term kept under its first parent (the parent listed first in the ARFF
declaration); a sample's label set is closed under all its ancestors, so it is also
closed under the tree's, and its paths are the tree paths of its labels that have no
labelled tree child. Each term is then one HiClass node (HiClass names a node by its
whole path, so this is also how it would unfold a DAG given all paths, minus the
duplicates).

**Scores.** HiClass 4's multi-label classifiers predict label sets, not scores; AU(PRC)
needs scores. A label's score is the product of the conditional probabilities along its
path, each from the fitted local classifier: the node's binary ``predict_proba`` (per
node) or its parent's probability of it among the siblings (per parent node), the
"multiply" combination of HiClass 5's ``predict_proba``:

.. math:: s(t) = \\prod_{v \\in \\mathrm{path}(t)} p(v \\mid \\mathrm{parent}(v), x)

Run as a worker: ``python _hiclass.py IN.npz OUT.npz``.
"""

from __future__ import annotations

import sys

import numpy as np

SEPARATOR = "::HiClass::Separator::"  # how HiClass 4 joins a path into a node name
KINDS = ("lcpn", "lcppn")
BASES = ("lr", "rf")


def tree_paths(Y: np.ndarray, parent: np.ndarray) -> list[list[list[str]]]:
    """Each row's label set as root-to-leaf paths of the tree ``parent`` (``-1``: a
    root); labels are named ``t<column>``. A row without labels gets no path.

    Example:
        >>> tree_paths(np.array([[1, 1, 1, 0], [1, 0, 0, 1]]), np.array([-1, 0, 1, 0]))
        [[['t0', 't1', 't2']], [['t0', 't3']]]
    """
    chains: list[list[str]] = []
    for t in range(len(parent)):
        chain, v = [], t
        while v >= 0:
            chain.append(f"t{v}")
            v = int(parent[v])
        chains.append(chain[::-1])
    has_child = np.zeros_like(Y, dtype=bool)
    for t, p in enumerate(parent):
        if p >= 0:
            has_child[:, p] |= Y[:, t] == 1
    leaves = (Y == 1) & ~has_child
    return [[chains[t] for t in np.flatnonzero(row)] for row in leaves]


def _estimator(base: str, seed: int, trees: int, jobs: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    if base == "lr":
        return LogisticRegression(max_iter=1000)
    return RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=jobs)


def _positive(classifier, X: np.ndarray, label) -> np.ndarray:
    """Probability of class ``label`` (0 where the classifier never saw it)."""
    classes = list(classifier.classes_)
    if label not in classes:
        return np.zeros(len(X))
    proba = np.asarray(classifier.predict_proba(X), dtype=np.float64)
    return proba[:, classes.index(label)] if proba.shape[1] > 1 else proba[:, 0]


def local_scores(kind: str, base: str, X_fit: np.ndarray, Y_fit: np.ndarray,
                 parent: np.ndarray, X_score: list[np.ndarray], *, seed: int = 0,
                 trees: int = 100, jobs: int = 1) -> list[np.ndarray]:
    """Fit HiClass's multi-label ``kind`` classifier (``"lcpn"`` per node, ``"lcppn"``
    per parent node) with ``base`` local classifiers (``"lr"`` logistic regression,
    ``"rf"`` random forest) on ``(X_fit, Y_fit)``; the ``(N, T)`` scores of each matrix
    of ``X_score`` (columns of labels HiClass never saw score 0)."""
    import hiclass

    paths = tree_paths(Y_fit, parent)
    keep = [i for i, p in enumerate(paths) if p]  # HiClass needs a path per example
    depth = max(len(p) for i in keep for p in paths[i])
    width = max(len(paths[i]) for i in keep)
    y = np.full((len(keep), width, depth), "", dtype=object)
    for r, i in enumerate(keep):
        for j, path in enumerate(paths[i]):
            y[r, j, :len(path)] = path
    cls = (hiclass.MultiLabelLocalClassifierPerNode if kind == "lcpn"
           else hiclass.MultiLabelLocalClassifierPerParentNode)
    model = cls(local_classifier=_estimator(base, seed, trees, jobs), n_jobs=1)
    model.fit(X_fit[keep], y)
    graph, root = model.hierarchy_, model.root_
    names = {}  # column -> HiClass node name
    for t in range(len(parent)):
        chain, v = [], t
        while v >= 0:
            chain.append(f"t{v}")
            v = int(parent[v])
        names[t] = SEPARATOR.join(chain[::-1])
    out = []
    for X in X_score:
        conditional: dict[str, np.ndarray] = {}  # node -> p(node | its parent, x)
        for node in graph.nodes:
            if node == root:
                continue
            (up,) = list(graph.predecessors(node))
            if kind == "lcpn":
                conditional[node] = _positive(graph.nodes[node]["classifier"], X, 1)
            else:
                conditional[node] = _positive(graph.nodes[up]["classifier"], X, node)
        S = np.zeros((len(X), len(parent)))
        for t, name in names.items():
            if name not in graph:
                continue
            prefix, score = [], np.ones(len(X))
            for part in name.split(SEPARATOR):
                prefix.append(part)
                score = score * conditional[SEPARATOR.join(prefix)]
            S[:, t] = score
        out.append(S)
    return out


def worker(source: str, target: str) -> None:
    """Read the arrays and options of one fit from ``source`` (npz), write the scores."""
    z = np.load(source, allow_pickle=False)
    n = int(z["n_score"])
    scores = local_scores(str(z["kind"]), str(z["base"]), z["X_fit"], z["Y_fit"], z["parent"],
                          [z[f"X_score{i}"] for i in range(n)], seed=int(z["seed"]),
                          trees=int(z["trees"]), jobs=int(z["jobs"]))
    np.savez(target, **{f"S{i}": s for i, s in enumerate(scores)})


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2])
