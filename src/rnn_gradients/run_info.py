"""What a run is, read from its config and Hydra's state: labels, the summary's identifying fields.

Torch-free, so the command line can record a job that failed before (or while) the heavy libraries loaded.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from rnn_gradients import contract


def arm_label(cfg: DictConfig) -> str:
    """The arm of a run's config: contract.arm_label of its cell and clipping mode."""
    return contract.arm_label(str(cfg.model.cell), str(cfg.clipping.mode), bool(cfg.model.get("cell_carry", True)))


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
        "model": cfg.model.cell,
        "task": cfg.data.name,
        "seq_len": cfg.data.seq_len,
        "clipping": cfg.clipping.mode,
        "clip_threshold": cfg.clipping.threshold,
        "optimizer": group_choice("optimizer") or str(cfg.optimizer._target_).rsplit(".", 1)[-1].lower(),
        "lr": cfg.optimizer.lr,
        "forget_bias": cfg.model.get("forget_bias"),  # LSTM only: null for the RNN
        "hidden_size": cfg.model.hidden_size,
        "seed": cfg.seed,
    }
