"""Row 4: `python -m rnn_gradients.train` from launch to its first training step, split into phases by
the two probes (probe_job_start, probe_first_step), with the interpreter, the imports and one Hydra
composition measured on their own, interleaved with the runs."""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.config import compose_cfg
from bench.modes import Mode
from bench.proc import run_command, scripts_on_path
from bench.stats import info_row, interleave, median, side

# What a run imports: the torch-free command line, then the run itself once the job starts.
RUN_IMPORTS = "import rnn_gradients.train, rnn_gradients.run"


def import_breakdown(stderr: str) -> dict[str, Any]:
    """Parse `python -X importtime` output: import seconds by top-level package (the modules' own times
    summed, so the packages add up to the total)."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)", line)
        if m:
            root = m.group(3).split(".")[0]
            totals[root] = totals.get(root, 0.0) + int(m.group(1)) / 1e6
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:12]
    return {"total_s": sum(totals.values()), "top": [{"package": k, "self_s": v} for k, v in top]}


def bench_startup(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    py = sys.executable
    runs: list[dict[str, float]] = []

    def train_run() -> dict[str, float]:
        i = len(runs)
        out = workdir / f"startup{i}"
        marks_path, job_path = workdir / f"startup{i}.json", workdir / f"startup{i}_job.json"
        cmd = [py, "-m", "rnn_gradients.train", "trainer.max_steps=1", f"paths.output_dir={out}", *mode.train_extra,
               "+callbacks.bench_probe._target_=bench.probe_first_step.FirstStepProbe", f"+callbacks.bench_probe.path={marks_path}",
               "+hydra.callbacks.bench_probe._target_=bench.probe_job_start.HydraJobProbe",
               f"+hydra.callbacks.bench_probe.path={job_path}"]
        launch = time.time()
        wall, _ = run_command(cmd, workdir, 600, scripts_on_path())  # the probes are imported from scripts/
        marks = {**json.loads(job_path.read_text()), **json.loads(marks_path.read_text())}
        rel = {k: v - launch for k, v in marks.items()}
        rel["exit"] = wall
        runs.append(rel)
        return rel

    def timed(cmd: Sequence[str]) -> Callable[[], float]:
        return lambda: run_command(cmd, workdir, 300)[0]

    traced: list[str] = []  # stderr of `-X importtime` runs

    def imports() -> float:
        """Seconds the imports of a run take (the command line, then the run it loads: torch, Lightning),
        timed inside a fresh interpreter (so neither its start nor its exit counts); --tiny runs it under
        -X importtime, sparing a process."""
        importtime = ["-X", "importtime"] if mode.name == "tiny" else []
        code = f"import time; t = time.perf_counter(); {RUN_IMPORTS}; print(time.perf_counter() - t)"
        _, proc = run_command([py, *importtime, "-c", code], workdir, 300)
        if importtime:
            traced.append(proc.stderr)
        return float(proc.stdout.strip().splitlines()[-1])

    def compose_s() -> float:
        t0 = time.perf_counter()
        compose_cfg([])
        return time.perf_counter() - t0

    res = interleave({
        "train": train_run,
        "interpreter": timed([py, "-c", "pass"]),
        "imports": imports,
        "compose": compose_s,
    }, mode.startup_runs)
    train_runs = res["train"]

    def phase(start: str | None, end: str) -> float:  # median over the runs of one process's own phase
        return median([r[end] - (r[start] if start else 0.0) for r in train_runs])

    interp = median(res["interpreter"])
    breakdown = {
        # phases of the real command, from the wall-clock marks its probes wrote; medians over the runs
        "launch_to_job_start_s": phase(None, "job_start"),  # interpreter, the CLI's torch-free imports, main()'s checks, Hydra composition, run dir
        "job_start_to_model_built_s": phase("job_start", "callbacks_built"),  # the run's imports (torch, Lightning), validation, config_resolved.yaml, model, data, callbacks
        "trainer_construction_s": phase("callbacks_built", "setup"),
        "fit_setup_to_train_start_s": phase("setup", "train_start"),  # includes the observatory's step-0 probes and plot
        "train_start_to_first_step_s": phase("train_start", "first_step"),
        "first_step_duration_s": phase("first_step", "first_step_end"),
        "first_step_end_to_exit_s": phase("first_step_end", "exit"),  # closing validation, summary, checkpoint, exit
        "command_total_s": median([r["exit"] for r in train_runs]),
        # parts of the first phase, measured separately (interleaved with the runs above)
        "interpreter_s": interp,
        "imports_s": median(res["imports"]),  # RUN_IMPORTS in a fresh interpreter
        "hydra_compose_in_process_s": median(res["compose"]),  # one composition; main() composes twice
    }
    if not traced:  # where the import time goes: one more run, under -X importtime (not timed)
        traced.append(run_command([py, "-X", "importtime", "-c", RUN_IMPORTS], workdir, 300)[1].stderr)
    details = {"breakdown": breakdown, "runs": train_runs, "import_top": import_breakdown(traced[-1]),
               "command": "python -m rnn_gradients.train trainer.max_steps=1 " + " ".join(mode.train_extra)}
    return [info_row("startup/train", "startup", "launch of `python -m rnn_gradients.train` to its first training step",
                     side("time to first step", [r["first_step"] for r in train_runs], "s"), None, details)]
