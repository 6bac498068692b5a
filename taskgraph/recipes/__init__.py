"""Recipes: tested configurations of the public API for one kind of problem.

A recipe is a short, fixed setup of ``compile`` and ``fit`` (and the protocol around
them) that the command line and the benchmarks share; it adds no training machinery of
its own.

* :mod:`taskgraph.recipes.hmc`: hierarchical multi-label classification (FunCat trees,
  Gene Ontology DAGs), as in ``taskgraph demo`` and ``benchmarks/hmc.py``.

Example:
    >>> from taskgraph.recipes.hmc import HMC_CONFIG
    >>> HMC_CONFIG["train"]["ema"]
    0.995
"""
