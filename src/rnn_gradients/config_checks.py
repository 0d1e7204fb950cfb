"""Refuse bad input before anything trains: one line naming the key, the bad value, what is allowed."""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from rnn_gradients.choices import CELLS, CLIP_MODES, INITS, NONLINEARITIES, TASK_NAMES


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
    "data.name": (one_of(TASK_NAMES), f"one of {sorted(TASK_NAMES)}"),
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
    "checkpoint.every_n_steps": (non_negative_int, "an integer >= 0 (0 = only at the end and on interruption)"),
    "resume": (lambda v: isinstance(v, bool), "true or false"),
    "flush_denormal": (lambda v: isinstance(v, bool), "true or false"),
    "min_free_disk_mb": (non_negative_int, "an integer >= 0"),
    "malloc_keep_mb": (non_negative_int, "an integer >= 0 (0 = glibc's defaults)"),
    "progress_bar_refresh_rate": (positive_int, "an integer > 0 (steps between progress-bar redraws)"),
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
    if cfg.ckpt_path not in (None, "", "last"):
        from rnn_gradients.guards.checkpointing import checkpoint_step

        if not Path(cfg.ckpt_path).is_file():
            return f"ckpt_path={cfg.ckpt_path!r}: no such file (give a .ckpt file, or 'last' with hydra.run.dir=<run dir>)"
        try:
            checkpoint_step(Path(cfg.ckpt_path))
        except ValueError as error:
            return f"ckpt_path={cfg.ckpt_path!r} is {error}"
    return None


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(path: Path, min_free_mb: int, key: str = "paths.output_dir") -> None:
    """Refuse to start (not fail an hour later) when results could not be written."""
    base = _existing_ancestor(Path(path))
    if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={str(path)!r} is not writable ({base} does not accept new files): choose another {key}")
    free_mb = shutil.disk_usage(base).free // 2**20
    if free_mb < min_free_mb:
        raise ConfigError(
            f"{key}={str(path)!r} has {free_mb} MB free, below min_free_disk_mb={min_free_mb}: free space or choose another {key}"
        )


def check_output_dir_from_argv(argv: Sequence[str]) -> str | None:
    """The writability/space check, before Hydra itself tries to create the run directory."""
    values = dict(arg.split("=", 1) for arg in argv if "=" in arg and not arg.startswith("-"))
    min_free = values.get("min_free_disk_mb", "100")
    for key in ("hydra.run.dir", "hydra.sweep.dir", "paths.output_dir"):
        if key in values and "$" not in values[key]:
            try:
                check_output_dir(Path(values[key]), int(min_free) if min_free.isdigit() else 100, key)
            except ConfigError as error:
                return str(error)
            return None
    try:
        check_output_dir(Path("outputs"), int(min_free) if min_free.isdigit() else 100)
    except ConfigError as error:
        return str(error)
    return None
