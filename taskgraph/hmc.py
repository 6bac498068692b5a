"""The HMC recipe: the default taskgraph model and training for label hierarchies.

One configuration for every HMC data set (FunCat trees and Gene Ontology DAGs): an MLP
encoder, per-task projections into small task embeddings, message passing down and up
the label hierarchy over gaussian synapses, batched binary heads, coherence (a parent
is never less likely than a child) and C-HMCNN's MC loss. The weights that are scored
are an exponential moving average of the trained ones (``ema``, updated after every
optimizer step). Early stopping watches AU(PRC)-bar on the validation split only; the
test split is scored once, at the end. ``taskgraph demo`` and ``benchmarks/hmc.py``
both run this.

Per-data-set tuning happens only through :data:`HMC_SEARCH`, an automatic search on
the validation split (``train_hmc(..., search=True)``): every candidate is trained on
train with early stopping on valid, the one with the best valid AU(PRC)-bar wins (ties:
the earlier candidate), and only that one is refitted and scored on test.

Example:
    >>> from taskgraph.datasets.hmc import load_hmc
    >>> data = load_hmc("cellcycle_FUN").preprocessed()
    >>> result = train_hmc(data, epochs=1, progress=False, seed=0)
    >>> 0.0 < result.test_auprc < 1.0, result.violations
    (True, 0)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.metrics import average_precision_score

__all__ = ["HMC_CONFIG", "HMC_SEARCH", "HMCResult", "train_hmc", "auprc_bar",
           "seed_everything", "PUBLISHED"]

#: The one default configuration (compile options and training settings).
HMC_CONFIG: dict[str, Any] = {
    "model": {"task_dim": 8, "rounds": 1, "directions": ["down", "up"],
              "encoder_spec": {"hidden": [512, 512], "dropout": 0.7, "activation": "relu"},
              "synapse": {"kind": "gaussian", "mean": 1.0, "std": 0.1, "prior_std": 1.0},
              "coherent": True, "projection_rank": "full"},
    "train": {"epochs": 60, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5,
              "patience": 8, "kl_weight": 1.0, "ema": 0.995},
}

#: The automatic search on valid: each candidate is a change to :data:`HMC_CONFIG`
#: (nested dictionaries are merged). The first one is the default configuration.
#: Message passing helps on some sets and costs on others (valid AU(PRC)-bar with /
#: without: gasch2_FUN 0.240 / 0.238, eisen_FUN 0.278 / 0.288; seeds 0 and 1,
#: benchmarks/results/hmc_fun.md), so whether to pass messages is searched.
HMC_SEARCH: tuple[dict[str, Any], ...] = (
    {},
    {"model": {"rounds": 0}},
)

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
    """What :func:`train_hmc` returns.

    ``history`` describes ``model``, the model that was scored: with ``refit`` it is
    the refit's (one record per epoch on train + valid, no validation scores), else the
    validation phase's. ``valid_history`` is always the validation phase of the chosen
    candidate (the same object as ``history`` without ``refit``). ``epochs``: the epochs
    of training behind ``model`` (the best epoch on valid, which is also the refit's
    length); both histories' ``best_epoch`` equals it. ``trials`` has one entry per
    candidate tried on valid (its changes to :data:`HMC_CONFIG`, valid AU(PRC)-bar, best
    epoch, seconds); ``config`` is the full configuration of the model that was scored.
    """

    model: Any
    history: Any
    valid_auprc: float
    test_auprc: float
    violations: int
    seconds: float
    config: dict = field(default_factory=dict)
    trials: list[dict] = field(default_factory=list)
    valid_history: Any = None
    epochs: int = 0
    refit: bool = False


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


def merge_config(base: dict[str, Any], change: dict[str, Any] | None) -> dict[str, Any]:
    """``base`` with ``change`` applied; nested dictionaries are merged key by key.

    Example:
        >>> merge_config({"a": {"x": 1, "y": 2}, "b": 3}, {"a": {"y": 5}})
        {'a': {'x': 1, 'y': 5}, 'b': 3}
    """
    out = dict(base)
    for key, value in (change or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and :mod:`random` (called before every model is built).

    Example:
        >>> seed_everything(3); a = torch.rand(2)
        >>> seed_everything(3); torch.equal(a, torch.rand(2))
        True
    """
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


