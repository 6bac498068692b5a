"""Layer 5: import real hierarchies (HMC ARFF, OBO ontologies, WordNet nouns, ICD-10-CM)."""

from taskgraph.importers.icd10cm import import_icd10cm, parse_icd10cm
from taskgraph.importers.obo import import_obo, parse_obo
from taskgraph.importers.wordnet import import_wordnet, parse_wordnet

__all__ = ["import_icd10cm", "parse_icd10cm", "import_obo", "parse_obo", "import_wordnet", "parse_wordnet", "import_arff"]


def import_arff(path, *, name=None):
    """The class hierarchy declared in an HMC ARFF file (``.arff`` / ``.arff.gz``).

    >>> import taskgraph.datasets.hmc as hmc, os
    >>> h = import_arff(os.path.join(hmc.shipped_root(), "cellcycle_FUN.train.arff.gz"))
    >>> len(h), h.model.coherent
    (499, True)
    """
    import os

    from taskgraph.datasets.arff import hierarchy_from_arff, read_arff

    base = os.path.basename(os.fspath(path)).split(".")[0]
    return hierarchy_from_arff(read_arff(path), name=name or base)
