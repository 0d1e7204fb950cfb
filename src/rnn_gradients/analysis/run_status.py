"""The one reader of what a run folder says about itself: its status, what it is, and why it is not done.

- status, one of contract.STATUSES: the `status` of its summary.json (completed, diverged, failed,
  interrupted, cancelled; an old summary without one: diverged or completed by its `diverged`); missing when there is
  no summary.json (not started, still running, or killed outright); unreadable when the file is not a JSON
  object with one of contract.SUMMARY_STATUSES.
- what it is (CLASS_FIELDS): the summary's fields, else Hydra's record of the job (hydra_config: the arm
  label by the job's own rule, cell_carry included; the baseline the job writes).
- why it is not completed, in one line (`RunRecord.reason`).

The sweep report, the figures and the tables read every run folder through `read_run`, so a job has one
status, one label and one baseline everywhere. Torch- and numpy-free: the sweep report runs in the
command line's process.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnn_gradients import contract
from rnn_gradients.analysis.hydra_config import config_info

# What a run is classified by (from the summary, else from the Hydra config).
CLASS_FIELDS = ("experiment", "arm", "model", "task", "seq_len", "optimizer", "lr", "clipping", "clip_threshold",
                "forget_bias", "hidden_size", "seed", "baseline_loss", "max_steps")
_KEPT_WHEN_NULL = ("experiment", "forget_bias", "clip_threshold")  # a null in the summary is meaningful
MISSING_REASON = f"no {contract.SUMMARY_FILE}: the job was killed or is still running"


@dataclass(frozen=True)
class RunRecord:
    path: Path
    status: str  # one of contract.STATUSES
    summary: dict[str, Any] | None  # None unless the summary file is a JSON object
    info: dict[str, Any]  # every CLASS_FIELDS key: from the summary, else from the Hydra record (or None)
    problems: list[str] = field(default_factory=list)  # unreadable files, one line each

    @property
    def reason(self) -> str:
        """Why the run is not simply completed, in one line ('' when it is)."""
        s = self.summary or {}
        if self.status == contract.DIVERGED:
            return f"step {s.get('diverged_at_step')}: {s.get('divergence_reason')}"
        if self.status == contract.FAILED:
            log = s.get(contract.LOG_FILE)
            return f"{s.get(contract.FAILURE_REASON)}" + (f" (log: {log})" if log else "")
        if self.status == contract.CANCELLED:
            return str(s.get(contract.CANCELLED_BECAUSE))
        if self.status == contract.INTERRUPTED:
            return f"{s.get('interrupted_by')} at step {s.get('steps')} (resume with resume=true)"
        if self.status == contract.MISSING:
            return MISSING_REASON
        if self.status == contract.UNREADABLE:
            return self.problems[0]
        return ""


def read_summary(run_dir: Path) -> tuple[str, dict[str, Any] | None, str | None]:
    """(status, summary or None, problem or None) of the run folder's summary file."""
    path = Path(run_dir) / contract.SUMMARY_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return contract.MISSING, None, None
    except (OSError, ValueError) as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return contract.UNREADABLE, None, f"{path}: unreadable ({error})"
    if not isinstance(data, dict):
        return contract.UNREADABLE, None, f"{path}: unreadable (not a JSON object)"
    status = data.get("status") or (contract.DIVERGED if data.get("diverged") else contract.COMPLETED)
    if status not in contract.SUMMARY_STATUSES:
        allowed = ", ".join(contract.SUMMARY_STATUSES)
        return contract.UNREADABLE, None, f"{path}: unreadable (status {status!r} is not one of {allowed})"
    return str(status), data, None


def read_run(run_dir: Path, needed: Collection[str] = CLASS_FIELDS) -> RunRecord:
    """Status, summary and classification of one run folder; unreadable files are problems, never raised.
    Hydra's record is read only when the summary lacks one of the `needed` fields (the sweep report, which
    rereads every job whenever one ends, needs only what a summary says: contract.DESCRIPTION_KEYS)."""
    run_dir = Path(run_dir)
    status, summary, problem = read_summary(run_dir)
    complete = summary is not None and all(key in summary for key in needed)
    info, problems = ({}, []) if complete else config_info(run_dir)
    if problem:
        problems.insert(0, problem)
    for key in CLASS_FIELDS:
        if summary is not None and key in summary and (summary[key] is not None or key in _KEPT_WHEN_NULL):
            info[key] = summary[key]
        info.setdefault(key, None)
    return RunRecord(path=run_dir, status=status, summary=summary, info=info, problems=problems)
