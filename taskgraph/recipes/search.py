r"""The automatic search on valid for the HMC recipe: Optuna over one table.

:data:`HMC_SPACE` is the one table of the recipe's settings: every searched parameter
with its default (the value in :data:`~taskgraph.recipes.hmc.HMC_CONFIG`) and the range
the search draws from. ``docs/hmc_recipe.md`` shows it as rendered by
:func:`space_markdown`.

:func:`search_hmc` runs it: each trial draws a configuration (trial 0 is the default)
and trains it on train with the recipe's convergence budget (early stopping and the
plateau schedule on valid, :mod:`taskgraph.recipes.budget`). With :math:`s_{k,e}` the
valid AU(PRC)-bar of trial :math:`k` after epoch :math:`e` (reported to the trial), the
objective is :math:`\max_e s_{k,e}`, and Optuna's ``MedianPruner`` stops trial :math:`k`
after epoch :math:`e \ge` ``warmup_epochs`` when :math:`\max_{e' \le e} s_{k,e'}` is
below the median of :math:`s_{j,e}` over the completed trials :math:`j` that reached
epoch :math:`e` (once ``startup_trials`` trials have completed). The sampler is
``TPESampler(seed=seed)`` and every trial trains under ``seed``, so a search with a given
number of trials is reproducible; with a ``timeout`` (seconds; no trial starts after it,
the running one finishes) the number of trials depends on the machine's speed. The test
split is never read. Optuna is an optional extra: ``pip install "taskgraph[search]"``.

Example:
    >>> HMC_SPACE["lr"].low, HMC_SPACE["lr"].high, HMC_SPACE["lr"].log
    (0.0001, 0.01, True)
    >>> default_params()["width"], default_params()["depth"]
    (512, 2)
    >>> config_change({"width": 256, "depth": 1, "rounds": 0})["model"]
    {'encoder_spec': {'hidden': [256]}, 'rounds': 0}
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from taskgraph.errors import ArgumentError, TaskGraphError
from taskgraph.train import Callback

__all__ = ["HMC_SPACE", "DEFAULT_BUDGET", "Param", "HMCSearch", "search_hmc",
           "default_params", "config_change", "space_markdown", "check_search"]


@dataclass(frozen=True)
class Param:
    """One row of :data:`HMC_SPACE`: where a setting goes and what the search draws:
    ``choices`` (categorical), ``low`` / ``high`` (a float range; ``log``: log-uniform) or
    neither (fixed at its default); ``when``: drawn only where that other parameter is
    non-zero (the message-passing options need ``rounds`` > 0)."""

    key: str
    doc: str
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    when: str | None = None

    @property
    def searched(self) -> bool:
        return self.choices is not None or self.low is not None

    def domain(self) -> str:  # the range in words, as the docs show it
        if self.choices is not None:
            text = "{" + ", ".join(map(str, self.choices)) + "}"
        elif self.low is not None:
            text = (f"{'log-uniform' if self.log else 'uniform'} "
                    f"[{self.low:g}, {self.high:g}]")
        else:
            return "fixed"
        return text + (f" (when {self.when} > 0)" if self.when else "")


#: The recipe's settings, searched and fixed: name -> :class:`Param`. The searched names
#: are the keys of :func:`default_params` and :func:`config_change`; a fixed name is the
#: dotted path of its value in ``HMC_CONFIG``.
HMC_SPACE: dict[str, Param] = {
    "lr": Param("train.lr", "Adam's initial learning rate", low=1e-4, high=1e-2, log=True),
    "width": Param("model.encoder_spec.hidden", "width of every hidden layer of the MLP encoder",
                   choices=(256, 512, 1024)),
    "depth": Param("model.encoder_spec.hidden", "number of hidden layers of the encoder",
                   choices=(1, 2, 3)),
    "dropout": Param("model.encoder_spec.dropout", "dropout after each hidden layer",
                     low=0.0, high=0.8),
    "task_dim": Param("model.task_dim", "width F of each task embedding",
                      choices=(4, 8, 16)),
    "rounds": Param("model.rounds", "rounds of message passing (0: none)", choices=(0, 1)),
    "directions": Param("model.directions", "message directions (down: parent to child)",
                        choices=("down+up", "down", "up"), when="rounds"),
    "message": Param("model.message", "sum, or attention-weighted sum, of messages",
                     choices=("sum", "attention"), when="rounds"),
    "synapse": Param("model.synapse.kind", "the edges' synapse kind",
                     choices=("gaussian", "bernoulli", "fixed"), when="rounds"),
    "train.epochs": Param("train.epochs", "ceiling on the valid phase's epochs"),
    "train.patience": Param("train.patience", "early stopping's patience (epochs)"),
    "train.lr_patience": Param("train.lr_patience", "plateau epochs before a rate drop"),
    "train.lr_factor": Param("train.lr_factor", "rate multiplier at a drop"),
    "train.min_lr": Param("train.min_lr", "floor of the learning rate"),
    "train.batch_size": Param("train.batch_size", "examples per step"),
    "train.weight_decay": Param("train.weight_decay", "Adam's L2 penalty, shared parameters"),
    "train.task_weight_decay": Param("train.task_weight_decay", "per-task L2, divided by T"),
    "train.kl_weight": Param("train.kl_weight", "β of the synapses' KL term"),
    "train.ema": Param("train.ema", "decay of the scored moving average of the weights"),
    "model.encoder_spec.activation": Param("model.encoder_spec.activation",
                                           "encoder activation"),
    "model.coherent": Param("model.coherent", "coherence (max over descendants, MC loss)"),
    "model.projection_rank": Param("model.projection_rank", "per-task projections"),
    "model.synapse.mean": Param("model.synapse.mean", "initial mean synapse weight"),
    "model.synapse.std": Param("model.synapse.std", "initial std of a gaussian synapse"),
    "model.synapse.prior_std": Param("model.synapse.prior_std", "std of its prior"),
}

#: ``search_hmc``'s budget when ``train_hmc(search="optuna")`` is given none: at most 30
#: trials and no new trial after an hour, per data set and seed.
DEFAULT_BUDGET: dict[str, Any] = {"n_trials": 30, "timeout": 3600.0}

_DIRECTIONS = {"down+up": ["down", "up"], "down": ["down"], "up": ["up"]}


def _lookup(config: Mapping[str, Any], path: str) -> Any:
    for part in path.split("."):
        config = config[part]
    return config


def default_params(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The searched parameters' values in ``config`` (default: ``HMC_CONFIG``)."""
    from taskgraph.recipes.hmc import HMC_CONFIG

    config = HMC_CONFIG if config is None else config
    model, hidden = config["model"], config["model"]["encoder_spec"]["hidden"]
    directions = "+".join(model["directions"])
    return {"lr": config["train"]["lr"], "width": hidden[0], "depth": len(hidden),
            "dropout": model["encoder_spec"]["dropout"], "task_dim": model["task_dim"],
            "rounds": model["rounds"], "directions": directions,
            "message": model.get("message", "sum"), "synapse": model["synapse"]["kind"]}


