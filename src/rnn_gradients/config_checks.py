"""Refuse bad input before anything is written: the schema's rules (rnn_gradients.schema) on the config of
every job a command will run, composed before Hydra creates a run or sweep directory; unknown group
options; checkpoints that cannot be resumed; output folders that cannot take results. One line naming
the key, the bad value and what is allowed.

The command line is read by Hydra's own override parser, and a sweep is expanded as its sweeper expands
it (sweep_progress.sweep_overrides: hydra.sweeper.params, then the command line; comma lists, choice(),
range() and glob()), so every value of every sweep is checked, not a guess at them.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from hydra.errors import HydraException
from omegaconf import DictConfig, ListConfig, OmegaConf

from rnn_gradients import search_space
from rnn_gradients.contract import CHECKPOINT_DIR, LAST_CHECKPOINT
from rnn_gradients.paths import config_dir
from rnn_gradients.schema import ConfigError, validate
from rnn_gradients.sweep_progress import sweep_overrides


class _LeftToHydra(Exception):
    """A job Hydra itself will refuse: `message` is one line for it, or None to leave Hydra's own report."""

    def __init__(self, message: str | None) -> None:
        super().__init__(message)
        self.message = message


def _parse(overrides: Sequence[str], parser: OverridesParser | None = None) -> list[Override]:
    """Raises _LeftToHydra(None) on syntax Hydra refuses: its own message says what is wrong."""
    try:
        return (parser or OverridesParser.create()).parse_overrides(list(overrides))
    except HydraException:
        raise _LeftToHydra(None) from None


def _values(override: Override, parser: OverridesParser) -> list[Override]:
    """Each value an override takes, as a plain override of its own: `lr=0.1,0` gives `lr=0.1` and `lr=0`,
    expanded by Hydra (sweep_string_iterator, what BasicSweeper uses); a glob needs the parser's config
    loader. An interval() sweep, which BasicSweeper refuses, is left to Hydra."""
    if not override.is_sweep_override():
        return [override]
    try:
        values = list(override.sweep_string_iterator())
    except HydraException:
        raise _LeftToHydra(None) from None
    return _parse([f"{override.get_key_element()}={value}" for value in values], parser)


def _first(overrides: Sequence[Override], parser: OverridesParser) -> list[str]:
    """The overrides of a sweep's first job: each at its first value (one Hydra cannot expand is dropped)."""
    lines = []
    for override in overrides:
        try:
            lines += [o.input_line for o in _values(override, parser)[:1]]
        except _LeftToHydra:
            continue
    return lines


def search_dirs(overrides: Sequence[Override], conf_dir: Path) -> list[Path] | None:
    """conf/ and the folders a `hydra.searchpath=[file://...]` override adds (a user's own cells and
    tasks); None when it names a pkg:// path, whose options only Hydra can list."""
    dirs = [conf_dir]
    for override in overrides:
        if override.key_or_group != "hydra.searchpath" or override.is_sweep_override():
            continue
        value = override.value()
        for entry in (str(e) for e in (value if isinstance(value, list) else [value])):
            if entry.startswith("pkg://"):
                return None
            dirs.append(Path(entry.removeprefix("file://")))
    return dirs


def check_group_choices(overrides: Sequence[str], conf_dir: Path) -> str | None:
    """Catch `model=foo` (or a sweep `model=rnn,foo`) before Hydra does, with one line instead of Hydra's
    multi-line report, against conf/ and any folder of hydra.searchpath. A glob() picks existing options
    only; anything Hydra cannot parse is left to its own message."""
    parser = OverridesParser.create()
    try:
        parsed = _parse([o for o in overrides if not o.startswith("-")], parser)
    except _LeftToHydra:
        return None
    dirs = search_dirs(parsed, conf_dir)
    if dirs is None:
        return None
    for override in parsed:
        group = override.key_or_group
        if (override.is_hydra_override() or override.is_delete() or override.value_type == ValueType.GLOB_CHOICE_SWEEP
                or not (conf_dir / group).is_dir()):
            continue
        try:
            choices = [o.value() for o in _values(override, parser)]
        except _LeftToHydra:
            continue
        options = sorted({p.stem for folder in dirs for p in (folder / group).glob("*.yaml")})
        for choice in choices:
            if choice is None or isinstance(choice, (list, dict)) or "${" in str(choice):
                continue
            if str(choice) not in options:
                return f"{group}={str(choice)!r} is not a known option: {group} must be one of {options}"
    return None


