"""Train one model on one task: `python -m rnn_gradients.train [group=option ...] [key=value ...]`.

Hydra composes the config from conf/; `-m` sweeps it. Each run writes TensorBoard event files, its
config (.hydra/config.yaml as composed, config_resolved.yaml with every interpolation resolved),
checkpoints/last.ckpt and, at the end, summary.json.

This module is the command line only, and imports no torch: the run itself (rnn_gradients.run) loads
when a job starts. So bad input is refused in well under a second, and the parent process of a joblib
sweep, which only launches workers that import torch themselves, does not spend ~5 s importing it first.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rnn_gradients import contract, fail_fast, sweep_report
from rnn_gradients.config_checks import check_group_choices, check_output_dir, check_output_dir_from_argv, check_values
from rnn_gradients.io_utils import write_json_atomic
from rnn_gradients.paths import config_dir
from rnn_gradients.run_info import is_multirun, run_description, run_name
from rnn_gradients.runtime import skip_final_gc
from rnn_gradients.schema import ConfigError, ignored_values, validate

log = logging.getLogger(__name__)

# Run folders are named from the config (conf/config.yaml, hydra.run.dir / hydra.sweep.subdir). Registered
# on import: every process that resolves a job's folder (the launcher's, a joblib worker, a SLURM job)
# imports this module to unpickle the task function.
OmegaConf.register_new_resolver("run_name", run_name, replace=True)


def failure_line(error: BaseException) -> str:
    """`Type: message` as a traceback's last line says it, a multi-line message joined with ' | ' (Hydra puts
    the cause first and `full_key: ...` last), capped at 500 characters to keep the report one line a job."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {' | '.join(lines)}"[:500]


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _hydra_main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    sweep = Path(HydraConfig.get().sweep.dir) if is_multirun() else None
    try:
        validate(cfg)
        for note in ignored_values(cfg):
            log.warning("%s", note)
        if sweep is not None and fail_fast.enabled() and (failed := fail_fast.stopped_by(sweep)):
            log.warning("Cancelled: job %s failed and hydra.launcher.fail_fast=true", failed)
            write_json_atomic(run_dir / contract.SUMMARY_FILE, {**run_description(cfg), "status": contract.CANCELLED,
                                                                 contract.CANCELLED_BECAUSE: f"job {failed} failed (fail_fast)"})
            return
        check_output_dir(run_dir, cfg.min_free_disk_mb)
        from rnn_gradients.run import train  # torch and Lightning load here, in the job's own process

        train(cfg)
    except ConfigError as error:
        log.error("%s", error)
        sys.exit(2)
    except Exception as error:  # a crash: record it where the sweep report and figures will see it
        reason = failure_line(error)
        log.exception("Run failed: %s", reason)
        write_json_atomic(run_dir / contract.SUMMARY_FILE, {**run_description(cfg), "status": contract.FAILED, contract.FAILURE_REASON: reason,
                                                             contract.LOG_FILE: str(run_dir / contract.TRAIN_LOG_FILE)})
        if sweep is None:
            sys.exit(1)
        # in a sweep: let the other jobs run (or none, with fail_fast); the report lists this one, the exit code says so
        if fail_fast.enabled():
            fail_fast.stop(sweep, run_dir.name)
    finally:
        if sweep is not None:  # the report stays true for a job that ends after its launcher returned
            sweep_report.refresh_after_job(sweep)


def main() -> None:
    skip_final_gc()
    argv = sys.argv[1:]
    problem = (
        check_group_choices(argv, config_dir())
        or check_values(argv, config_dir())
        or check_output_dir_from_argv(argv)
    )
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    try:
        _hydra_main()
    except SystemExit:
        sweep_report.report_after_launcher_crash()
        raise
    if sweep_report.LAST_REPORT is not None and sweep_report.LAST_REPORT.incomplete:
        sys.exit(1)


if __name__ == "__main__":
    main()
