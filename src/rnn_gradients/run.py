"""One training run: build model, data and Trainer from a composed config, fit (or resume), and write
summary.json. The command line (rnn_gradients.train) imports this only once a job starts, so bad
input is refused, and a sweep's parent process launches its jobs, without loading torch and Lightning.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import TQDMProgressBar
from omegaconf import DictConfig, OmegaConf

from rnn_gradients import contract, tb_overview
from rnn_gradients.guards.checkpointing import GracefulInterrupt, PeriodicCheckpoint, checkpoint_step
from rnn_gradients.guards.divergence_monitor import DivergenceMonitor
from rnn_gradients.cluster import in_slurm_job, restart_count
from rnn_gradients.data import TaskDataModule
from rnn_gradients.io_utils import write_json_atomic, write_text_atomic
from rnn_gradients.module import SequenceModule
from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.observatory.gradient_flow import GradFlowLogger
from rnn_gradients.observatory.tensorboard_io import summary_writer
from rnn_gradients.run_info import arm_label, in_parallel_sweep, is_multirun, run_description
from rnn_gradients.runtime import configure_cpu, skip_final_gc
from rnn_gradients.schema import ConfigError

log = logging.getLogger(__name__)


def quiet_known_warnings() -> None:
    """Silence warnings that are noise here; called by every job, in whichever process runs it (a
    joblib worker never runs the command line's set-up)."""
    # Lightning's advice to add DataLoader workers does not apply to in-process vectorized generation.
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*`IterableDataset` has `__len__`.*")
    warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\).*")  # Lightning vs torch 2.13
    # Lightning's advice to run under `srun` whenever srun is on PATH: SLURM jobs here do (submitit's own srun).
    warnings.filterwarnings("ignore", ".*`srun` command is available on your system but is not used.*")


def log_lightning_once() -> None:
    """One console line per Lightning message, and that line in the run's train.log too.

    The `lightning` package prints its INFO lines through a console handler of its own. `lightning.pytorch`
    keeps them away from the root logger only when it is imported before logging is configured; the
    command line now imports it inside the job, after Hydra set up its handlers, so every line would
    reach the console twice (Lightning's handler and Hydra's). Where the root logger has handlers, the
    package's own console handler goes; Hydra's formatting and its train.log then carry the line.
    """
    if not logging.getLogger().hasHandlers():
        return
    package = logging.getLogger("lightning")
    for handler in list(package.handlers):
        if type(handler) is logging.StreamHandler:
            package.removeHandler(handler)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NoAdvertising())


