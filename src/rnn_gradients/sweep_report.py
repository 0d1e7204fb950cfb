"""Sweep report: a table of the jobs of a sweep by status (contract.STATUSES: completed, diverged, failed, cancelled,
interrupted, missing, unreadable), with reasons, in sweep_report.{md,json}.

Written by the launching process after every launcher (basic, joblib, submitit) has finished (a Hydra
callback, conf/config.yaml), and refreshed by each job when it ends, so it stays true for a job that
SLURM requeued and that finishes after the launcher returned. Rebuild it by hand with
`python -m rnn_gradients.sweep_report <sweep dir>` (exit code 1 while a job is unfinished); `--watch`
follows a sweep submitted with hydra.launcher.wait=false until its last job has ended.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rnn_gradients import cluster, contract, fail_fast, sweep_progress
from rnn_gradients.io_utils import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    sweep_dir: Path
    jobs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {s: sum(j["status"] == s for j in self.jobs) for s in contract.STATUSES}

    @property
    def incomplete(self) -> bool:
        """Some job failed, was interrupted, killed, or left an unreadable summary (diverging is an outcome,
        not a failure)."""
        return any(j["status"] in contract.UNFINISHED for j in self.jobs)

    @property
    def failed(self) -> list[tuple[str, str]]:
        """(job, exception) of each failed job, as its own progress line names it (the table adds its log)."""
        return [(j["job"], j.get(contract.FAILURE_REASON) or j["reason"]) for j in self.jobs if j["status"] == contract.FAILED]

    def markdown(self) -> str:
        lines = [f"# Sweep {self.sweep_dir}", "", " | ".join(f"{k}: {v}" for k, v in self.counts.items()), "",
                 "| job | status | arm | task | T | steps | reason |", "|---|---|---|---|---|---|---|"]
        for j in self.jobs:
            cells = (j["job"], j["status"], *(j.get(k) for k in ("arm", "task", "seq_len", "steps", "reason")))
            lines.append("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
        return "\n".join(lines) + "\n"


def collect(sweep_dir: Path) -> SweepReport:
    """One row per job folder (a folder holding .hydra/), read by analysis.run_status, the reader the figures
    use too: its status (contract.STATUSES), what it is (from summary.json, else Hydra's record of the job),
    every summary field, and why it is not completed."""
    from rnn_gradients.analysis.run_status import read_run  # here: the command line imports this module, and
    # importing the analysis package (numpy, ~0.15 s) is worth it only once a report is written

    report = SweepReport(Path(sweep_dir))
    for job_dir in (p.parent for p in Path(sweep_dir).glob("*/.hydra")):
        record = read_run(job_dir, needed=contract.DESCRIPTION_KEYS)
        report.jobs.append({"job": job_dir.name, **{k: record.info.get(k) for k in contract.DESCRIPTION_KEYS},
                            **(record.summary or {}), "status": record.status, "reason": record.reason})
    report.jobs += not_started(Path(sweep_dir), {contract.job_number(j["job"]) for j in report.jobs})
    report.jobs.sort(key=lambda j: (contract.job_number(j["job"]) or 0, j["job"]))
    return report


def not_started(sweep_dir: Path, started: set[int | None]) -> list[dict[str, Any]]:
    """A row for each job of the sweep's plan that has no folder yet: cancelled once fail_fast stopped the
    sweep (SLURM cancels its pending tasks), otherwise missing (queued, or not launched yet)."""
    plan = sweep_progress.read_plan(sweep_dir) or {}
    if None in started:  # job folders not named <job number>_... (a custom hydra.sweep.subdir): no way to match
        return []
    stopped = fail_fast.stopped_by(sweep_dir)
    rows = []
    for number, overrides in enumerate(plan.get("overrides") or []):
        if number not in started:
            status, reason = ((contract.CANCELLED, f"not started: job {stopped} failed (fail_fast)") if stopped
                              else (contract.MISSING, "not started yet (no job folder)"))
            rows.append({"job": str(number), "status": status, "reason": reason, "overrides": " ".join(overrides)})
    return rows


LAST_REPORT: SweepReport | None = None  # read by train.main() to set the exit code
ACTIVE_SWEEP: Path | None = None  # set when a multirun starts, so a launcher crash still gets its report


def save_report(sweep_dir: Path) -> SweepReport:
    """Collect and save the report (sweep_report.md / .json), under a lock on the sweep folder: jobs ending
    together each save one, and the last to take the lock has seen every summary written before it."""
    sweep_dir = Path(sweep_dir)
    with open(sweep_dir / ".sweep_report.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        report = collect(sweep_dir)
        write_text_atomic(sweep_dir / contract.SWEEP_REPORT_MD, report.markdown())
        write_json_atomic(sweep_dir / contract.SWEEP_REPORT_JSON, {"counts": report.counts, "jobs": report.jobs})
    return report


def write_report(sweep_dir: Path) -> SweepReport:
    """The launching process's report at the end of a sweep: saved, logged, and kept for the exit code."""
    global LAST_REPORT
    report = LAST_REPORT = save_report(sweep_dir)
    log.info("Sweep finished: %s", ", ".join(f"{v} {k}" for k, v in report.counts.items() if v))
    for job in report.jobs:
        if job["status"] != contract.COMPLETED:
            log.warning("  job %s %s: %s", job["job"], job["status"], job["reason"])
    log.info("Report: %s", Path(sweep_dir) / contract.SWEEP_REPORT_MD)
    return report


def refresh_after_job(sweep_dir: Path) -> None:
    """Called by each job of a sweep when it ends (completed, diverged, failed or interrupted): the
    report, and the sweep's progress line."""
    try:
        report = save_report(sweep_dir)
        sweep_progress.log_progress(sweep_dir, report.counts, report.failed)
    except OSError as error:  # a report is never worth failing a finished job for
        log.warning("Could not refresh %s: %s", Path(sweep_dir) / contract.SWEEP_REPORT_MD, error)


class SweepReportCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global ACTIVE_SWEEP
        ACTIVE_SWEEP = Path(config.hydra.sweep.dir)
        ACTIVE_SWEEP.mkdir(parents=True, exist_ok=True)
        fail_fast.clear(ACTIVE_SWEEP)  # a new launch (resume=true) runs what did not complete
        sweep_progress.write_plan(ACTIVE_SWEEP, config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if config.hydra.launcher.get("wait", True):
            write_report(Path(config.hydra.sweep.dir))
        else:  # submitted, not finished: the jobs refresh the report as they end
            save_report(Path(config.hydra.sweep.dir))


def report_after_launcher_crash() -> None:
    """A launcher that raises (joblib when a worker is SIGKILLed, submitit when a job dies) skips
    on_multirun_end; train.main() calls this so the jobs that did run are still reported."""
    if ACTIVE_SWEEP is not None and LAST_REPORT is None and ACTIVE_SWEEP.is_dir():
        write_report(ACTIVE_SWEEP)


def still_running(sweep_dir: Path, report: SweepReport) -> bool:
    """Whether a job of the sweep may still end: for a SLURM sweep, one of its submitted jobs is still
    queued, running or requeued (squeue); otherwise a planned job has no summary yet."""
    ids_file = Path(sweep_dir) / contract.SWEEP_SLURM_JOBS
    if ids_file.is_file():
        ids = [str(i) for i in json.loads(ids_file.read_text()).values()]
        states = cluster.squeue_states(ids)
        return states is None or any(state in cluster.SLURM_STATES_STILL_RUNNING for state in states.values())
    return any(j["status"] == contract.MISSING for j in report.jobs)


def watch(sweep_dir: Path, poll_s: float) -> SweepReport:
    """Print the progress line whenever a job ends, until no job may end any more (requeues included)."""
    plan, last = sweep_progress.read_plan(sweep_dir) or {"jobs": 0, "started": time.time()}, None
    while True:
        report = save_report(sweep_dir)
        if report.counts != last:
            last = report.counts
            print(sweep_progress.progress_line(report.counts, {**plan, "jobs": max(plan["jobs"], len(report.jobs))},
                                               time.time(), report.failed), flush=True)
        if not still_running(sweep_dir, report):
            return save_report(sweep_dir)
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnn_gradients.sweep_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (hydra.sweep.dir)")
    parser.add_argument("--watch", action="store_true", help="print progress as jobs end; return when the last has ended")
    parser.add_argument("--poll-s", type=float, default=10.0, help="with --watch: seconds between looks (default 10)")
    args = parser.parse_args(argv)
    launched = (args.sweep_dir / contract.SWEEP_PLAN).is_file() or (args.sweep_dir / contract.SWEEP_SLURM_JOBS).is_file()
    if not (launched or any(args.sweep_dir.glob("*/.hydra"))):
        print(f"error: sweep_dir={str(args.sweep_dir)!r} holds no job folder (<job>/.hydra/)", file=sys.stderr)
        return 2
    if not args.poll_s > 0:
        print(f"error: --poll-s={args.poll_s} is not allowed: --poll-s must be a number of seconds > 0", file=sys.stderr)
        return 2
    report = watch(args.sweep_dir, args.poll_s) if args.watch else save_report(args.sweep_dir)
    sys.stdout.write(report.markdown())
    return 1 if report.incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
