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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import TQDMProgressBar
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter

from rnn_gradients import contract, tb_overview
from rnn_gradients.callback_interfaces import HParamsMetrics, SummaryFields, implementing
from rnn_gradients.checkpoint_files import checkpoint_step
from rnn_gradients.guards.checkpointing import GracefulInterrupt, PeriodicCheckpoint
from rnn_gradients.cluster import in_slurm_job, restart_count
from rnn_gradients.data import TaskDataModule
from rnn_gradients.io_utils import write_json_atomic, write_text_atomic
from rnn_gradients.lightning_console import log_lightning_once, quiet_known_warnings
from rnn_gradients.module import SequenceModule
from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.observatory.tensorboard_io import summary_writer
from rnn_gradients.run_info import arm_label, in_parallel_sweep, is_multirun, run_description
from rnn_gradients.runtime import configure_cpu, skip_final_gc

log = logging.getLogger(__name__)


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
    """ckpt_path=<file> | last (this run dir's checkpoints/last.ckpt); `resume` implies last if it exists.
    Whether the file is there and loads is checkpoint_step's to say (the command line's words)."""
    last = run_dir / contract.CHECKPOINT_DIR / contract.LAST_CHECKPOINT
    if cfg.ckpt_path in (None, ""):
        return last if resume and last.is_file() else None
    return last if cfg.ckpt_path == "last" else Path(cfg.ckpt_path)


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
    """One job: plan the resume, fit, summarize; then exit as an interruption asks. Returns the summary."""
    quiet_known_warnings()
    log_lightning_once()
    plan = plan_resume(cfg, Path(HydraConfig.get().runtime.output_dir) if HydraConfig.initialized() else Path(cfg.paths.output_dir))
    if plan.finished is not None:
        return plan.finished
    job = start_job(cfg, plan)
    fitted = fit(job, plan)
    summary = summarize(cfg, job, plan, fitted)
    finish(job, plan, summary)
    exit_as_interrupted(job.interrupt)
    return summary


@dataclass(frozen=True)
class ResumePlan:
    """Where a job starts: its run directory, and the checkpoint (with its step) it resumes from, or the
    summary of a run that already finished there (then the job has nothing to do)."""

    run_dir: Path
    checkpoint: Path | None = None
    step: int | None = None
    finished: dict[str, Any] | None = None


def plan_resume(cfg: DictConfig, run_dir: Path) -> ResumePlan:
    """The resume policy: resume=true, or a restart by SLURM (requeue, preemption, node failure,
    submitit's requeue at a time limit: the job runs again in the same run directory), resumes from the
    run's last checkpoint, and skips a run that already finished; ckpt_path names a checkpoint outright."""
    restarts = restart_count()
    resume = bool(cfg.resume) or restarts > 0
    if restarts:
        log.info("SLURM restart %d of job %s: resuming from the run's last checkpoint", restarts, os.environ.get("SLURM_JOB_ID"))
    summary_path = run_dir / contract.SUMMARY_FILE
    if resume and summary_path.is_file():
        previous = json.loads(summary_path.read_text())
        if previous.get("status") in contract.FINISHED:
            log.info("resuming: %s already %s, skipping", run_dir, previous["status"])
            return ResumePlan(run_dir, finished=previous)
    ckpt = resolve_checkpoint(cfg, run_dir, resume)
    resume_step = checkpoint_step(ckpt, cfg.ckpt_path or "last") if ckpt is not None else None  # ConfigError if unusable
    return ResumePlan(run_dir, ckpt, resume_step)


@dataclass
class Job:
    """What start_job builds for a planned run."""

    module: SequenceModule
    data: TaskDataModule
    trainer: pl.Trainer
    interrupt: GracefulInterrupt
    writer: SummaryWriter | None  # the TensorBoard logger's, for the HParams entry (None without one)


