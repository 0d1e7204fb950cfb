"""Shared fixtures: Hydra-composed configs and a subprocess runner for the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from rnn_gradients.paths import config_dir

# Small settings for every CLI run: a few seconds each on 2 CPU cores.
TINY = [
    "data.seq_len=10",
    "model.hidden_size=16",
    "trainer.max_steps=4",
    "trainer.val_check_interval=2",
    "trainer.log_every_n_steps=1",
    "data.val_size=32",
    "data.batch_size=8",
    "trainer.enable_progress_bar=false",
]


def compose_config(overrides: Sequence[str] = ()) -> DictConfig:
    """The config `python -m rnn_gradients.train <overrides>` would see (without the hydra node)."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def compose_cfg() -> Callable[[Sequence[str]], DictConfig]:
    return compose_config


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)  # Hydra's default short errors, as a user sees them
    return env


def run_cli(args: Sequence[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m rnn_gradients.train <args>` in `cwd`; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "rnn_gradients.train", *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess]:
    return run_cli


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


ROOT = Path(__file__).resolve().parents[1]

# `make test` runs the suite on pytest-xdist workers, one per core. Three rules keep
# that as exact as one process:
# - each worker owns its share of the cores (its affinity mask, inherited by every CLI run it starts), so
#   the runs' automatic thread counts never oversubscribe a core (spinning OpenMP threads: docs/benchmarks.md);
# - a test file is one unit, so its module fixtures run once; the files that read the session's smoke
#   sweep are one unit with it, so it runs once; the SLURM test files are one unit, so their jobs never
#   queue behind each other's on the one node;
# - the longest units (the SLURM tests, the smoke sweep) are handed out first, so no worker starts them last.
SMOKE_FILES = ("test_bad_inputs.py", "test_cli.py", "test_loss_cliff.py", "test_pipeline.py")
LONGEST_FIRST = ("slurm", "smoke")
MACHINE_CORES = sorted(os.sched_getaffinity(0))  # before a worker takes its share


def pytest_configure(config) -> None:
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if worker and count > 1:
        cores, index = MACHINE_CORES, int(worker.removeprefix("gw"))
        own = cores[index::count] if count <= len(cores) else [cores[index % len(cores)]]
        os.sched_setaffinity(0, own)


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: its file, "smoke" for the files that share the smoke sweep, "slurm"
    for the files that submit to the one-node SLURM."""
    name = Path(nodeid.split("::", 1)[0]).name
    return "smoke" if name in SMOKE_FILES else "slurm" if name.startswith("test_slurm") else name


def pytest_collection_modifyitems(config, items) -> None:
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(work_unit(item.nodeid), len(rank)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """xdist's loadscope scheduler with our work units. (Its loadgroup marks do not reach the scheduler on
    pytest 9.2, whose nodeid no longer reads the `_nodeid` that xdist 3.8 rewrites.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ByWorkUnit(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = False  # xdist's own order (most tests first) would start the SLURM tests last
    return ByWorkUnit(config, log)


def all_cores() -> None:
    """Give a daemon started from a worker the whole machine again, as a real cluster's node has."""
    os.sched_setaffinity(0, MACHINE_CORES)


class SmokeRun(NamedTuple):
    outputs: Path  # reproduce.py's --output-dir; its parent is the folder it ran in
    proc: subprocess.CompletedProcess


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> SmokeRun:
    """`make reproduce PROFILE=smoke`'s script, once per session: its four sweeps (44 jobs of the joblib
    launcher) serve both the pipeline's tests (figures, tables) and the CLI's sweep tests (layout, summaries,
    event files, job by job), so the suite runs one smoke sweep, not two."""
    cwd = tmp_path_factory.mktemp("reproduce")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "reproduce.py"), "--profile", "smoke", "--output-dir", str(cwd / "outputs")],
        cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=600,
    )
    return SmokeRun(cwd / "outputs", proc)


SLURM_SCRIPT = ROOT / "scripts" / "slurm_local.sh"
SLURM_CONF = Path("/etc/slurm/slurm.conf")


def _slurm_unavailable() -> str | None:
    """Why this machine cannot run the local cluster, or None."""
    if os.geteuid() != 0:
        return "not root: scripts/slurm_local.sh installs packages and starts daemons"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "SLURM is not installed and there is no apt-get to install it"
    if SLURM_CONF.is_file() and "scripts/slurm_local.sh" not in SLURM_CONF.read_text():
        return f"{SLURM_CONF} belongs to a real cluster: the slurm tests submit only to the local one"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    """The one-node SLURM of scripts/slurm_local.sh, started for the session (and stopped after it, when
    this session started it). Skips only where the machine cannot run it; with CI=true it never skips."""
    reason = _slurm_unavailable()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: the slurm tests must run, but {reason}")
        pytest.skip(reason)
    started_here = subprocess.run([SLURM_SCRIPT, "status"], capture_output=True).returncode != 0
    if started_here:
        start = subprocess.run([SLURM_SCRIPT, "start"], capture_output=True, text=True, timeout=900, preexec_fn=all_cores)
        assert start.returncode == 0, f"scripts/slurm_local.sh start failed:\n{start.stdout}\n{start.stderr}"
    yield
    if started_here:
        subprocess.run([SLURM_SCRIPT, "stop"], capture_output=True, timeout=120)


def job_dir(sweep: Path, num: int) -> Path:
    """A sweep job's folder by its number (folders are `<num>_<run name>`, e.g. `0_lstm_adding_T100_s0`)."""
    found = sorted(Path(sweep).glob(f"{num}_*"))
    return found[0] if found else Path(sweep) / f"{num}_not_created_yet"


def name_of(summary: dict) -> str:
    """`lstm_normclip_copy_T20_s1` from a summary, as the README describes run names."""
    arm = summary["model"] + ("" if summary["clipping"] == "none" else f"_{summary['clipping']}clip")
    return f"{arm}_{summary['task']}_T{summary['seq_len']}_s{summary['seed']}"


def network(cell: str, input_size: int, hidden_size: int, output_size: int, **keys):
    """A network of the registered cell `cell`, in the argument order the tests have always used."""
    from rnn_gradients.networks import network_for

    return network_for(cell, input_size, output_size, hidden_size=hidden_size, **keys)