def config_change(params: Mapping[str, Any]) -> dict[str, Any]:
    """The change to ``HMC_CONFIG`` (for :func:`~taskgraph.recipes.hmc.merge_config`) that
    sets the searched parameters ``params``; absent ones keep their defaults.

    Example:
        >>> config_change({"lr": 0.01, "rounds": 1, "directions": "down", "synapse": "fixed"})
        {'train': {'lr': 0.01}, 'model': {'rounds': 1, 'directions': ['down'], 'synapse': {'kind': 'fixed'}}}
    """
    unknown = sorted(set(params) - {n for n, p in HMC_SPACE.items() if p.searched})
    if unknown:
        raise ArgumentError(f"config_change: unknown parameter {unknown[0]!r}; expected "
                            "names of HMC_SPACE's searched rows")
    train: dict[str, Any] = {}
    model: dict[str, Any] = {}
    if "lr" in params:
        train["lr"] = params["lr"]
    encoder: dict[str, Any] = {}
    if "width" in params or "depth" in params:
        width = params.get("width", default_params()["width"])
        encoder["hidden"] = [width] * params.get("depth", default_params()["depth"])
    if "dropout" in params:
        encoder["dropout"] = params["dropout"]
    if encoder:
        model["encoder_spec"] = encoder
    for name in ("task_dim", "rounds", "message"):
        if name in params:
            model[name] = params[name]
    if "directions" in params:
        model["directions"] = list(_DIRECTIONS[params["directions"]])
    if "synapse" in params:
        model["synapse"] = {"kind": params["synapse"]}
    return {k: v for k, v in (("train", train), ("model", model)) if v}


def _suggest(trial: Any) -> dict[str, Any]:
    """Draw every searched row of :data:`HMC_SPACE` (conditional rows only when due)."""
    params: dict[str, Any] = {}
    for name, p in HMC_SPACE.items():
        if not p.searched or (p.when is not None and not params.get(p.when)):
            continue
        params[name] = (trial.suggest_categorical(name, list(p.choices)) if p.choices
                        else trial.suggest_float(name, p.low, p.high, log=p.log))
    return params


def space_markdown() -> str:
    """:data:`HMC_SPACE` as the markdown table of ``docs/hmc_recipe.md``."""
    from taskgraph.recipes.hmc import HMC_CONFIG

    defaults = default_params()
    lines = ["| setting | config key | default | searched over | meaning |",
             "|---|---|---|---|---|"]
    for name, p in HMC_SPACE.items():
        value = defaults[name] if p.searched else _lookup(HMC_CONFIG, p.key)
        lines.append(f"| {name} | `{p.key}` | {value} | {p.domain()} | {p.doc} |")
    return "\n".join(lines)


