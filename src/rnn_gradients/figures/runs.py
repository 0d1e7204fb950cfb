"""Find the runs of one or more sweeps and load what they wrote.

A run (job) folder is a folder holding `.hydra/` (Hydra's record of the job) or a `summary.json`
written by `rnn_gradients.train`. Runs are classified by their summary.json, falling back on
.hydra/config.yaml and .hydra/hydra.yaml (the config-group choices) when the job never finished:
folder names are never used.

Every job folder is counted, whatever state it is in:
- completed / diverged / failed / interrupted: the `status` of its summary.json;
- failed_or_running: no summary.json (the job crashed, was killed, or is still running);
- unreadable: summary.json exists but is not valid JSON, or nothing at all can be read.
Only finished runs (completed or diverged) enter the figures and the tables of results; the others are
counted and listed.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Collection, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rnn_gradients.figures.events import RunEvents, read_run_events

log = logging.getLogger(__name__)

FAILED_OR_RUNNING = "failed_or_running"
UNREADABLE = "unreadable"
USABLE_STATUSES = ("completed", "diverged")  # finished: their summary.json holds final numbers
STATUS_ORDER = ("completed", "diverged", "failed", "interrupted", FAILED_OR_RUNNING, UNREADABLE)

# The keys of summary.json, in the order the CSV shows them.
SUMMARY_FIELDS = (
    "status", "diverged", "diverged_at_step", "divergence_reason", "arm", "experiment", "model", "task",
    "seq_len", "clipping", "clip_threshold", "optimizer", "lr", "forget_bias", "hidden_size", "seed",
    "steps", "wall_time_s", "baseline_loss", "metric", "train_loss", "train_normalized_loss", "val_loss",
    "val_normalized_loss", "val_accuracy",
)
# What a run is classified by (from summary.json, else from the Hydra config).
CLASS_FIELDS = ("experiment", "arm", "model", "task", "seq_len", "optimizer", "lr", "clipping", "clip_threshold",
                "forget_bias", "hidden_size", "seed", "baseline_loss", "max_steps")


class NoRunsError(Exception):
    """No usable run was found (the CLI turns this into exit code 2)."""


class GradFlow:
    """The raw curves of grad_flow.npz: steps (K,), h (K, L), c (K, L) or None for the RNN, loss (K,)."""

    def __init__(self, steps: np.ndarray, h: np.ndarray, c: np.ndarray | None, loss: np.ndarray) -> None:
        self.steps, self.h, self.c, self.loss = steps, h, c, loss

    @classmethod
    def load(cls, path: Path) -> GradFlow:
        with np.load(path, allow_pickle=False) as z:
            steps = np.asarray(z["steps"]).reshape(-1)
            h = np.atleast_2d(np.asarray(z["h"], dtype=float))
            c = np.asarray(z["c"], dtype=float) if "c" in z.files else np.zeros((0, 0))
            loss = np.asarray(z["loss"], dtype=float).reshape(-1) if "loss" in z.files else np.full(len(steps), np.nan)
        if h.shape[0] != len(steps) or h.size == 0:
            raise ValueError(f"h has shape {h.shape} for {len(steps)} steps")
        if c.size == 0:
            c = None
        elif c.shape != h.shape:
            raise ValueError(f"c has shape {c.shape}, h {h.shape}")
        return cls(steps, h, c, loss)

    @property
    def has_init(self) -> bool:
        return len(self.steps) > 0 and int(self.steps[0]) == 0


def log10_ratio(norms: np.ndarray) -> float:
    """log10(norm[first t] / norm[last t]), as rnn_gradients.observatory.gradient_flow.log10_ratio: far below 0
    = vanishing back in time, above 0 = growing. -inf when the first norm underflowed to 0."""
    first, last = float(norms[0]), float(norms[-1])
    if first <= 0 or last <= 0 or not (math.isfinite(first) and math.isfinite(last)):
        return float("-inf") if first == 0 < last and math.isfinite(last) else float("nan")
    return math.log10(first / last)


@dataclass
class Run:
    path: Path
    status: str  # completed | diverged | failed | interrupted | failed_or_running | unreadable
    summary: dict[str, Any] | None
    info: dict[str, Any]  # the CLASS_FIELDS, from summary.json or the Hydra config
    problems: list[str] = field(default_factory=list)
    events: RunEvents | None = None
    grad_flow: GradFlow | None = None

    @property
    def usable(self) -> bool:
        """Finished: a readable summary.json with status completed or diverged."""
        return self.summary is not None and self.status in USABLE_STATUSES

    def get(self, key: str, default: Any = None) -> Any:
        value = self.info.get(key)
        return default if value is None else value

    @property
    def experiment(self) -> str | None:
        return self.info.get("experiment")

    @property
    def label(self) -> str:
        parts = [str(self.get(k, "?")) for k in ("experiment", "arm", "task")]
        return f"{'/'.join(parts)} T={self.get('seq_len', '?')} seed={self.get('seed', '?')} ({self.path})"

    def scalar(self, tag: str) -> tuple[np.ndarray, np.ndarray] | None:
        return None if self.events is None else self.events.scalar(tag)


# ---------------------------------------------------------------------------------------------- discovery


def _is_run_dir(path: Path) -> bool:
    if (path / ".hydra").is_dir():
        return True
    summary = path / "summary.json"
    if not summary.is_file():
        return False
    try:  # a bare summary.json: only ours (an output folder of figures has no 'arm')
        data = json.loads(summary.read_text())
        return isinstance(data, dict) and "arm" in data and "status" in data
    except (OSError, ValueError):
        return True  # unreadable: still a run to count


def discover_run_dirs(paths: Sequence[Path | str], exclude: Iterable[Path] = ()) -> list[Path]:
    """Job folders under each path (a run folder, a sweep folder, or any parent of sweeps).

    Raises FileNotFoundError naming the first path that does not exist. Folders under `exclude`
    (e.g. the figures' own output folder) are not searched.
    """
    excluded = [Path(e).resolve() for e in exclude]
    found: dict[Path, None] = {}
    for raw in paths:
        root = Path(raw)
        if not root.exists():
            raise FileNotFoundError(f"path does not exist: {raw}")
        root = root.resolve()
        if root.is_file():
            raise NotADirectoryError(f"not a folder: {raw}")
        if _is_run_dir(root):
            found[root] = None
            continue
        for current, dirs, _files in os.walk(root):
            here = Path(current)
            dirs[:] = sorted(d for d in dirs if d not in (".hydra", "tensorboard") and not d.startswith(".")
                             and not any(_within(here / d, e) for e in excluded))
            if here != root and _is_run_dir(here):
                found[here] = None
                dirs[:] = []  # a job folder holds no further jobs
    return sorted(found, key=_natural_key)


def _within(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent)
        return True
    except ValueError:
        return False


def _natural_key(path: Path) -> tuple:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts)


# ---------------------------------------------------------------------------------------------- loading


def _read_yaml(path: Path) -> Any:
    import yaml

    with path.open() as f:
        return yaml.safe_load(f)


def _config_info(run_dir: Path) -> tuple[dict[str, Any], list[str]]:
    """Classification fields from .hydra/config.yaml (interpolations resolved where possible) and
    .hydra/hydra.yaml / overrides.yaml (the config-group choices: experiment, optimizer)."""
    from omegaconf import OmegaConf

    info: dict[str, Any] = {}
    problems: list[str] = []
    hydra_dir = run_dir / ".hydra"
    config_path = hydra_dir / "config.yaml"
    if config_path.is_file():
        try:
            raw = _read_yaml(config_path) or {}
            cfg = OmegaConf.create(raw)

            def pick(key: str) -> Any:
                try:
                    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
                except Exception:  # noqa: BLE001 - an unresolvable interpolation is just missing
                    return None

            cell = pick("model.cell")
            mode = pick("clipping.mode")
            target = pick("optimizer._target_")
            info.update(
                model=cell, task=pick("data.name"), seq_len=pick("data.seq_len"), clipping=mode,
                clip_threshold=pick("clipping.threshold"), lr=pick("optimizer.lr"), forget_bias=pick("model.forget_bias"),
                hidden_size=pick("model.hidden_size"), seed=pick("seed"), max_steps=pick("trainer.max_steps"),
                optimizer=str(target).rsplit(".", 1)[-1].lower() if target else None,
            )
            if cell is not None:
                info["arm"] = f"{str(cell).upper()}+clip" if mode not in (None, "none") else str(cell).upper()
        except Exception as error:  # noqa: BLE001
            problems.append(f"{config_path}: unreadable ({type(error).__name__}: {error})")
    choices: dict[str, Any] = {}
    hydra_path = hydra_dir / "hydra.yaml"
    if hydra_path.is_file():
        try:
            choices = ((_read_yaml(hydra_path) or {}).get("hydra", {}).get("runtime", {}) or {}).get("choices", {}) or {}
        except Exception as error:  # noqa: BLE001
            problems.append(f"{hydra_path}: unreadable ({type(error).__name__}: {error})")
    overrides_path = hydra_dir / "overrides.yaml"
    if overrides_path.is_file():
        try:
            for item in _read_yaml(overrides_path) or []:
                key, _, value = str(item).partition("=")
                if key in ("experiment", "optimizer") and key not in choices:
                    choices[key] = value
        except Exception as error:  # noqa: BLE001
            problems.append(f"{overrides_path}: unreadable ({type(error).__name__}: {error})")
    if choices.get("experiment"):
        info["experiment"] = choices["experiment"]
    if choices.get("optimizer"):
        info["optimizer"] = choices["optimizer"]
    return info, problems


def _baseline(task: Any, seq_len: Any) -> float | None:
    try:
        from rnn_gradients.tasks import make_task

        return float(make_task(str(task), int(seq_len)).baseline_loss)
    except Exception:  # noqa: BLE001
        return None


def load_run(run_dir: Path) -> Run:
    """summary.json + classification + grad_flow.npz (events are loaded separately: load_events)."""
    run_dir = Path(run_dir)
    problems: list[str] = []
    summary: dict[str, Any] | None = None
    status = FAILED_OR_RUNNING
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        try:
            data = json.loads(summary_path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            summary = data
            status = str(data.get("status") or ("diverged" if data.get("diverged") else "completed"))
        except (OSError, ValueError) as error:
            status = UNREADABLE
            problems.append(f"{summary_path}: unreadable ({error})")
    info, config_problems = _config_info(run_dir)
    problems += config_problems
    if summary is not None:
        for key in CLASS_FIELDS:
            if key in summary and (summary[key] is not None or key in ("experiment", "forget_bias", "clip_threshold")):
                info[key] = summary[key]
    if info.get("arm") is None and info.get("model"):
        info["arm"] = str(info["model"]).upper() + ("+clip" if info.get("clipping") not in (None, "none") else "")
    if info.get("baseline_loss") is None and info.get("task") and info.get("seq_len"):
        info["baseline_loss"] = _baseline(info["task"], info["seq_len"])
    if summary is None and status != UNREADABLE and not info.get("task"):
        status = UNREADABLE if config_problems else status
    for key in CLASS_FIELDS:
        info.setdefault(key, None)

    grad_flow = None
    npz = run_dir / "grad_flow.npz"
    if npz.is_file():
        try:
            grad_flow = GradFlow.load(npz)
        except Exception as error:  # noqa: BLE001 - a damaged file is reported, not fatal
            problems.append(f"{npz}: unreadable ({type(error).__name__}: {error})")
    return Run(path=run_dir, status=status, summary=summary, info=info, problems=problems, grad_flow=grad_flow)


def load_events(runs: Sequence[Run], jobs: int = 1, tags: Collection[str] | None = None) -> None:
    """Read every run's event files (in `jobs` processes when > 1), keeping only `tags` (all if None:
    a full-profile sweep holds ~10^8 scalars); problems are logged as warnings."""
    todo = [r for r in runs if r.events is None]
    read = partial(read_run_events, tags=None if tags is None else frozenset(tags))
    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(read, [r.path for r in todo], chunksize=1))
    else:
        results = [read(r.path) for r in todo]
    for run, events in zip(todo, results):
        run.events = events
        for problem in events.problems:
            log.warning("%s", problem)
        run.problems.extend(events.problems)


def load_runs(paths: Sequence[Path | str], exclude: Iterable[Path] = (), events: bool = True, jobs: int = 1,
              tags: Collection[str] | None = None, warn: bool = True) -> list[Run]:
    """Discover and load every run under `paths` (event files: only `tags`, all if None). Problems are
    logged as warnings (unless warn=False: see warn_problems), never raised."""
    dirs = discover_run_dirs(paths, exclude=exclude)
    runs = [load_run(d) for d in dirs]
    if warn:
        warn_problems(runs)
    if events:
        load_events(runs, jobs=jobs, tags=tags)
    return runs


def warn_problems(runs: Sequence[Run]) -> None:
    for run in runs:
        for problem in run.problems:
            log.warning("%s", problem)


def status_counts(runs: Sequence[Run]) -> dict[str, dict[str, int]]:
    """{experiment (or '(none)'): {status: count, 'total': n}}, plus an 'all' row."""
    counts: dict[str, dict[str, int]] = {}
    for run in runs:
        for key in (run.experiment or "(none)", "all"):
            row = counts.setdefault(key, {**dict.fromkeys(STATUS_ORDER, 0), "total": 0})
            row[run.status] = row.get(run.status, 0) + 1
            row["total"] += 1
    if "all" in counts:
        counts["all"] = counts.pop("all")  # last
    return counts


def select(runs: Iterable[Run], usable: bool = True, **criteria: Any) -> list[Run]:
    """Runs whose info matches every criterion (a value, or a tuple/list/set of accepted values)."""
    chosen = []
    for run in runs:
        if usable and not run.usable:
            continue
        ok = True
        for key, wanted in criteria.items():
            value = run.info.get(key)
            if isinstance(wanted, (tuple, list, set, frozenset)):
                ok = value in wanted
            else:
                ok = value == wanted
            if not ok:
                break
        if ok:
            chosen.append(run)
    return chosen


def sort_key(value: Any) -> tuple:
    """Sort None last and numbers numerically."""
    if value is None:
        return (2, 0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0, str(value))


def choose_setting(runs: Sequence[Run], preferred_task: str = "adding") -> tuple[str, int] | None:
    """(task, seq_len) to show when a figure has room for one: the preferred task if any run has it,
    then the largest seq_len among those runs."""
    candidates = [r for r in runs if r.get("task") is not None and r.get("seq_len") is not None]
    if not candidates:
        return None
    tasks = {r.get("task") for r in candidates}
    task = preferred_task if preferred_task in tasks else sorted(tasks)[0]
    seq_len = max(int(r.get("seq_len")) for r in candidates if r.get("task") == task)
    return task, seq_len


def first_seed(runs: Sequence[Run]) -> Run | None:
    """The run with the smallest seed (ties: the first found)."""
    return min(runs, key=lambda r: sort_key(r.get("seed")), default=None)
