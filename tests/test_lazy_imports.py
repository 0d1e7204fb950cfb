"""The command line loads torch and Lightning only once a job starts (rnn_gradients.run).

So bad input is refused in a fraction of a second, and the parent process of a joblib sweep, which only
launches workers that import torch themselves, does not import it first (docs/benchmarks.md, row 5).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from conftest import TINY, cli_env

HEAVY = ("torch", "lightning", "matplotlib", "tensorboard")


def loaded_heavy(code: str) -> list[str]:
    probe = f"{code}\nimport sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_command_line_modules_import_no_torch():
    assert loaded_heavy("import rnn_gradients.train, rnn_gradients.config_checks, rnn_gradients.run_info, "
                        "rnn_gradients.schema, rnn_gradients.contract, rnn_gradients.sweep_report, "
                        "hydra_plugins.rnn_gradients_slurm.launcher") == []
    # the probe can fail: the run module does load them
    assert set(loaded_heavy("import rnn_gradients.run")) >= {"torch", "lightning"}


def test_the_registries_are_torch_free():
    """The command line reads every built-in cell's and task's declarations (names, rules, labels)."""
    assert loaded_heavy("from rnn_gradients import cells, tasks\n"
                        "cells.registered(), tasks.registered(), cells.arm_order()\n"
                        "[t.baseline(10) for t in tasks.registered()]") == []


def test_the_run_folder_readers_are_torch_free(tmp_path):
    """docs/architecture.md: analysis reads files only. Every module of rnn_gradients.analysis and the sweep
    report import no torch, and reading unfinished jobs of every arm and task (their label and baseline come
    from the cells' and tasks' declarations), a corrupt summary and an interrupted one loads none either."""
    import yaml
    from omegaconf import OmegaConf

    from conftest import compose_config
    from rnn_gradients.paths import config_dir

    arms = sorted(p.stem for p in (config_dir() / "arm").glob("*.yaml"))
    tasks = sorted(p.stem for p in (config_dir() / "data").glob("*.yaml"))
    jobs = [[f"arm={arm}"] for arm in arms] + [["arm=lstm", f"data={task}"] for task in tasks]
    for number, overrides in enumerate(jobs):
        job = tmp_path / f"{number}_job"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(compose_config(overrides)))
        (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (tmp_path / "0_job" / "summary.json").write_text("{not json")
    (tmp_path / "1_job" / "summary.json").write_text(json.dumps({"status": "interrupted", "steps": 5}))
    code = textwrap.dedent(f"""
        import importlib, pkgutil
        import rnn_gradients.analysis as analysis
        from rnn_gradients import sweep_report
        for module in pkgutil.iter_modules(analysis.__path__):
            importlib.import_module(f"rnn_gradients.analysis.{{module.name}}")
        report = sweep_report.collect({str(tmp_path)!r})
        runs = analysis.load_runs([{str(tmp_path)!r}], events=False, warn=False)
        assert len(report.jobs) == len(runs) == {len(jobs)}, (len(report.jobs), len(runs))
        assert all(job["arm"] and run.get("arm") and run.get("baseline_loss") for job, run in zip(report.jobs, runs))
        assert [job["status"] for job in report.jobs][:3] == ["unreadable", "interrupted", "missing"]
    """)
    assert loaded_heavy(code) == []


def imported_modules(importtime_stderr: str) -> set[str]:
    """Top-level packages named in `python -X importtime` output."""
    return {line.split("|")[-1].strip().split(".")[0] for line in importtime_stderr.splitlines() if line.startswith("import time:")}


def test_bad_input_is_refused_before_torch_loads(tmp_path):
    for args, message in (
        (["model=__nope__"], "model must be one of ["),
        (["data=temporal_order", "data.seq_len=3"], "the temporal_order task's minimum"),
        (["data.seq_len=-3"], "data.seq_len must be an integer >= 2"),
        (["clipping=norm", "clipping.threshold=0"], "clipping.threshold"),
    ):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "rnn_gradients.train", *args], cwd=tmp_path,
                              env=cli_env(), capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
        assert any(message in line for line in errors), errors
        modules = imported_modules(proc.stderr)
        assert "hydra" in modules and "torch" not in modules and "lightning" not in modules, sorted(modules)
    assert not (tmp_path / "outputs").exists()


PROBE = textwrap.dedent('''
    import json, os, sys
    from hydra.experimental.callback import Callback

    def heavy():
        return sorted(m for m in ("torch", "lightning") if m in sys.modules)

    class ModulesProbe(Callback):
        """Records which heavy packages the sweep's parent and each job's process had loaded."""
        def __init__(self, path):
            self.path = path
        def on_job_end(self, config, job_return, **kwargs):
            with open(os.path.join(self.path, f"job{os.getpid()}_{config.hydra.job.num}.json"), "w") as f:
                json.dump({"pid": os.getpid(), "heavy": heavy()}, f)
        def on_multirun_end(self, config, **kwargs):
            with open(os.path.join(self.path, "parent.json"), "w") as f:
                json.dump({"pid": os.getpid(), "heavy": heavy()}, f)
''')


def test_joblib_sweep_parent_does_not_import_torch(tmp_path):
    (tmp_path / "modules_probe.py").write_text(PROBE)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**cli_env(), "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    args = ["-m", "seed=0,1", *TINY, f"paths.output_dir={tmp_path / 'out'}", "hydra/launcher=parallel",
            "hydra.launcher.n_jobs=2", "+hydra.callbacks.probe._target_=modules_probe.ModulesProbe",
            f"+hydra.callbacks.probe.path={marks}"]
    proc = subprocess.run([sys.executable, "-m", "rnn_gradients.train", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    parent = json.loads((marks / "parent.json").read_text())
    jobs = [json.loads(p.read_text()) for p in sorted(marks.glob("job*.json"))]
    assert parent["heavy"] == []
    assert len(jobs) == 2
    assert all(job["heavy"] == ["lightning", "torch"] and job["pid"] != parent["pid"] for job in jobs)
    summaries = [json.loads(p.read_text()) for p in (tmp_path / "out" / "multirun").glob("*/*/summary.json")]
    assert sorted(s["status"] for s in summaries) == ["completed", "completed"]
    # each worker's Lightning lines print once (Lightning loaded after Hydra configured the worker's logging)
    assert sum("GPU available:" in line for line in (proc.stdout + proc.stderr).splitlines()) == 2