@dataclass
class HMCSearch:
    """What :func:`search_hmc` returns.

    ``records``: one per trial, in order: ``number``, ``params`` (the drawn values),
    ``candidate`` (their change to ``HMC_CONFIG``), ``state`` (``"complete"``,
    ``"pruned"`` or ``"failed"``), ``valid_auprc`` (best epoch's score so far),
    ``epoch`` (that epoch), ``epochs`` (epochs trained), ``curve`` (every epoch's valid
    score), ``lr_drops`` and ``seconds``. ``best`` is the winning record (the best
    complete trial; ties: the earlier), ``config`` its full configuration, ``phase`` its
    trained model, history and rates, ``study`` the Optuna study.
    """

    records: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    phase: Any = None
    study: Any = None
    seconds: float = 0.0

    @property
    def valid_auprc(self) -> float:
        return self.best["valid_auprc"]


_BUDGET_KEYS = ("n_trials", "timeout", "startup_trials", "warmup_epochs")


def check_search(search: Any, search_budget: Any) -> None:
    """Raise :class:`~taskgraph.errors.ArgumentError` for bad ``search`` /
    ``search_budget`` arguments of :func:`~taskgraph.recipes.hmc.train_hmc`.

    Example:
        >>> check_search("optuna", {"n_trials": 5})
        >>> check_search(True, {"n_trials": 5})
        Traceback (most recent call last):
        ...
        taskgraph.errors.ArgumentError: train_hmc: search_budget: only used with search='optuna', got search=True
    """
    if isinstance(search, str) and search != "optuna":
        raise ArgumentError(f"train_hmc: search: expected True, False, 'optuna' or a sequence "
                            f"of candidates, got {search!r}")
    if not isinstance(search, (bool, str)) and (
            not isinstance(search, Sequence) or not search
            or not all(isinstance(c, dict) for c in search)):
        raise ArgumentError("train_hmc: search: expected a non-empty sequence of candidate "
                            f"dictionaries, got {search!r}")
    if search_budget is None:
        return
    if search != "optuna":
        raise ArgumentError("train_hmc: search_budget: only used with search='optuna', "
                            f"got search={search!r}")
    if not isinstance(search_budget, Mapping):
        raise ArgumentError("train_hmc: search_budget: expected a mapping like "
                            f"{{'n_trials': 30, 'timeout': 3600}}, got {search_budget!r}")
    unknown = sorted(set(search_budget) - set(_BUDGET_KEYS))
    if unknown:
        raise ArgumentError(f"train_hmc: search_budget: unknown key {unknown[0]!r}; expected "
                            f"some of {', '.join(_BUDGET_KEYS)}")


