"""The schema of the config: one rule for every leaf a user can type, and the checks between keys.

Every type, range and choice error of the command line comes from here, as one line naming the key,
the value and what is allowed (`ConfigError`); `config_checks` runs these rules before Hydra creates a
run directory, and each job runs them again on its own composed config. A test walks the default config
and every option of every group and fails on a leaf without a rule, so a new key cannot slip in
unchecked. Torch-free: the command line refuses bad input in well under a second.

Kept as a table of predicates rather than Hydra structured configs: the rules need ranges and messages
("an integer > 0 (steps between validations)"), which dataclass types alone do not give.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from rnn_gradients.choices import CELLS, CLIP_MODES, INITS, NONLINEARITIES, TASK_NAMES

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A config value a user typed is not allowed; the message is meant to be printed as is."""


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any], bool]
    allowed: str  # completes "<key> must be ..."


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def integer(minimum: int, note: str = "") -> Rule:
    bound = f">= {minimum}" if minimum <= 0 else f"> {minimum - 1}"
    return Rule(lambda v: _int(v) and v >= minimum, f"an integer {bound}{note}")


def number(above: float | None = None, at_least: float | None = None, nullable: bool = False, note: str = "") -> Rule:
    def check(v: Any) -> bool:
        if v is None:
            return nullable
        return _number(v) and (above is None or v > above) and (at_least is None or v >= at_least)

    bound = f" > {above:g}" if above is not None else f" >= {at_least:g}" if at_least is not None else ""
    return Rule(check, f"a{' finite' if not bound else ''} number{bound}{note}{', or null' if nullable else ''}")


def one_of(options: Sequence[Any]) -> Rule:
    return Rule(lambda v: v in options, f"one of {list(options)}")


def text(nullable: bool = False) -> Rule:
    return Rule(lambda v: isinstance(v, str) or (nullable and v is None), f"a string{', or null' if nullable else ''}")


BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
COMMA_LIST = Rule(lambda v: _number(v) or (isinstance(v, str) and all(p.strip() for p in v.split(","))),
                  "a value or a comma-separated list (a sweep axis)")

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
    # data
    "data.name": one_of(sorted(TASK_NAMES)),
    "data.seq_len": integer(1),
    "data.batch_size": integer(1),
    "data.val_size": integer(1),
    "data.val_seed": integer(0),
    # model
    "model.cell": one_of(CELLS),
    "model.hidden_size": integer(1),
    "model.num_layers": integer(1),
    "model.nonlinearity": one_of(NONLINEARITIES),
    "model.init": one_of(INITS),
    "model.spectral_radius": number(above=0),
    "model.forget_bias": number(nullable=True),
    "model.cell_carry": BOOL,
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
    "callbacks.grad_flow.layer": Rule(_int, "an integer (-1 = the top layer)"),
    "callbacks.grad_flow.num_scalar_points": integer(1),
    "callbacks.grad_flow.plot_every_n_steps": integer(0, " (0 = never)"),
    "callbacks.grad_flow.dtype": one_of(["float64", "float32"]),
    "callbacks.grad_flow.output_dir": text(),
    "callbacks.gate_stats.every_n_steps": integer(1),
    "callbacks.gate_stats.probe_size": integer(1),
    "callbacks.gate_stats.probe_seed": integer(0),
    "callbacks.loss_cliff.alpha_min": number(above=0),
    "callbacks.loss_cliff.alpha_max": number(above=0),
    "callbacks.loss_cliff.num_alphas": integer(2),
    "callbacks.loss_cliff.uphill_factor": number(above=1),
    "callbacks.loss_cliff.output_dir": text(),
    # profile: the scale of the experiment sweeps
    "profile.seeds": COMMA_LIST,
    "profile.seq_lens": COMMA_LIST,
    "profile.lrs": COMMA_LIST,
    "profile.forget_biases": COMMA_LIST,
    "profile.hidden_size": integer(1),
    "profile.adam_lr": number(above=0),
    "profile.steps.arms": integer(1),
    "profile.steps.exploding": integer(1),
    "profile.steps.forget_bias": integer(1),
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


def validate(cfg: DictConfig) -> None:
    """Raise ConfigError on the first leaf that breaks its rule, then on the checks between keys. A leaf
    without a rule can only be one a user added with `+key=value` (tests/test_schema.py holds every
    shipped leaf to a rule); it is passed on as typed."""
    for key in leaves(cfg):
        rule = RULES.get(key)
        value = _value(cfg, key)
        if rule is None or value is UNRESOLVED:
            continue
        if not rule.check(value):
            raise ConfigError(f"{key}={value!r} is not allowed: {key} must be {rule.allowed}")
    mode, threshold = cfg.clipping.mode, cfg.clipping.threshold
    if mode != "none" and threshold is None:
        raise ConfigError(f"clipping.threshold=None is not allowed: clipping.threshold must be a number > 0 with clipping={mode}")
    cliff = OmegaConf.select(cfg, "callbacks.loss_cliff")
    if cliff is not None and cliff.alpha_min >= cliff.alpha_max:
        raise ConfigError(f"callbacks.loss_cliff.alpha_min={cliff.alpha_min!r} is not allowed: it must be below callbacks.loss_cliff.alpha_max={cliff.alpha_max!r}")
    if cfg.data.name == "adding" and cfg.data.seq_len < 2:
        raise ConfigError(f"data.seq_len={cfg.data.seq_len} is not allowed: the adding task needs data.seq_len >= 2")


def ignored_values(cfg: DictConfig) -> list[str]:
    """Values the chosen options ignore, one line each (the command line logs them as warnings)."""
    notes = []
    if cfg.clipping.mode == "none" and cfg.clipping.threshold is not None:
        notes.append(f"clipping.threshold={cfg.clipping.threshold!r} has no effect with clipping=none")
    if cfg.model.get("cell_carry") is False and cfg.model.get("forget_bias") not in (None, 0, 0.0):
        notes.append(f"model.forget_bias={cfg.model.forget_bias!r} has no effect with model.cell_carry=false (the forget gate is closed)")
    return notes
