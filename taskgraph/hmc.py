"""The HMC recipe: the default taskgraph model and training for label hierarchies.

One configuration for every HMC data set (FunCat trees and Gene Ontology DAGs): an MLP
encoder, per-task projections into small task embeddings, message passing down and up
the label hierarchy over gaussian synapses, batched binary heads, coherence (a parent
is never less likely than a child) and C-HMCNN's MC loss. Early stopping watches
AU(PRC)-bar on the validation split only; the test split is scored once, at the end.
``taskgraph demo`` and ``benchmarks/hmc.py`` both run this.

Example:
    >>> from taskgraph.datasets.hmc import load_hmc
    >>> data = load_hmc("cellcycle_FUN").preprocessed()
    >>> result = train_hmc(data, epochs=1, progress=False, seed=0)
    >>> 0.0 < result.test_auprc < 1.0, result.violations
    (True, 0)
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score

__all__ = ["HMC_CONFIG", "HMCResult", "train_hmc", "auprc_bar", "PUBLISHED"]

#: The one default configuration (compile options and training settings).
HMC_CONFIG: dict[str, Any] = {
    "model": {"task_dim": 8, "rounds": 1, "directions": ["down", "up"],
              "encoder_spec": {"hidden": [512, 512], "dropout": 0.7, "activation": "relu"},
              "synapse": {"kind": "gaussian", "mean": 1.0, "std": 0.1, "prior_std": 1.0},
              "coherent": True},
    "train": {"epochs": 40, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5,
              "patience": 8, "kl_weight": 1.0},
}

#: Published AU(PRC)-bar (C-HMCNN 10-seed means; HMCN-F for GO), DESIGN.md §5.
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


@dataclass
class HMCResult:
    """What :func:`train_hmc` returns."""

    model: Any
    history: Any
    valid_auprc: float
    test_auprc: float
    violations: int
    seconds: float
    config: dict = field(default_factory=dict)


def auprc_bar(Y: np.ndarray, P: np.ndarray, columns: np.ndarray) -> float:
    """Micro-averaged average precision over the evaluated label columns."""
    return float(average_precision_score(Y[:, columns], P[:, columns], average="micro"))


@torch.no_grad()
def predict_matrix(model: Any, X: np.ndarray, *, samples: int = 0,
                   batch_size: int = 512) -> np.ndarray:
    """``(N, T)`` probabilities in hierarchy task order (all tasks binary)."""
    layout = model.layout
    order = np.asarray(layout.groups[0].tasks)
    device = next(model.parameters()).device
    out = np.empty((len(X), layout.num_tasks), dtype=np.float32)
    for start in range(0, len(X), batch_size):
        pred = model.predict(torch.as_tensor(X[start:start + batch_size], device=device),
                             samples=samples)
        out[start:start + batch_size][:, order] = pred.blocks[0]["mean"].cpu().numpy()
    return out


def violations(model: Any, P: np.ndarray) -> int:
    """Number of (example, edge) pairs where a child is more probable than its parent."""
    parents, children = model.layout.edge_index.numpy()
    return int((P[:, children] > P[:, parents] + 1e-6).sum())


def train_hmc(data: Any, *, seed: int = 0, epochs: int | None = None, progress: bool = True,
              overrides: dict[str, Any] | None = None, train_overrides: dict[str, Any] | None = None,
              samples: int = 0, refit: bool = False) -> HMCResult:
    """Train the default model on preprocessed :class:`~taskgraph.datasets.hmc.HMCData`.

    Args:
        data: the data set, already ``.preprocessed()``.
        seed: seeds initialization, data order and sampling.
        epochs: cap on epochs (default: the recipe's, with early stopping on valid).
        overrides / train_overrides: changes to ``HMC_CONFIG["model"]`` / ``["train"]``
            (the benchmark's ablations).
        samples: MC samples for the test predictions (0: mean synapses).
        refit: after choosing the epoch count on valid, train a fresh model on train +
            valid for that many epochs and score it (C-HMCNN's protocol); the reported
            ``valid_auprc`` stays the one measured before refitting.
    """
    from tqdm.auto import tqdm

    import taskgraph as tg
    from taskgraph.train import TaskDataset, make_loader
    from taskgraph.train.fit import make_optimizer

    model_cfg = {**HMC_CONFIG["model"], **(overrides or {})}
    train_cfg = {**HMC_CONFIG["train"], **(train_overrides or {})}
    if epochs is not None:
        train_cfg["epochs"] = epochs
    torch.manual_seed(seed)
    h = data.hierarchy
    model = tg.compile(h, in_features=int(data.train.X.shape[1]), **model_cfg)
    train = TaskDataset(data.train.X, data.train.Y, h)
    tic = time.perf_counter()
    best = {"score": -1.0, "state": None, "epoch": 0}

    optimizer = make_optimizer(model.parameters(), lr=train_cfg["lr"],
                               weight_decay=train_cfg["weight_decay"])
    loader = make_loader(train, batch_size=train_cfg["batch_size"], seed=seed)
    history = tg.History()
    bad = 0
    bar = tqdm(range(1, train_cfg["epochs"] + 1), desc=f"{data.name}", unit="epoch",
               disable=not progress, dynamic_ncols=True)
    for epoch in bar:
        part = tg.fit(model, loader, epochs=1, optimizer=optimizer, progress=False,
                      kl_weight=train_cfg["kl_weight"], val_metrics=False,
                      seed=seed + epoch)
        model.eval()
        score = auprc_bar(data.valid.Y, predict_matrix(model, data.valid.X), data.eval_columns)
        record = dict(part.records[-1], epoch=epoch, val_auprc_bar=score)
        history.append(record)
        bar.set_postfix(loss=f"{record['loss']:.4f}", valid_auprc=f"{score:.4f}")
        if score > best["score"]:
            best = {"score": score, "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
            bad = 0
        else:
            bad += 1
            if bad >= train_cfg["patience"]:
                history.stopped_early = True
                break
    model.load_state_dict(best["state"])
    model.eval()
    history.best_epoch = best["epoch"]
    if refit:  # C-HMCNN's protocol: retrain on train + valid for the epochs chosen on valid
        merged = TaskDataset(np.concatenate([data.train.X, data.valid.X]),
                             np.concatenate([data.train.Y, data.valid.Y]), h)
        torch.manual_seed(seed)
        model = tg.compile(h, in_features=int(data.train.X.shape[1]), **model_cfg)
        optimizer = make_optimizer(model.parameters(), lr=train_cfg["lr"],
                                   weight_decay=train_cfg["weight_decay"])
        loader = make_loader(merged, batch_size=train_cfg["batch_size"], seed=seed)
        for epoch in range(1, best["epoch"] + 1):
            tg.fit(model, loader, epochs=1, optimizer=optimizer, progress=False,
                   kl_weight=train_cfg["kl_weight"], val_metrics=False, seed=seed + epoch)
        model.eval()
    P = predict_matrix(model, data.test.X, samples=samples)
    return HMCResult(model, history, best["score"], auprc_bar(data.test.Y, P, data.eval_columns),
                     violations(model, P), time.perf_counter() - tic,
                     {"model": model_cfg, "train": train_cfg})
