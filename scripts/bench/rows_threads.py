"""Process-wide settings, each measured in subprocesses (`--step-probe`; OMP_WAIT_POLICY and MALLOC_*
act only at process start): all cores vs one thread, OpenMP's wait policy, glibc's malloc thresholds."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.clock import apply_fp_mode
from bench.config import compose_cfg, step_overrides
from bench.modes import MODELS, MODES, Mode
from bench.plain_loop import plain_sample
from bench.proc import bench_command, run_command
from bench.stats import counterbalanced, info_row, interleave, side

MALLOC_TUNED = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "268435456"}


def step_probe(spec: Mapping[str, Any]) -> dict[str, list[float]]:
    """Plain-loop step times of each model at each thread count, interleaved; keys "model/threads". Runs
    in a subprocess (`--step-probe`, internal) started by run_probe."""
    mode = MODES[spec["mode"]]
    cfgs = {m: compose_cfg(step_overrides(mode, m, spec["seq_len"])) for m in spec["models"]}
    variants = [(m, t) for m in spec["models"] for t in spec["threads"]]
    out: dict[str, list[float]] = {f"{m}/{t}": [] for m, t in variants}
    apply_fp_mode(next(iter(cfgs.values())))
    for r in range(spec["rounds"]):
        for m, t in counterbalanced(variants, r):
            torch.set_num_threads(t)
            out[f"{m}/{t}"].append(plain_sample(cfgs[m], 2, 100_000, torch.device("cpu"), max_seconds=spec["seconds"]).step_ms)
    return out


def run_probe(mode: Mode, workdir: Path, models: Sequence[str], seq_len: int, threads: Sequence[int],
              env: Mapping[str, str | None]) -> dict[str, list[float]]:
    spec = {"mode": mode.name, "models": list(models), "seq_len": seq_len, "threads": list(threads), "rounds": 1,
            "seconds": mode.threads_budget_s}
    _, proc = run_command(bench_command("--step-probe", json.dumps(spec)), workdir, 900, env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_threads(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    """LSTM step with all usable cores vs one thread, and with OpenMP's default (spinning) wait policy vs
    OMP_WAIT_POLICY=PASSIVE: a multi-threaded process whose cores are shared with other busy processes
    can stall at every parallel region."""
    cores = len(os.sched_getaffinity(0))
    model, seq_len = "lstm", mode.seq_lens[0]
    titles = {
        "threads/all_cores_vs_one": f"LSTM T={seq_len}: plain step, {cores} threads / 1 thread",
        "threads/omp_active_vs_passive": f"LSTM T={seq_len}: {cores} threads, default OMP wait policy / PASSIVE",
    }
    if cores < 2:
        return [{"id": k, "group": "threads", "title": v, "target": None, "status": "skipped",
                 "reason": "one usable core", "details": {}} for k, v in titles.items()]
    res = interleave({
        "default": lambda: run_probe(mode, workdir, [model], seq_len, [cores, 1], {"OMP_WAIT_POLICY": None}),
        "passive": lambda: run_probe(mode, workdir, [model], seq_len, [cores], {"OMP_WAIT_POLICY": "PASSIVE"}),
    }, mode.threads_rounds)
    all_default = [x for r in res["default"] for x in r[f"{model}/{cores}"]]
    one = [x for r in res["default"] for x in r[f"{model}/1"]]
    all_passive = [x for r in res["passive"] for x in r[f"{model}/{cores}"]]
    details = {"model": model, "seq_len": seq_len, "hidden": mode.hidden, "batch": mode.batch, "cores": cores,
               "loadavg": list(os.getloadavg()), "inherited_OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    return [
        info_row("threads/all_cores_vs_one", "threads", titles["threads/all_cores_vs_one"],
                 side(f"{cores} threads (default OMP wait policy)", all_default, "ms"), side("1 thread", one, "ms"), details),
        info_row("threads/omp_active_vs_passive", "threads", titles["threads/omp_active_vs_passive"],
                 side(f"{cores} threads, default OMP wait policy", all_default, "ms"),
                 side(f"{cores} threads, OMP_WAIT_POLICY=PASSIVE", all_passive, "ms"), details),
    ]


def bench_malloc(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    """glibc's default malloc returns the large activation buffers to the kernel after every step (a
    freed block over the mmap threshold is unmapped, a free heap top over the trim threshold is trimmed),
    so the next step page-faults them in again. Keeping them (thresholds of 256 MB) removes that."""
    seq_len = mode.seq_lens[0]
    res = interleave({
        "default": lambda: run_probe(mode, workdir, MODELS, seq_len, [1], {k: None for k in MALLOC_TUNED}),
        "tuned": lambda: run_probe(mode, workdir, MODELS, seq_len, [1], MALLOC_TUNED),
    }, mode.threads_rounds)
    rows = []
    for model in MODELS:
        default = [x for r in res["default"] for x in r[f"{model}/1"]]
        tuned = [x for r in res["tuned"] for x in r[f"{model}/1"]]
        rows.append(info_row(
            f"malloc/{model}/T={seq_len}", "malloc", f"{model.upper()} T={seq_len}: plain step, default glibc malloc / "
            "large blocks kept (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ = 256 MB)",
            side("default malloc", default, "ms"), side("malloc thresholds 256 MB", tuned, "ms"),
            {"model": model, "seq_len": seq_len, "env": MALLOC_TUNED, "threads": 1},
        ))
    return rows