class _NoAdvertising(logging.Filter):
    """Drops Lightning's "💡 Tip: ... litlogger" line, which every job printed: an advertisement, not a fact."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


def build(cfg: DictConfig) -> tuple[SequenceModule, TaskDataModule]:
    """Model and data from a composed config, every part instantiated from its group: the task from `data`,
    the cell from `model` (seeds weights with cfg.seed first; the network's input and output sizes are the
    task's)."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    task = hydra.utils.instantiate(cfg.data)
    data = TaskDataModule(task, seed=cfg.seed)
    module = SequenceModule(
        network=RecurrentNetwork(hydra.utils.instantiate(cfg.model), task.input_size, task.output_size),
        task=task,
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        clipper=hydra.utils.instantiate(cfg.clipping),
        scheduler=hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
    )
    return module, data


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """Every entry of cfg.callbacks with a _target_; `callbacks.<name>=null` switches one off."""
    entries = cfg.get("callbacks") or {}
    return [hydra.utils.instantiate(c) for c in entries.values() if c is not None and "_target_" in c]


def _metric(trainer: pl.Trainer, key: str) -> float | None:
    """A logged metric as a float; None when absent or non-finite (JSON has no NaN/inf)."""
    value = trainer.callback_metrics.get(key)
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"




def resolve_checkpoint(cfg: DictConfig, run_dir: Path, resume: bool) -> Path | None:
    """ckpt_path=<file> | last (this run dir's checkpoints/last.ckpt); `resume` implies last if it exists."""
    last = run_dir / contract.CHECKPOINT_DIR / contract.LAST_CHECKPOINT
    if cfg.ckpt_path in (None, ""):
        return last if resume and last.is_file() else None
    path = last if cfg.ckpt_path == "last" else Path(cfg.ckpt_path)
    if not path.is_file():
        raise ConfigError(f"ckpt_path={cfg.ckpt_path!r}: no checkpoint at {path} (give a .ckpt file, or 'last' with hydra.run.dir=<run dir>)")
    return path


def build_logger(cfg: DictConfig, resume_step: int | None) -> Any:
    if not cfg.get("logger") or "_target_" not in cfg.logger:
        return False
    # On resume, TensorBoard discards events the interrupted run logged after its checkpoint (purge_step),
    # so curves continue without duplicated steps.
    extra = {"purge_step": resume_step + 1} if resume_step is not None else {}
    return hydra.utils.instantiate(cfg.logger, **extra)


def make_trainer(cfg: DictConfig, run_dir: Path, resume_step: int | None, extra: Sequence[pl.Callback] = ()) -> pl.Trainer:
    """The Trainer of a run: cfg.trainer with cfg.callbacks, periodic checkpoints, the progress bar's
    refresh rate, the logger, then `extra`."""
    callbacks = [*build_callbacks(cfg), PeriodicCheckpoint(run_dir / contract.CHECKPOINT_DIR, cfg.checkpoint.every_n_steps)]
    # In a parallel sweep one progress line per finished job (sweep_progress) replaces the per-job bars.
    progress_bar = bool(cfg.trainer.get("enable_progress_bar", True)) and not in_parallel_sweep()
    if progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=cfg.progress_bar_refresh_rate))
    callbacks += extra
    return hydra.utils.instantiate(cfg.trainer, logger=build_logger(cfg, resume_step), callbacks=callbacks,
                                   enable_progress_bar=progress_bar)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (or resume), then write summary.json in the run directory; returns the summary."""
    quiet_known_warnings()
    log_lightning_once()
    run_dir = Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(cfg.paths.output_dir)
    summary_path = run_dir / contract.SUMMARY_FILE
    # A job SLURM restarted (requeue, preemption, node failure, submitit's requeue at a time limit) runs
    # again in the same run directory: it resumes as if launched with resume=true.
    restarts = restart_count()
    resume = bool(cfg.resume) or restarts > 0
    if restarts:
        log.info("SLURM restart %d of job %s: resuming from the run's last checkpoint", restarts, os.environ.get("SLURM_JOB_ID"))
    if resume and summary_path.is_file():
        previous = json.loads(summary_path.read_text())
        if previous.get("status") in contract.FINISHED:
            log.info("resuming: %s already %s, skipping", run_dir, previous["status"])
            return previous
    ckpt = resolve_checkpoint(cfg, run_dir, resume)
    try:
        resume_step = checkpoint_step(ckpt) if ckpt is not None else None
    except ValueError as error:
        raise ConfigError(f"ckpt_path={str(ckpt)!r} is {error}") from None

    threads, threads_reason = configure_cpu(cfg.num_threads, bool(cfg.flush_denormal), cfg.malloc_keep_mb)
    skip_final_gc()  # here too: joblib's worker processes never run main()
    write_text_atomic(run_dir / contract.CONFIG_RESOLVED_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    module, data = build(cfg)
    interrupt = GracefulInterrupt(run_dir / contract.CHECKPOINT_DIR)
    trainer = make_trainer(cfg, run_dir, resume_step, [interrupt])
    log.info(
        "Run dir %s | %s on %s (T=%d) | %d torch thread%s (%s)%s", run_dir, arm_label(cfg), module.task.name,
        cfg.data.seq_len, threads, "" if threads == 1 else "s", threads_reason, f" | resuming from step {resume_step} ({ckpt})" if ckpt else "",
    )

    writer = summary_writer(trainer)
    if writer is not None:
        values = tb_overview.hparam_values(run_description(cfg), cfg)
        for logger in trainer.loggers:  # hparams.yaml beside the event files
            getattr(logger, "hparams", {}).update(values)
        tb_overview.write_start(writer, values, resume_step or 0)

    start = time.perf_counter()
    trainer.fit(module, datamodule=data, ckpt_path=ckpt, weights_only=True)
    wall = time.perf_counter() - start
    # read before the closing validate below, which starts callback_metrics afresh
    train_loss, train_normalized = _metric(trainer, contract.TRAIN_LOSS), _metric(trainer, contract.TRAIN_NORMALIZED_LOSS)
    if interrupt.received is None and module.last_val_step != trainer.global_step:
        # make the summary's val numbers final; Lightning logs this evaluation at the final step itself
        for logger in trainer.loggers:
            logger.shift = 0
        trainer.validate(module, datamodule=data, verbose=False)

    divergence = next((c for c in trainer.callbacks if isinstance(c, DivergenceMonitor)), None)
    diverged = divergence is not None and divergence.diverged_at is not None
    status = contract.INTERRUPTED if interrupt.received is not None else contract.DIVERGED if diverged else contract.COMPLETED
    summary = {
        **run_description(cfg),
        "status": status,
        "diverged": diverged,
        "diverged_at_step": divergence.diverged_at if diverged else None,
        "divergence_reason": divergence.reason if diverged else None,
        "interrupted_by": signal.Signals(interrupt.received).name if interrupt.received else None,
        "resumed_from_step": resume_step,
        "steps": trainer.global_step,
        "wall_time_s": round(wall, 3),
        "baseline_loss": module.task.baseline_loss,
        "metric": module.task.metric_name,
        "train_loss": train_loss,
        "train_normalized_loss": train_normalized,
        "val_loss": _metric(trainer, contract.VAL_LOSS),
        "val_normalized_loss": _metric(trainer, contract.VAL_NORMALIZED_LOSS),
        "val_accuracy": _metric(trainer, contract.VAL_ACCURACY),
    }
    write_json_atomic(summary_path, summary)
    if writer is not None:
        grad_flow = next((c for c in trainer.callbacks if isinstance(c, GradFlowLogger)), None)
        ratios = grad_flow.last_log10_ratios() if grad_flow is not None else {}
        tb_overview.write_end(writer, tb_overview.outcome_metrics(summary, ratios), status, trainer.global_step)
    for logger in trainer.loggers:
        getattr(logger, "close", lambda: None)()
    log.info(
        "Done: %s after %d steps in %.1fs, val loss %s (normalized %s), %s %s",
        status, summary["steps"], wall, _fmt(summary["val_loss"]),
        _fmt(summary["val_normalized_loss"]), module.task.metric_name, _fmt(summary["val_accuracy"]),
    )
    if interrupt.preempted:
        hand_over_to_scheduler(interrupt)
    elif interrupt.received is not None and (interrupt.received == signal.SIGINT or not is_multirun() or in_slurm_job()):
        # Exit like the signal would have, after saving everything. Ctrl-C stops a whole sweep; a job of
        # a local sweep that alone got SIGTERM returns instead, so the launcher goes on with the other
        # jobs. A SLURM job exits without a result: SLURM requeues it (the launcher then waits for the
        # next attempt) or has cancelled it (the launcher reports it from this summary).
        sys.exit(128 + interrupt.received)
    return summary


def hand_over_to_scheduler(interrupt: GracefulInterrupt) -> None:
    """After submitit's preemption / time-limit signal and the checkpoint: let submitit requeue the job
    (it exits this process). Where it will not (max_num_timeout reached), the run stays interrupted and
    resumes by hand with resume=true."""
    try:
        interrupt.hand_over_to_submitit()
    except Exception as error:  # submitit raises UncompletedJobError when it will not requeue
        log.warning("Not requeued (%s): resume by hand with hydra.sweep.dir=<sweep dir> resume=true", str(error).splitlines()[0])
