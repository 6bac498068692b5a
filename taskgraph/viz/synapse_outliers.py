r"""The edges whose learned synapses differ most from the rest.

A table of hundreds of synapses that all ended near their initial value says nothing;
the few that moved do. Each synapse statistic the model has is scored separately,
within each message direction (``down`` and ``up`` synapses learn different things):

* ``|E[w]|``: the magnitude of the expected weight, every synapse;
* ``std``: the standard deviation of a gaussian synapse;
* ``p``: the release probability of a bernoulli synapse.

A synapse's score is the largest absolute robust z-score of its statistics
(:func:`~taskgraph.viz.scales.robust_z`: distance from the median in scaled MADs), so
the ranking is not masked by the outliers it is looking for:

.. math::
    s_e = \max_{k} |z_k(e)|, \qquad
    z_k(e) = \frac{x_k(e) - \operatorname{med}_k}{1.4826\,\operatorname{MAD}_k}

Example:
    >>> rows = [{"parent": "a", "child": f"c{i}", "direction": "down", "kind": "gaussian",
    ...          "mean": 1.0 + 0.01 * i, "std": 0.1, "p": 1.0} for i in range(9)]
    >>> rows[4]["std"] = 0.5                       # one synapse became much noisier
    >>> top = synapse_outliers(rows, top=2)
    >>> [(r["child"], r["statistic"]) for r in top]
    [('c4', 'std'), ('c0', '|E[w]|')]
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from taskgraph.errors import ArgumentError, DataError
from taskgraph.viz.scales import distinct_format, robust_z
from taskgraph.viz.style import INK, MUTED, check_target, figure, save

__all__ = ["synapse_outliers", "plot_synapse_outliers", "STATISTICS"]

#: ``(name, kinds that have it, value of a row)`` of every scored synapse statistic.
STATISTICS = (("|E[w]|", ("gaussian", "bernoulli", "fixed"), lambda r: abs(float(r["mean"]))),
              ("std", ("gaussian",), lambda r: float(r["std"])),
              ("p", ("bernoulli",), lambda r: float(r["p"])))
_ARROW = {"down": "→", "up": "←"}


def _rows_of(source: Any) -> list[Mapping[str, Any]]:
    if hasattr(source, "synapses"):
        return list(source.synapses())
    return list(source)


def synapse_outliers(source: Any, *, top: int = 15) -> list[dict[str, Any]]:
    """The ``top`` synapses with the largest robust z-score (see the module docstring).

    Args:
        source: a model (its ``synapses()``) or synapse rows (``parent``, ``child``,
            ``direction``, ``kind``, ``mean``, ``std``, ``p``).
        top: how many to return.

    Returns:
        Rows, highest score first: the synapse row plus ``statistic`` (the one that
        differs most), ``value``, ``median`` (of that statistic in its direction),
        ``z`` (signed) and ``others`` (how many synapses it was compared with).

    Raises:
        ArgumentError: ``top`` is not a positive integer.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ArgumentError(f"synapse_outliers: top: expected a positive integer, got {top!r}")
    rows = _rows_of(source)
    best: dict[int, dict[str, Any]] = {}
    for direction in dict.fromkeys(r["direction"] for r in rows):
        for name, kinds, value in STATISTICS:
            idx = [i for i, r in enumerate(rows)
                   if r["direction"] == direction and r["kind"] in kinds]
            if len(idx) < 3:  # too few to say what "the rest" is
                continue
            x = np.array([value(rows[i]) for i in idx])
            z = robust_z(x)
            med = float(np.median(x[np.isfinite(x)])) if np.isfinite(x).any() else float("nan")
            for i, xi, zi in zip(idx, x, z):
                if np.isfinite(zi) and (i not in best or abs(zi) > abs(best[i]["z"])):
                    best[i] = {**rows[i], "statistic": name, "value": float(xi),
                               "median": med, "z": float(zi), "others": len(idx)}
    ranked = sorted(best.values(), key=lambda r: -abs(r["z"]))
    return ranked[:top]


def plot_synapse_outliers(source: Any, path: str | os.PathLike | Any, *, top: int = 15,
                          rows: Sequence[Mapping[str, Any]] | None = None) -> Any:
    """The ``top`` outlying synapses as bars of their robust z-score, each labelled with
    its edge, statistic and value against the median.

    Args:
        source: a model or synapse rows (as :func:`synapse_outliers`).
        path: the output file (.png, .svg, .pdf) or a binary file object (PNG).
        top: how many synapses.
        rows: the :func:`synapse_outliers` result, when already computed.

    Returns:
        ``path``.

    Raises:
        DataError: no synapse could be scored (fewer than 3 per direction).

    Example:
        >>> import io
        >>> rows = [{"parent": "a", "child": f"c{i}", "direction": "down", "kind": "fixed",
        ...          "mean": 1.0 + 0.1 * (i == 3), "std": 0.0, "p": 1.0} for i in range(5)]
        >>> plot_synapse_outliers(rows, io.BytesIO()).getvalue()[:4]
        b'\\x89PNG'
    """
    check_target(path)
    found = list(rows) if rows is not None else synapse_outliers(source, top=top)
    if not found:
        raise DataError("plot_synapse_outliers: no synapse to score (each direction needs "
                        "at least 3 synapses)")
    total = len(_rows_of(source))
    labels = [f"{r['parent']} {_ARROW.get(r['direction'], '→')} {r['child']}" for r in found]
    notes = []
    for r in found:
        pair = [r["value"], r["median"]]
        change = f", {100 * (r['value'] / r['median'] - 1):+.2g} %" if r["median"] else ""
        notes.append(f"{r['statistic']} {distinct_format(r['value'], pair)}  (median "
                     f"{distinct_format(r['median'], pair)}{change})")
    label_w = 0.062 * min(max(map(len, labels)), 48)
    note_w = 0.058 * max(map(len, notes))
    with figure(4.6 + label_w + note_w, 1.2 + 0.3 * len(found), layout="constrained") as fig:
        ax, side = fig.subplots(1, 2, sharey=True,
                                gridspec_kw={"width_ratios": [4.0, max(note_w, 1.0)],
                                             "wspace": 0.01})
        ys = np.arange(len(found))[::-1]
        z = np.array([r["z"] for r in found])
        ax.barh(ys, z, height=0.62, color=np.where(z > 0, "#B2182B", "#2166AC"), alpha=0.85)
        ax.axvline(0, color="#444444", linewidth=0.8)
        reach = float(np.abs(z).max()) or 1.0
        ax.set_xlim(min(0.0, float(z.min())) - 0.05 * reach,
                    max(0.0, float(z.max())) + 0.05 * reach)
        ax.set_ylim(-0.6, len(found) - 0.4)
        ax.set_yticks(ys, [lab[:48] for lab in labels])
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("robust z-score: (value − median) / (1.4826 · MAD)")
        ax.set_title(f"The {len(found)} synapses that differ most from the other "
                     f"{total - 1:,}", loc="left", color=INK)
        side.set_axis_off()
        side.set_xlim(0, 1)
        for y, note in zip(ys, notes):
            side.text(0.02, y, note, va="center", ha="left", fontsize=7.5, color=MUTED)
        side.set_title("statistic (median of its direction)", loc="left", color=MUTED,
                       fontweight="normal", fontsize=8)
        return save(fig, path)