def start_job(cfg: DictConfig, plan: ResumePlan) -> Job:
    """CPU set-up, config_resolved.yaml, model, data and Trainer, and the run's HParams start."""
    threads, threads_reason = configure_cpu(cfg.num_threads, bool(cfg.flush_denormal), cfg.malloc_keep_mb)
    skip_final_gc()  # here too: joblib's worker processes never run main()
    write_text_atomic(plan.run_dir / contract.CONFIG_RESOLVED_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    module, data = build(cfg)
    interrupt = GracefulInterrupt(plan.run_dir / contract.CHECKPOINT_DIR)
    trainer = make_trainer(cfg, plan.run_dir, plan.step, [interrupt])
    log.info(
        "Run dir %s | %s on %s (T=%d) | %d torch thread%s (%s)%s", plan.run_dir, arm_label(cfg), module.task.name, cfg.data.seq_len,
        threads, "" if threads == 1 else "s", threads_reason, f" | resuming from step {plan.step} ({plan.checkpoint})" if plan.checkpoint else "",
    )
    writer = summary_writer(trainer)
    if writer is not None:
        values = tb_overview.hparam_values(run_description(cfg), cfg)
        # hparams.yaml beside the event files; default_hp_metric: false (conf/logger) keeps the HParams session ours
        for logger in trainer.loggers:
            logger.log_hyperparams(values)
        tb_overview.write_start(writer, values, plan.step or 0)
    return Job(module, data, trainer, interrupt, writer)


@dataclass(frozen=True)
class Fitted:
    """What only the fit itself knows: its wall time, and the training metrics (read before the closing
    validation, which starts callback_metrics afresh)."""

    wall_time_s: float
    train_loss: float | None
    train_normalized_loss: float | None


def fit(job: Job, plan: ResumePlan) -> Fitted:
    """Fit (resuming from the plan's checkpoint), then validate the final weights where the last
    validation was earlier, so the summary's val numbers are final."""
    start = time.perf_counter()
    job.trainer.fit(job.module, datamodule=job.data, ckpt_path=plan.checkpoint, weights_only=True)
    fitted = Fitted(time.perf_counter() - start, _metric(job.trainer, contract.TRAIN_LOSS), _metric(job.trainer, contract.TRAIN_NORMALIZED_LOSS))
    if job.interrupt.received is None and job.module.last_val_step != job.trainer.global_step:
        job.trainer.validate(job.module, datamodule=job.data, verbose=False)  # logged at the final step (tb_logger)
    return fitted


# A run without a divergence monitor (callbacks=none) has not been seen to diverge.
NOT_DIVERGED = {"diverged": False, "diverged_at_step": None, "divergence_reason": None}


def summarize(cfg: DictConfig, job: Job, plan: ResumePlan, fitted: Fitted) -> dict[str, Any]:
    """summary.json's content: the run's description, the fields callbacks publish (SummaryFields), the
    status they imply, and the numbers of the fit."""
    published = dict(NOT_DIVERGED)
    for callback in implementing(job.trainer, SummaryFields):
        published.update(callback.summary_fields())
    if unknown := set(published) - set(contract.OUTCOME_KEYS):
        raise ValueError(f"callbacks published summary keys that contract.OUTCOME_KEYS lacks: {sorted(unknown)}")
    received, trainer = job.interrupt.received, job.trainer
    return {
        **run_description(cfg),
        "status": contract.INTERRUPTED if received is not None else contract.DIVERGED if published["diverged"] else contract.COMPLETED,
        **published,
        "interrupted_by": signal.Signals(received).name if received else None,
        "resumed_from_step": plan.step,
        "steps": trainer.global_step,
        "wall_time_s": round(fitted.wall_time_s, 3),
        "baseline_loss": job.module.task.baseline_loss,
        "metric": job.module.task.metric_name,
        "train_loss": fitted.train_loss,
        "train_normalized_loss": fitted.train_normalized_loss,
        "val_loss": _metric(trainer, contract.VAL_LOSS),
        "val_normalized_loss": _metric(trainer, contract.VAL_NORMALIZED_LOSS),
        "val_accuracy": _metric(trainer, contract.VAL_ACCURACY),
    }


def finish(job: Job, plan: ResumePlan, summary: dict[str, Any]) -> None:
    """Write summary.json, the HParams outcome (with the metrics callbacks publish: HParamsMetrics),
    close the loggers, and say how the run ended."""
    write_json_atomic(plan.run_dir / contract.SUMMARY_FILE, summary)
    if job.writer is not None:
        published: dict[str, float] = {}
        for callback in implementing(job.trainer, HParamsMetrics):
            published.update(callback.hparams_metrics())
        tb_overview.write_end(job.writer, tb_overview.outcome_metrics(summary, published), summary["status"], job.trainer.global_step)
    for logger in job.trainer.loggers:
        getattr(logger, "close", lambda: None)()
    log.info(
        "Done: %s after %d steps in %.1fs, val loss %s (normalized %s), %s %s", summary["status"], summary["steps"], summary["wall_time_s"],
        _fmt(summary["val_loss"]), _fmt(summary["val_normalized_loss"]), summary["metric"], _fmt(summary["val_accuracy"]),
    )


def exit_as_interrupted(interrupt: GracefulInterrupt) -> None:
    """The exit policy, once everything is saved: a job submitit preempted goes back to submitit. Else an
    interrupted job exits like the signal would have: Ctrl-C stops a whole sweep; a job of a local sweep
    that alone got SIGTERM returns instead, so the launcher goes on with the other jobs. A SLURM job exits
    without a result: SLURM requeues it (the launcher then waits for the next attempt) or has cancelled it
    (the launcher reports it from its summary)."""
    if interrupt.preempted:
        hand_over_to_scheduler(interrupt)
    elif interrupt.received is not None and (interrupt.received == signal.SIGINT or not is_multirun() or in_slurm_job()):
        sys.exit(128 + interrupt.received)


def hand_over_to_scheduler(interrupt: GracefulInterrupt) -> None:
    """After submitit's preemption / time-limit signal and the checkpoint: let submitit requeue the job
    (it exits this process). Where it will not (max_num_timeout reached), the run stays interrupted and
    resumes by hand with resume=true."""
    try:
        interrupt.hand_over_to_submitit()
    except Exception as error:  # submitit raises UncompletedJobError when it will not requeue
        log.warning("Not requeued (%s): resume by hand with hydra.sweep.dir=<sweep dir> resume=true", str(error).splitlines()[0])
