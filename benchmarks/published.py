"""Published test AU(PRC)-bar of other methods on the HMC data sets (DESIGN.md §5).

C-HMCNN (Giunchiglia & Lukasiewicz, NeurIPS 2020): 10-seed means from its README.
HMCN-F (Wehrmann et al., ICML 2018): the GO column of C-HMCNN's comparison table.
DHN ("Dynamic HMC networks"): 10-trial means from its repository's README.
church and pheno have no published C-HMCNN number.

``best(name)`` is the best published number of a set, the one the benchmarks compare
against (``BEST``: the table's "best" column, written out).

Example:
    >>> best("gasch2_GO"), best("cellcycle_FUN"), best("church_FUN")
    (0.465, 0.256, None)
"""

from __future__ import annotations

__all__ = ["PUBLISHED", "BEST", "best"]

#: data set -> method -> test AU(PRC)-bar.
PUBLISHED: dict[str, dict[str, float]] = {
    "cellcycle_FUN": {"C-HMCNN": 0.255, "HMCN-F": 0.252, "DHN": 0.256},
    "derisi_FUN": {"C-HMCNN": 0.195, "HMCN-F": 0.193, "DHN": 0.198},
    "eisen_FUN": {"C-HMCNN": 0.306, "HMCN-F": 0.298, "DHN": 0.307},
    "gasch1_FUN": {"C-HMCNN": 0.286, "HMCN-F": 0.284, "DHN": 0.285},
    "gasch2_FUN": {"C-HMCNN": 0.258, "HMCN-F": 0.254, "DHN": 0.260},
    "seq_FUN": {"C-HMCNN": 0.292, "HMCN-F": 0.291, "DHN": 0.295},
    "spo_FUN": {"C-HMCNN": 0.215, "HMCN-F": 0.211, "DHN": 0.216},
    "cellcycle_GO": {"C-HMCNN": 0.413, "HMCN-F": 0.400, "DHN": 0.415},
    "derisi_GO": {"C-HMCNN": 0.370, "HMCN-F": 0.369, "DHN": 0.371},
    "eisen_GO": {"C-HMCNN": 0.455, "HMCN-F": 0.440, "DHN": 0.456},
    "gasch1_GO": {"C-HMCNN": 0.436, "HMCN-F": 0.428, "DHN": 0.440},
    "gasch2_GO": {"C-HMCNN": 0.414, "HMCN-F": 0.465, "DHN": 0.416},
    "seq_GO": {"C-HMCNN": 0.446, "HMCN-F": 0.447, "DHN": 0.447},
    "spo_GO": {"C-HMCNN": 0.382, "HMCN-F": 0.376, "DHN": 0.382},
}

#: data set -> the best published number (the "best" column the benchmarks beat or not).
BEST: dict[str, float] = {
    "cellcycle_FUN": 0.256, "derisi_FUN": 0.198, "eisen_FUN": 0.307, "gasch1_FUN": 0.286,
    "gasch2_FUN": 0.260, "seq_FUN": 0.295, "spo_FUN": 0.216,
    "cellcycle_GO": 0.415, "derisi_GO": 0.371, "eisen_GO": 0.456, "gasch1_GO": 0.440,
    "gasch2_GO": 0.465, "seq_GO": 0.447, "spo_GO": 0.382,
}

if {k: max(v.values()) for k, v in PUBLISHED.items()} != BEST:  # the two tables agree
    raise RuntimeError("benchmarks/published.py: BEST is not the maximum of PUBLISHED")


def best(name: str) -> float | None:
    """The best published test AU(PRC)-bar of data set ``name`` (``None``: none)."""
    return BEST.get(name)
