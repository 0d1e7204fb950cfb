"""One job folder as the figures and tables read it: its status and classification (run_status, the one
reader the sweep report uses too) and what it wrote besides event files (grad_flow.npz, loss_cliff.npz).

Every job folder is counted, whatever state it is in (contract.STATUSES). Only finished runs
(contract.FINISHED: completed or diverged) enter the figures and the tables of results; the others are
counted and listed by status.
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
from rnn_gradients.analysis.loss_cliff_npz import LossCliff
from rnn_gradients.analysis.run_status import read_run

# The keys of the summary, in the order the CSV shows them (interrupted_by, resumed_from_step and
# failure_reason come after the derived numbers, with any other key, when present).
_OUTCOME = tuple(k for k in contract.OUTCOME_KEYS if k not in ("interrupted_by", "resumed_from_step"))
SUMMARY_FIELDS = (*_OUTCOME[:4], *contract.DESCRIPTION_KEYS, *_OUTCOME[4:])


@dataclass
class Run:
    path: Path
    status: str  # one of contract.STATUSES
    summary: dict[str, Any] | None
    info: dict[str, Any]  # run_status.CLASS_FIELDS, from the summary or the Hydra config
    problems: list[str] = field(default_factory=list)
    events: RunEvents | None = None
    grad_flow: GradFlow | None = None
    loss_cliff: LossCliff | None = None  # contract.LOSS_CLIFF_FILE, in runs of the exploding sweep
    evaluations: list[dict[str, Any]] = field(default_factory=list)  # contract.EVAL_FILE (eval_data)

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


def load_evaluations(run_dir: Path) -> list[dict[str, Any]]:
    """The run's eval.json records of its own last checkpoint on its own validation set ([] without one);
    a damaged file raises (the caller reports it)."""
    path = Path(run_dir) / contract.EVAL_FILE
    if not path.is_file():
        return []
    last = str(Path(run_dir) / contract.CHECKPOINT_DIR / contract.LAST_CHECKPOINT)
    records = json.loads(path.read_text())["records"]
    return [r for r in records if r.get("own_val_set") and Path(r["checkpoint"]).resolve() == Path(last).resolve()]


def load_run(run_dir: Path) -> Run:
    """Status + classification (run_status.read_run) + grad-flow curves + loss cliff (event files are read
    separately: loading.load_events)."""
    record = read_run(run_dir)
    run_dir, info, problems = record.path, record.info, list(record.problems)
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
    evaluations: list[dict[str, Any]] = []
    try:
        evaluations = load_evaluations(run_dir)
    except Exception as error:  # noqa: BLE001 - a damaged file is reported, not fatal
        problems.append(f"{run_dir / contract.EVAL_FILE}: unreadable ({type(error).__name__}: {error})")
    return Run(path=run_dir, status=record.status, summary=record.summary, info=info, problems=problems,
               grad_flow=grad_flow, loss_cliff=loss_cliff, evaluations=evaluations)


def status_counts(runs: Sequence[Run]) -> dict[str, dict[str, int]]:
    """{experiment (or '(none)'): {status: count, 'total': n}}, plus an 'all' row (last)."""
    counts: dict[str, dict[str, int]] = {}
    for run in runs:
        for key in (run.experiment or "(none)", "all"):
            row = counts.setdefault(key, {**dict.fromkeys(contract.STATUSES, 0), "total": 0})
            row[run.status] = row.get(run.status, 0) + 1
            row["total"] += 1
    if "all" in counts:
        counts["all"] = counts.pop("all")
    return counts
