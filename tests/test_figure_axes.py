"""The y axes of the two arms figures on a hand-made arms sweep with adding and copy runs (no training): each
task gets its own scale, so copy's gap between the arms (0.8 against 1.0 of the baseline) is not flattened
by adding's decades. The figure objects are caught where the modules save them and read back."""

from __future__ import annotations

from pathlib import Path

import pytest

from handmade_sweep import write_job
from rnn_gradients.analysis import load_runs
from rnn_gradients.figures import learning_curves, loss_vs_seq_len

STEPS = [250, 500, 750]
# (task, arm) -> val/normalized_loss at STEPS (seed 0; seed 1 is 2 % higher): adding falls three decades,
# copy starts above the baseline (learning the blanks) and the clipped LSTM ends at 0.8 of it.
CURVES = {("adding", "RNN"): [1.0, 1.0, 1.0], ("adding", "LSTM+clip"): [0.9, 0.05, 0.001],
          ("copy", "RNN"): [2.6, 1.0, 1.0], ("copy", "LSTM+clip"): [2.0, 0.9, 0.8]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("axes") / "arms"
    for job, ((task, arm), values) in enumerate(CURVES.items()):
        for seed in (0, 1):
            points = [(s, v * (1 + 0.02 * seed)) for s, v in zip(STEPS, values)]
            write_job(root / f"{job}_{seed}", experiment="arms", arm=arm, task=task, seq_len=10, seed=seed,
                      steps=STEPS[-1], scalars={"val/normalized_loss": points})
    return load_runs([root], warn=False)


def drawn_figure(module, runs, tmp_path: Path, monkeypatch):
    caught = {}
    monkeypatch.setattr(module, "save_figure", lambda fig, out_dir, name: caught.setdefault("fig", fig) and [])
    module.draw(runs, tmp_path)
    return caught["fig"]


def test_learning_curves_give_each_task_row_its_own_scale(runs, tmp_path, monkeypatch):
    fig = drawn_figure(learning_curves, runs, tmp_path, monkeypatch)
    by_title = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    adding, copy = by_title["adding, T=10"], by_title["copy, T=10"]
    assert adding.get_yscale() == "log" and adding.get_ylim()[0] < 0.002
    assert copy.get_yscale() == "linear"
    bottom, top = copy.get_ylim()
    assert top == pytest.approx(learning_curves.LINEAR_TOP)  # cut: the first points (2.6) are off the axis
    assert 0.7 < bottom < 0.82  # the 0.8 end is inside, and fills most of the axis
    assert (1.0 - 0.8) / (top - bottom) > 0.3


def test_loss_vs_seq_len_gives_each_task_its_own_scale(runs, tmp_path, monkeypatch):
    fig = drawn_figure(loss_vs_seq_len, runs, tmp_path, monkeypatch)
    by_title = {ax.get_title(): ax for ax in fig.axes}
    adding, copy = by_title["adding task"], by_title["copy task"]
    assert adding.get_yscale() == "log" and copy.get_yscale() == "linear"
    bottom, top = copy.get_ylim()
    assert bottom < 0.8 < 1.0 < top and (1.0 - 0.8) / (top - bottom) > 0.5
