"""Layer 2: the neural building blocks. torch and PyG only; no YAML, files or CLI.

- :class:`EdgeSynapses`: one stochastic synapse per edge (gaussian, bernoulli, fixed).
- :class:`StochasticLinear`, :class:`TaskLinear`: Bayesian / batched per-task layers.
- :class:`HierarchyConv`, :class:`HierarchyGNN`: message passing down and up a hierarchy.
- :class:`Coherence`: parent >= child probabilities in O(B (T + E)).
- :func:`weighted_aggregate`, :class:`EdgePlan`: the sparse sum with per-example edge
  weights under message passing.
- :func:`message_round`: one round (normalize what is sent, weighted sums over the edges,
  transform, GELU, residual) as one chunked autograd function with a hand-written
  backward; :func:`weighted_aggregate` stays the plain sparse sum.
"""

from taskgraph.nn.aggregate import EdgePlan, weighted_aggregate
from taskgraph.nn.coherence import Coherence
from taskgraph.nn.fused_round import message_round
from taskgraph.nn.gnn import HierarchyGNN
from taskgraph.nn.message import HierarchyConv
from taskgraph.nn.stochastic_linear import StochasticLinear, TaskLinear
from taskgraph.nn.synapses import EdgeSynapses

__all__ = ["EdgeSynapses", "StochasticLinear", "TaskLinear", "HierarchyConv", "HierarchyGNN",
           "Coherence", "EdgePlan", "weighted_aggregate", "message_round"]
