"""Figures follow the data: any multirun gets every figure its runs have data for, with every cell and task
it trained, and the arm comparisons never mix in runs of the experiments that vary something else.

First the rule of analysis.selection.comparison_runs on hand-made sweeps (handmade_sweep), then a real plain
multirun (`python -m rnn_gradients.train -m model=rnn,lstm data=adding,copy ...`, no experiment) drawn by the
real figures command; there the expected cells, arms and tasks are read from the runs' own summary.json files
and the cells' registry, not listed here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import cli_env, run_cli
from handmade_sweep import exp_curve, grad_norm_series, write_job
from rnn_gradients.analysis import (
    grad_flow_data, grad_norm_data, learning_curve_data, load_runs, loss_vs_seq_len_data,
)
from rnn_gradients.analysis.selection import comparison_runs
from rnn_gradients.cells import arm_order, by_name
from rnn_gradients.figures import grad_flow_through_time
from rnn_gradients.figures.registry import needed_tags

# The plain multirun of issue 18 (point 5): two cells x two tasks, no experiment.
MULTIRUN = ["-m", "model=rnn,lstm", "data=adding,copy", "trainer.max_steps=40", "data.seq_len=10",
            "model.hidden_size=8", "trainer.val_check_interval=10", "callbacks.grad_flow.every_n_steps=10",
            "callbacks.grad_histograms.every_n_steps=10", "trainer.enable_progress_bar=false"]
# What such a multirun has data for (the forget-bias, gradient-path and exploding figures need their experiments).
ARM_FIGURES = ("learning_curves", "grad_flow_through_time", "loss_vs_seq_len", "grad_histograms", "grad_norm_training")


# ------------------------------------------------------------------------------------------ the rule, hand-made

USER_CELL = "Leaky RNN"


def _job(root: Path, name: str, experiment: str | None, arm: str, task: str, seq_len: int, **kw) -> Path:
    """A finished job with a learning curve, a gradient-norm series and gradient-flow curves."""
    flow = {"steps": np.array([0, 300]), "h": np.stack([exp_curve(0.05, seq_len)] * 2), "loss": np.array([0.2, 0.1]),
            "c": np.zeros((0, 0)) if arm == "RNN" else np.stack([exp_curve(0.01, seq_len)] * 2)}
    scalars = {"val/normalized_loss": [(100, 0.9), (200, 0.5)], "grad_norm/total_preclip": grad_norm_series(None)}
    return write_job(root / name, experiment=experiment, arm=arm, task=task, seq_len=seq_len, scalars=scalars,
                     grad_flow=flow, **kw)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """A plain multirun (copy, T=20), a forget_bias and an exploding sweep (adding, T=30 and T=40) and,
    under arms/, an arms-experiment sweep (adding, T=50); each to be found apart."""
    root = tmp_path_factory.mktemp("mixed")
    for i, arm in enumerate(("RNN", "LSTM")):
        _job(root / "plain", str(i), None, arm, "copy", 20)
        _job(root / "arms", str(i), "arms", arm, "adding", 50)
    # a cell of a user's package (docs/extending.md): not in the registry, its label only in its runs
    _job(root / "plain", "2", None, "RNN", "copy", 20, summary={"arm": USER_CELL})
    _job(root / "forget", "0", "forget_bias", "LSTM", "adding", 30, forget_bias=3.0)
    _job(root / "exploding", "0", "exploding", "LSTM+clip", "adding", 40, optimizer="sgd", lr=1.0)
    return root


def _folders(runs) -> set[str]:
    return {Path(r.path).parent.name for r in runs}


def test_the_arms_experiment_is_compared_where_there_is_one(mixed):
    runs = load_runs([mixed], warn=False)
    assert _folders(comparison_runs(runs)) == {"arms"}
    assert set(learning_curve_data(runs)) == {("adding", 50)}
    flow = grad_flow_data(runs)
    assert {(p["task"], p["seq_len"]) for p in flow["tasks"].values()} == {("adding", 50)}
    assert flow["source"] == "arms experiment"
    assert {Path(a["run"]).parent.name for a in grad_norm_data(runs)["arms"].values()} == {"arms"}


def test_without_it_the_runs_of_no_experiment_are_compared_and_no_other_experiment(mixed):
    runs = load_runs([mixed / "plain", mixed / "forget", mixed / "exploding"], warn=False)
    assert _folders(comparison_runs(runs)) == {"plain"}
    assert set(learning_curve_data(runs)) == {("copy", 20)}  # no adding: forget_bias and exploding stay out
    assert set(loss_vs_seq_len_data(runs)) == {"copy"}
    flow = grad_flow_data(runs)
    assert list(flow["tasks"]) == ["copy"] and flow["tasks"]["copy"]["seq_len"] == 20
    assert flow["forget_bias"]["seq_len"] == 30  # the forget-bias panel keeps its own experiment
    norms = grad_norm_data(runs)
    assert (norms["task"], norms["seq_len"]) == ("copy", 20)
    assert {Path(a["run"]).parent.name for a in norms["arms"].values()} == {"plain"}


def test_a_cell_outside_the_registry_is_drawn_after_the_registered_ones(mixed):
    runs = load_runs([mixed / "plain"], warn=False)
    registered = [arm for arm in arm_order() if arm in {r.get("arm") for r in runs}]
    assert list(learning_curve_data(runs)[("copy", 20)]) == [*registered, USER_CELL]
    assert list(grad_norm_data(runs)["arms"]) == [*registered, USER_CELL]
    curves = grad_flow_data(runs)["tasks"]["copy"]["curves"]
    assert [arm for arm, q in curves if q == "h"] == [*registered, USER_CELL]


# ------------------------------------------------------------------------------------------ a real plain multirun


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> dict:
    """Train the multirun and draw it with the real figures command, both in subprocesses."""
    tmp = tmp_path_factory.mktemp("plain")
    train = run_cli([*MULTIRUN, f"paths.output_dir={tmp / 'outputs'}"], cwd=tmp, timeout=240)
    assert train.returncode == 0, train.stderr[-3000:]
    out = tmp / "figures"
    figures = subprocess.run([sys.executable, "-m", "rnn_gradients.figures", str(tmp / "outputs"), "--out", str(out),
                              "-q"], cwd=tmp, env=cli_env(), capture_output=True, text=True, timeout=240)
    assert figures.returncode == 0, figures.stderr[-3000:]
    summaries = [json.loads(p.read_text()) for p in sorted((tmp / "outputs").rglob("summary.json"))]
    runs = load_runs([tmp / "outputs"], tags=needed_tags(), warn=False)
    return {"out": out, "summaries": summaries, "runs": runs,
            "numbers": json.loads((out / "summary_numbers.json").read_text())}


def test_a_plain_multirun_gets_every_figure_it_has_data_for(plain):
    assert len(plain["summaries"]) == 4 and {s["experiment"] for s in plain["summaries"]} == {None}
    figures = plain["numbers"]["figures"]
    written = [name for name, info in figures.items() if info["status"] == "written"]
    assert set(ARM_FIGURES) <= set(written) and len(written) >= 5, figures
    for name in written:
        assert (plain["out"] / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (plain["out"] / f"{name}.pdf").read_bytes()[:5] == b"%PDF-", name
        assert sorted(figures[name]["files"]) == sorted(str(plain["out"] / f"{name}.{e}") for e in ("pdf", "png"))
    # the tables iterate what is there: one final-loss row per (arm, task), of no experiment
    rows = {(r["experiment"], r["arm"], r["task"]) for r in plain["numbers"]["final_loss"]}
    assert rows == {(None, s["arm"], s["task"]) for s in plain["summaries"]}


def test_grad_flow_has_a_panel_per_task_and_every_cell(plain, tmp_path, monkeypatch):
    summaries, runs = plain["summaries"], plain["runs"]
    data = grad_flow_data(runs)
    assert set(data["tasks"]) == {s["task"] for s in summaries}
    # each cell its own states (h; c where the cell has one), in every task's panel
    expected = {(s["arm"], q) for s in summaries for q in by_name(s["model"]).states}
    for task, panel in data["tasks"].items():
        assert panel["seq_len"] == max(s["seq_len"] for s in summaries if s["task"] == task)
        assert set(panel["curves"]) == expected, task
        for curve in panel["curves"].values():
            assert curve["init"] is not None and np.all(np.isfinite(curve["final"]))
            assert curve["final_step"] == max(s["steps"] for s in summaries)
    # the figure itself: one visible panel per task, each with a legend entry per curve
    caught = {}
    monkeypatch.setattr(grad_flow_through_time, "save_figure",
                        lambda fig, out_dir, name: caught.setdefault("fig", fig) and [])
    grad_flow_through_time.draw(runs, tmp_path)
    axes = [ax for ax in caught["fig"].axes if ax.get_visible()]
    assert sorted(ax.get_title().split(",")[0].split(") ")[1] for ax in axes) == sorted(data["tasks"])
    for ax in axes:
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert sum(label.startswith(tuple(s["arm"] for s in summaries)) for label in labels) == len(expected)


def test_grad_norm_training_shows_every_arm(plain):
    summaries = plain["summaries"]
    data = grad_norm_data(plain["runs"])
    arms = {s["arm"] for s in summaries}
    assert set(data["arms"]) == arms
    assert len({a["seed"] for a in data["arms"].values()}) == 1  # the same seed in every arm
    for arm, entry in data["arms"].items():
        assert len(entry["steps"]) == max(s["steps"] for s in summaries) and np.all(entry["values"] > 0), arm
    caption = plain["numbers"]["figures"]["grad_norm_training"]["caption"]
    assert all(arm in caption for arm in arms) and "no experiment" in caption
