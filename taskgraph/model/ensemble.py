r"""`Ensemble`: M independently trained models of one hierarchy that predict like one
(a deep ensemble, Lakshminarayanan et al., NeurIPS 2017).

Each member predicts on its own (with its own temperatures, and with ``samples=K`` its
own K draws); the ensemble's prediction is the uniform mixture of the members' draws
(one draw per member with ``samples=0``). With :math:`p_{mk}` the k-th draw of member m
(:math:`K = 1` at ``samples=0``) and :math:`\bar p_m` the member's mean:

.. math::
    \bar p = \tfrac1M \sum_m \bar p_m, \quad
    \mathbb{H}[\bar p], \quad
    \mathrm{MI} = \mathbb{H}[\bar p] - \tfrac{1}{MK} \sum_{m,k} \mathbb{H}[p_{mk}], \quad
    \mathrm{std}^2 = \tfrac1M \sum_m \big(\mathrm{std}_m^2 + \bar p_m^2\big) - \bar p^2

(the std of all :math:`MK` draws: at ``samples=0`` the std across members); regression
values get the mixture's mean and variance the same way, in the targets' units. Labels
are decided on :math:`\bar p` (multiclass ones along ``class_parents``, as for one
model). The result is the same :class:`~taskgraph.model.predict.Prediction` a
:class:`~taskgraph.TaskGraphModel` returns, so ``tg.evaluate``, ``predict_loader`` and
the reliability diagrams take an ensemble where they take a model.

Example:
    >>> import torch, taskgraph as tg
    >>> members = [tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
    ...            for _ in range(3)]
    >>> ensemble = Ensemble(members)
    >>> pred = ensemble.predict(torch.randn(5, 6))
    >>> pred["diet"].probs.shape, bool((pred["diet"].mutual_info >= 0).all())
    (torch.Size([5, 3]), True)
    >>> ensemble
    Ensemble(members=3, hierarchy='animals', tasks=4)
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from taskgraph.errors import ArgumentError, CheckpointError

__all__ = ["Ensemble"]

#: The file in an ensemble's folder that lists its members' checkpoints, in order.
MANIFEST = "ensemble.json"


def _signature(model: Any) -> tuple:
    """What members must share: tasks, their types, widths, classes and edges."""
    layout = model.layout
    return (tuple(layout.names), tuple((g.kind, g.width, g.names) for g in layout.groups),
            tuple(layout.edges),
            tuple((s.classes, s.class_parents) for s in model.hierarchy.tasks.values()))


class Ensemble(nn.Module):
    """A deep ensemble: the mixture of its members' predictions (module docstring).

    Args:
        models: one or more :class:`~taskgraph.TaskGraphModel` of the same hierarchy
            (tasks, types, classes and edges); their configs and training may differ.

    Attributes:
        members: the models, an ``nn.ModuleList``.
        hierarchy, layout, config: the first member's (``config`` describes it only).

    Raises:
        ArgumentError: no model, something other than a TaskGraphModel, or a member whose
            hierarchy differs from the first's.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        from taskgraph.model.model import TaskGraphModel

        models = [models] if isinstance(models, TaskGraphModel) else list(models)
        if not models:
            raise ArgumentError("Ensemble: models: expected at least one TaskGraphModel, got "
                                "none")
        for i, model in enumerate(models):
            if not isinstance(model, TaskGraphModel):
                raise ArgumentError(f"Ensemble: models[{i}]: expected a TaskGraphModel, got "
                                    f"{type(model).__name__}")
        first = _signature(models[0])
        for i, model in enumerate(models[1:], start=1):
            if _signature(model) != first:
                raise ArgumentError(
                    f"Ensemble: models[{i}] (hierarchy {model.hierarchy.name!r}) has other "
                    f"tasks, task types, classes or edges than models[0] (hierarchy "
                    f"{models[0].hierarchy.name!r}); members must share one hierarchy")
        self.members = nn.ModuleList(models)

    @property
    def hierarchy(self) -> Any:
        return self.members[0].hierarchy

    @property
    def layout(self) -> Any:
        return self.members[0].layout

    @property
    def config(self) -> Any:
        return self.members[0].config

    @property
    def stochastic(self) -> bool:
        """Whether any member has a stochastic part."""
        return any(m.stochastic for m in self.members)

    def __len__(self) -> int:
        return len(self.members)

    def forward(self, x: Any, **kwargs: Any) -> Any:
        raise TypeError("an Ensemble has no logits of its own: call .predict(x) for the "
                        "mixture of its members' predictions")

    @torch.no_grad()
    def predict(self, x: Any, *, samples: int = 0, chunk_size: int | None = None,
                dropout: bool | None = None) -> Any:
        """The mixture of the members' predictions (module docstring).

        Args:
            x: a batch of inputs for the members' encoders.
            samples, chunk_size, dropout: passed to each member's
                :func:`~taskgraph.model.predict.predict` (K draws per member).

        Returns:
            A :class:`~taskgraph.model.predict.Prediction`.

        Example:
            >>> import torch, taskgraph as tg
            >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
            >>> x = torch.randn(2, 6)
            >>> same = Ensemble([model, model]).predict(x)["species"].probs
            >>> torch.allclose(same, model.predict(x)["species"].probs)
            True
        """
        from taskgraph.model.predict import Prediction, _decode

        preds = [m.predict(x, samples=samples, chunk_size=chunk_size, dropout=dropout)
                 for m in self.members]
        blocks = [_mixture(group.task_type, [p.blocks[g] for p in preds])
                  for g, group in enumerate(self.layout.groups)]
        _decode(self, blocks)
        return Prediction(self, blocks, samples)

    def save(self, folder: str | os.PathLike) -> list[str]:
        """Write each member with :func:`taskgraph.save` (``member-0.pt``, ...) into
        ``folder`` (created if missing) and then ``ensemble.json`` listing them; returns
        the member paths. :meth:`load` reads the folder back.

        Example:
            >>> import tempfile, taskgraph as tg
            >>> members = [tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
            ...            for _ in range(2)]
            >>> folder = tempfile.mkdtemp()
            >>> [os.path.basename(p) for p in Ensemble(members).save(folder)]
            ['member-0.pt', 'member-1.pt']
            >>> len(Ensemble.load(folder))
            2
        """
        from taskgraph.atomic import write_text_atomic
        from taskgraph.checkpoint import save

        folder = os.fspath(folder)
        os.makedirs(folder, exist_ok=True)
        names = [f"member-{i}.pt" for i in range(len(self.members))]
        for name, member in zip(names, self.members):
            save(member, os.path.join(folder, name))
        write_text_atomic(os.path.join(folder, MANIFEST),
                          json.dumps({"format": "taskgraph-ensemble", "members": names},
                                     indent=1) + "\n")
        return [os.path.join(folder, name) for name in names]

    @classmethod
    def load(cls, source: str | os.PathLike | Sequence[str | os.PathLike], *,
             map_location: str | torch.device | None = None) -> "Ensemble":
        """An ensemble from a folder written by :meth:`save` (its ``ensemble.json``) or
        from a list of checkpoint paths (each written by :func:`taskgraph.save`).

        Raises:
            CheckpointError: a folder without a readable ``ensemble.json``, or a member
                checkpoint :func:`taskgraph.load` refuses.
            ArgumentError: an empty list, or members of different hierarchies.
        """
        from taskgraph.checkpoint import load

        if isinstance(source, (str, os.PathLike)):
            folder = os.fspath(source)
            manifest = os.path.join(folder, MANIFEST)
            try:
                with open(manifest, encoding="utf-8") as fh:
                    names = json.load(fh)["members"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise CheckpointError(f"{manifest}: not a taskgraph ensemble folder "
                                      f"({type(err).__name__}: {err})") from None
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise CheckpointError(f"{manifest}: 'members' must be a list of file names")
            paths = [os.path.join(folder, n) for n in names]
        else:
            paths = [os.fspath(p) for p in source]
        return cls([load(p, map_location=map_location) for p in paths]).eval()

    def extra_repr(self) -> str:
        return (f"members={len(self.members)}, hierarchy={self.hierarchy.name!r}, "
                f"tasks={self.layout.num_tasks}")

    def __repr__(self) -> str:  # the members' modules would fill pages
        return f"Ensemble({self.extra_repr()})"


def _mixture(kind: Any, blocks: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """One group's mixture of M member blocks (module docstring)."""
    mean = torch.stack([b["mean"] for b in blocks]).mean(0)  # (B, T_g[, W])
    if not kind.probabilistic:
        second = torch.stack([b["var"] + b["mean"] ** 2 for b in blocks]).mean(0)
        return {"mean": mean, "var": (second - mean * mean).clamp_min(0)}
    second = torch.stack([b["std"] ** 2 + b["mean"] ** 2 for b in blocks]).mean(0)
    # a member's mean entropy over its draws: H[mean_m] - MI_m
    expected = torch.stack([b["entropy"] - b["mi"] for b in blocks]).mean(0)
    entropy = kind.entropy(mean)
    return {"mean": mean, "std": (second - mean * mean).clamp_min(0).sqrt(),
            "entropy": entropy, "mi": (entropy - expected).clamp_min(0),
            "label": kind.decision(mean)}
