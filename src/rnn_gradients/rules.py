"""The building blocks of config rules: a predicate with the words that say what it allows.

Shared by the schema (top-level keys) and the plug-ins (a cell's or task's own keys), so both speak one
language in their error lines; the constructors check their arguments with the same Rule objects
(`require`). Torch-free and free of project imports: every module can use it.
Kept as predicates rather than Hydra structured configs: the rules need ranges and messages ("an integer
> 0 (steps between validations)"), which dataclass types alone do not give.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


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
    bound = "> 0" if minimum == 1 else f">= {minimum}"
    return Rule(lambda v: _int(v) and v >= minimum, f"an integer {bound}{note}")


def any_integer(note: str = "") -> Rule:
    return Rule(_int, f"an integer{note}")


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


def refuse(key: str, value: Any, rule: Rule) -> ConfigError:
    """The one-line refusal of every rule: key, value, what is allowed."""
    return ConfigError(f"{key}={value!r} is not allowed: {key} must be {rule.allowed}")


def require(key: str, value: Any, rule: Rule) -> None:
    """Raise the rule's refusal unless `value` obeys it. The schema's check of a composed config and a
    constructor's check of its own arguments are both this call with the same Rule object, so the command
    line and a direct Python call refuse the same value with the same line."""
    if not rule.check(value):
        raise refuse(key, value, rule)
