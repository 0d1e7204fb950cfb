"""Sweep report: a table of completed / diverged / failed / interrupted jobs, with reasons, in
sweep_report.{md,json}.

Written by the launching process after every launcher (basic, joblib, submitit) has finished (a Hydra
callback, conf/config.yaml), and refreshed by each job when it ends, so it stays true for a job that
SLURM requeued and that finishes after the launcher returned. Rebuild it by hand with
`python -m rnn_gradients.sweep_report <sweep dir>` (exit code 1 while a job is unfinished).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rnn_gradients import contract, sweep_progress
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
        """Some job failed, was killed or interrupted (diverging is an outcome, not a failure)."""
        return any(j["status"] in contract.UNFINISHED for j in self.jobs)

    def markdown(self) -> str:
        lines = [f"# Sweep {self.sweep_dir}", "", " | ".join(f"{k}: {v}" for k, v in self.counts.items()), "",
                 "| job | status | arm | task | T | steps | reason |", "|---|---|---|---|---|---|---|"]
        for j in self.jobs:
            lines.append(f"| {j['job']} | {j['status']} | {j.get('arm', '')} | {j.get('task', '')} | "
                         f"{j.get('seq_len', '')} | {j.get('steps', '')} | {j.get('reason', '')} |")
        return "\n".join(lines) + "\n"


def _reason(summary: dict[str, Any]) -> str:
    status = summary.get("status")
    if status == contract.DIVERGED:
        return f"step {summary.get('diverged_at_step')}: {summary.get('divergence_reason')}"
    if status == contract.FAILED:
        return str(summary.get("failure_reason"))
    if status == contract.INTERRUPTED:
        return f"{summary.get('interrupted_by')} at step {summary.get('steps')} (resume with resume=true)"
    return ""


def collect(sweep_dir: Path) -> SweepReport:
    """One row per job folder (a folder holding .hydra/); a job without summary.json is 'missing'
    (killed, or still running)."""
    report = SweepReport(Path(sweep_dir))
    job_dirs = sorted((p.parent for p in Path(sweep_dir).glob("*/.hydra")), key=lambda p: (contract.job_number(p.name) or 0, p.name))
    for job_dir in job_dirs:
        summary_path = job_dir / contract.SUMMARY_FILE
        try:
            summary = json.loads(summary_path.read_text())
        except FileNotFoundError:
            summary = {"status": contract.MISSING, contract.FAILURE_REASON: "no summary.json: the job was killed or is still running"}
        except (OSError, json.JSONDecodeError) as error:
            summary = {"status": contract.FAILED, contract.FAILURE_REASON: f"unreadable summary.json: {error}"}
        reason = _reason(summary) or summary.get("failure_reason", "")
        report.jobs.append({"job": job_dir.name, **summary, "reason": reason})
    return report


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
        sweep_progress.log_progress(sweep_dir, save_report(sweep_dir).counts)
    except OSError as error:  # a report is never worth failing a finished job for
        log.warning("Could not refresh %s: %s", Path(sweep_dir) / contract.SWEEP_REPORT_MD, error)


class SweepReportCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        global ACTIVE_SWEEP
        ACTIVE_SWEEP = Path(config.hydra.sweep.dir)
        ACTIVE_SWEEP.mkdir(parents=True, exist_ok=True)
        sweep_progress.write_plan(ACTIVE_SWEEP, config)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        write_report(Path(config.hydra.sweep.dir))


def report_after_launcher_crash() -> None:
    """A launcher that raises (joblib when a worker is SIGKILLed, submitit when a job dies) skips
    on_multirun_end; train.main() calls this so the jobs that did run are still reported."""
    if ACTIVE_SWEEP is not None and LAST_REPORT is None and ACTIVE_SWEEP.is_dir():
        write_report(ACTIVE_SWEEP)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnn_gradients.sweep_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (hydra.sweep.dir)")
    args = parser.parse_args(argv)
    if not any(args.sweep_dir.glob("*/.hydra")):
        print(f"error: sweep_dir={str(args.sweep_dir)!r} holds no job folder (<job>/.hydra/)", file=sys.stderr)
        return 2
    report = save_report(args.sweep_dir)
    sys.stdout.write(report.markdown())
    return 1 if report.incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
