"""Figures of a trained model: sampled synapse weights (:func:`plot_synapses`) and
weight sharing between tasks (:func:`plot_weight_sharing`).

Example:
    >>> import io, taskgraph as tg
    >>> model = tg.compile("hierarchies/animals.yaml", in_features=4, task_dim=4)
    >>> plot_weight_sharing(model, io.BytesIO()).getvalue()[:4]
    b'\\x89PNG'
    >>> dfs_order(model.hierarchy)
    ['mammal', 'diet', 'species', 'weight_kg']
"""

from __future__ import annotations

import math
import os
from typing import Any, Hashable, Sequence

from taskgraph.errors import DataError
from taskgraph.viz.style import INK, LARGE, MUTED, TYPE_STYLE, check_target, figure, save, \
    type_of
from taskgraph.vocabulary import suggest

__all__ = ["plot_synapses", "plot_weight_sharing", "dfs_order"]

_KIND_COLOR = {"gaussian": "#0072B2", "bernoulli": "#E69F00", "fixed": "#777777"}
_ARROW = {"down": "→", "up": "←"}


def dfs_order(hierarchy: Any) -> list[str]:
    """Tasks in depth-first pre-order from the roots (file order), so every subtree is
    one contiguous block; a task with several parents comes under its first one."""
    graph = hierarchy.graph
    seen: dict[str, None] = {}
    for root in hierarchy.roots:
        stack = [root]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen[node] = None
            stack.extend(reversed([c for c in graph.successors(node) if c not in seen]))
    return list(seen)


def _sample_weights(model: Any, samples: int, seed: int) -> Any:
    """``(samples, D*E)`` sampled synapse weights as numpy, without touching the RNG."""
    import torch

    if model.edge_synapses is None:
        raise DataError("the model has no synapses to plot (a hierarchy without edges, "
                        "or message passing switched off)")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise DataError(f"samples: expected a positive integer, got {samples!r}")
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        w = model.edge_synapses(samples, sample=True)  # (S, D*E)
    return w.detach().float().cpu().numpy()


def _edge_columns(rows: list[dict], edges: Sequence[Sequence[Hashable]] | None,
                  limit: int) -> list[int]:
    if edges is None:  # the most uncertain synapses: the widest spread
        order = sorted(range(len(rows)), key=lambda k: -rows[k]["std"])
        return sorted(order[:limit])
    if len(edges) > limit:
        raise DataError(f"edges: at most {limit} edges fit in one figure, got {len(edges)}")
    index = {(r["parent"], r["child"], r["direction"]): k for k, r in enumerate(rows)}
    names = [f"{p}->{c}" for p, c, _ in index]
    out = []
    for edge in edges:
        parent, child, *rest = edge
        directions = rest or sorted({d for _, _, d in index})
        found = [index[(parent, child, d)] for d in directions if (parent, child, d) in index]
        if not found:
            raise DataError(f"edges: {parent}->{child} is not an edge with a synapse"
                            f"{suggest(f'{parent}->{child}', names)}")
        out += found
    return out[:limit]