class _Run:
    """One model, its optimizer and (when ``ema`` > 0) the moving average of its weights."""

    def __init__(self, data: Any, model_cfg: dict, train_cfg: dict, seed: int,
                 X: np.ndarray, Y: np.ndarray, device: Any = None) -> None:
        import taskgraph as tg
        from taskgraph.train import TaskDataset, make_loader
        from taskgraph.train.fit import make_optimizer

        seed_everything(seed)  # the initial weights depend on the seed only
        self.model = tg.compile(data.hierarchy, in_features=int(X.shape[1]), **model_cfg)
        if device is not None:  # built on the CPU first: the same weights on every device
            self.model = self.model.to(device)
        self.optimizer = make_optimizer(self.model.parameters(), lr=train_cfg["lr"],
                                        weight_decay=train_cfg["weight_decay"])
        self.loader = make_loader(TaskDataset(X, Y, data.hierarchy),
                                  batch_size=train_cfg["batch_size"], seed=seed)
        self.cfg, self.seed = train_cfg, seed
        self.average = None
        decay = float(train_cfg.get("ema") or 0.0)
        if decay > 0.0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            # parameters only: the buffers (edge indices, layout) never change in training
            self.average = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(decay))
            self.optimizer.register_step_post_hook(
                lambda *_: self.average.update_parameters(self.model))

    @property
    def scored(self) -> Any:
        """The model whose predictions count: the moving average when there is one."""
        return (self.model if self.average is None else self.average.module).eval()

    def epoch(self, epoch: int) -> dict:
        import taskgraph as tg

        part = tg.fit(self.model, self.loader, epochs=1, optimizer=self.optimizer,
                      progress=False, kl_weight=self.cfg["kl_weight"], val_metrics=False,
                      seed=self.seed + epoch)
        return dict(part.records[-1], epoch=epoch)


def _bar(progress: bool, desc: str, total: int) -> Any:
    """One phase's progress bar: ``total`` epochs (the phase's cap), labelled ``desc``."""
    from tqdm.auto import tqdm

    return tqdm(desc=desc, total=total, unit="epoch", disable=not progress,
                dynamic_ncols=True)


def _fit_on_valid(data: Any, model_cfg: dict, train_cfg: dict, seed: int, bar: Any,
                  device: Any = None) -> tuple[Any, Any, float, int]:
    """Train on train with early stopping on valid AU(PRC)-bar; the best model, history,
    valid score and epoch."""
    import taskgraph as tg

    run = _Run(data, model_cfg, train_cfg, seed, data.train.X, data.train.Y, device)
    history = tg.History()
    best: dict[str, Any] = {"score": -1.0, "epoch": 0, "state": None}
    bad = 0
    for epoch in range(1, train_cfg["epochs"] + 1):
        record = run.epoch(epoch)
        score = auprc_bar(data.valid.Y, predict_matrix(run.scored, data.valid.X),
                          data.eval_columns)
        history.append(dict(record, val_auprc_bar=score))
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}", valid_auprc=f"{score:.4f}")
        if score > best["score"]:
            state = {k: v.detach().clone() for k, v in run.scored.state_dict().items()}
            best, bad = {"score": score, "epoch": epoch, "state": state}, 0
        else:
            bad += 1
            if bad >= train_cfg["patience"]:
                history.stopped_early = True
                bar.set_postfix_str(f"stopped early; best epoch {best['epoch']} "
                                    f"(valid {best['score']:.4f})")
                break
    model = run.scored
    model.load_state_dict(best["state"])
    history.best_epoch = best["epoch"]
    return model.eval(), history, best["score"], best["epoch"]


