r"""`TaskGraphModel`: encoder, task projections, message passing over stochastic synapses,
batched heads and optional coherence, reading top to bottom.

.. math::
    z = \mathrm{enc}(x), \quad
    H^0_t = W_t z + b_t + e_t, \quad
    H^{l+1} = \mathrm{norm}\Big(H^l + \sigma\big(\sum_{s \to t} w_{st}\, M_{dir}(H^l_s)\big)\Big),
    \quad y_t = \mathrm{head}_t(H^L_t)

with :math:`w_{st} \sim q(w_{st})` sampled per example in training. Regression heads
work in standardized units: with the per-output buffers ``target_loc`` and
``target_scale`` (identity until :meth:`~TaskGraphModel.fit_target_scaling` or ``fit``
sets them), ``model(x)`` returns :math:`f(x)`, the loss compares it with
:math:`(y - \mathrm{loc}) / \mathrm{scale}`, and ``predict`` returns
:math:`\mathrm{loc} + \mathrm{scale} \cdot f(x)` in the targets' units.

Example:
    >>> import torch, taskgraph as tg
    >>> h = tg.load_hierarchy("hierarchies/animals.yaml")
    >>> model = tg.compile(h, in_features=16, task_dim=8)
    >>> out = model(torch.randn(4, 16))
    >>> out["mammal"].shape, out["diet"].shape, out["weight_kg"].shape
    (torch.Size([4]), torch.Size([4, 3]), torch.Size([4]))
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from taskgraph.errors import DataError
from taskgraph.hierarchy import Hierarchy
from taskgraph.model.config import ModelConfig
from taskgraph.model.encoder import MLPEncoder
from taskgraph.model.layout import TaskLayout, edge_synapse_specs
from taskgraph.model.loss import regression_layout, regression_targets, target_statistics
from taskgraph.model.outputs import TaskOutputs
from taskgraph.nn.coherence import Coherence
from taskgraph.nn.message import HierarchyGNN
from taskgraph.nn.stochastic_linear import TaskLinear
from taskgraph.nn.synapses import EdgeSynapses

__all__ = ["TaskGraphModel"]


class TaskGraphModel(nn.Module):
    """A hierarchy compiled into a PyTorch module. Build it with :func:`taskgraph.compile`.

    Args:
        hierarchy (Hierarchy): the validated hierarchy.
        config (ModelConfig): resolved settings.
        encoder (nn.Module, optional): a user encoder mapping inputs to ``(B, D)``;
            ``None`` builds the YAML MLP from ``config.in_features``.

    Shapes:
        input: whatever the encoder takes (``(B, in_features)`` for the MLP);
        output: :class:`TaskOutputs`, task name -> logits (regression: standardized
        values, see :meth:`fit_target_scaling`).

    Attributes:
        target_loc, target_scale: ``(R,)`` buffers, the mean and std of each of the R
            regression outputs (:attr:`regression_outputs` names them), saved with the
            weights; 0 and 1 (no scaling) until set; ``None`` without regression tasks.
    """

    def __init__(self, hierarchy: Hierarchy, config: ModelConfig,
                 encoder: nn.Module | None = None) -> None:
        super().__init__()
        self.hierarchy = hierarchy
        self.config = config
        self.layout = layout = TaskLayout(hierarchy)
        T, F = layout.num_tasks, config.task_dim
        sto = config.stochastic
        if encoder is None:
            encoder = MLPEncoder(config.in_features, config.encoder,
                                 stochastic=sto.encoder, prior_std=sto.prior_std)
            encoder_dim = encoder.out_features
        else:
            encoder_dim = config.encoder_dim
        self.encoder = encoder
        # Low-rank projections for large hierarchies: a shared D -> r layer first.
        rank = config.rank(T, encoder_dim)
        self.reduce: nn.Linear | None = None
        if rank is not None:
            self.reduce = nn.Linear(encoder_dim, rank)
            encoder_dim = rank
        self.projections = TaskLinear(T, encoder_dim, F, shared_input=True,
                                      stochastic=sto.projections, prior_std=sto.prior_std)
        self.task_embedding = nn.Parameter(torch.empty(T, F))  # (T, F)
        self.register_buffer("edge_index", layout.edge_index, persistent=False)  # (2, E)
        self.register_buffer("task_weights", layout.weights, persistent=False)  # (T,)
        for g, group in enumerate(layout.groups):
            self.register_buffer(f"group_index_{g}", torch.tensor(group.tasks),
                                 persistent=False)  # (T_g,)
        # Regression target scaling, one (loc, scale) per regression output: data
        # statistics, not parameters (reset_parameters leaves them alone)
        self._regression_index, self._regression_names = regression_layout(layout)
        R = len(self._regression_names)  # no regression task: None, not in the state dict
        self.register_buffer("target_loc", torch.zeros(R) if R else None)  # (R,)
        self.register_buffer("target_scale", torch.ones(R) if R else None)  # (R,)
        for g, idx in enumerate(self._regression_index):
            if idx is not None:
                self.register_buffer(f"target_index_{g}", idx, persistent=False)  # (T_g, k)
        # One group holding every task in order (e.g. a label hierarchy): no gather.
        self._whole = (len(layout.groups) == 1
                       and list(layout.groups[0].tasks) == list(range(T)))
        self.heads = nn.ModuleList(
            TaskLinear(len(g.tasks), F, g.width, stochastic=sto.heads, prior_std=sto.prior_std)
            for g in layout.groups)
        self.gnn: HierarchyGNN | None = None
        self.edge_synapses: EdgeSynapses | None = None
        if config.message_passing and layout.num_edges > 0:
            self.gnn = HierarchyGNN(F, config.rounds, directions=config.directions,
                                    message=config.message, dropout=config.dropout)
            specs = edge_synapse_specs(hierarchy, layout.edges, config.directions,
                                       default=config.synapse)
            self.edge_synapses = EdgeSynapses(
                [s.kind for s in specs], mean=[s.mean for s in specs],
                std=[s.std for s in specs], p=[s.p for s in specs],
                prior_std=[s.prior_std for s in specs], prior_p=[s.prior_p for s in specs])
        self.coherence: Coherence | None = None
        if config.coherent and layout.binary_group is not None:
            self.coherence = Coherence(layout.binary_edge_index,
                                       len(layout.groups[layout.binary_group].tasks))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.task_embedding, std=0.02)
        self.projections.reset_parameters()
        if self.reduce is not None:
            self.reduce.reset_parameters()
        for head in self.heads:
            head.reset_parameters()
        for module in (self.gnn, self.edge_synapses):
            if module is not None:
                module.reset_parameters()

    # -- the forward pass, in stages (predict() reuses them) -------------------------------
    def encode(self, x: Any, *, sample: bool | None = None) -> Tensor:
        """The shared representation ``z``: (B, D).

        Raises:
            DataError: ``x`` is not a ``(B, in_features)`` tensor for the MLP encoder, or
                a user encoder returns something other than ``(B, D)``.
        """
        if isinstance(self.encoder, MLPEncoder):
            want = self.encoder.in_features
            if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != want:
                got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise DataError(f"model input: expected a (B, in_features={want}) tensor, "
                                f"got {got}" + (" (one example? use x[None] or "
                                                "x.unsqueeze(0))" if got == (want,) else ""))
            return self.encoder(x, sample=sample)
        z = self.encoder(x)
        if isinstance(z, (tuple, list)):  # e.g. an LSTM's (output, state): take the first
            z = z[0]
        want = self.projections.in_features if self.reduce is None else self.reduce.in_features
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != want:
            got = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise DataError(f"encoder output: expected (B, {want}) (the encoder_dim the model "
                            f"was compiled with), got {got}")
        return z

    def embed(self, z: Tensor, *, sample: bool | None = None) -> Tensor:
        """Per-task embeddings ``H^0``: (B, D) -> (B, T, F)."""
        if self.reduce is not None:
            z = self.reduce(z)  # (B, r)
        h = self.projections(z, sample=sample)  # (B, T, F)
        return h.add_(self.task_embedding)  # in place: no second (B, T, F) buffer

    def propagate(self, h: Tensor, *, sample: bool | None = None) -> Tensor:
        """Message passing along the hierarchy with per-example synapse weights."""
        if self.gnn is None:
            return h
        sample = self.training if sample is None else sample
        weight = self.edge_synapses(h.shape[0], sample=sample) if sample \
            else self.edge_synapses(None, sample=False)  # (B, D*E) or (D*E,)
        return self.gnn(h, self.edge_index, weight)  # (B, T, F)

    def readout(self, h: Tensor, *, sample: bool | None = None) -> TaskOutputs:
        """Batched heads, one per group of equal shape; then coherence."""
        blocks = []
        for g, head in enumerate(self.heads):
            hg = h if self._whole else h.index_select(
                -2, getattr(self, f"group_index_{g}"))  # (B, T_g, F)
            out = head(hg, sample=sample)  # (B, T_g, W)
            blocks.append(out.squeeze(-1) if self.layout.groups[g].kind == "binary" else out)
        raw = None
        if self.coherence is not None:
            b = self.layout.binary_group
            raw = blocks[b]  # (B, T_b)
            blocks[b] = self.coherence(raw)
        return TaskOutputs(self.layout.groups, blocks, raw_binary=raw, where=self.layout.where)

    def forward(self, x: Any, *, sample: bool | None = None) -> TaskOutputs:
        """Logits per task (regression: standardized). ``sample`` (default:
        ``self.training``) draws the synapses."""
        z = self.encode(x, sample=sample)  # (B, D)
        h = self.embed(z, sample=sample)  # (B, T, F)
        h = self.propagate(h, sample=sample)  # (B, T, F)
        return self.readout(h, sample=sample)

    # -- the rest of the API -----------------------------------------------------------
    def kl(self) -> Tensor:
        """Closed-form KL of every stochastic part to its prior, summed (not averaged)."""
        parts = [self.projections.kl()] + [head.kl() for head in self.heads]
        if self.edge_synapses is not None:
            parts.append(self.edge_synapses.kl())
        if isinstance(self.encoder, MLPEncoder):
            parts.append(self.encoder.kl().to(parts[0].device))
        return torch.stack([p.to(parts[0].dtype) for p in parts]).sum()

    def loss(self, outputs: TaskOutputs, targets: Any, *, dataset_size: int | None = None,
             kl_weight: float = 1.0, task_weights: Tensor | None = None):
        """Masked, weighted multi-task loss plus the scaled KL. See :func:`task_loss`."""
        from taskgraph.model.loss import task_loss

        return task_loss(self, outputs, targets, dataset_size=dataset_size,
                         kl_weight=kl_weight, task_weights=task_weights)

    @torch.no_grad()
    def predict(self, x: Any, *, samples: int = 0, chunk_size: int | None = None):
        """Mean probabilities (or values) per task with their uncertainty.

        See :func:`taskgraph.model.predict.predict`.
        """
        from taskgraph.model.predict import predict

        return predict(self, x, samples=samples, chunk_size=chunk_size)

    # -- regression target scaling ------------------------------------------------------
    @property
    def regression_outputs(self) -> list[str]:
        """Names of the R regression outputs (``task`` or ``task[i]``), the order of
        ``target_loc`` and ``target_scale`` (:func:`taskgraph.train.data.target_columns`)."""
        return list(self._regression_names)

    def target_scaling(self, g: int) -> tuple[Tensor, Tensor]:
        """``(loc, scale)`` of regression head group ``g``: each (T_g, k).

        Example:
            >>> import taskgraph as tg
            >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
            >>> g = model.layout.where["weight_kg"][0]
            >>> [t.tolist() for t in model.set_target_scaling([70.0], [25.0]).target_scaling(g)]
            [[[70.0]], [[25.0]]]
        """
        idx = getattr(self, f"target_index_{g}")  # (T_g, k)
        return self.target_loc[idx], self.target_scale[idx]

    def set_target_scaling(self, loc: Any, scale: Any) -> "TaskGraphModel":
        """Set the regression outputs' ``loc`` and ``scale`` (R values each); returns self.

        Example:
            >>> import taskgraph as tg
            >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
            >>> model.set_target_scaling([70.0], [25.0]).target_scale.tolist()
            [25.0]

        Raises:
            DataError: not R values, a non-finite value, or a scale <= 0 (output named).
        """
        R, values = len(self._regression_names), []
        for what, v in (("loc", loc), ("scale", scale)):
            try:
                t = (v.detach().cpu() if isinstance(v, Tensor) else
                     torch.as_tensor(np.asarray(v, dtype=np.float64))).double().reshape(-1)
            except (TypeError, ValueError) as err:
                raise DataError(f"set_target_scaling: {what}: not numeric ({err})") from None
            if t.shape != (R,):
                raise DataError(f"set_target_scaling: {what}: expected {R} values, one per "
                                f"regression output ({', '.join(self._regression_names)[:200]})"
                                f", got {t.numel()}")
            bad = ~torch.isfinite(t) | ((t <= 0) if what == "scale" else False)
            if bad.any():
                i = int(bad.nonzero()[0])
                want = "a finite positive number" if what == "scale" else "a finite number"
                raise DataError(f"set_target_scaling: {what} of regression output "
                                f"{self._regression_names[i]!r}: expected {want}, "
                                f"got {float(t[i]):g}")
            values.append(t)
        if R == 0:
            return self
        with torch.no_grad():  # in place: DistributedDataParallel holds these tensors
            self.target_loc.copy_(values[0])
            self.target_scale.copy_(values[1])
        return self

    def fit_target_scaling(self, targets: Any) -> "TaskGraphModel":
        """Standardize the regression targets with statistics of ``targets``; returns self.

        Per regression output: ``loc`` = the mean and ``scale`` = the population std
        (divisor n) of its known (non-NaN) values; no known value gives 0 and 1, a
        constant output scale 1. ``targets``: an ``(N, C)`` matrix in
        :func:`~taskgraph.train.data.target_columns` order (NaN = missing), or anything
        :meth:`loss` takes.

        Example:
            >>> import torch, taskgraph as tg
            >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
            >>> Y = torch.tensor([[1., 0., 2., 1000.], [0., 1., 1., 3000.]])
            >>> model.fit_target_scaling(Y).target_loc.tolist(), model.target_scale.tolist()
            ([2000.0], [1000.0])
        """
        return self.set_target_scaling(*target_statistics(self.regression_targets(targets)))

    def regression_targets(self, targets: Any) -> Tensor:
        """The regression targets in ``targets`` (a matrix or mapping, as :meth:`loss`
        takes): ``(N, R)`` on the CPU, NaN where missing, in :attr:`regression_outputs`
        order. Raises DataError for a wrong shape or an infinite value.

        Example:
            >>> import taskgraph as tg
            >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
            >>> model.regression_targets({"weight_kg": [4.0, float("nan")]}).tolist()
            [[4.0], [nan]]
        """
        return regression_targets(self.layout, self._regression_index, targets)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # weights saved before target scaling existed carry no statistics: no scaling
        for name, fill in (("target_loc", torch.zeros_like), ("target_scale", torch.ones_like)):
            if getattr(self, name) is not None and prefix + name not in state_dict:
                state_dict[prefix + name] = fill(getattr(self, name))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def synapses(self) -> list[dict[str, Any]]:
        """A table of the edge synapses: parent, child, direction, kind, mean, std, p."""
        if self.edge_synapses is None:
            return []
        rows = self.edge_synapses.table()
        E = self.layout.num_edges
        out = []
        for k, row in enumerate(rows):
            parent, child = self.layout.edges[k % E]
            out.append({"parent": parent, "child": child,
                        "direction": self.config.directions[k // E], **row})
        return out

    def task_embeddings(self) -> Tensor:
        """The learned task embeddings ``e_t``: (T, F)."""
        return self.task_embedding.detach()

    def extra_repr(self) -> str:
        c = self.config
        return (f"hierarchy={self.hierarchy.name!r}, tasks={self.layout.num_tasks}, "
                f"edges={self.layout.num_edges}, task_dim={c.task_dim}, rounds={c.rounds}, "
                f"directions={c.directions}, message={c.message!r}, coherent={c.coherent}")
