"""The search space of `hydra/sweeper=optuna`, read from `hydra.sweeper.params` with Hydra's own override
grammar, as Hydra's Optuna sweeper reads it: `choice(a, b)` or `a,b` is categorical, `range(1, 5)` an
integer (or stepped float) range, `interval(lo, hi)` a float interval, `tag(log, interval(...))` log-scaled,
`tag(int, interval(...))` integer; a plain value is fixed. Torch- and optuna-free: the command line checks
a search here before launching it (config_checks), and the sweeper turns it into optuna distributions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rnn_gradients.rules import ConfigError

SWEEPER_TARGET = "hydra_plugins.rnn_gradients_search.optuna_sweeper.OptunaSweeper"


@dataclass(frozen=True)
class Dimension:
    """One searched key: `kind` is float, int or categorical; `choices` are override strings."""

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple[str, ...] = ()

    def values_to_check(self) -> list[Any]:
        """What the key's own rule must accept: both ends of a range, every choice."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]


def is_search(hydra_cfg: Any) -> bool:
    return str(getattr(getattr(hydra_cfg, "sweeper", None), "_target_", "")) == SWEEPER_TARGET


def parse(params: Mapping[str, Any]) -> tuple[list[Dimension], list[str]]:
    """(the searched keys, the fixed overrides) of `hydra.sweeper.params` plus the command line's sweeps;
    an empty range or a range the grammar cannot search is refused with one line."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
    from hydra.errors import HydraException

    dimensions, fixed = [], []
    for key, text in params.items():
        where = f"hydra.sweeper.params.{key}={text!r}"
        try:
            override = OverridesParser.create().parse_override(f"{key}={text}")
        except HydraException as error:
            raise ConfigError(f"{where} is not allowed: {str(error).splitlines()[0]}") from None
        if not override.is_sweep_override():
            fixed.append(f"{key}={text}")
            continue
        sweep = override.value()
        tags = set(getattr(sweep, "tags", ()) or ())
        if isinstance(sweep, ChoiceSweep):
            choices = tuple(str(c) for c in override.sweep_iterator(transformer=Transformer.encode))
            dimensions.append(Dimension(key, "categorical", choices=choices))
        elif isinstance(sweep, RangeSweep):
            ints = all(isinstance(v, int) for v in (sweep.start, sweep.stop, sweep.step))
            values = list(override.sweep_iterator())
            if not values:
                raise ConfigError(f"{where} is not allowed: the range is empty (range(start, stop, step) excludes stop)")
            dimensions.append(Dimension(key, "int" if ints else "float", values[0], values[-1], sweep.step, "log" in tags))
        elif isinstance(sweep, IntervalSweep):
            low, high = sweep.start, sweep.end
            if not low < high:
                raise ConfigError(f"{where} is not allowed: the interval is empty (interval(low, high) needs low < high)")
            if "log" in tags and low <= 0:
                raise ConfigError(f"{where} is not allowed: a log-scaled interval needs low > 0")
            kind = "int" if "int" in tags else "float"
            ends = (int(low), int(high)) if kind == "int" else (float(low), float(high))
            dimensions.append(Dimension(key, kind, *ends, log="log" in tags))
        else:
            raise ConfigError(f"{where} is not allowed: a search takes choice(), range(), interval() or tag(log|int, ...)")
    return dimensions, fixed


def check_settings(sweeper: Any) -> None:
    """The sweeper's own keys that a schema cannot type: how many trials, and how many at once."""
    for key in ("n_trials", "n_jobs"):
        value = sweeper.get(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise ConfigError(f"hydra.sweeper.{key}={value!r} is not allowed: hydra.sweeper.{key} must be an integer >= 1")
    if sweeper.get("direction") not in ("minimize", "maximize"):
        raise ConfigError(f"hydra.sweeper.direction={sweeper.get('direction')!r} is not allowed: "
                          "hydra.sweeper.direction must be one of ['minimize', 'maximize']")


def trial_configs(first_cfg: Any, command_line: list[str], compose_with: Any, groups: set[str]) -> Any:
    """Configs that hold every end of every searched range and every choice, for the schema to check before
    the search launches (config_checks); `compose_with(extra overrides)` composes the first job with them,
    `groups` are the config groups (a searched group such as `model` is composed, not set)."""
    import copy

    from omegaconf import DictConfig, ListConfig, OmegaConf

    hydra_cfg = first_cfg.hydra
    check_settings(hydra_cfg.sweeper)
    if hydra_cfg.launcher.get("wait", True) is False:
        raise ConfigError("hydra.launcher.wait=False is not allowed with hydra/sweeper=optuna: a search needs each "
                          "trial's result before it asks the next (submit the search itself as a job instead)")
    params = OmegaConf.to_container(hydra_cfg.sweeper.get("params") or {}, resolve=True)
    task = [arg for arg in command_line if "=" in arg and not arg.lstrip("+~").startswith(("hydra.", "hydra/"))]
    dimensions, _ = parse({**params, **dict(arg.split("=", 1) for arg in task)})  # as the sweeper reads them
    missing = object()
    for dim in dimensions:
        if dim.key in groups:
            for choice in dim.values_to_check():
                yield compose_with([f"{dim.key}={choice}"])
            continue
        node = OmegaConf.select(first_cfg, dim.key, default=missing)
        if node is missing or isinstance(node, (DictConfig, ListConfig)):
            raise ConfigError(f"hydra.sweeper.params.{dim.key} is not allowed: {dim.key} is not a key of the config "
                              "(a search sets keys the config has, e.g. optimizer.lr, clipping.threshold)")
        for value in dim.values_to_check():
            cfg = copy.deepcopy(first_cfg)
            OmegaConf.update(cfg, dim.key, _typed(value), merge=True)
            yield cfg


def _typed(value: Any) -> Any:
    """A choice is an override string (`0.1`, `lstm`): the value Hydra would set for it."""
    if not isinstance(value, str):
        return value
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(f"k={value}").value()
