"""The one reader of a run folder (analysis.run_status): the status, arm label and baseline of unfinished,
interrupted and unreadable jobs, the same in the sweep report, the figures' runs and summary.md.

The job folders are written as a sweep leaves them: .hydra/config.yaml is the config Hydra composes for the
command line's overrides (conftest.compose_config), saved unresolved as Hydra saves it; summary.json is
written by hand as train.py / run.py write it. The expected statuses, labels and baselines are spelled out.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import compose_config
from rnn_gradients import sweep_report
from rnn_gradients.analysis import load_runs, read_run, status_counts

ADDING_BASELINE = 1 / 6  # Var(u1 + u2) of the adding task, at every T
COPY_T100_BASELINE = 10 * math.log(8) / 120  # 10 uniform guesses among 8 symbols over T + 20 positions


def write_job(job: Path, overrides: list[str], summary: dict | str | None = None, experiment: str = "arms") -> Path:
    """A job folder: Hydra's record of the composed config, and summary.json when given (str: its raw text)."""
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(compose_config(overrides)))
    choices = {"hydra": {"runtime": {"choices": {"experiment": experiment}}}}
    (job / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(choices))
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if summary is not None:
        (job / "summary.json").write_text(summary if isinstance(summary, str) else json.dumps(summary))
    return job


def finished(status: str, arm: str, **extra) -> dict:
    return {"status": status, "arm": arm, "experiment": "arms", "model": "lstm", "task": "adding", "seq_len": 100,
            "clipping": "none", "clip_threshold": None, "optimizer": "adam", "lr": 1e-3, "forget_bias": 1.0,
            "hidden_size": 128, "seed": 0, "steps": 3000, "baseline_loss": ADDING_BASELINE, "diverged": False,
            "val_normalized_loss": 0.5, **extra}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """Seven jobs, one of each status: completed, diverged, failed, interrupted, cancelled, missing, unreadable."""
    root = tmp_path_factory.mktemp("sweep")
    write_job(root / "0_lstm_adding_T100_s0", ["arm=lstm"], finished("completed", "LSTM"))
    write_job(root / "1_lstm_adding_T100_s1", ["arm=lstm", "seed=1"],
              finished("diverged", "LSTM", diverged=True, diverged_at_step=40, divergence_reason="loss is nan"))
    # train.py's summary of a job that raised: what the run is, the status and the reason, no numbers
    write_job(root / "2_lstm_adding_T100_s2", ["arm=lstm", "seed=2"],
              {"status": "failed", "failure_reason": "RuntimeError: boom", "log_file": "/runs/2/train.log", "arm": "LSTM",
               "experiment": "arms", "model": "lstm", "task": "adding", "seq_len": 100, "seed": 2})
    write_job(root / "3_lstm_nocarry_adding_T100_s0", ["arm=lstm_no_carry"],
              finished("interrupted", "LSTM (no cell carry)", interrupted_by="SIGTERM", steps=1500, forget_bias=None))
    write_job(root / "4_lstm_nocarry_copy_T100_s0", ["arm=lstm_no_carry", "data=copy"])  # still running
    write_job(root / "5_lstm_adding_T100_s3", ["arm=lstm", "seed=3"], summary='{"status": "comp')  # cut short
    # train.py's summary of a job that fail_fast stopped before it built anything
    write_job(root / "6_lstm_adding_T100_s4", ["arm=lstm", "seed=4"],
              {"status": "cancelled", "cancelled_because": "job 2_lstm_adding_T100_s2 failed (fail_fast)", "arm": "LSTM",
               "experiment": "arms", "model": "lstm", "task": "adding", "seq_len": 100, "seed": 4})
    return root


EXPECTED = {  # job folder: (status, arm, task, baseline_loss, reason)
    "0_lstm_adding_T100_s0": ("completed", "LSTM", "adding", ADDING_BASELINE, ""),
    "1_lstm_adding_T100_s1": ("diverged", "LSTM", "adding", ADDING_BASELINE, "step 40: loss is nan"),
    "2_lstm_adding_T100_s2": ("failed", "LSTM", "adding", ADDING_BASELINE, "RuntimeError: boom (log: /runs/2/train.log)"),
    "3_lstm_nocarry_adding_T100_s0": ("interrupted", "LSTM (no cell carry)", "adding", ADDING_BASELINE,
                                      "SIGTERM at step 1500 (resume with resume=true)"),
    "4_lstm_nocarry_copy_T100_s0": ("missing", "LSTM (no cell carry)", "copy", COPY_T100_BASELINE,
                                    "no summary.json: the job was killed or is still running"),
    "5_lstm_adding_T100_s3": ("unreadable", "LSTM", "adding", ADDING_BASELINE, None),  # reason: the JSON error
    "6_lstm_adding_T100_s4": ("cancelled", "LSTM", "adding", ADDING_BASELINE, "job 2_lstm_adding_T100_s2 failed (fail_fast)"),
}


