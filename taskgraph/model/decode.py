r"""Decode multiclass tasks linked by ``class_parents`` into consistent class paths.

A child class whose parent class is ruled out is never picked. Decoding is max-product
over the tree of classes: an upward pass sends each parent class the best score of its
child classes,

.. math::
    s_t(j) = \log p_t(j) + \sum_{c \in \mathrm{ch}(t)} \max_{i:\,\pi_c(i) = j} s_c(i),

then a downward pass picks the best root class and, for each child, the best class
whose parent class was picked. This is the joint MAP when the class links form a tree.
A task with several class-linked parents gets a class consistent with all of them.
Where no class is consistent — the picked parent class has no child classes (a
``neutral`` sentiment has no emotion), or two parents disagree — the task's label is
``-1``: not applicable. (In the upward pass such a parent class is scored with the
child's best class, as if the child were unconstrained.)

Example:
    >>> import torch, taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> probs = {"diet": torch.tensor([[0.5, 0.4, 0.1]]),              # herbivore wins alone
    ...          "species": torch.tensor([[0.05, 0.05, 0.1, 0.8]])}    # but eagle (carnivore)
    >>> {k: v.tolist() for k, v in decode_classes(h, probs).items()}   # joint: carnivore, eagle
    {'diet': [1], 'species': [3]}
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor

from taskgraph.hierarchy import Hierarchy

__all__ = ["decode_classes", "class_links"]


def class_links(hierarchy: Hierarchy) -> dict[str, list[tuple[str, list[int]]]]:
    """``{child task: [(parent task, parent class index of each child class), ...]}``."""
    links: dict[str, list[tuple[str, list[int]]]] = {}
    for name, spec in hierarchy.tasks.items():
        for parent, pairs in spec.class_parents:
            pclasses = hierarchy[parent].classes or ()
            mapping = dict(pairs)
            links.setdefault(name, []).append(
                (parent, [pclasses.index(mapping[c]) for c in spec.classes or ()]))
    return links


def decode_classes(hierarchy: Hierarchy, probs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The decoded class index (B,) of every multiclass task in ``probs`` (−1: none fits).

    Args:
        hierarchy: gives the ``class_parents`` links.
        probs: ``{task: (B, K) class probabilities}`` for multiclass tasks.
    """
    links = {c: [(p, pi) for p, pi in ls if p in probs] for c, ls in class_links(hierarchy).items()
             if c in probs}
    linked = set(links) | {p for ls in links.values() for p, _ in ls}
    out = {name: p.argmax(-1) for name, p in probs.items() if name not in linked}
    if not linked:
        return out
    order = [t for t in hierarchy.topological_order if t in linked]
    score = {t: torch.log(probs[t].clamp_min(1e-12)) for t in order}  # (B, K_t)
    for child in reversed(order):  # upward: children before parents
        for parent, pi in links.get(child, []):
            index = torch.tensor(pi, device=score[child].device).expand_as(score[child])
            best = score[child].amax(-1, keepdim=True)  # (B, 1)
            message = best.expand_as(score[parent]).clone()  # parent classes without children
            has = torch.zeros(score[parent].shape[-1], dtype=torch.bool,
                              device=message.device).index_fill(0, index[0], True)
            reduced = torch.full_like(score[parent], float("-inf")).scatter_reduce(
                -1, index, score[child], reduce="amax", include_self=True)
            score[parent] = score[parent] + torch.where(has, reduced, message)
    for task in order:  # downward: parents before children
        s = score[task]
        allowed = torch.ones_like(s, dtype=torch.bool)
        for parent, pi in links.get(task, []):
            pi_t = torch.tensor(pi, device=s.device)
            allowed = allowed & (pi_t[None, :] == out[parent][:, None])  # (B, K)
        label = s.masked_fill(~allowed, float("-inf")).argmax(-1)
        out[task] = torch.where(allowed.any(-1), label, torch.full_like(label, -1))
    return out
