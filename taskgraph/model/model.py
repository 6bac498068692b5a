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

from typing import Any

import torch
from torch import Tensor, nn

from taskgraph.hierarchy import Hierarchy
from taskgraph.model.config import ModelConfig
from taskgraph.model.encoder import MLPEncoder, UserEncoder
from taskgraph.model.layout import TaskLayout, edge_synapses, end_to_end
from taskgraph.model.outputs import Prefix, TaskOutputs
from taskgraph.model.sources import PredictionSource
from taskgraph.model.targets import (regression_layout, regression_targets, scaling_values,
                                     target_statistics)
from taskgraph.nn.coherence import Coherence
from taskgraph.nn.gnn import HierarchyGNN
from taskgraph.nn.stochastic_linear import TaskLinear
from taskgraph.nn.synapses import EdgeSynapses

__all__ = ["TaskGraphModel"]


class TaskGraphModel(nn.Module):
    """A hierarchy compiled into a PyTorch module. Build it with :func:`taskgraph.compile`.

    Args:
        hierarchy (Hierarchy): the validated hierarchy.
        config (ModelConfig): resolved settings.
        encoder (nn.Module, optional): a user encoder mapping inputs to ``(B, D)``, kept
            as ``model.encoder.module`` behind a :class:`UserEncoder`; ``None`` builds the
            YAML MLP from ``config.in_features``.

    Shapes:
        input: whatever the encoder takes (``(B, in_features)`` for the MLP);
        output: :class:`TaskOutputs`, task name -> logits (regression: standardized
        values, see :meth:`fit_target_scaling`).

    Attributes:
        encoder: an :class:`MLPEncoder` or :class:`UserEncoder`; either takes ``sample=``
            and has ``kl()``.
        group_index: ``(T,)`` buffer, the head groups' task positions one after another
            (:meth:`group_tasks`); rebuilt from the layout, not saved.
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
                                 stochastic=sto.encoder, prior_std=sto.prior_std,
                                 init_std=sto.init_std)
        else:
            encoder = UserEncoder(encoder, config.encoder_dim)
        self.encoder: MLPEncoder | UserEncoder = encoder
        encoder_dim = encoder.out_features
        # Low-rank projections for large hierarchies: a shared D -> r layer first.
        rank = config.rank(T, encoder_dim)
        self.reduce: nn.Linear | None = None
        if rank is not None:
            self.reduce = nn.Linear(encoder_dim, rank)
            encoder_dim = rank
        self.projections = TaskLinear(T, encoder_dim, F, shared_input=True,
                                      stochastic=sto.projections, prior_std=sto.prior_std,
                                      init_std=sto.init_std)
        self.task_embedding = nn.Parameter(torch.empty(T, F))  # (T, F)
        self.register_buffer("edge_index", layout.edge_index, persistent=False)  # (2, E)
        self.register_buffer("task_weights", layout.weights, persistent=False)  # (T,)
        # The head groups' task positions, one after another (group_tasks(g) is a view);
        # not saved: the layout rebuilds it
        flat, self._group_slices = end_to_end([torch.tensor(g.tasks) for g in layout.groups])
        self.register_buffer("group_index", flat, persistent=False)  # (T,)
        # Target scaling, one (loc, scale) per regression output: data statistics, not
        # parameters (reset_parameters leaves them alone). target_index holds each
        # standardized group's (T_g, k) positions among the R outputs, end to end.
        index, self._regression_names = regression_layout(layout)
        self._regression_index = index  # per group (T_g, k) or None, on the CPU
        R = len(self._regression_names)  # no regression task: None, not in the state dict
        self.register_buffer("target_loc", torch.zeros(R) if R else None)  # (R,)
        self.register_buffer("target_scale", torch.ones(R) if R else None)  # (R,)
        flat, self._target_slices = end_to_end(index)
        self.register_buffer("target_index", flat, persistent=False)  # (R,)
        self.register_buffer("temperature", torch.ones(T))  # (T,) see model/temperature.py
        # One group holding every task in order (e.g. a label hierarchy): no gather.
        self._whole = (len(layout.groups) == 1
                       and list(layout.groups[0].tasks) == list(range(T)))
        self.heads = nn.ModuleList(
            TaskLinear(len(g.tasks), F, g.width, stochastic=sto.heads, prior_std=sto.prior_std,
                       init_std=sto.init_std)
            for g in layout.groups)
        self.gnn: HierarchyGNN | None = None
        self.edge_synapses: EdgeSynapses | None = None
        if config.message_passing and layout.num_edges > 0:
            self.gnn = HierarchyGNN(F, config.rounds, directions=config.directions,
                                    message=config.message, dropout=config.dropout,
                                    norm=config.message_norm)
            specs = edge_synapses(hierarchy, layout.edges, config.directions, config.synapse)
            self.edge_synapses = EdgeSynapses(
                [s.kind for s in specs], mean=[s.mean for s in specs],
                std=[s.std for s in specs], p=[s.p for s in specs],
                prior_std=[s.prior_std for s in specs], prior_p=[s.prior_p for s in specs])
        # send: prediction -- what a task's head predicts is what it sends
        self.sources = (PredictionSource(layout, F)
                        if self.gnn is not None and config.send == "prediction" else None)
        #: The "messages zeroed" control of ablations: every synapse weight times 0,
        #: everything else kept (not saved; a model is never trained this way by default).
        self.zero_messages = False
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
        for module in (self.gnn, self.edge_synapses, self.sources):
            if module is not None:
                module.reset_parameters()

    # -- the forward pass, in stages (predict() runs them as prefix and suffix) ------------
    def encode(self, x: Any, *, sample: bool | None = None) -> Tensor:
        """The shared representation ``z``: (B, D).

        Raises:
            DataError: ``x`` is not a ``(B, in_features)`` tensor for the MLP encoder, or
                a user encoder returns something other than ``(B, D)``.
        """
        return self.encoder(x, sample=sample)

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
        if self.zero_messages:
            weight = weight * 0.0
        source = None
        if self.sources is not None:
            def source(x: Tensor) -> Tensor:  # (B, T, F) -> what each task sends
                return self.sources(x, self.heads, sample=sample,
                                    group_tasks=self.group_tasks, whole=self._whole)
        return self.gnn(h, self.edge_index, weight, source=source)  # (B, T, F)

    def readout(self, h: Tensor, *, sample: bool | None = None) -> TaskOutputs:
        """Batched heads, one per group of equal shape; then coherence."""
        blocks = []
        for g, (head, group) in enumerate(zip(self.heads, self.layout.groups)):
            hg = h if self._whole else h.index_select(-2, self.group_tasks(g))  # (B, T_g, F)
            blocks.append(group.task_type.block(head(hg, sample=sample)))  # (B, T_g[, W])
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

    @property
    def stochastic(self) -> bool:
        """Whether any part draws noise when sampled (synapses, stochastic layers)."""
        return (self.encoder.stochastic or self.projections.stochastic
                or self.edge_synapses is not None or any(h.stochastic for h in self.heads))

    def deterministic_prefix(self, x: Any) -> Prefix:
        """Run the stages before the first stochastic one, once, with expected weights.

        The stages are encode, embed, then propagate and readout. A stochastic encoder
        leaves nothing to run (the prefix is ``x``); stochastic projections stop after
        encode (``z``); otherwise the prefix is ``H^0`` (B, T, F).

        Example:
            >>> import torch, taskgraph as tg
            >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
            >>> prefix = model.deterministic_prefix(torch.randn(2, 6))
            >>> tuple(prefix.value.shape), prefix.start  # H^0: the synapses come next
            ((2, 4, 4), 2)
            >>> model.sampled_suffix(prefix.repeat(5))["diet"].shape  # 5 draws of each row
            torch.Size([10, 3])
        """
        stages = (self.encode, self.embed)
        start = 0 if self.encoder.stochastic else 1 if self.projections.stochastic else 2
        h = x
        for stage in stages[:start]:
            h = stage(h, sample=False)
        return Prefix(h, start)

    def sampled_suffix(self, prefix: Prefix, *, sample: bool = True) -> TaskOutputs:
        """The rest of the forward pass from ``prefix`` (e.g. ``prefix.repeat(k)``, one
        draw per row), drawing the synapses and stochastic layers when ``sample``."""
        h = prefix.value
        for stage in (self.encode, self.embed, self.propagate)[prefix.start:]:
            h = stage(h, sample=sample)
        return self.readout(h, sample=sample)

    # -- what the loss and predict ask -----------------------------------------------------
    def group_tasks(self, g: int) -> Tensor:
        """Task positions of head group ``g`` (a view of ``group_index``): (T_g,)."""
        start, end, _ = self._group_slices[g]
        return self.group_index[start:end]

    def ungroup(self, values: list[Tensor]) -> Tensor:
        """Per-group ``(T_g,)`` vectors as one ``(T,)`` vector in hierarchy task order."""
        flat = torch.cat(values)  # (T,), group order
        return flat.new_zeros(flat.shape).index_copy(0, self.group_index, flat)

    def loss_logits(self, outputs: TaskOutputs, g: int, target: Tensor) -> Tensor:
        """What group ``g``'s loss is computed on: its block, except C-HMCNN's MC logits
        for the binary group of a coherent model (``target``: its (B, T_b, 1) block)."""
        if g != self.layout.binary_group or self.coherence is None \
                or outputs.raw_binary is None:
            return outputs.blocks[g]
        t = target[..., 0]  # (B, T_b)
        hard = torch.where(self.layout.groups[g].task_type.known(t), t, -torch.ones_like(t))
        return self.coherence.mc_logits(outputs.raw_binary, hard)

    def kl(self) -> Tensor:
        """Closed-form KL of every stochastic part to its prior, summed (not averaged)."""
        parts = [self.projections.kl()] + [head.kl() for head in self.heads]
        if self.edge_synapses is not None:
            parts.append(self.edge_synapses.kl())
        parts.append(self.encoder.kl().to(parts[0].device))
        return torch.stack([p.to(parts[0].dtype) for p in parts]).sum()

    def loss(self, outputs: TaskOutputs, targets: Any, *, dataset_size: int | None = None,
             kl_weight: float = 1.0, task_weights: Tensor | None = None):
        """Masked, weighted multi-task loss plus the scaled KL. See :func:`task_loss`."""
        from taskgraph.model.loss import task_loss

        return task_loss(self, outputs, targets, dataset_size=dataset_size,
                         kl_weight=kl_weight, task_weights=task_weights)

    @torch.no_grad()
    def predict(self, x: Any, *, samples: int = 0, chunk_size: int | None = None,
                dropout: bool | None = None):
        """Mean probabilities (or values) per task with their uncertainty; see
        :func:`taskgraph.model.predict.predict`."""
        from taskgraph.model.predict import predict

        return predict(self, x, samples=samples, chunk_size=chunk_size, dropout=dropout)

    # -- regression target scaling ------------------------------------------------------
    @property
    def regression_outputs(self) -> list[str]:
        """Names of the R regression outputs (``task`` or ``task[i]``), the order of
        ``target_loc`` and ``target_scale`` (:func:`taskgraph.model.targets.target_columns`)."""
        return list(self._regression_names)

    def target_scaling(self, g: int) -> tuple[Tensor, Tensor] | None:
        """``(loc, scale)`` of head group ``g``, each (T_g, k); ``None`` for a group whose
        type is not standardized (all but regression).

        Example:
            >>> import taskgraph as tg
            >>> model = tg.compile("hierarchies/animals.yaml", in_features=6, task_dim=4)
            >>> g = model.layout.where["weight_kg"][0]
            >>> [t.tolist() for t in model.set_target_scaling([70.0], [25.0]).target_scaling(g)]
            [[[70.0]], [[25.0]]]
        """
        where = self._target_slices[g]
        if where is None:
            return None
        start, end, shape = where
        idx = self.target_index[start:end].view(shape)  # (T_g, k)
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
        loc, scale = scaling_values(self._regression_names, loc, scale)  # (R,) each
        if self._regression_names:
            with torch.no_grad():  # in place: DistributedDataParallel holds these tensors
                self.target_loc.copy_(loc)
                self.target_scale.copy_(scale)
        return self

    def fit_target_scaling(self, targets: Any) -> "TaskGraphModel":
        """Standardize the regression targets with statistics of ``targets``; returns self.

        Per regression output: ``loc`` = the mean and ``scale`` = the population std
        (divisor n) of its known (non-NaN) values; no known value gives 0 and 1, a
        constant output scale 1. ``targets``: an ``(N, C)`` matrix in
        :func:`~taskgraph.model.targets.target_columns` order (NaN = missing), or anything
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
        for name, fill in (("target_loc", torch.zeros_like), ("target_scale", torch.ones_like),
                           ("temperature", torch.ones_like)):  # nor temperatures: 1
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
