"""Row 5: a 4-job multirun's wall time with the joblib launcher against the basic (sequential) one, each
speed-up split into fixed costs and the rate at which jobs finish once running."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.modes import Mode
from bench.proc import run_command
from bench.stats import counterbalanced, info_row, median, ratio_row, side

log = logging.getLogger(__name__)

SWEEP_LAUNCHERS = {
    # name -> overrides; num_threads=0 (auto) gives a sequential job all cores and each of 2 parallel jobs one
    "basic": ["hydra/launcher=basic"],
    "parallel": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
    "basic_1thread": ["hydra/launcher=basic", "num_threads=1"],
}
# The LSTM gains more from a second thread than the RNN (threads rows): the two bracket the speed-up.
# basic_1thread separates the launcher's own efficiency from what a second thread buys one job.
SWEEP_VARIANTS = {"lstm": ("basic", "parallel", "basic_1thread"), "rnn": ("basic", "parallel", "basic_1thread")}
PARALLEL_JOBS = 2


@dataclass
class SweepRun:
    wall_s: float  # the whole command, start-up and exit included
    job_s: list[float]  # each job's own training time (summary.json wall_time_s)

    def overhead_s(self, concurrent: int) -> float:
        """Wall time not spent in jobs: start-up (imports, Hydra, joblib workers), report, exit."""
        return self.wall_s - sum(self.job_s) / concurrent


def sweep_throughput(seq: Sequence[SweepRun], par: Sequence[SweepRun]) -> dict[str, Any]:
    """The parallel speed-up split into fixed costs and the rate at which jobs finish once running: the
    latter is what a long sweep (jobs of thousands of steps) gets."""
    seq_job = median([t for r in seq for t in r.job_s])
    par_job = median([t for r in par for t in r.job_s])
    return {
        "job_s_sequential": seq_job,
        "job_s_parallel": par_job,
        "steady_state_speedup": PARALLEL_JOBS * seq_job / par_job,
        "overhead_s_sequential": median([r.overhead_s(1) for r in seq]),
        "overhead_s_parallel": median([r.overhead_s(PARALLEL_JOBS) for r in par]),
    }


def bench_sweep(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    """Row 5: a sweep's wall time with the joblib launcher vs sequentially (all cores per job, the
    default), for the LSTM and the RNN; and vs sequentially at one thread per job (what
    the parallel launcher's jobs get: isolates the launcher's own efficiency from what a second thread
    buys a single job). Each row also splits the speed-up into fixed costs and steady-state throughput."""
    seeds = ",".join(str(i) for i in range(mode.sweep_jobs))
    rows: list[dict[str, Any]] = []
    for model in mode.sweep_models:
        variants = SWEEP_VARIANTS[model]
        counter = dict.fromkeys(variants, 0)
        timed_out = dict.fromkeys(variants, 0)

        def sweep(launcher: str) -> SweepRun | None:
            counter[launcher] += 1
            out = workdir / f"sweep_{model}_{launcher}{counter[launcher]}"
            cmd = [sys.executable, "-m", "rnn_gradients.train", "-m", f"model={model}", f"seed={seeds}",
                   f"trainer.max_steps={mode.sweep_steps}", "trainer.enable_progress_bar=false",
                   f"paths.output_dir={out}", *mode.train_extra, *SWEEP_LAUNCHERS[launcher]]
            try:
                wall, _ = run_command(cmd, workdir, mode.sweep_timeout_s)
            except subprocess.TimeoutExpired:  # the time so far is a lower bound; the row says so
                log.warning("%s %s sweep killed after %.0f s", model, launcher, mode.sweep_timeout_s)
                timed_out[launcher] += 1
                return None
            done = [json.loads(p.read_text()) for p in out.glob("multirun/*/*/summary.json")]
            if len(done) != mode.sweep_jobs or any(s.get("status") not in ("completed", "diverged") for s in done):
                raise RuntimeError(f"{model} {launcher} sweep finished {[s.get('status') for s in done]}, "
                                   f"expected {mode.sweep_jobs} completed jobs")
            return SweepRun(wall, [float(s["wall_time_s"]) for s in done])

        runs: dict[str, list[SweepRun]] = {name: [] for name in variants}
        walls: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(mode.sweep_runs):
            for launcher in counterbalanced(list(variants), r):
                if timed_out[launcher]:  # another run would only repeat the same lower bound
                    continue
                run = sweep(launcher)
                walls[launcher].append(float(mode.sweep_timeout_s) if run is None else run.wall_s)
                if run is not None:
                    runs[launcher].append(run)

        def bound(a: str, b: str) -> str | None:
            # a killed run counts as the timeout: then the speed-up is a lower (a) or upper (b) bound
            if not (timed_out[a] or timed_out[b]):
                return None
            return "lower" if not timed_out[b] else "upper" if not timed_out[a] else "unknown"

        def split(a: str) -> dict[str, Any]:
            return sweep_throughput(runs[a], runs["parallel"]) if runs[a] and runs["parallel"] else {}

        details = {"model": model, "jobs": mode.sweep_jobs, "steps": mode.sweep_steps,
                   "cores": len(os.sched_getaffinity(0)), "launchers": {v: SWEEP_LAUNCHERS[v] for v in variants},
                   "extra_overrides": list(mode.train_extra), "timed_out_runs": timed_out,
                   "timeout_s": mode.sweep_timeout_s}
        parallel = side(f"hydra/launcher=parallel n_jobs={PARALLEL_JOBS}, wall", walls["parallel"], "s")
        rows.append(ratio_row(
            f"sweep/{model}/parallel_vs_basic", "sweep",
            f"{model.upper()}: {mode.sweep_jobs}-job multirun, {mode.sweep_steps} steps each: basic (sequential, "
            f"all cores per job) / joblib n_jobs={PARALLEL_JOBS} (speed-up)",
            side("hydra/launcher=basic, wall", walls["basic"], "s"), parallel,
            {**details, **split("basic"), "ratio_bound": bound("basic", "parallel"),
             "runs": {v: [asdict(r) for r in runs[v]] for v in variants}},
        ))
        if "basic_1thread" in variants:
            rows.append(info_row(
                f"sweep/{model}/parallel_vs_basic_1thread", "sweep",
                f"{model.upper()}: {mode.sweep_jobs}-job multirun: basic at num_threads=1 / joblib "
                f"n_jobs={PARALLEL_JOBS} (the launcher's own efficiency)",
                side("hydra/launcher=basic num_threads=1, wall", walls["basic_1thread"], "s"), parallel,
                {**details, **split("basic_1thread"), "ratio_bound": bound("basic_1thread", "parallel")},
            ))
    return rows