# Flags after which Hydra runs no job at all (printing the config, help).
_NO_JOB = ("-c", "--cfg", "-i", "--info", "-h", "--help", "--hydra-help", "-sc", "--shell-completion")
_MULTIRUN = ("-m", "--multirun")


def _compose(overrides: list[str], conf_dir: Path, hydra_node: bool = False) -> DictConfig:
    """One job's config (inside initialize_config_dir); _LeftToHydra where Hydra refuses to compose it."""
    try:
        return compose(config_name="config", overrides=overrides, return_hydra_config=hydra_node)
    except HydraException as error:
        message = check_group_choices(overrides, conf_dir) or _unknown_key(f"{error} {error.__cause__}", overrides)
        raise _LeftToHydra(message) from None
    except (ValueError, KeyError):
        raise _LeftToHydra(None) from None


def _in_place(values: list[Override]) -> bool:
    """A sweep axis whose values can be set on a composed config the way Hydra applies a value override
    (OmegaConf.update(cfg, key, value, merge=True)) instead of composing each job, the slow part of the
    check: a plain change of a scalar, no group, package, +, ++ or ~. Whether the key is a leaf is checked
    on the composed config."""
    return len(values) > 1 and all(
        o.type == OverrideType.CHANGE and o.package is None and "/" not in o.key_or_group
        and not isinstance(o.value(), (list, dict)) for o in values)


def _is_leaf(cfg: DictConfig, key: str) -> bool:
    parent_key, _, name = key.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    return isinstance(parent, DictConfig) and name in parent and not isinstance(parent._get_node(name), (DictConfig, ListConfig))


def _job_configs(overrides: list[str], multirun: bool, conf_dir: Path) -> Iterator[DictConfig]:
    """The config of every job the command will launch (one without -m). Jobs that differ only in scalar
    values share one composed config, updated in place between them: use each before taking the next."""
    if not multirun:
        yield _compose(overrides, conf_dir)
        return
    parser = OverridesParser.create(GlobalHydra.instance().config_loader())  # the loader expands glob()
    command_line = _parse(overrides, parser)
    first = _first(command_line, parser)
    first_cfg = _compose(first, conf_dir, hydra_node=True)  # with hydra.sweeper.params; validate skips `hydra`
    if search_space.is_search(first_cfg.hydra):  # a search: the ends of its ranges and its choices
        groups = {p.name for p in conf_dir.iterdir() if p.is_dir()}
        yield from search_space.trial_configs(first_cfg, overrides, lambda extra: _compose([*first, *extra], conf_dir), groups)
        return
    params = OmegaConf.select(first_cfg, "hydra.sweeper.params")
    try:
        params = OmegaConf.to_container(params, resolve=True) if params is not None else {}
        parsed = sweep_overrides(params, overrides, parser.config_loader)
    except Exception:  # a grid only the running sweeper can read: each job checks its own config
        parsed = command_line
    axes: dict[str, list[Override]] = {}
    for override in parsed:  # as BasicSweeper.split_arguments: a later override of a key replaces an earlier one
        axes[override.get_key_element()] = _values(override, parser)
    # a config group (data=copy,temporal_order) is no leaf: its values are composed
    composed = [key for key, values in axes.items() if not (_in_place(values) and _is_leaf(first_cfg, values[0].key_or_group))]
    scalar = [key for key in axes if key not in composed]

    def job(chosen: dict[str, Override]) -> list[str]:  # the overrides in BasicSweeper's order
        return [(chosen[key] if key in chosen else values[0]).input_line for key, values in axes.items()]

    for choice in itertools.product(*(axes[key] for key in composed)):
        chosen = dict(zip(composed, choice, strict=True))
        lines = job(chosen)
        cfg = first_cfg if lines == first else _compose(lines, conf_dir)
        if not all(_is_leaf(cfg, axes[key][0].key_or_group) for key in scalar):  # then compose each job
            for values in itertools.product(*(axes[key] for key in scalar)):
                yield _compose(job({**chosen, **dict(zip(scalar, values, strict=True))}), conf_dir)
            continue
        for values in itertools.product(*(axes[key] for key in scalar)):
            for override in values:
                OmegaConf.update(cfg, override.key_or_group, override.value(), merge=True)
            yield cfg


