"""The structured config of `hydra/sweeper=optuna` (no `from __future__ import annotations`: Hydra's
plugin scan reads these dataclasses' annotations as types). Importing it loads no optuna."""

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from hydra.core.config_store import ConfigStore

from rnn_gradients.search_space import SWEEPER_TARGET


@dataclass
class OptunaSweeperConf:
    _target_: str = SWEEPER_TARGET
    _recursive_: bool = False  # the sweeper builds the sampler itself (its seed depends on the study)
    n_trials: int = 20
    n_jobs: int = 1
    direction: str = "minimize"
    objective: str = "val_normalized_loss"
    diverged_value: float = 10.0
    study_name: str = "search"
    storage: Optional[str] = None
    sampler: Any = field(default_factory=lambda: {"_target_": "optuna.samplers.TPESampler", "seed": 0})
    params: Dict[str, str] = field(default_factory=dict)


ConfigStore.instance().store(group="hydra/sweeper", name="rnn_gradients_optuna", node=OptunaSweeperConf, provider="rnn_gradients")
