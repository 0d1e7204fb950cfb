"""runtime.thread_plan: how many torch threads a job gets, and the reason its log line gives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict

from conftest import TINY, run_cli
from rnn_gradients.paths import config_dir
from rnn_gradients.runtime import thread_plan


@pytest.fixture
def machine(monkeypatch):
    """Pretend this process may run on `cores` cores, with SLURM_CPUS_PER_TASK=`slurm` (None: not under SLURM)."""

    def pretend(cores: int, slurm: int | None = None) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
        if slurm is None:
            monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
        else:
            monkeypatch.setenv("SLURM_CPUS_PER_TASK", str(slurm))

    return pretend


@pytest.fixture
def joblib_sweep():
    """Hydra's state as a job of `-m hydra/launcher=parallel hydra.launcher.n_jobs=<n>` sees it."""

    def enter(n_jobs: int) -> None:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=["hydra/launcher=parallel", f"hydra.launcher.n_jobs={n_jobs}"],
                          return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.mode = RunMode.MULTIRUN
        HydraConfig.instance().set_config(cfg)

    yield enter
    HydraConfig.instance().cfg = None


def test_explicit_count_above_the_affinity_mask_is_capped_off_slurm(machine):
    machine(cores=2)
    assert thread_plan(8) == (2, "num_threads=8 capped at the 2 cores of the CPU affinity mask")


def test_explicit_count_above_slurm_cpus_per_task_is_capped(machine):
    machine(cores=16, slurm=4)
    assert thread_plan(8) == (4, "num_threads=8 capped at the 4 cores of SLURM_CPUS_PER_TASK=4")


def test_affinity_mask_below_slurm_cpus_per_task_is_the_cap(machine):
    """A node that pins fewer CPUs than the allocation claims: the mask is what the job really has."""
    machine(cores=2, slurm=8)
    assert thread_plan(8) == (2, "num_threads=8 capped at the 2 cores of the CPU affinity mask")


@pytest.mark.parametrize("requested", [1, 3, 4])
def test_explicit_count_within_the_allocation_is_kept(machine, requested):
    machine(cores=4)
    assert thread_plan(requested) == (requested, f"num_threads={requested}")


def test_auto_single_run_uses_the_allocation(machine):
    machine(cores=6)
    assert thread_plan(0) == (6, "CPU affinity mask")
    machine(cores=6, slurm=3)
    assert thread_plan(0) == (3, "SLURM_CPUS_PER_TASK=3")


def test_auto_divides_the_cores_among_parallel_jobs(machine, joblib_sweep):
    machine(cores=8)
    joblib_sweep(n_jobs=4)
    assert thread_plan(0) == (2, "CPU affinity mask: 8 cores / 4 parallel jobs")
    assert thread_plan(16) == (8, "num_threads=16 capped at the 8 cores of the CPU affinity mask")  # explicit: not divided


def test_a_run_logs_that_its_thread_count_was_capped(tmp_path: Path, monkeypatch):
    """The real CLI: an explicit num_threads above this machine's cores runs on its cores, and train.log says why."""
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)  # the subprocess inherits this environment
    cores = len(os.sched_getaffinity(0))
    requested = max(64, cores + 1)
    proc = run_cli(["model=rnn", *TINY, f"num_threads={requested}", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "run" / "train.log").read_text()
    threads = f"{cores} torch thread{'' if cores == 1 else 's'}"
    assert f"| {threads} (num_threads={requested} capped at the {cores} cores of the CPU affinity mask)" in log, log
