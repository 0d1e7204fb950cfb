"""Hydra's basic (one job after another, in this process) and joblib (one job per core) launchers, taking
the project's `fail_fast` key. The launchers only carry it: each job reads it from its Hydra config and
acts on it (rnn_gradients.fail_fast), so the rule is the same under every launcher, SLURM's included."""

from __future__ import annotations

from typing import Any

from hydra._internal.core_plugins.basic_launcher import BasicLauncher
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher


class LocalLauncher(BasicLauncher):
    def __init__(self, fail_fast: bool = False) -> None:
        super().__init__()
        self.fail_fast = fail_fast


class ParallelLauncher(JoblibLauncher):
    def __init__(self, fail_fast: bool = False, **joblib: Any) -> None:
        super().__init__(**joblib)  # the rest are joblib.Parallel's arguments
        self.fail_fast = fail_fast