def plot_synapses(model: Any, path: str | os.PathLike | Any, *, samples: int = 1000,
                  per: str = "direction", edges: Sequence[Sequence[Hashable]] | None = None,
                  seed: int = 0, max_edges: int = 12) -> Any:
    """Distributions of sampled synapse weights.

    Args:
        model: a :class:`~taskgraph.TaskGraphModel`.
        path: the output file (.png, .svg, .pdf) or a binary file object (PNG).
        samples: weights drawn per synapse (``model.edge_synapses(samples, sample=True)``).
        per: ``"direction"``: one histogram panel per direction, all synapses pooled and
            split by kind; ``"edge"``: one violin per synapse for up to ``max_edges``.
        edges: with ``per="edge"``, the ``(parent, child)`` or ``(parent, child,
            direction)`` synapses to show (default: the ``max_edges`` most spread).
        seed: seed of the draws (the global torch RNG is left as it was).

    Returns:
        ``path``.

    Raises:
        DataError: a model without synapses, an unknown edge, a bad option.
    """
    check_target(path)
    if per not in ("direction", "edge"):
        raise DataError(f"per: expected 'direction' or 'edge', got {per!r}")
    import numpy as np

    w = _sample_weights(model, samples, seed)
    rows = model.synapses()
    if per == "edge":
        cols = _edge_columns(rows, edges, max_edges)
        height = 1.2 + 0.42 * len(cols)
        with figure(6.4, height, layout="constrained") as fig:
            ax = fig.subplots()
            data = [w[:, k] for k in cols]
            pos = list(range(len(cols)))[::-1]
            import inspect

            horizontal = ({"orientation": "horizontal"} if "orientation" in
                          inspect.signature(ax.violinplot).parameters else {"vert": False})
            parts = ax.violinplot(data, positions=pos, widths=0.8, showextrema=False,
                                  points=200, **horizontal)
            for body, k in zip(parts["bodies"], cols):
                color = _KIND_COLOR.get(rows[k]["kind"], MUTED)
                body.set(facecolor=color, edgecolor=color, alpha=0.45, linewidth=0.8)
            ax.scatter([rows[k]["mean"] for k in cols], pos, s=14, color=INK, zorder=3,
                       label="mean")
            ax.set_yticks(pos, [f"{rows[k]['parent']} {_ARROW.get(rows[k]['direction'], '→')}"
                                f" {rows[k]['child']}  ({rows[k]['kind']})" for k in cols])
            ax.tick_params(axis="y", length=0)
            ax.grid(axis="y", visible=False)
            ax.set_xlabel("sampled synapse weight")
            ax.set_title(f"Synapse weights, {samples:,} samples per synapse", loc="left")
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2)
            return save(fig, path)
    directions = list(dict.fromkeys(r["direction"] for r in rows))
    lo, hi = float(np.min(w)), float(np.max(w))
    pad = 0.05 * (hi - lo or 1.0)
    bins = np.linspace(lo - pad, hi + pad, 61)
    with figure(3.6 * len(directions) + 0.6, 3.2, layout="constrained") as fig:
        axes = fig.subplots(1, len(directions), squeeze=False, sharey=True)[0]
        for ax, direction in zip(axes, directions):
            cols = [k for k, r in enumerate(rows) if r["direction"] == direction]
            for kind in ("gaussian", "bernoulli", "fixed"):
                ks = [k for k in cols if rows[k]["kind"] == kind]
                if not ks:
                    continue
                values = w[:, ks].reshape(-1)
                ax.hist(values, bins=bins, density=True, histtype="stepfilled", alpha=0.35,
                        color=_KIND_COLOR[kind], label=f"{kind} ({len(ks)})")
                ax.hist(values, bins=bins, density=True, histtype="step", linewidth=1.0,
                        color=_KIND_COLOR[kind])
            mean = float(np.mean([rows[k]["mean"] for k in cols]))
            ax.axvline(mean, color=INK, linewidth=0.9, linestyle=(0, (3, 2)),
                       label=f"mean {mean:.3g}")
            name = {"down": "down (parent → child)", "up": "up (child → parent)"}
            ax.set_title(f"{name.get(direction, direction)}, {len(cols):,} synapses",
                         loc="left")
            ax.set_xlabel("sampled synapse weight")
            ax.legend(loc="upper left")
        axes[0].set_ylabel("density")
        return save(fig, path)


def plot_weight_sharing(model: Any, path: str | os.PathLike | Any, *,
                        max_labels: int = LARGE) -> Any:
    """Cosine similarity of the learned task embeddings, tasks in depth-first order.

    Blocks along the diagonal are subtrees; thin lines separate the roots' subtrees.
    Above ``max_labels`` tasks a T × T heatmap is unreadable: the figure is then
    :func:`~taskgraph.viz.embedding_plots.plot_embedding_links` (parent–child against
    random pairs, per level).

    Args:
        model: a :class:`~taskgraph.TaskGraphModel`.
        path: the output file (.png, .svg, .pdf) or a binary file object (PNG).
        max_labels: the most tasks drawn as a heatmap, names on the axes.

    Returns:
        ``path``.
    """
    check_target(path)
    if len(model.hierarchy.task_names) > max_labels:
        from taskgraph.viz.embedding_plots import plot_embedding_links

        return plot_embedding_links(model, path)
    import matplotlib
    import numpy as np

    h = model.hierarchy
    order = dfs_order(h)
    emb = model.task_embeddings().float().cpu().numpy()  # (T, F)
    position = {name: i for i, name in enumerate(model.layout.names)}
    e = emb[[position[t] for t in order]]
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    sim = e @ e.T  # (T, T)
    T = len(order)
    off = sim[~np.eye(T, dtype=bool)]
    limit = max(float(np.abs(off).max()) if off.size else 1.0, 0.05)
    limit = min(math.ceil(limit * 20) / 20, 1.0)  # a round colour-bar end
    sim = np.ma.masked_array(sim, mask=np.eye(T, dtype=bool))  # the diagonal is always 1
    side = max(4.6, 0.15 * T + 2.6)
    with figure(side + 1.0, side, layout="constrained") as fig:
        ax = fig.subplots()
        cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#D9D9D9")
        image = ax.imshow(sim, cmap=cmap, vmin=-limit, vmax=limit, interpolation="nearest")
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_linewidth(0.6)
        bar = fig.colorbar(image, ax=ax, shrink=0.7, pad=0.02)
        bar.set_label("cosine similarity (grey diagonal: a task with itself)")
        bar.outline.set_linewidth(0.4)
        size = max(5.0, min(8.0, 220 / max(T, 1)))
        ax.set_xticks(range(T), order, rotation=90, fontsize=size)
        ax.set_yticks(range(T), order, fontsize=size)
        for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
            for label, task in zip(labels, order):
                label.set_color(TYPE_STYLE[type_of(h[task])]["color"])
        ax.tick_params(length=0)
        roots = set(h.roots)
        starts = [i for i, t in enumerate(order) if t in roots][1:]
        if 0 < len(starts) < 100:
            for s in starts:
                for line in (ax.axhline, ax.axvline):
                    line(s - 0.5, color=INK, linewidth=0.5 if T > 60 else 0.8, alpha=0.6)
        ax.set_title("Task-embedding similarity", loc="left")
        return save(fig, path)