def _check_budget(n_trials: Any, timeout: Any, startup_trials: Any, warmup_epochs: Any) -> None:
    if n_trials is None and timeout is None:
        raise ArgumentError("search_hmc: give n_trials, timeout or both (the search's budget)")
    if n_trials is not None and (not isinstance(n_trials, int) or isinstance(n_trials, bool)
                                 or n_trials < 1):
        raise ArgumentError(f"search_hmc: n_trials: expected a positive integer, got {n_trials!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(
            timeout, (int, float)) or not 0 < timeout < math.inf):
        raise ArgumentError(f"search_hmc: timeout: expected a finite number of seconds > 0, "
                            f"got {timeout!r}")
    for name, value in (("startup_trials", startup_trials), ("warmup_epochs", warmup_epochs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ArgumentError(f"search_hmc: {name}: expected an integer >= 0, got {value!r}")


def search_hmc(data: Any, *, n_trials: int | None = None, timeout: float | None = None,
               seed: int = 0, epochs: int | None = None,
               overrides: dict[str, Any] | None = None,
               train_overrides: dict[str, Any] | None = None, startup_trials: int = 4,
               warmup_epochs: int = 10, pruner: Any = None, progress: bool = False,
               device: Any = None, callbacks: Sequence[Any] = ()) -> HMCSearch:
    """Search :data:`HMC_SPACE` on the validation split of preprocessed HMC data.

    Args:
        data: a preprocessed :class:`~taskgraph.datasets.hmc.HMCData` (any HMC set).
        n_trials / timeout: the budget: at most ``n_trials`` trials, none started after
            ``timeout`` seconds (at least one of the two).
        seed: the sampler's seed and every trial's training seed.
        epochs: ceiling on each trial's epochs (default: the recipe's).
        overrides / train_overrides: changes to ``HMC_CONFIG`` under every trial (a drawn
            parameter wins over them).
        startup_trials / warmup_epochs: the ``MedianPruner`` prunes nothing before that
            many trials have completed, nor before that many epochs of a trial.
        pruner: an Optuna pruner instead of the ``MedianPruner``.
        progress: a progress bar per trial.
        device: where the trials train.
        callbacks: extra :class:`~taskgraph.train.Callback` objects for every trial's fit.

    Returns:
        An :class:`HMCSearch`; its ``phase`` is the winner's trained model.

    Raises:
        ImportError: Optuna is not installed. ArgumentError: a bad budget or setting.
        TaskGraphError: no trial completed (all pruned or failed).

    Example:
        >>> from taskgraph.datasets.hmc import load_hmc
        >>> data = load_hmc("cellcycle_FUN").preprocessed()
        >>> found = search_hmc(data, n_trials=1, epochs=1)   # trial 0: the default
        >>> found.best["state"], found.records[0]["params"] == default_params()
        ('complete', True)
    """
    _check_budget(n_trials, timeout, startup_trials, warmup_epochs)
    try:
        import optuna
    except ImportError as err:
        raise ImportError('search_hmc needs Optuna: pip install "taskgraph[search]" '
                          "(or pip install optuna)") from err
    from taskgraph.recipes.hmc import base_config

    base = base_config(overrides, train_overrides, epochs, who="search_hmc")
    found = HMCSearch()
    objective = _Objective(data, base, seed, found, progress=progress, device=device,
                           callbacks=callbacks, pruned=optuna.TrialPruned)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tic = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study = optuna.create_study(
                direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
                pruner=pruner if pruner is not None else optuna.pruners.MedianPruner(
                    n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs))
            study.enqueue_trial(default_params())  # trial 0: the recipe's default
            study.optimize(objective, n_trials=n_trials, timeout=timeout,
                           catch=(TaskGraphError,))
    finally:
        optuna.logging.set_verbosity(verbosity)
    found.study, found.seconds = study, time.perf_counter() - tic
    if found.phase is None:
        raise TaskGraphError(f"search_hmc: none of the {len(study.trials)} trials completed "
                             "(all were pruned or failed); raise the budget or pass a pruner")
    return found


class _Report(Callback):
    """Reports each epoch's valid AU(PRC)-bar to the trial and prunes when told to."""

    def __init__(self, trial: Any, pruned: type) -> None:
        self.trial, self.pruned, self.curve = trial, pruned, []

    def on_epoch_end(self, state: Any, record: dict[str, Any]) -> None:
        self.curve.append(float(record["val_auprc_bar"]))
        self.trial.report(self.curve[-1], record["epoch"])
        if self.trial.should_prune():
            raise self.pruned(f"pruned after epoch {record['epoch']}")


class _Objective:
    """One trial: draw, train on train with early stopping on valid, keep the best."""

    def __init__(self, data: Any, base: dict, seed: int, found: HMCSearch, *, progress: bool,
                 device: Any, callbacks: Sequence[Any], pruned: type) -> None:
        self.data, self.base, self.seed, self.found = data, base, seed, found
        self.progress, self.device, self.callbacks = progress, device, list(callbacks)
        self.pruned = pruned

    def __call__(self, trial: Any) -> float:
        from taskgraph.recipes.hmc import _valid_phase, best_valid, merge_config

        params = _suggest(trial)
        change = config_change(params)
        cfg = merge_config(self.base, change)
        report = _Report(trial, self.pruned)
        record: dict[str, Any] = {"number": trial.number, "params": params,
                                  "candidate": change}
        start = time.perf_counter()
        try:
            phase = _valid_phase(self.data, cfg, self.seed,
                                 desc=f"{self.data.name}: trial {trial.number}",
                                 progress=self.progress, device=self.device,
                                 callbacks=[report, *self.callbacks])
        except (self.pruned, TaskGraphError) as err:  # a failed trial: e.g. it diverged
            curve = report.curve
            best = max(range(len(curve)), key=curve.__getitem__) if curve else None
            record.update(state="pruned" if isinstance(err, self.pruned) else "failed",
                          valid_auprc=None if best is None else curve[best],
                          epoch=0 if best is None else best + 1, epochs=len(curve),
                          curve=curve, lr_drops=[], seconds=time.perf_counter() - start)
            if not isinstance(err, self.pruned):
                record["error"] = str(err)
            self.found.records.append(record)
            raise
        value = best_valid(phase.history)
        record.update(state="complete", valid_auprc=value, epoch=phase.history.best_epoch,
                      epochs=len(report.curve), curve=report.curve, lr_drops=phase.drops,
                      seconds=time.perf_counter() - start)
        self.found.records.append(record)
        if self.found.phase is None or value > self.found.best["valid_auprc"]:
            self.found.best, self.found.config, self.found.phase = record, cfg, phase
        return value
