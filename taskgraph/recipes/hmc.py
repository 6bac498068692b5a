"""The HMC recipe: the default taskgraph model and training for label hierarchies.

One configuration for every HMC data set (FunCat trees and Gene Ontology DAGs): an MLP
encoder, per-task projections into small task embeddings, message passing down and up
the label hierarchy over gaussian synapses, batched binary heads, coherence (a parent
is never less likely than a child) and C-HMCNN's MC loss. The weights that are scored
are an exponential moving average of the trained ones (``ema``: ``fit``'s
``weight_average``, updated after every optimizer step). Early stopping watches
AU(PRC)-bar on the validation split only; the test split is scored once, at the end.
Training is :func:`taskgraph.fit`, configured; ``taskgraph demo`` and
``benchmarks/hmc.py`` both run this.

The training budget is set by convergence (:mod:`taskgraph.recipes.budget`): up to
400 epochs, early stopping after 12 without a better valid score, and the learning rate
lowered on every plateau; the refit on train + valid replays the valid phase's rates
epoch by epoch.

Per-data-set tuning happens only on the validation split: ``search=True`` tries the
candidates of :data:`HMC_SEARCH`, ``search="optuna"`` runs the automatic search of
:mod:`taskgraph.recipes.search` over :data:`~taskgraph.recipes.search.HMC_SPACE` under
``search_budget``. Every candidate is trained on train with early stopping on valid, the
one with the best valid AU(PRC)-bar wins (ties: the earlier candidate), and only that one
is refitted and scored on test.

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
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np
import torch

import taskgraph as tg
from taskgraph.metrics.hierarchical import auprc_bar, coherence_violation_rate
from taskgraph.model.batches import predict_loader
from taskgraph.recipes.budget import PlateauLR, ReplayLR, check_train_config
from taskgraph.recipes.search import check_search
from taskgraph.train import Callback, EarlyStopping, TaskDataset, TrainingState, make_loader
from taskgraph.train.state import seed_everything

__all__ = ["HMC_CONFIG", "HMC_SEARCH", "HMCResult", "train_hmc", "merge_config",
           "predict_matrix", "base_config", "best_valid"]

#: The one default configuration (compile options and training settings). Weight decay
#: (taskgraph.train.decay): 1e-5 on shared parameters, 5e-3 / T on each task's own (1e-5
#: at 500 tasks, 1.4e-6 on a 3,570-term GO DAG), none on the synapses. Paired over seeds
#: 0-2 against 1e-5 on every parameter: up to +0.0031 on FunCat (5 of 7 sets beyond the
#: spread, 2 no measurable effect), eisen_GO +0.0109 ± 0.0008 (0.4568; +0.0039 ± 0.0014
#: against no weight decay) (benchmarks/results/hmc_fun_wdsyn_*.md, hmc_go_eisen_wdtask.md).
HMC_CONFIG: dict[str, Any] = {
    "model": {"task_dim": 8, "rounds": 1, "directions": ["down", "up"],
              "encoder_spec": {"hidden": [512, 512], "dropout": 0.7, "activation": "relu"},
              "synapse": {"kind": "gaussian", "mean": 1.0, "std": 0.1, "prior_std": 1.0},
              "coherent": True, "projection_rank": "full"},
    "train": {"epochs": 400, "batch_size": 32, "lr": 1e-3, "weight_decay": 1e-5,
              "task_weight_decay": 5e-3, "patience": 12, "lr_patience": 3, "lr_factor": 0.3, "min_lr": 1e-5,
              "kl_weight": 1.0, "ema": 0.995},
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
    epoch, seconds, learning-rate drops; with ``search="optuna"`` also the trial's number,
    sampled parameters, state and per-epoch curve); ``config`` is the full configuration
    of the model that was scored. ``violations``: (test example, edge) pairs where a child
    is more probable than its parent. ``lr_drops``: the chosen candidate's valid phase's
    ``(epoch, new rates)`` drops; ``lrs``: the rates of every epoch behind ``model`` (the
    refit's replay the valid phase's first ``epochs``).
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
    lr_drops: list = field(default_factory=list)
    lrs: list = field(default_factory=list)


class _Phase(NamedTuple):
    """One training run: the model (eval mode), its history and its per-epoch rates."""

    model: Any
    history: Any
    lrs: list
    drops: list


@torch.no_grad()
def predict_matrix(model: Any, X: np.ndarray, *, samples: int = 0,
                   batch_size: int = 512) -> np.ndarray:
    """``(N, T)`` probabilities in hierarchy task order (all tasks binary)."""
    batches = (torch.as_tensor(X[s:s + batch_size]) for s in range(0, len(X), batch_size))
    (g,) = predict_loader(model, batches, samples=samples, targets=False,
                          who="predict_matrix")
    out = np.empty((len(X), model.layout.num_tasks), dtype=np.float32)
    out[:, np.asarray(g.group.tasks)] = g.mean
    return out


def _roots(data: Any) -> list[int]:
    """The label columns the protocol does not score (all but ``data.eval_columns``)."""
    return sorted(set(range(len(data.hierarchy))) - set(data.eval_columns.tolist()))


def _valid_auprc(exclude: list[int]) -> Callable[[Any, Any], dict[str, float | None]]:
    """``fit``'s ``val_metric``: AU(PRC)-bar over the validation batches, columns
    ``exclude`` left out."""

    def metric(model: Any, loader: Any) -> dict[str, float | None]:
        (g,) = predict_loader(model, loader, who="validation")
        T = model.layout.num_tasks
        P, Y = np.empty((len(g.mean), T), np.float32), np.empty((len(g.mean), T), np.float32)
        P[:, np.asarray(g.group.tasks)] = g.mean
        Y[:, np.asarray(g.group.tasks)] = g.target[..., 0]
        return {"val_auprc_bar": auprc_bar(Y, P, exclude=exclude)}

    return metric


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


class _EpochSeeds(Callback):
    """Epoch ``e`` draws from ``seed + e`` (torch, numpy, random and the data order):
    a run's epochs depend on the seed only, not on what ran before them."""

    def __init__(self, seed: int, loader: Any) -> None:
        self.seed, self.loader = seed, loader

    def on_epoch_start(self, state: TrainingState, epoch: int) -> None:
        seed_everything(self.seed + epoch, self.loader.generator)


