r"""Task-embedding similarity along the hierarchy, readable at any number of tasks.

A T × T similarity heatmap of hundreds of tasks is noise at screen size. This figure
asks the question it was for (do linked tasks learn similar embeddings?) per level:
for every edge :math:`s \to t` with the child at level :math:`\ell`, the cosine
similarity of the two learned task embeddings,

.. math::
    \cos(e_s, e_t) = \frac{e_s \cdot e_t}{\lVert e_s \rVert\, \lVert e_t \rVert},

beside the same similarity between each child and a task drawn at random (seeded) from
its parent's level that is not one of its parents: a level whose edges sit above its
random pairs shares weights along the hierarchy.

Example:
    >>> import io, taskgraph as tg
    >>> model = tg.compile("hierarchies/cell_functions.yaml", in_features=4, task_dim=4)
    >>> pairs = embedding_pairs(model)
    >>> sorted(pairs), len(pairs[1][0]) == 3
    ([1, 2], True)
    >>> plot_embedding_links(model, io.BytesIO()).getvalue()[:4]
    b'\x89PNG'
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from taskgraph.errors import DataError
from taskgraph.viz.style import INK, MUTED, check_target, figure, save

__all__ = ["embedding_pairs", "plot_embedding_links"]


def embedding_pairs(model: Any, *, seed: int = 0) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{level: (edge similarities, random-pair similarities)}`` for every level with an
    edge into it (see the module docstring)."""
    h = model.hierarchy
    emb = model.task_embeddings().float().cpu().numpy()  # (T, F)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    index = {name: i for i, name in enumerate(model.layout.names)}
    depth = h.depths
    by_level: dict[int, list[str]] = {}
    for t in h.task_names:
        by_level.setdefault(depth[t], []).append(t)
    rng = np.random.default_rng(seed)
    out: dict[int, tuple[list[float], list[float]]] = {}
    for parent, child in h.graph.edges:
        level = depth[child]
        edge, rand = out.setdefault(level, ([], []))
        edge.append(float(emb[index[parent]] @ emb[index[child]]))
        parents = set(h.graph.predecessors(child))
        pool = [t for t in by_level[depth[parent]] if t not in parents]
        if pool:
            other = pool[int(rng.integers(len(pool)))]
            rand.append(float(emb[index[other]] @ emb[index[child]]))
    return {lvl: (np.array(a), np.array(b)) for lvl, (a, b) in sorted(out.items())}


def plot_embedding_links(model: Any, path: str | os.PathLike | Any, *, seed: int = 0) -> Any:
    """Per level, box plots of the cosine similarity of parent–child embeddings beside
    child–random-task pairs (see the module docstring).

    Args:
        model: a :class:`~taskgraph.TaskGraphModel`.
        path: the output file (.png, .svg, .pdf) or a binary file object (PNG).
        seed: seed of the random pairs.

    Returns:
        ``path``.

    Raises:
        DataError: the hierarchy has no edges.
    """
    check_target(path)
    pairs = embedding_pairs(model, seed=seed)
    if not pairs:
        raise DataError("plot_embedding_links: the hierarchy has no edges")
    levels = list(pairs)
    with figure(max(4.8, 1.1 * len(levels) + 2.4), 3.4, layout="constrained") as fig:
        ax = fig.subplots()
        at = np.arange(len(levels), dtype=float)
        style = {"widths": 0.34, "patch_artist": True, "showfliers": False,
                 "medianprops": {"color": INK, "linewidth": 1.0}}
        for offset, k, color, label in ((-0.19, 0, "#0072B2", "parent – child"),
                                        (0.19, 1, "#BBBBBB", "child – random task of the "
                                                             "parent's level")):
            data = [pairs[lvl][k] if pairs[lvl][k].size else np.array([np.nan])
                    for lvl in levels]
            parts = ax.boxplot(data, positions=at + offset, **style)
            for box in parts["boxes"]:
                box.set(facecolor=color, alpha=0.75, edgecolor=INK, linewidth=0.6)
            ax.plot([], [], "s", color=color, alpha=0.75, label=label)
        ax.set_xticks(at, [f"level {lvl}\n{pairs[lvl][0].size:,} edges" for lvl in levels])
        ax.tick_params(axis="x", length=0)
        ax.grid(axis="x", visible=False)
        ax.axhline(0, color=MUTED, linewidth=0.6)
        ax.set_ylabel("cosine similarity of task embeddings")
        ax.set_title("Task-embedding similarity along the hierarchy (by child's level)",
                     loc="left")
        fig.legend(loc="outside lower center", ncol=2)
        return save(fig, path)
