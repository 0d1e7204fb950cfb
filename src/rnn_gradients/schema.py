"""The schema of the config: one rule for every leaf a user can type, and the checks between keys.

Every type, range and choice error of the command line comes from here, as one line naming the key,
the value and what is allowed (`ConfigError`); `config_checks` runs these rules before Hydra creates a
run directory, and each job runs them again on its own composed config. A test walks the default config
and every option of every group and fails on a leaf without a rule, so a new key cannot slip in
unchecked. Torch-free: the command line refuses bad input in well under a second.

The constructors the config's keys go to (GradientClipper, DivergenceMonitor, the observatory's callbacks)
check their arguments against this same table (`check`, `check_clipping`, `check_loss_cliff`), so a direct
Python call refuses a value with the line the command line prints for it.

The keys under model.* and data.* are the chosen cell's and task's own (Cell.keys, Task.keys and
Task.seq_len_rule, found through the group's `_target_`): a plug-in brings its rules with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from rnn_gradients.cells import cell_class
from rnn_gradients.choices import CLIP_MODES
from rnn_gradients.rules import BOOL, COMMA_LIST, ConfigError, Rule, any_integer, integer, number, one_of, require, text
from rnn_gradients.tasks import task_class

log = logging.getLogger(__name__)
__all__ = ["ConfigError", "RULES", "check", "check_clipping", "check_loss_cliff", "ignored_values", "rules_for", "validate"]

# key -> rule. A key absent from the composed config (logger=none, callbacks=none) is not checked.
RULES: dict[str, Rule] = {
    # top level
    "seed": integer(0),
    "num_threads": integer(0, " (0 = the job's cores)"),
    "progress_bar_refresh_rate": integer(1, " (steps between progress-bar redraws)"),
    "flush_denormal": BOOL,
    "malloc_keep_mb": integer(0, " (0 = glibc's defaults)"),
    "ckpt_path": text(nullable=True),
    "resume": BOOL,
    "min_free_disk_mb": integer(0),
    "checkpoint.every_n_steps": integer(0, " (0 = only at the end and on interruption)"),
    "paths.output_dir": text(),
    # model.* and data.*: the cell's and the task's own rules (rules_for)
    # clipping, optimizer, scheduler
    "clipping.mode": one_of(CLIP_MODES),
    "clipping.threshold": number(above=0, nullable=True),
    "optimizer.lr": number(above=0),
    "optimizer.momentum": number(at_least=0, note=" (SGD)"),
    "optimizer.alpha": number(above=0, note=" (RMSProp's decay)"),
    "scheduler.T_max": integer(1),
    "scheduler.eta_min": number(at_least=0),
    "scheduler.start_factor": number(above=0),
    "scheduler.total_iters": integer(1),
    # trainer
    "trainer.accelerator": one_of(["cpu", "gpu", "cuda", "auto"]),
    "trainer.devices": integer(1),
    "trainer.precision": one_of(["32-true", "32", "16-mixed", "bf16-mixed", "64-true"]),
    "trainer.max_steps": integer(1),
    "trainer.val_check_interval": integer(1, " (steps between validations)"),
    "trainer.check_val_every_n_epoch": Rule(lambda v: v is None, "null (validation is counted in steps)"),
    "trainer.log_every_n_steps": integer(1),
    "trainer.num_sanity_val_steps": integer(0),
    "trainer.enable_checkpointing": Rule(lambda v: v is False, "false (checkpoints are the run's own: checkpoint.*)"),
    "trainer.enable_model_summary": BOOL,
    "trainer.enable_progress_bar": BOOL,
    # logger
    "logger.save_dir": text(),
    "logger.name": text(),
    "logger.version": text(),
    "logger.default_hp_metric": BOOL,
    "logger.flush_secs": number(above=0),
    # callbacks
    "callbacks.lr_monitor.logging_interval": one_of(["step", "epoch"]),
    "callbacks.divergence.loss_multiple": number(above=1),
    "callbacks.divergence.warmup_steps": integer(0),
    "callbacks.grad_norms.every_n_steps": integer(1),
    "callbacks.grad_norms.per_parameter": BOOL,
    "callbacks.grad_norms.update_ratio": BOOL,
    "callbacks.grad_histograms.every_n_steps": integer(1),
    "callbacks.grad_histograms.bins": integer(1),
    "callbacks.grad_flow.every_n_steps": integer(1),
    "callbacks.grad_flow.probe_size": integer(1),
    "callbacks.grad_flow.probe_seed": integer(0),
    "callbacks.grad_flow.layer": any_integer(" (-1 = the top layer)"),
    "callbacks.grad_flow.num_scalar_points": integer(1),
    "callbacks.grad_flow.plot_every_n_steps": integer(0, " (0 = never)"),
    "callbacks.grad_flow.dtype": one_of(["float64", "float32"]),
    "callbacks.grad_flow.output_dir": text(),
    "callbacks.spectrum.every_n_steps": integer(1),
    "callbacks.spectrum.output_dir": text(),
    "callbacks.gate_stats.every_n_steps": integer(1),
    "callbacks.gate_stats.probe_size": integer(1),
    "callbacks.gate_stats.probe_seed": integer(0),
    "callbacks.loss_cliff.alpha_min": number(above=0),
    "callbacks.loss_cliff.alpha_max": number(above=0),
    "callbacks.loss_cliff.num_alphas": integer(2),
    "callbacks.loss_cliff.uphill_factor": number(above=1),
    "callbacks.loss_cliff.output_dir": text(),
    # profile: the scale of the experiment sweeps
    "profile.arms": COMMA_LIST,
    "profile.cures": COMMA_LIST,
    "profile.cures_seq_lens": COMMA_LIST,
    "profile.seeds": COMMA_LIST,
    "profile.seq_lens": COMMA_LIST,
    "profile.lrs": COMMA_LIST,
    "profile.forget_biases": COMMA_LIST,
    "profile.hidden_size": integer(1),
    "profile.adam_lr": number(above=0),
    "profile.steps.arms": integer(1),
    "profile.steps.exploding": integer(1),
    "profile.steps.forget_bias": integer(1),
    "profile.steps.cures": integer(1),
    "profile.val_check_interval": integer(1),
    "profile.divergence_warmup": integer(0),
    "profile.grad_flow_every": integer(1),
}
NOT_USER_KEYS = ("_target_", "_partial_")  # leaves Hydra's instantiate reads, not knobs


def leaves(node: Any, prefix: str = "") -> Iterator[str]:
    """Every leaf key of a config (dotted), skipping `hydra` and instantiate's own keys."""
    if isinstance(node, DictConfig):
        for key in node.keys():
            path = f"{prefix}{key}"
            if path == "hydra" or key in NOT_USER_KEYS:
                continue
            child = node._get_node(key)
            if isinstance(child, (DictConfig, ListConfig)):
                yield from leaves(child, f"{path}.")
            else:
                yield path