def test_the_reader_classifies_every_kind_of_job(sweep):
    for name, (status, arm, task, baseline, reason) in EXPECTED.items():
        record = read_run(sweep / name)
        assert (record.status, record.info["arm"], record.info["task"]) == (status, arm, task), name
        assert record.info["baseline_loss"] == pytest.approx(baseline), name
        if reason is not None:
            assert record.reason == reason, name
    unreadable = read_run(sweep / "5_lstm_adding_T100_s3")
    assert unreadable.summary is None
    assert unreadable.reason.startswith(f"{sweep / '5_lstm_adding_T100_s3' / 'summary.json'}: unreadable (")
    # an unfinished job is classified from Hydra's record: seed, T and experiment of its own config
    missing = read_run(sweep / "4_lstm_nocarry_copy_T100_s0").info
    assert (missing["seed"], missing["seq_len"], missing["experiment"], missing["model"]) == (0, 100, "arms", "lstm")


def test_a_summary_with_an_unknown_status_is_unreadable(tmp_path):
    job = write_job(tmp_path / "0", ["arm=lstm"], finished("done", "LSTM"))
    record = read_run(job)
    assert record.status == "unreadable" and record.summary is None
    assert "'done'" in record.reason
    old = write_job(tmp_path / "1", ["arm=lstm"], {k: v for k, v in finished("x", "LSTM", diverged=True).items()
                                                   if k != "status"})
    assert read_run(old).status == "diverged"  # a summary from before `status` existed: by its `diverged`


def test_sweep_report_and_figures_agree(sweep):
    report = sweep_report.collect(sweep)
    rows = {job["job"]: job for job in report.jobs}
    runs = {run.path.name: run for run in load_runs([sweep], events=False, warn=False)}
    assert set(rows) == set(runs) == set(EXPECTED)
    for name, (status, arm, task, _, _) in EXPECTED.items():
        assert (rows[name]["status"], rows[name]["arm"], rows[name]["task"]) == (status, arm, task), name
        assert (runs[name].status, runs[name].get("arm"), runs[name].get("task")) == (status, arm, task), name
        assert rows[name]["reason"] == read_run(sweep / name).reason
    one_each = {"completed": 1, "diverged": 1, "failed": 1, "interrupted": 1, "cancelled": 1, "missing": 1, "unreadable": 1}
    assert report.counts == one_each
    assert status_counts(list(runs.values()))["all"] == {**one_each, "total": 7}
    assert report.incomplete
    assert "| 4_lstm_nocarry_copy_T100_s0 | missing | LSTM (no cell carry) | copy | 100 |  | no summary.json" \
        in report.markdown()


def test_sweep_report_command_exits_1_on_an_unreadable_summary(tmp_path):
    write_job(tmp_path / "0_lstm_adding_T100_s0", ["arm=lstm"], finished("completed", "LSTM"))
    proc = subprocess.run([sys.executable, "-m", "rnn_gradients.sweep_report", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    write_job(tmp_path / "1_lstm_adding_T100_s1", ["arm=lstm", "seed=1"], summary="")
    proc = subprocess.run([sys.executable, "-m", "rnn_gradients.sweep_report", str(tmp_path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 1
    assert "| 1_lstm_adding_T100_s1 | unreadable | LSTM | adding | 100 |" in proc.stdout
    counts = json.loads((tmp_path / "sweep_report.json").read_text())["counts"]
    assert counts == {"completed": 1, "diverged": 0, "failed": 0, "interrupted": 0, "cancelled": 0, "missing": 0, "unreadable": 1}


def test_a_run_folder_from_before_cells_were_plug_ins_keeps_its_cell_carry(tmp_path):
    """Old folders name the cell by `model.cell` (no `_target_`): the label is still the cell's own rule."""
    job = tmp_path / "0"
    (job / ".hydra").mkdir(parents=True)
    config = {"seed": 0, "data": {"name": "adding", "seq_len": 50}, "clipping": {"mode": "norm", "threshold": 1.0},
              "model": {"cell": "lstm", "hidden_size": 16, "cell_carry": False}, "trainer": {"max_steps": 10}}
    (job / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    record = read_run(job)
    assert (record.status, record.info["arm"], record.info["model"]) == ("missing", "LSTM (no cell carry)+clip", "lstm")
    assert record.info["baseline_loss"] == pytest.approx(ADDING_BASELINE)
