"""`hydra.launcher.fail_fast=true`: after a sweep's first failed job, no new job of it starts.

The jobs do it themselves, so it works alike under every launcher of the project (local, parallel, slurm):
the job that fails writes the sweep's stop file (contract.SWEEP_STOP, naming itself); a job that starts
while it exists records itself `cancelled` and ends before building anything; under SLURM the failed job
also cancels the array tasks still pending (`scancel --state=PENDING`), which the sweep report then shows as
cancelled from the sweep's plan. Jobs already running finish. A new launch in the same folder (the
`resume=true` re-run) removes the stop file first, so it runs exactly the jobs that did not complete.
Torch-free: it runs in the command line's process.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

from rnn_gradients import contract

log = logging.getLogger(__name__)


def enabled() -> bool:
    """Whether this job's sweep was launched with hydra.launcher.fail_fast=true."""
    return HydraConfig.initialized() and bool(HydraConfig.get().launcher.get("fail_fast", False))


def stopped_by(sweep_dir: Path) -> str | None:
    """The failed job that stopped the sweep, or None while it runs on."""
    try:
        return (Path(sweep_dir) / contract.SWEEP_STOP).read_text().strip() or "a failed job"
    except FileNotFoundError:
        return None


def stop(sweep_dir: Path, failed_job: str) -> None:
    """Stop the sweep after `failed_job` (the first to fail keeps its name in the stop file)."""
    path = Path(sweep_dir) / contract.SWEEP_STOP
    try:
        with open(path, "x") as file:
            file.write(failed_job + "\n")
    except FileExistsError:
        return
    log.error("hydra.launcher.fail_fast: job %s failed, so no new job of this sweep starts", failed_job)
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    if array:
        done = subprocess.run(["scancel", "--state=PENDING", array], capture_output=True, text=True)
        log.info("scancel --state=PENDING %s: %s", array, (done.stderr.strip() or "pending array tasks cancelled"))


def clear(sweep_dir: Path) -> None:
    """A new launch into the sweep folder starts with no stop."""
    (Path(sweep_dir) / contract.SWEEP_STOP).unlink(missing_ok=True)
