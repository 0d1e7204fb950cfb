"""Refuse bad input before anything trains: one line naming the key, the bad value, what is allowed."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from rnn_gradients.clipping import CLIP_MODES
from rnn_gradients.networks import CELLS, INITS, NONLINEARITIES
from rnn_gradients.tasks import TASKS


class ConfigError(ValueError):
    """A config value a user typed is not allowed; the message is meant to be printed as is."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def positive_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def non_negative_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


def positive_number(v: Any) -> bool:
    return _is_number(v) and v > 0


def number_or_null(v: Any) -> bool:
    return v is None or _is_number(v)


def one_of(options: Sequence[str]) -> Callable[[Any], bool]:
    return lambda v: v in options


# key -> (check, what is allowed). Keys absent from the config are skipped (e.g. logger=none).
RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "seed": (non_negative_int, "an integer >= 0"),
    "num_threads": (non_negative_int, "an integer >= 0 (0 = auto)"),
    "data.name": (one_of(sorted(TASKS)), f"one of {sorted(TASKS)}"),
    "data.seq_len": (positive_int, "an integer > 0"),
    "data.batch_size": (positive_int, "an integer > 0"),
    "data.val_size": (positive_int, "an integer > 0"),
    "data.val_seed": (non_negative_int, "an integer >= 0"),
    "model.cell": (one_of(CELLS), f"one of {list(CELLS)}"),
    "model.hidden_size": (positive_int, "an integer > 0"),
    "model.num_layers": (positive_int, "an integer > 0"),
    "model.nonlinearity": (one_of(NONLINEARITIES), f"one of {list(NONLINEARITIES)}"),
    "model.init": (one_of(INITS), f"one of {list(INITS)}"),
    "model.spectral_radius": (positive_number, "a number > 0"),
    "model.forget_bias": (number_or_null, "a finite number, or null"),
    "clipping.mode": (one_of(CLIP_MODES), f"one of {list(CLIP_MODES)}"),
    "optimizer.lr": (positive_number, "a number > 0"),
    "trainer.max_steps": (positive_int, "an integer > 0"),
    "trainer.val_check_interval": (positive_int, "an integer > 0 (steps between validations)"),
    "trainer.log_every_n_steps": (positive_int, "an integer > 0"),
}


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError on the first value that is not allowed."""
    for key, (check, allowed) in RULES.items():
        value = OmegaConf.select(cfg, key, default="<missing>", throw_on_missing=False)
        if value == "<missing>":
            continue
        if not check(value):
            raise ConfigError(f"{key}={value!r} is not allowed: {key} must be {allowed}")
    if cfg.clipping.mode != "none" and not positive_number(cfg.clipping.threshold):
        raise ConfigError(
            f"clipping.threshold={cfg.clipping.threshold!r} is not allowed: "
            f"clipping.threshold must be a number > 0 with clipping={cfg.clipping.mode}"
        )
    if cfg.data.name == "adding" and cfg.data.seq_len < 2:
        raise ConfigError(
            f"data.seq_len={cfg.data.seq_len} is not allowed: the adding task needs data.seq_len >= 2"
        )


_GROUP_OVERRIDE = re.compile(r"^[+~]{0,2}(?P<group>[A-Za-z_][\w/]*)(@[\w.]+)?=(?P<value>.*)$")


def check_group_choices(overrides: Sequence[str], conf_dir: Path) -> str | None:
    """Catch `model=foo` before Hydra does, with one line instead of Hydra's multi-line report.

    Only plain choices (and comma lists in multiruns) of known groups are checked; anything fancier is
    left to Hydra, which still rejects it.
    """
    for override in overrides:
        match = _GROUP_OVERRIDE.match(override)
        if not match or override.startswith("hydra/"):
            continue
        group, value = match["group"], match["value"]
        group_dir = conf_dir / group
        if not group_dir.is_dir() or any(c in value for c in "()[]{}$"):
            continue
        options = sorted(p.stem for p in group_dir.glob("*.yaml"))
        for choice in (v.strip() for v in value.split(",")):
            if choice and choice != "null" and choice not in options:
                return f"{group}={choice!r} is not a known option: {group} must be one of {options}"
    return None


# Flags after which Hydra does not simply run one job (sweeps, printing the config, help).
_NOT_A_SINGLE_RUN = ("-m", "--multirun", "-c", "--cfg", "-i", "--info", "-h", "--help", "--hydra-help", "-sc", "--shell-completion")


def check_single_run(argv: Sequence[str], conf_dir: Path) -> str | None:
    """Validate a single run's values before Hydra creates its run directory, so a refused run leaves
    nothing behind in outputs/. Sweeps are validated per job (each job's directory is new anyway);
    anything Hydra itself would reject is left to Hydra's own message."""
    if any(arg in _NOT_A_SINGLE_RUN or arg.startswith(("--config", "-cp", "-cn", "--exp")) for arg in argv):
        return None
    overrides = [arg for arg in argv if not arg.startswith("-")]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
    except (HydraException, ValueError, KeyError):
        return None
    try:
        validate_config(cfg)
    except ConfigError as error:
        return str(error)
    return None
