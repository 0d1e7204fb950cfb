"""Train one model on one task: `python -m rnn_gradients.train [group=option ...] [key=value ...]`.

Hydra composes the config from conf/; `-m` sweeps it. Each run writes TensorBoard event files, its
resolved config (.hydra/) and, at the end, summary.json.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from rnn_gradients.clipping import GradientClipper
from rnn_gradients.config_checks import ConfigError, check_group_choices, check_single_run, validate_config
from rnn_gradients.data import TaskDataModule
from rnn_gradients.io_utils import write_json_atomic
from rnn_gradients.module import SequenceModule
from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.paths import config_dir
from rnn_gradients.tasks import make_task

log = logging.getLogger(__name__)


def quiet_known_warnings() -> None:
    """Silence warnings that are noise here. Called inside the job too: joblib workers do not run
    this module's top level."""
    # Lightning's advice to add DataLoader workers does not apply to in-process vectorized generation.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*`IterableDataset` has `__len__`.*")
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\).*")  # Lightning vs torch 2.13


def arm_label(cfg: DictConfig) -> str:
    """'RNN', 'LSTM', 'LSTM+clip' (and 'RNN+clip'): the labels of the figures and logs."""
    name = str(cfg.model.cell).upper()
    return f"{name}+clip" if cfg.clipping.mode != "none" else name


def resolve_num_threads(requested: int) -> int:
    """0 = auto: all usable cores for a single run, cores / n_jobs for each job of a joblib sweep.

    Usable cores come from the CPU affinity mask, which SLURM (and taskset) restrict to the job's share.
    """
    if requested > 0:
        return requested
    cores, jobs = len(os.sched_getaffinity(0)), 1
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode == RunMode.MULTIRUN:
            n_jobs = OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=1) or 1
            jobs = cores if n_jobs < 0 else n_jobs
    return max(1, cores // max(1, jobs))


def build_network(cfg: DictConfig, input_size: int, output_size: int) -> RecurrentNetwork:
    m = cfg.model
    return RecurrentNetwork(
        cell=m.cell,
        input_size=input_size,
        hidden_size=m.hidden_size,
        output_size=output_size,
        num_layers=m.num_layers,
        nonlinearity=m.nonlinearity,
        init=m.init,
        spectral_radius=m.spectral_radius,
        forget_bias=m.forget_bias,
    )


def build(cfg: DictConfig) -> tuple[SequenceModule, TaskDataModule]:
    """Model and data from a composed config (seeds weights with cfg.seed first)."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    task = make_task(cfg.data.name, cfg.data.seq_len)
    network = build_network(cfg, task.input_size, task.output_size)
    module = SequenceModule(
        network=network,
        task=task,
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        clipper=GradientClipper(cfg.clipping.mode, cfg.clipping.threshold),
    )
    data = TaskDataModule(task, cfg.data.batch_size, cfg.seed, cfg.data.val_size, cfg.data.val_seed)
    return module, data


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Every entry of cfg.callbacks with a _target_; `callbacks.<name>=null` switches one off."""
    entries = cfg.get("callbacks") or {}
    return [hydra.utils.instantiate(c) for c in entries.values() if c is not None and "_target_" in c]


def _choice(group: str) -> str | None:
    """The option chosen for a config group (e.g. experiment=arms), if running under Hydra."""
    return HydraConfig.get().runtime.choices.get(group) if HydraConfig.initialized() else None


def _metric(trainer: pl.Trainer, key: str) -> float | None:
    """A logged metric as a float; None when absent or non-finite (JSON has no NaN/inf)."""
    value = trainer.callback_metrics.get(key)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit, then write summary.json in the run directory; returns the summary."""
    quiet_known_warnings()
    run_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(cfg.paths.output_dir)
    threads = resolve_num_threads(cfg.num_threads)
    torch.set_num_threads(threads)
    module, data = build(cfg)
    callbacks = build_callbacks(cfg)
    logger = hydra.utils.instantiate(cfg.logger) if cfg.get("logger") and "_target_" in cfg.logger else False
    trainer: pl.Trainer = hydra.utils.instantiate(cfg.trainer, logger=logger, callbacks=callbacks)
    log.info("Run dir %s | %s on %s (T=%d) | %d torch threads", run_dir, arm_label(cfg), cfg.data.name, cfg.data.seq_len, threads)

    start = time.perf_counter()
    trainer.fit(module, datamodule=data)
    wall = time.perf_counter() - start
    if module.last_val_step != trainer.global_step:  # make the summary's val numbers final
        trainer.validate(module, datamodule=data, verbose=False)

    divergence = next((c for c in callbacks if hasattr(c, "diverged_at")), None)
    diverged = divergence is not None and divergence.diverged_at is not None
    summary = {
        "status": "diverged" if diverged else "completed",
        "diverged": diverged,
        "diverged_at_step": divergence.diverged_at if diverged else None,
        "divergence_reason": divergence.reason if diverged else None,
        "arm": arm_label(cfg),
        "experiment": _choice("experiment"),
        "model": cfg.model.cell,
        "task": cfg.data.name,
        "seq_len": cfg.data.seq_len,
        "clipping": cfg.clipping.mode,
        "clip_threshold": cfg.clipping.threshold,
        "optimizer": _choice("optimizer") or str(cfg.optimizer._target_).rsplit(".", 1)[-1].lower(),
        "lr": cfg.optimizer.lr,
        "forget_bias": cfg.model.forget_bias,
        "hidden_size": cfg.model.hidden_size,
        "seed": cfg.seed,
        "steps": trainer.global_step,
        "wall_time_s": round(wall, 3),
        "baseline_loss": module.task.baseline_loss,
        "metric": module.task.metric_name,
        "train_loss": _metric(trainer, "train/loss"),
        "train_normalized_loss": _metric(trainer, "train/normalized_loss"),
        "val_loss": _metric(trainer, "val/loss"),
        "val_normalized_loss": _metric(trainer, "val/normalized_loss"),
        "val_accuracy": _metric(trainer, "val/accuracy"),
    }
    write_json_atomic(run_dir / "summary.json", summary)
    log.info(
        "Done: %s after %d steps in %.1fs, val loss %s (normalized %s), %s %s",
        summary["status"], summary["steps"], wall, _fmt(summary["val_loss"]),
        _fmt(summary["val_normalized_loss"]), module.task.metric_name, _fmt(summary["val_accuracy"]),
    )
    return summary


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        validate_config(cfg)
    except ConfigError as error:
        log.error("%s", error)
        sys.exit(2)
    train(cfg)


def main() -> None:
    problem = check_group_choices(sys.argv[1:], config_dir()) or check_single_run(sys.argv[1:], config_dir())
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    _hydra_main()


if __name__ == "__main__":
    main()
