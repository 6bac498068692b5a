"""Published AU(PRC)-bar of other methods on the HMC data sets (DESIGN.md §5).

C-HMCNN (Giunchiglia & Lukasiewicz, NeurIPS 2020): 10-seed means from its README.
HMCN-F (Wehrmann et al., ICML 2018): the GO column of C-HMCNN's comparison table.
church and pheno have no published C-HMCNN number.
"""

from __future__ import annotations

__all__ = ["PUBLISHED"]

#: data set -> method -> test AU(PRC)-bar.
PUBLISHED: dict[str, dict[str, float]] = {
    "cellcycle_FUN": {"C-HMCNN": 0.255}, "derisi_FUN": {"C-HMCNN": 0.195},
    "eisen_FUN": {"C-HMCNN": 0.306}, "gasch1_FUN": {"C-HMCNN": 0.286},
    "gasch2_FUN": {"C-HMCNN": 0.258}, "seq_FUN": {"C-HMCNN": 0.292},
    "spo_FUN": {"C-HMCNN": 0.215},
    "cellcycle_GO": {"C-HMCNN": 0.413, "HMCN-F": 0.400},
    "derisi_GO": {"C-HMCNN": 0.370, "HMCN-F": 0.369},
    "eisen_GO": {"C-HMCNN": 0.455, "HMCN-F": 0.440},
    "gasch1_GO": {"C-HMCNN": 0.436, "HMCN-F": 0.428},
    "gasch2_GO": {"C-HMCNN": 0.414, "HMCN-F": 0.465},
    "seq_GO": {"C-HMCNN": 0.446, "HMCN-F": 0.447},
    "spo_GO": {"C-HMCNN": 0.382, "HMCN-F": 0.376},
}
