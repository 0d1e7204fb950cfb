"""The registry of tasks: every `Task` of this package's modules, in their declared order.

A task of a user's own package is found through the `_target_` of its conf/data YAML (`task_class`);
docs/extending.md shows one. Torch-free: the command line and the figures read it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from rnn_gradients.plugins import discover, locate, named
from rnn_gradients.tasks.base import Task

__all__ = ["Task", "by_name", "registered", "task_class"]


@cache
def registered() -> tuple[type[Task], ...]:
    """The built-in tasks, sorted by Task.order."""
    return discover(__name__, Task)


def by_name(name: str) -> type[Task]:
    return named(registered(), name, "task")


def task_class(target: Any) -> type[Task]:
    """The task a `data._target_` names (a built-in or a user's), or a one-line ConfigError."""
    return locate(target, Task, "data._target_")
