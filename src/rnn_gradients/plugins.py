"""Finding plug-ins (cells, tasks): the built-in ones by scanning their package, a user's by `_target_`.

One implementation for both kinds, so "registered" means the same thing everywhere: a subclass of the
kind's base class, with a `name`, defined in a module of the package (or named by a config's `_target_`).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, TypeVar

from rnn_gradients.rules import ConfigError

P = TypeVar("P")


def discover(package: str, base: type[P], skip: tuple[str, ...] = ("base",)) -> tuple[type[P], ...]:
    """Every `base` subclass with a name defined in the modules of `package`, sorted by (order, name)."""
    found: list[type[P]] = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name in skip or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        found += [value for value in vars(module).values()
                  if isinstance(value, type) and issubclass(value, base) and value.__module__ == module.__name__
                  and getattr(value, "name", "")]
    return tuple(sorted(found, key=lambda p: (getattr(p, "order", 100), p.name)))


def named(found: tuple[type[P], ...], name: str, kind: str) -> type[P]:
    """The plug-in of `found` called `name`; ValueError listing the names otherwise."""
    for plugin in found:
        if plugin.name == name:
            return plugin
    raise ValueError(f"no registered {kind} is called {name!r}: the {kind}s are {[p.name for p in found]}")


def locate(target: Any, base: type[P], key: str) -> type[P]:
    """The class a config's `_target_` names, checked to be a `base` plug-in; ConfigError otherwise."""
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(f"{key}={target!r} is not allowed: {key} must name a {base.__name__} class (module.Class)")
    module, _, attribute = target.rpartition(".")
    try:  # importlib, not hydra.utils.get_class: that one logs a multi-line error of its own first
        found = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"{key}={target!r} cannot be imported ({error}): is its folder on PYTHONPATH?") from None
    if not (isinstance(found, type) and issubclass(found, base) and getattr(found, "name", "")):
        raise ConfigError(f"{key}={target!r} is not allowed: {key} must name a subclass of "
                          f"{base.__module__}.{base.__name__} with a name")
    return found
