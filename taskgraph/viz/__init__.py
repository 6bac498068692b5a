"""Layer 5: pictures of task graphs and training runs, and the one-page HTML report.

matplotlib is imported inside the drawing functions only, so importing this package
(or ``taskgraph``) never imports it; the layout and DOT output need no matplotlib.

* :func:`draw`: the task graph (a hierarchy, or a model's learned synapses) as .png,
  .svg, .pdf or Graphviz .dot; a screen-wide overview of the top levels
  (:func:`overview_view`) for hierarchies of more than :data:`LARGE` tasks, subtrees
  and collapsed views.
* :func:`layered_layout` / :func:`compute_layout`: the layered layout it uses.
* :func:`plot_training_curves`, :func:`plot_metrics`, :func:`plot_synapses`,
  :func:`plot_weight_sharing`, :func:`plot_reliability`, :func:`plot_risk_coverage`,
  :func:`plot_synapse_outliers`, :func:`plot_embedding_links`: figures of a run.
* :class:`RobustRange`, :func:`robust_z`: the robust scales they use.
* :func:`write_report`: one self-contained HTML page about a run folder.

Example:
    >>> import sys, taskgraph.viz as viz
    >>> pos = viz.layered_layout(viz.graph_view(
    ...     __import__("taskgraph").load_hierarchy("hierarchies/cell_functions.yaml")))
    >>> pos["metabolism"][1], pos["glycolysis"][1], pos["lipid_signaling"][1]
    (0, 2, 2)
"""

from taskgraph.viz.dot import to_dot, write_dot
from taskgraph.viz.embedding_plots import plot_embedding_links
from taskgraph.viz.graph import FORMATS, Drawing, check_output, draw
from taskgraph.viz.layout import (Layout, assign_layers, compute_layout, count_crossings,
                                  layered_layout)
from taskgraph.viz.model_plots import plot_synapses, plot_weight_sharing
from taskgraph.viz.overview import overview_view
from taskgraph.viz.plots import plot_metrics, plot_training_curves
from taskgraph.viz.reliability import plot_reliability, reliability_panels
from taskgraph.viz.report_html import write_report
from taskgraph.viz.risk_coverage import plot_risk_coverage, risk_coverage_curves
from taskgraph.viz.scales import RobustRange, robust_z
from taskgraph.viz.style import LARGE
from taskgraph.viz.synapse_outliers import plot_synapse_outliers, synapse_outliers
from taskgraph.viz.view import Collapsed, DrawingError, GraphTooLargeError, graph_view

__all__ = [
    "draw",
    "Drawing",
    "FORMATS",
    "check_output",
    "graph_view",
    "overview_view",
    "LARGE",
    "Collapsed",
    "DrawingError",
    "GraphTooLargeError",
    "layered_layout",
    "compute_layout",
    "count_crossings",
    "assign_layers",
    "Layout",
    "to_dot",
    "write_dot",
    "plot_training_curves",
    "plot_metrics",
    "plot_synapses",
    "plot_weight_sharing",
    "plot_reliability",
    "reliability_panels",
    "plot_risk_coverage",
    "risk_coverage_curves",
    "plot_synapse_outliers",
    "synapse_outliers",
    "plot_embedding_links",
    "RobustRange",
    "robust_z",
    "write_report",
]
