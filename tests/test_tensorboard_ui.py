"""TensorBoard as the place to compare a sweep, tested as a user sees it: a real server on loopback over a
real multirun, read through its HTTP API, and its HParams tab rendered in headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from conftest import ROOT, TINY, cli_env, name_of, read_summary

sys.path.insert(0, str(ROOT / "scripts"))
from tensorboard_screens import ensure_chromium, get_json, screenshot, start_tensorboard  # noqa: E402

ARMS = ("rnn", "lstm", "lstm_clip")
HPARAMS = {"arm", "model", "task", "seq_len", "hidden_size", "num_layers", "init", "forget_bias", "optimizer", "lr",
           "clipping", "clip_threshold", "seed", "experiment"}
METRICS = {"hparams/val_normalized_loss", "hparams/val_accuracy", "hparams/diverged", "hparams/diverged_at_step",
           "hparams/steps", "hparams/wall_time_s", "hparams/log10_ratio_h", "hparams/log10_ratio_c"}
ALL_STATUSES = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
                "colParams": [], "startIndex": 0, "sliceSize": 100}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, str]:
    """Three arms in parallel (joblib), as `make reproduce` runs its sweeps; returns the folder and the console."""
    sweep = tmp_path_factory.mktemp("tb") / "sweep"
    args = ["-m", "hydra/launcher=parallel", f"arm={','.join(ARMS)}", *TINY, "trainer.max_steps=12",
            "trainer.enable_progress_bar=true", "callbacks.grad_flow.every_n_steps=4", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run([sys.executable, "-m", "rnn_gradients.train", *args], cwd=sweep.parent, env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def port(sweep):
    server, port = start_tensorboard(sweep[0], len(ARMS))
    yield port
    server.terminate()
    server.wait(timeout=30)


def summary_of(sweep: Path, run: str) -> dict:
    """The summary.json of the job a TensorBoard run name belongs to (`<job folder>/tensorboard`)."""
    return read_summary(sweep / run.split("/")[0])


def test_run_names_say_what_each_run_is(sweep, port):
    runs = get_json(port, "/data/runs")
    assert len(runs) == len(ARMS)
    for run in runs:
        folder, rest = run.split("/", 1)
        assert rest == "tensorboard"
        assert folder.split("_", 1)[1] == name_of(summary_of(sweep[0], run)), run


def test_hparams_lists_every_job_with_its_hyperparameters_and_final_metrics(sweep, port):
    experiment = get_json(port, "/data/plugin/hparams/experiment", {"experimentName": ""})
    assert {h["name"] for h in experiment["hparamInfos"]} == HPARAMS
    assert {m["name"]["tag"] for m in experiment["metricInfos"]} == METRICS  # no hp_metric placeholder
    groups = get_json(port, "/data/plugin/hparams/session_groups", ALL_STATUSES)["sessionGroups"]
    assert len(groups) == len(ARMS)
    for group in groups:
        summary = summary_of(sweep[0], group["name"])
        hparams = group["hparams"]
        assert (hparams["arm"], hparams["model"], hparams["task"]) == (summary["arm"], summary["model"], summary["task"])
        assert hparams["seq_len"] == summary["seq_len"] and hparams["lr"] == pytest.approx(summary["lr"])
        metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert metrics["hparams/val_normalized_loss"] == pytest.approx(summary["val_normalized_loss"], rel=1e-6)
        assert metrics["hparams/steps"] == summary["steps"] == 12
        assert metrics["hparams/diverged"] == 0 and metrics["hparams/wall_time_s"] == pytest.approx(summary["wall_time_s"], rel=1e-5)
        assert float(metrics["hparams/log10_ratio_h"]) < 0  # measured: the gradient shrinks back in time at T=10 here too
        assert [s["status"] for s in group["sessions"]] == ["STATUS_SUCCESS"]


def test_one_custom_scalars_layout_for_the_thesis(port):
    layout = get_json(port, "/data/plugin/custom_scalars/layout")
    (category,) = layout["category"]
    charts = [set(chart["multiline"]["tag"]) for chart in category["chart"]]
    assert charts == [
        {"grad_norm/total_preclip", "grad_norm/total_postclip", "grad_norm/threshold"},
        {r"grad_flow/h_t\d+", r"grad_flow/c_t\d+"},
        {"spectrum/.*"},
        {"train/normalized_loss", "val/normalized_loss"},
    ]
    scalars = get_json(port, "/data/plugin/scalars/tags")
    clipped = next(tags for run, tags in scalars.items() if "normclip" in run)
    assert "grad_norm/threshold" in clipped and any(tag.startswith("grad_flow/h_t") for tag in clipped)
    assert any(tag.startswith("spectrum/") and "sigma_max" in tag for tag in clipped)  # the chart has lines to draw


def test_console_has_one_line_per_fact(sweep):
    _, console = sweep
    assert "litlogger" not in console and "srun" not in console
    assert "it/s]" not in console  # no per-job progress bars interleaving in a parallel sweep
    lines = [line for line in console.splitlines() if "Sweep: " in line and "jobs finished" in line]
    assert sorted(int(line.split("Sweep: ")[1].split("/")[0]) for line in lines) == [1, 2, 3]
    assert all(f"/{len(ARMS)} jobs finished (0 diverged, 0 failed)" in line for line in lines)


def test_hparams_tab_renders_in_a_real_browser(port, tmp_path):
    """The HParams tab of the sweep differs from the same tab of a TensorBoard with no runs ('no data')."""
    try:
        ensure_chromium()
    except (RuntimeError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(error))
    shot = matplotlib.image.imread(screenshot(f"http://127.0.0.1:{port}/#hparams", tmp_path / "hparams.png"))
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    server, empty_port = start_tensorboard(empty_dir, 0)
    try:
        empty = matplotlib.image.imread(screenshot(f"http://127.0.0.1:{empty_port}/#hparams", tmp_path / "empty.png"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert shot.shape == empty.shape and shot.shape[0] >= 800
    assert shot.std() > 0.1  # not a blank page
    changed = np.abs(shot[..., :3] - empty[..., :3]).max(axis=-1) > 0.2
    assert changed.mean() > 0.02, "the HParams tab shows nothing more than an empty TensorBoard"
