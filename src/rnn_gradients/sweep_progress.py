"""How far a multirun is: one console line per finished job, with the jobs finished out of the total,
how many diverged or failed so far, and an estimate of the time left.

The launching process writes the sweep's plan (how many jobs, when it started) when the multirun starts;
each job, when it ends, reads it beside the sweep report it has just refreshed. Jobs run in other
processes (joblib workers, SLURM), so the plan is a file, not a variable.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from rnn_gradients import contract
from rnn_gradients.io_utils import write_json_atomic

log = logging.getLogger(__name__)

PLAN_FILE = contract.SWEEP_PLAN


def sweep_overrides(params: Mapping[str, Any], overrides: Sequence[str], config_loader: Any = None) -> list[Any]:
    """A multirun's overrides as BasicSweeper reads them, parsed by Hydra's own parser: the grid of
    hydra.sweeper.params first, then the command line's (a later override of a key replaces an earlier
    one). Shared with config_checks, which checks every value of the sweep before it launches."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    arguments = [f"{key}={value}" for key, value in params.items()] + list(overrides)
    return OverridesParser.create(config_loader).parse_overrides(arguments)


def planned_jobs(config: DictConfig) -> list[list[str]]:
    """Each job's overrides, in job-number order, as Hydra's BasicSweeper will launch them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # what expands the grid

    params = config.hydra.sweeper.get("params") or {}
    batches = BasicSweeper.split_arguments(sweep_overrides(params, config.hydra.overrides.task), None)
    return [list(job) for batch in batches for job in batch]


def write_plan(sweep_dir: Path, config: DictConfig) -> None:
    try:
        jobs = planned_jobs(config)
    except Exception as error:  # another sweeper's syntax: progress lines then go without a total
        log.debug("could not count the sweep's jobs: %s", error)
        return
    save_plan(sweep_dir, jobs)


def save_plan(sweep_dir: Path, jobs: Sequence[Sequence[str]]) -> None:
    """Each planned job's overrides, by job number (a search's sweeper writes its own: trials not yet asked
    have none)."""
    write_json_atomic(Path(sweep_dir) / PLAN_FILE, {"jobs": len(jobs), "started": time.time(), "overrides": [list(j) for j in jobs]})


def read_plan(sweep_dir: Path) -> dict[str, Any] | None:
    """The plan of the sweep's latest launch; None when the sweeper wrote none."""
    try:
        plan = json.loads((Path(sweep_dir) / PLAN_FILE).read_text())
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) and isinstance(plan.get("jobs"), int) else None


def progress_line(counts: dict[str, int], plan: dict[str, Any], now: float, failed: Sequence[tuple[str, str]] = ()) -> str:
    """`Sweep: 12/68 jobs finished (1 diverged, 0 failed), about 7 min left`; then each failed job (up to 3)
    with its exception: `| failed: job 3_lstm_copy_T10_s0: ValueError: ...`."""
    finished = sum(counts.get(s, 0) for s in contract.STATUSES if s != contract.MISSING)
    total = int(plan["jobs"])
    line = (f"Sweep: {finished}/{total} jobs finished ({counts.get(contract.DIVERGED, 0)} diverged, "
            f"{counts.get(contract.FAILED, 0)} failed")
    for status in (contract.INTERRUPTED, contract.CANCELLED):
        if counts.get(status):
            line += f", {counts[status]} {status}"
    line += ")"
    if 0 < finished < total:
        left = (now - float(plan["started"])) / finished * (total - finished)
        line += f", about {left / 60:.0f} min left" if left >= 90 else f", about {left:.0f} s left"
    for job, reason in failed[:3]:
        line += f" | failed: job {job}: {reason}"
    if len(failed) > 3:
        line += f" | and {len(failed) - 3} more failed"
    return line


def log_progress(sweep_dir: Path, counts: dict[str, int], failed: Sequence[tuple[str, str]] = ()) -> None:
    """Called by each job when it ends, with the counts and failed jobs of the report it just saved."""
    plan = read_plan(sweep_dir)
    if plan is not None:  # else launched by a sweeper that wrote no plan
        log.info("%s", progress_line(counts, plan, time.time(), failed))