def _refit(data: Any, model_cfg: dict, train_cfg: dict, seed: int, epochs: int,
           bar: Any, device: Any = None) -> tuple[Any, Any]:
    """A fresh model trained on train + valid for ``epochs`` epochs, and its history."""
    import taskgraph as tg

    X = np.concatenate([data.train.X, data.valid.X])
    Y = np.concatenate([data.train.Y, data.valid.Y])
    run = _Run(data, model_cfg, train_cfg, seed, X, Y, device)
    history = tg.History()
    for epoch in range(1, epochs + 1):
        record = run.epoch(epoch)
        history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}")
    history.best_epoch = epochs  # the model is the last epoch's
    return run.scored, history


def train_hmc(data: Any, *, seed: int = 0, epochs: int | None = None, progress: bool = True,
              overrides: dict[str, Any] | None = None, train_overrides: dict[str, Any] | None = None,
              samples: int = 0, refit: bool = False,
              search: bool | Sequence[dict[str, Any]] = False,
              device: Any = None) -> HMCResult:
    """Train the default model on preprocessed :class:`~taskgraph.datasets.hmc.HMCData`.

    Args:
        data: the data set, already ``.preprocessed()``.
        seed: fixes the whole run: torch, numpy and :mod:`random` are seeded before
            every model is built (each candidate and the refit), and the data order,
            dropout and test draws follow from it; the same seed on the same machine
            gives bit-identical weights and scores.
        epochs: cap on epochs (default: the recipe's, with early stopping on valid).
        progress: one progress bar per phase, labelled and with the epoch cap as its
            total ("NAME: valid phase", then "NAME: refit on train+valid").
        overrides / train_overrides: changes to ``HMC_CONFIG["model"]`` / ``["train"]``
            (the benchmark's ablations), applied under every search candidate.
        samples: MC samples for the test predictions (0: mean synapses).
        refit: after choosing the epoch count on valid, train a fresh model on train +
            valid for that many epochs and score it (C-HMCNN's protocol); the reported
            ``valid_auprc`` stays the one measured before refitting, ``history`` is the
            refit's and ``valid_history`` the validation phase's.
        search: :obj:`True` to try every candidate of :data:`HMC_SEARCH` on valid and
            keep the best, or a sequence of candidates of that form; :obj:`False`
            (default) trains the default configuration only.
        device: where the models train (default: the CPU); they are built on the CPU,
            under the seed, then moved.
    """
    base = {"model": merge_config(HMC_CONFIG["model"], overrides),
            "train": merge_config(HMC_CONFIG["train"], train_overrides)}
    if epochs is not None:
        base["train"]["epochs"] = epochs
    candidates = list(HMC_SEARCH if search is True else search or [{}])
    tic = time.perf_counter()
    trials: list[dict] = []
    best: tuple[Any, ...] | None = None
    for i, candidate in enumerate(candidates):
        cfg = merge_config(base, candidate)
        start = time.perf_counter()
        desc = f"{data.name}: valid phase" + (f" {i + 1}/{len(candidates)}"
                                              if len(candidates) > 1 else "")
        with _bar(progress, desc, cfg["train"]["epochs"]) as bar:
            model, history, score, epoch = _fit_on_valid(data, cfg["model"], cfg["train"],
                                                         seed, bar, device)
        trials.append({"candidate": candidate, "valid_auprc": score, "epoch": epoch,
                       "seconds": time.perf_counter() - start})
        if best is None or score > best[2]:
            best = (model, history, score, epoch, cfg)
    model, valid_history, score, epoch, cfg = best
    history = valid_history
    if refit:  # C-HMCNN's protocol: retrain on train + valid for the epochs chosen on valid
        with _bar(progress, f"{data.name}: refit on train+valid", epoch) as bar:
            model, history = _refit(data, cfg["model"], cfg["train"], seed, epoch, bar,
                                    device)
    torch.manual_seed(seed)  # the test draws (samples > 0) depend on the seed only
    P = predict_matrix(model, data.test.X, samples=samples)
    return HMCResult(model, history, score, auprc_bar(data.test.Y, P, data.eval_columns),
                     violations(model, P), time.perf_counter() - tic, cfg, trials,
                     valid_history=valid_history, epochs=epoch, refit=refit)
