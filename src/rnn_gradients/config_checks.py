"""Refuse bad input before anything is written: the schema's rules (rnn_gradients.schema) on the config a
single run will get, composed before Hydra creates its run directory; unknown group options; output
folders that cannot take results. One line naming the key, the bad value and what is allowed."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException

from rnn_gradients.schema import ConfigError, validate


_GROUP_OVERRIDE = re.compile(r"^[+~]{0,2}(?P<group>[A-Za-z_][\w/]*)(@[\w.]+)?=(?P<value>.*)$")


def search_dirs(overrides: Sequence[str], conf_dir: Path) -> list[Path] | None:
    """conf/ and the folders a `hydra.searchpath=[file://...]` override adds (a user's own cells and
    tasks); None when it names a pkg:// path, whose options only Hydra can list."""
    dirs = [conf_dir]
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if key != "hydra.searchpath":
            continue
        for entry in (e.strip().strip("'\"") for e in value.strip("[]").split(",") if e.strip()):
            if entry.startswith("pkg://"):
                return None
            dirs.append(Path(entry.removeprefix("file://")))
    return dirs


def check_group_choices(overrides: Sequence[str], conf_dir: Path) -> str | None:
    """Catch `model=foo` before Hydra does, with one line instead of Hydra's multi-line report.

    Only plain choices (and comma lists in multiruns) of known groups are checked, against conf/ and any
    folder of hydra.searchpath; anything fancier is left to Hydra, which still rejects it.
    """
    dirs = search_dirs(overrides, conf_dir)
    if dirs is None:
        return None
    for override in overrides:
        match = _GROUP_OVERRIDE.match(override)
        if not match or override.startswith("hydra/"):
            continue
        group, value = match["group"], match["value"]
        if not (conf_dir / group).is_dir() or any(c in value for c in "()[]{}$"):
            continue
        options = sorted({p.stem for folder in dirs for p in (folder / group).glob("*.yaml")})
        for choice in (v.strip() for v in value.split(",")):
            if choice and choice != "null" and choice not in options:
                return f"{group}={choice!r} is not a known option: {group} must be one of {options}"
    return None


# Flags after which Hydra runs no job at all (printing the config, help).
_NO_JOB = ("-c", "--cfg", "-i", "--info", "-h", "--help", "--hydra-help", "-sc", "--shell-completion")
_MULTIRUN = ("-m", "--multirun")
_MAX_SWEEP_CHECKS = 40  # composes for a sweep's values (~10 ms each): refusal stays well under a second


def _sweep_variants(overrides: list[str]) -> list[list[str]]:
    """The overrides with every comma list at its first value, and then each other value of each list
    once: every value a sweep will use meets the schema, without composing the whole product."""
    lists = {i: o.split("=", 1)[1].split(",") for i, o in enumerate(overrides)
             if "=" in o and "," in o and not any(c in o for c in "()[]{}$")}
    base = [f"{o.split('=', 1)[0]}={lists[i][0]}" if i in lists else o for i, o in enumerate(overrides)]
    variants = [base]
    for i, values in lists.items():
        key = overrides[i].split("=", 1)[0]
        variants += [[*base[:i], f"{key}={value}", *base[i + 1:]] for value in values[1:]]
    return variants[:_MAX_SWEEP_CHECKS]


def check_values(argv: Sequence[str], conf_dir: Path) -> str | None:
    """Run the schema on the config of a single run, or on every value of a sweep's comma lists, before
    Hydra creates a run or sweep directory: a refused command leaves nothing behind in outputs/. Each
    job checks its own composed config again. Anything Hydra itself would reject is left to Hydra's
    own message."""
    if any(arg in _NO_JOB or arg.startswith(("--config", "-cp", "-cn", "--exp")) for arg in argv):
        return None
    overrides = [arg for arg in argv if not arg.startswith("-")]
    variants = _sweep_variants(overrides) if any(arg in _MULTIRUN for arg in argv) else [overrides]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            configs = [compose(config_name="config", overrides=variant) for variant in variants]
    except HydraException as error:
        return _unknown_key(f"{error} {error.__cause__}", variants[0], conf_dir)
    except (ValueError, KeyError):
        return None
    for cfg in configs:
        try:
            validate(cfg)
        except ConfigError as error:
            return str(error)
    cfg = configs[0]
    if cfg.ckpt_path not in (None, "", "last"):
        from rnn_gradients.guards.checkpointing import checkpoint_step  # loads torch: only with a ckpt_path

        if not Path(cfg.ckpt_path).is_file():
            return f"ckpt_path={cfg.ckpt_path!r}: no such file (give a .ckpt file, or 'last' with hydra.run.dir=<run dir>)"
        try:
            checkpoint_step(Path(cfg.ckpt_path))
        except ValueError as error:
            return f"ckpt_path={cfg.ckpt_path!r} is {error}"
    return None


_NOT_IN_STRUCT = re.compile(r"Could not override '(?P<key>[\w.]+)'.*Key '[\w]+' is not in struct", re.S)


def _unknown_key(message: str, overrides: list[str], conf_dir: Path) -> str | None:
    """One line for a key the chosen option does not have (model.nonlinearity with model=lstm), instead
    of Hydra's report; None (Hydra's own message) for anything else."""
    match = _NOT_IN_STRUCT.search(message)
    if not match:
        return None
    key = match["key"]
    group = key.split(".", 1)[0]
    rest = [o for o in overrides if not o.startswith((f"{key}=", f"+{key}="))]
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            node = compose(config_name="config", overrides=rest).get(group)
    except HydraException:
        return None
    keys = [k for k in node.keys() if not str(k).startswith("_")] if node is not None else []
    choices = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0]] or ["the defaults"]
    return f"{key} is not a key of the chosen {group} ({', '.join(choices)}): its keys are {keys}"


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
