"""The submitit internals the SLURM launcher reaches into are checked for one version range: pyproject.toml
pins that range, the installed submitit is inside it, and a submitit outside it refuses to launch."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from hydra_plugins.rnn_gradients_slurm import submitit_adapter

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def pinned(name: str) -> Requirement:
    requirements = [Requirement(line) for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]]
    (found,) = [r for r in requirements if r.name == name]
    return found


def test_pyproject_pins_the_submitit_range_the_adapter_was_checked_against():
    assert pinned("submitit").specifier == SpecifierSet(submitit_adapter.SUPPORTED_SUBMITIT)
    assert pinned("submitit").specifier.contains("1.5.4") and not pinned("submitit").specifier.contains("1.6.0")


def test_the_installed_submitit_is_a_supported_one():
    installed = version("submitit")
    assert installed in pinned("submitit").specifier, f"submitit {installed} is outside pyproject's {pinned('submitit').specifier}"
    submitit_adapter.require_supported_submitit()  # raises if not


@pytest.mark.parametrize("found", ["1.6.0", "1.4.9", "2.0"])
def test_an_unsupported_submitit_is_refused_before_any_patch(found, monkeypatch):
    from submitit.slurm.slurm import SlurmJob

    monkeypatch.setattr(submitit_adapter, "installed_version", lambda name: {"submitit": found}[name])
    watcher, results = SlurmJob.watcher, SlurmJob.results
    with pytest.raises(submitit_adapter.UnsupportedSubmitit) as refused:
        with submitit_adapter.patched_slurm_jobs(lambda job: None):
            pytest.fail("launched with an unsupported submitit")
    assert str(refused.value) == (f"hydra/launcher=slurm needs submitit>=1.5,<1.6, found submitit {found} "
                                  "(pip install 'submitit>=1.5,<1.6')")
    assert (SlurmJob.watcher, SlurmJob.results) == (watcher, results)  # nothing was swapped


def test_the_patch_lasts_one_launch_and_turns_an_uncompleted_job_into_the_placeholder(monkeypatch):
    from submitit.core.utils import UncompletedJobError
    from submitit.slurm.slurm import SlurmJob

    def no_result(job):
        raise UncompletedJobError(f"job {job.job_id} ended without a result")

    monkeypatch.setattr(SlurmJob, "results", no_result)
    watcher = SlurmJob.watcher
    job = type("Job", (), {"job_id": "7", "state": "CANCELLED"})()
    with submitit_adapter.patched_slurm_jobs(lambda ended: ("placeholder", ended.job_id)):
        assert SlurmJob.results(job) == [("placeholder", "7")]
        patched = SlurmJob.watcher
        patched._info_dict.update({"1": {"State": "REQUEUED"}, "2": {"State": "CANCELLED"}})
        assert [patched.is_done(j, mode="cache") for j in ("1", "2", "3")] == [False, True, False]  # 3: UNKNOWN
    assert SlurmJob.watcher is watcher and patched is not watcher
    with pytest.raises(UncompletedJobError):
        SlurmJob.results(job)
