"""Subprocesses: a command in its own process group with a timeout, this benchmark again in a new
interpreter (the --step-probe / --fresh-probe entry points), and the PYTHONPATH that lets a training
command's Hydra import the probes of this package."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent  # scripts/bench: `python scripts/bench ...`
SCRIPTS_DIR = BENCH_DIR.parent  # where the package `bench` is importable from


def bench_command(*args: str) -> list[str]:
    """`python scripts/bench <args>` with this interpreter, from any working directory."""
    return [sys.executable, str(BENCH_DIR), *args]


def scripts_on_path() -> dict[str, str]:
    """The environment entry that puts scripts/ first on PYTHONPATH (what is there already stays after it)."""
    rest = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([str(SCRIPTS_DIR), *([rest] if rest else [])])}


def run_command(cmd: Sequence[str], cwd: Path, timeout: float, env_extra: Mapping[str, str | None] | None = None
        ) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command in its own process group; on timeout the whole group (joblib workers too) is killed
    and subprocess.TimeoutExpired raised. Returns the wall seconds and the finished process; a non-zero
    exit raises RuntimeError with the end of its output. env_extra: None values are removed."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    for key, value in (env_extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.communicate()
        raise
    wall = time.perf_counter() - t0
    done = subprocess.CompletedProcess(list(cmd), proc.returncode, stdout, stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {proc.returncode}:\n{(stdout + stderr)[-3000:]}")
    return wall, done