UNRESOLVED = object()


def _value(cfg: DictConfig, key: str) -> Any:
    """The resolved value; UNRESOLVED where it interpolates what only a running job knows
    (${hydra:runtime.output_dir} when checked before Hydra starts)."""
    parent_key, _, name = key.rpartition(".")
    try:
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        return parent[name]
    except Exception:
        return UNRESOLVED


def _plugin_rules(cfg: DictConfig) -> dict[str, Rule]:
    """model.* and data.* rules of the cell and task the config's `_target_`s name."""
    cell = cell_class(OmegaConf.select(cfg, "model._target_"))
    task = task_class(OmegaConf.select(cfg, "data._target_"))
    return {**{f"model.{key}": rule for key, rule in cell.keys.items()},
            **{f"data.{key}": rule for key, rule in task.keys.items()}, "data.seq_len": task.seq_len_rule()}


def rules_for(cfg: DictConfig) -> dict[str, Rule]:
    """Every rule that applies to a composed config: the table above and the chosen plug-ins' own."""
    return {**RULES, **_plugin_rules(cfg)}


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError on a `_target_` that names no cell or task, on the first leaf that breaks its rule,
    then on the checks between keys. A leaf without a rule can only be one a user added with `+key=value`
    (tests/test_schema.py holds every shipped leaf to a rule); it is passed on as typed, but for model.* and
    data.*: those go to the cell's or task's constructor, which would ignore a key it does not have."""
    rules = rules_for(cfg)
    for key in leaves(cfg):
        rule = rules.get(key)
        value = _value(cfg, key)
        if rule is None and key.startswith(("model.", "data.")):
            group = key.split(".", 1)[0]
            own = sorted(k.split(".", 1)[1] for k in rules if k.startswith(f"{group}."))
            raise ConfigError(f"{key}={value!r} is not allowed: the chosen {group} ({OmegaConf.select(cfg, group + '._target_')}) "
                              f"has no such key; its keys are {own}")
        if rule is None or value is UNRESOLVED:
            continue
        require(key, value, rule)
    cell_class(cfg.model._target_).check(cfg.model)
    check_clipping(cfg.clipping.mode, cfg.clipping.threshold)
    cliff = OmegaConf.select(cfg, "callbacks.loss_cliff")
    if cliff is not None:
        check_loss_cliff(cliff.alpha_min, cliff.alpha_max)


def check(group: str, **values: Any) -> None:
    """A constructor's check of its arguments by this table's rules: `check("callbacks.divergence",
    loss_multiple=0.5)` raises the line the command line prints for callbacks.divergence.loss_multiple=0.5."""
    for name, value in values.items():
        require(f"{group}.{name}", value, RULES[f"{group}.{name}"])


def check_clipping(mode: Any, threshold: Any) -> None:
    """clipping.mode and clipping.threshold, each by its rule, then together: a clipping mode needs a threshold."""
    check("clipping", mode=mode, threshold=threshold)
    if mode != "none" and threshold is None:
        raise ConfigError(f"clipping.threshold=None is not allowed: clipping.threshold must be a number > 0 with clipping={mode}")


def check_loss_cliff(alpha_min: Any, alpha_max: Any) -> None:
    """The loss-cliff slice's step sizes, each by its rule, then together: the range must not be empty."""
    check("callbacks.loss_cliff", alpha_min=alpha_min, alpha_max=alpha_max)
    if alpha_min >= alpha_max:
        raise ConfigError(f"callbacks.loss_cliff.alpha_min={alpha_min!r} is not allowed: callbacks.loss_cliff.alpha_min "
                          f"must be below callbacks.loss_cliff.alpha_max={alpha_max!r}")


def ignored_values(cfg: DictConfig) -> list[str]:
    """Values the chosen options ignore, one line each (the command line logs them as warnings)."""
    notes = []
    if cfg.clipping.mode == "none" and cfg.clipping.threshold is not None:
        notes.append(f"clipping.threshold={cfg.clipping.threshold!r} has no effect with clipping=none")
    return notes + cell_class(cfg.model._target_).ignored(cfg.model)