class _Bar(Callback):
    """One phase's progress bar: an epoch a tick, the loss and valid score beside it."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def on_epoch_end(self, state: TrainingState, record: dict[str, Any]) -> None:
        self.bar.update(1)
        if "val_auprc_bar" not in record:
            self.bar.set_postfix(loss=f"{record['loss']:.4f}")
        elif state.history.stopped_early:
            self.bar.set_postfix_str(f"stopped early; best epoch {state.history.best_epoch} "
                                     f"(valid {state.best_value:.4f})")
        else:
            self.bar.set_postfix(loss=f"{record['loss']:.4f}",
                                 valid_auprc=f"{record['val_auprc_bar']:.4f}")


def _progress(progress: bool, desc: str, total: int) -> Any:
    """One phase's progress bar: ``total`` epochs (the phase's cap), labelled ``desc``."""
    from tqdm.auto import tqdm

    return tqdm(desc=desc, total=total, unit="epoch", disable=not progress,
                dynamic_ncols=True)


def _train(data: Any, cfg: dict, seed: int, X: np.ndarray, Y: np.ndarray, *, epochs: int,
           bar: Any, device: Any = None, valid: bool = False,
           replay: Sequence[Sequence[float]] | None = None,
           callbacks: Sequence[Callback] = ()) -> _Phase:
    """A fresh model trained with :func:`taskgraph.fit` on ``(X, Y)`` for up to
    ``epochs`` epochs. With ``valid``: early stopping on valid AU(PRC)-bar (the best
    epoch's weights) and the plateau schedule of :mod:`~taskgraph.recipes.budget`; with
    ``replay``: those recorded rates, epoch by epoch. ``callbacks`` run after the
    recipe's own."""
    model_cfg, train_cfg = dict(cfg["model"]), cfg["train"]
    zero = bool(model_cfg.pop("zero_messages", False))  # the ablations' control
    seed_everything(seed)  # the initial weights depend on the seed only
    model = tg.compile(data.hierarchy, in_features=int(X.shape[1]), **model_cfg)
    model.zero_messages = zero
    if device is not None:  # built on the CPU first: the same weights on every device
        model = model.to(device)
    loader = make_loader(TaskDataset(X, Y, data.hierarchy), batch_size=train_cfg["batch_size"],
                         seed=seed)
    validation: dict[str, Any] = {}
    own: list[Callback] = [_EpochSeeds(seed, loader)]
    if replay is not None:
        own.append(ReplayLR(replay))
    # with valid: lowers the rate on plateaus; else it only records the rates
    schedule = PlateauLR("val_auprc_bar", patience=train_cfg["lr_patience"],
                         factor=train_cfg["lr_factor"] if valid else 1.0,
                         min_lr=train_cfg["min_lr"])
    own += [schedule, _Bar(bar)]
    if valid:
        validation = {
            "val_loader": make_loader(TaskDataset(data.valid.X, data.valid.Y, data.hierarchy),
                                      batch_size=512, shuffle=False),
            "val_metric": _valid_auprc(_roots(data)),
            "early_stopping": EarlyStopping("val_auprc_bar", patience=train_cfg["patience"])}
    history = tg.fit(model, loader, epochs=epochs, lr=train_cfg["lr"],
                     weight_decay=train_cfg["weight_decay"],
                     task_weight_decay=train_cfg.get("task_weight_decay"),
                     kl_weight=train_cfg["kl_weight"],
                     weight_average=train_cfg.get("ema") or None,
                     val_metrics=False, progress=False, seed=seed,
                     callbacks=own + list(callbacks), **validation)
    return _Phase(model.eval(), history, schedule.lrs, schedule.drops)


def _valid_phase(data: Any, cfg: dict, seed: int, *, desc: str, progress: bool,
                 device: Any = None, callbacks: Sequence[Callback] = ()) -> _Phase:
    """One candidate's valid phase: trained on train, early stopping on valid."""
    with _progress(progress, desc, cfg["train"]["epochs"]) as bar:
        return _train(data, cfg, seed, data.train.X, data.train.Y,
                      epochs=cfg["train"]["epochs"], bar=bar, device=device, valid=True,
                      callbacks=callbacks)


def best_valid(history: Any) -> float:
    """The valid AU(PRC)-bar of a valid phase's best epoch."""
    return history.records[history.best_epoch - 1]["val_auprc_bar"]


def base_config(overrides: dict[str, Any] | None, train_overrides: dict[str, Any] | None,
                epochs: int | None = None, *, who: str = "train_hmc") -> dict[str, Any]:
    """:data:`HMC_CONFIG` with ``overrides`` (model) and ``train_overrides`` applied, the
    epoch ceiling set to ``epochs`` when given, and the training settings checked.

    Raises:
        ArgumentError: a training setting out of range.

    Example:
        >>> base_config(None, {"lr": 0.01}, 5)["train"]["epochs"]
        5
    """
    base = {"model": merge_config(HMC_CONFIG["model"], overrides),
            "train": merge_config(HMC_CONFIG["train"], train_overrides)}
    if epochs is not None:
        base["train"]["epochs"] = epochs
    check_train_config(base["train"], who=who)
    return base


def _violations(model: Any, P: np.ndarray) -> int:
    """(example, edge) pairs where a child is more probable than its parent."""
    edges = model.layout.edge_index.T.cpu().numpy()  # (E, 2): parent, child
    rate = coherence_violation_rate(P, edges)
    return 0 if rate is None else round(rate * len(P) * len(edges))


def train_hmc(data: Any, *, seed: int = 0, epochs: int | None = None, progress: bool = True,
              overrides: dict[str, Any] | None = None, train_overrides: dict[str, Any] | None = None,
              samples: int = 0, refit: bool = False,
              search: bool | str | Sequence[dict[str, Any]] = False,
              search_budget: Mapping[str, Any] | None = None,
              device: Any = None, callbacks: Sequence[Callback] = ()) -> HMCResult:
    """Train the default model on preprocessed :class:`~taskgraph.datasets.hmc.HMCData`.

    Args:
        data: the data set, already ``.preprocessed()``.
        seed: fixes the whole run: torch, numpy and :mod:`random` are seeded before
            every model is built (each candidate and the refit) and before every epoch
            (with ``seed + epoch``), and the data order, dropout and test draws follow
            from it; the same seed on the same machine gives bit-identical weights and
            scores.
        epochs: ceiling on the valid phase's epochs (default: the recipe's 400, with early
            stopping and the plateau schedule on valid).
        progress: one progress bar per phase, labelled and with the epoch ceiling as its
            total ("NAME: valid phase", then "NAME: refit on train+valid").
        overrides / train_overrides: changes to ``HMC_CONFIG["model"]`` / ``["train"]``
            (the benchmark's ablations), applied under every search candidate;
            ``{"zero_messages": True}`` trains and scores with every message times 0
            (the "messages zeroed, everything else kept" control).
        samples: MC samples for the test predictions (0: mean synapses).
        refit: after choosing the epoch count on valid, train a fresh model on train +
            valid for that many epochs, replaying the valid phase's learning rates epoch
            by epoch, and score it (C-HMCNN's protocol); the reported ``valid_auprc``
            stays the one measured before refitting, ``history`` is the refit's and
            ``valid_history`` the validation phase's.
        search: :obj:`True` to try every candidate of :data:`HMC_SEARCH` on valid and
            keep the best, a sequence of candidates of that form, or ``"optuna"`` for the
            automatic search (:func:`~taskgraph.recipes.search.search_hmc`, needs
            ``pip install "taskgraph[search]"``); :obj:`False` (default) trains the
            default configuration only.
        search_budget: with ``search="optuna"``: ``{"n_trials": ..., "timeout": ...}``
            (seconds; default :data:`~taskgraph.recipes.search.DEFAULT_BUDGET`).
        device: where the models train (default: the CPU); they are built on the CPU,
            under the seed, then moved.
        callbacks: :class:`~taskgraph.train.Callback` objects passed to every run's
            ``fit`` (each candidate or trial, then the refit), after the recipe's own.

    Raises:
        ArgumentError: a bad ``search`` / ``search_budget`` or training setting.
    """
    check_search(search, search_budget)
    base = base_config(overrides, train_overrides, epochs)
    tic = time.perf_counter()
    if search == "optuna":
        from taskgraph.recipes.search import DEFAULT_BUDGET, search_hmc

        budget = dict(DEFAULT_BUDGET if search_budget is None else search_budget)
        found = search_hmc(data, seed=seed, overrides=base["model"],
                           train_overrides=base["train"], progress=progress, device=device,
                           callbacks=callbacks, **budget)
        phase, cfg, trials = found.phase, found.config, found.records
    else:
        phase, cfg, trials = _try_candidates(data, base, seed, search, progress=progress,
                                             device=device, callbacks=callbacks)
    model, valid_history = phase.model, phase.history
    epoch, score = valid_history.best_epoch, best_valid(valid_history)
    history, lrs = valid_history, phase.lrs[:epoch]
    if refit:  # C-HMCNN's protocol: retrain on train + valid for the epochs chosen on valid
        X = np.concatenate([data.train.X, data.valid.X])
        Y = np.concatenate([data.train.Y, data.valid.Y])
        with _progress(progress, f"{data.name}: refit on train+valid", epoch) as bar:
            model, history, lrs, _ = _train(data, cfg, seed, X, Y, epochs=epoch, bar=bar,
                                            device=device, replay=phase.lrs[:epoch],
                                            callbacks=callbacks)
        history.best_epoch = epoch  # the model is the last epoch's
    torch.manual_seed(seed)  # the test draws (samples > 0) depend on the seed only
    P = predict_matrix(model, data.test.X, samples=samples)
    return HMCResult(model, history, score, auprc_bar(data.test.Y, P, exclude=_roots(data)),
                     _violations(model, P), time.perf_counter() - tic, cfg, trials,
                     valid_history=valid_history, epochs=epoch, refit=refit,
                     lr_drops=phase.drops, lrs=lrs)


def _try_candidates(data: Any, base: dict, seed: int, search: Any, *, progress: bool,
                    device: Any, callbacks: Sequence[Callback]) -> tuple[_Phase, dict, list]:
    """Every candidate's valid phase; the best one's phase and config, and the records."""
    candidates = list(HMC_SEARCH if search is True else search or [{}])
    trials: list[dict] = []
    best: tuple[_Phase, float, dict] | None = None
    for i, candidate in enumerate(candidates):
        cfg = merge_config(base, candidate)
        start = time.perf_counter()
        desc = f"{data.name}: valid phase" + (f" {i + 1}/{len(candidates)}"
                                              if len(candidates) > 1 else "")
        phase = _valid_phase(data, cfg, seed, desc=desc, progress=progress, device=device,
                             callbacks=callbacks)
        score = best_valid(phase.history)
        trials.append({"candidate": candidate, "valid_auprc": score,
                       "epoch": phase.history.best_epoch, "lr_drops": phase.drops,
                       "seconds": time.perf_counter() - start})
        if best is None or score > best[1]:
            best = (phase, score, cfg)
    return best[0], best[2], trials
