"""What a run is, read from its config and Hydra's state: labels, the summary's identifying fields.

Torch-free, so the command line can record a job that failed before (or while) the heavy libraries loaded.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rnn_gradients import contract
from rnn_gradients.cells import cell_class
from rnn_gradients.tasks import task_class


def arm_label(cfg: DictConfig) -> str:
    """The arm of a run's config: its cell's label for its keys, '+clip' when it clips."""
    return contract.clipped_label(cell_class(cfg.model._target_).arm_label(cfg.model), str(cfg.clipping.mode))


def run_name(model: DictConfig, clipping: str, data: DictConfig, seed: int) -> str:
    """The `run_name` resolver of conf/config.yaml's run folders: contract.run_name of the configured cell
    and task (registered by rnn_gradients.train in every process that names a job's folder)."""
    cell, task = cell_class(model._target_), task_class(data._target_)
    return contract.run_name(cell.run_name_part(model), str(clipping), task.name, int(data.seq_len), int(seed))


def group_choice(group: str) -> str | None:
    """The option chosen for a config group (e.g. experiment=arms), if running under Hydra."""
    return HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def in_parallel_sweep() -> bool:
    """A job of a multirun whose jobs run side by side (joblib with n_jobs != 1) or on a cluster
    (submitit): progress bars would interleave on one console, or fill log files with redraws."""
    if not is_multirun():
        return False
    launcher = HydraConfig.get().launcher
    target = str(launcher.get("_target_", ""))
    return "submitit" in target or "rnn_gradients_slurm" in target or launcher.get("n_jobs") not in (None, 1)


def run_description(cfg: DictConfig) -> dict[str, Any]:
    """What a run is (the summary's identifying fields), known before it starts."""
    return {
        "arm": arm_label(cfg),
        "experiment": group_choice("experiment"),
        "model": cell_class(cfg.model._target_).name,
        "task": task_class(cfg.data._target_).name,
        "seq_len": cfg.data.seq_len,
        "clipping": cfg.clipping.mode,
        "clip_threshold": cfg.clipping.threshold,
        "optimizer": group_choice("optimizer") or str(cfg.optimizer._target_).rsplit(".", 1)[-1].lower(),
        "lr": cfg.optimizer.lr,
        "forget_bias": cfg.model.get("forget_bias"),  # LSTM only: null for the RNN
        "hidden_size": cfg.model.hidden_size,
        "seed": cfg.seed,
    }
