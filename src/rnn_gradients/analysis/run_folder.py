"""One job folder: its status, what it is (classification) and what it wrote besides event files.

Every job folder is counted, whatever state it is in (the statuses of rnn_gradients.contract):
- completed / diverged / failed / interrupted: the `status` of its summary file;
- missing: no summary file (the job crashed, was killed, or is still running);
- unreadable: the summary file exists but is not valid JSON, or nothing at all can be read.
A run is classified by its summary, falling back on Hydra's record of the job (hydra_config) when it
never finished. Only finished runs (contract.FINISHED: completed or diverged) enter the figures and the
tables of results; the others are counted and listed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients import contract
from rnn_gradients.analysis.event_files import RunEvents
from rnn_gradients.analysis.grad_flow_npz import GradFlow
from rnn_gradients.analysis.hydra_config import config_info
from rnn_gradients.analysis.loss_cliff_npz import LossCliff

STATUS_ORDER = (*contract.STATUSES, contract.UNREADABLE)  # the columns of the status counts

# The keys of the summary, in the order the CSV shows them (interrupted_by, resumed_from_step and
# failure_reason come after the derived numbers, with any other key, when present).
_OUTCOME = tuple(k for k in contract.OUTCOME_KEYS if k not in ("interrupted_by", "resumed_from_step"))
SUMMARY_FIELDS = (*_OUTCOME[:4], *contract.DESCRIPTION_KEYS, *_OUTCOME[4:])
# What a run is classified by (from the summary, else from the Hydra config).
CLASS_FIELDS = ("experiment", "arm", "model", "task", "seq_len", "optimizer", "lr", "clipping", "clip_threshold",
                "forget_bias", "hidden_size", "seed", "baseline_loss", "max_steps")
_KEPT_WHEN_NULL = ("experiment", "forget_bias", "clip_threshold")  # a null in the summary is meaningful


@dataclass
class Run:
    path: Path
    status: str  # one of STATUS_ORDER
    summary: dict[str, Any] | None
    info: dict[str, Any]  # the CLASS_FIELDS, from the summary or the Hydra config
    problems: list[str] = field(default_factory=list)
    events: RunEvents | None = None
    grad_flow: GradFlow | None = None
    loss_cliff: LossCliff | None = None  # contract.LOSS_CLIFF_FILE, in runs of the exploding sweep

    @property
    def usable(self) -> bool:
        """Finished: a readable summary with status completed or diverged."""
        return self.summary is not None and self.status in contract.FINISHED

    def get(self, key: str, default: Any = None) -> Any:
        value = self.info.get(key)
        return default if value is None else value

    @property
    def experiment(self) -> str | None:
        return self.info.get("experiment")

    def scalar(self, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.events is None else self.events.scalar(tag)


def _baseline(task: Any, seq_len: Any) -> float | None:
    """The registered task's memoryless baseline (torch-free); None for a task this package does not know."""
    from rnn_gradients.tasks import by_name

    try:
        return float(by_name(str(task)).baseline(int(seq_len)))
    except (ValueError, TypeError):
        return None


def load_run(run_dir: Path) -> Run:
    """Summary + classification + grad-flow curves + loss cliff (event files are read separately:
    loading.load_events)."""
    run_dir = Path(run_dir)
    problems: list[str] = []
    summary: dict[str, Any] | None = None
    status = contract.MISSING
    summary_path = run_dir / contract.SUMMARY_FILE
    if summary_path.is_file():
        try:
            data = json.loads(summary_path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            summary = data
            status = str(data.get("status") or (contract.DIVERGED if data.get("diverged") else contract.COMPLETED))
        except (OSError, ValueError) as error:
            status = contract.UNREADABLE
            problems.append(f"{summary_path}: unreadable ({error})")
    info, config_problems = config_info(run_dir)
    problems += config_problems
    if summary is not None:
        for key in CLASS_FIELDS:
            if key in summary and (summary[key] is not None or key in _KEPT_WHEN_NULL):
                info[key] = summary[key]
    if info.get("arm") is None and info.get("model"):
        info["arm"] = contract.clipped_label(str(info["model"]).upper(), str(info.get("clipping") or "none"))
    if info.get("baseline_loss") is None and info.get("task") and info.get("seq_len"):
        info["baseline_loss"] = _baseline(info["task"], info["seq_len"])
    if summary is None and status != contract.UNREADABLE and not info.get("task"):
        status = contract.UNREADABLE if config_problems else status
    for key in CLASS_FIELDS:
        info.setdefault(key, None)

    grad_flow = None
    npz = run_dir / contract.GRAD_FLOW_FILE
    if npz.is_file():
        try:
            grad_flow = GradFlow.load(npz)
        except Exception as error:  # noqa: BLE001 - a damaged file is reported, not fatal
            problems.append(f"{npz}: unreadable ({type(error).__name__}: {error})")
    loss_cliff = None
    cliff = run_dir / contract.LOSS_CLIFF_FILE
    if cliff.is_file():
        try:
            loss_cliff = LossCliff.load(cliff, baseline_loss=info.get("baseline_loss"))
        except Exception as error:  # noqa: BLE001 - a damaged file is reported, not fatal
            problems.append(f"{cliff}: unreadable ({type(error).__name__}: {error})")
    return Run(path=run_dir, status=status, summary=summary, info=info, problems=problems, grad_flow=grad_flow,
               loss_cliff=loss_cliff)


def status_counts(runs: Sequence[Run]) -> dict[str, dict[str, int]]:
    """{experiment (or '(none)'): {status: count, 'total': n}}, plus an 'all' row (last)."""
    counts: dict[str, dict[str, int]] = {}
    for run in runs:
        for key in (run.experiment or "(none)", "all"):
            row = counts.setdefault(key, {**dict.fromkeys(STATUS_ORDER, 0), "total": 0})
            row[run.status] = row.get(run.status, 0) + 1
            row["total"] += 1
    if "all" in counts:
        counts["all"] = counts.pop("all")
    return counts