def check_values(argv: Sequence[str], conf_dir: Path) -> str | None:
    """Run the schema on the config of a single run, or of every job of a sweep, and check every
    ckpt_path they name, before Hydra creates a run or sweep directory: a refused command leaves nothing
    behind in outputs/. Each job checks its own composed config again. Anything Hydra itself would reject
    is left to Hydra's own message."""
    if any(arg in _NO_JOB or arg.startswith(("--config", "-cp", "-cn", "--exp")) for arg in argv):
        return None
    overrides = [arg for arg in argv if not arg.startswith("-")]
    multirun = any(arg in _MULTIRUN for arg in argv)
    checkpoints: set[tuple[str, Path]] = set()  # (ckpt_path as typed, the file it names)
    try:
        with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
            for cfg in _job_configs(overrides, multirun, conf_dir):
                validate(cfg)
                if cfg.ckpt_path not in (None, "", "last"):
                    checkpoints.add((cfg.ckpt_path, Path(cfg.ckpt_path)))
                elif cfg.ckpt_path == "last" and not multirun and (run_dir := _plain_run_dir(overrides)):
                    checkpoints.add(("last", run_dir / CHECKPOINT_DIR / LAST_CHECKPOINT))  # as run.resolve_checkpoint
    except ConfigError as error:
        return str(error)
    except _LeftToHydra as left:
        return left.message
    for ckpt_path, path in sorted(checkpoints):
        from rnn_gradients.checkpoint_files import checkpoint_step  # loads torch: only with a ckpt_path

        try:
            checkpoint_step(path, ckpt_path)
        except ConfigError as error:
            return str(error)
    return None


def _plain_run_dir(overrides: list[str]) -> Path | None:
    """hydra.run.dir where the command line gives it as a plain path (its default interpolates the time)."""
    given = [o.value() for o in _parse(overrides) if o.key_or_group == "hydra.run.dir" and not o.is_sweep_override()]
    return Path(given[-1]) if given and isinstance(given[-1], str) and "$" not in given[-1] else None


_NOT_IN_STRUCT = re.compile(r"Could not override '(?P<key>[\w.]+)'.*Key '[\w]+' is not in struct", re.S)


def _unknown_key(message: str, overrides: list[str]) -> str | None:
    """One line for a key the chosen option does not have (model.nonlinearity with model=lstm), instead
    of Hydra's report; None (Hydra's own message) for anything else. Inside initialize_config_dir."""
    match = _NOT_IN_STRUCT.search(message)
    if not match:
        return None
    key = match["key"]
    group = key.split(".", 1)[0]
    rest = [o for o in overrides if not o.startswith((f"{key}=", f"+{key}="))]
    try:
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


def check_output_dir_from_argv(argv: Sequence[str], conf_dir: Path | None = None) -> str | None:
    """The writability/space check, before Hydra itself tries to create the run or sweep directory: of
    hydra.run.dir or hydra.sweep.dir where the command line gives one as a plain path (their defaults
    interpolate the time), else of paths.output_dir; min_free_disk_mb and paths.output_dir as the first
    job's composed config has them (conf/ holds their defaults). Hydra refusing the command: its message."""
    overrides = [arg for arg in argv if not arg.startswith("-")]
    try:
        parser = OverridesParser.create()
        parsed = _parse(overrides, parser)
        with initialize_config_dir(config_dir=str(conf_dir or config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=_first(parsed, parser))
        min_free, output_dir = cfg.min_free_disk_mb, cfg.paths.output_dir
    except Exception:  # Hydra's own refusal follows
        return None
    given = {o.key_or_group: o.value() for o in parsed if not o.is_sweep_override()}
    key, path = next(((k, given[k]) for k in ("hydra.run.dir", "hydra.sweep.dir")
                      if isinstance(given.get(k), str) and "$" not in given[k]), ("paths.output_dir", output_dir))
    try:
        check_output_dir(Path(path), min_free, key)
    except ConfigError as error:
        return str(error)
    return None
