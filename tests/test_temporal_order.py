"""The temporal-order task (Hochreiter & Schmidhuber 1997, experiment 6a), checked against its recipe:
markers at both ends, X/Y only inside their two windows, distractors elsewhere, the class the order of X/Y,
ln 4 as the memoryless loss and chance 1/4, and a training run through the real command line."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import TINY, read_summary, run_cli
from rnn_gradients.tasks.temporal_order import END, START, X, Y, TemporalOrder, windows


@pytest.mark.parametrize("T", [4, 5, 13, 100])
def test_sequences_follow_the_recipe(T):
    x, y = TemporalOrder(T).sample(4000, torch.Generator().manual_seed(0))
    assert x.shape == (4000, T, 8) and torch.equal(x.sum(-1), torch.ones(4000, T))  # one-hot
    tokens = x.argmax(-1)
    assert (tokens[:, 0] == START).all() and (tokens[:, -1] == END).all()
    relevant = (tokens == X) | (tokens == Y)
    assert torch.equal(relevant.sum(1), torch.full((4000,), 2))
    (lo1, hi1), (lo2, hi2) = windows(T)
    first, second = [relevant.float().argmax(1), T - 1 - relevant.flip(1).float().argmax(1)]
    assert first.min() >= lo1 and first.max() <= hi1 and second.min() >= lo2 and second.max() <= hi2
    elsewhere = ~relevant
    elsewhere[:, 0] = elsewhere[:, -1] = False
    assert (tokens[elsewhere] < X).all() and (T == 4 or len(set(tokens[elsewhere].tolist())) == 4)  # a, b, c, d
    # the class is the order: XX 0, XY 1, YX 2, YY 3
    rows = torch.arange(4000)
    expected = 2 * (tokens[rows, first] == Y).long() + (tokens[rows, second] == Y).long()
    assert torch.equal(y, expected)
    if T == 100:  # the paper's windows for its lengths 100-110: t1 in 10..20, t2 in 50..60
        assert windows(100) == ((10, 20), (50, 60))
        assert set(first.tolist()) == set(range(10, 21)) and set(second.tolist()) == set(range(50, 61))


def test_baseline_and_chance():
    task = TemporalOrder(30)
    x, y = task.sample(20000, torch.Generator().manual_seed(1))
    counts = torch.bincount(y, minlength=4).double() / len(y)
    torch.testing.assert_close(counts, torch.full((4,), 0.25, dtype=torch.float64), atol=0.015, rtol=0)
    uniform = torch.zeros(len(y), 4)  # the best memoryless guess: every class 1/4
    assert task.loss(uniform, y).item() == pytest.approx(math.log(4), rel=1e-6) == pytest.approx(task.baseline_loss)
    perfect = torch.nn.functional.one_hot(y, 4).float() * 50
    assert task.metric(perfect, y).item() == 1.0 and task.loss(perfect, y).item() < 1e-6


def test_trains_through_the_command_line(tmp_path):
    result = run_cli([*TINY, "data=temporal_order", "data.seq_len=12", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = read_summary(tmp_path / "run")
    assert summary["task"] == "temporal_order" and summary["status"] == "completed"
    assert summary["baseline_loss"] == pytest.approx(math.log(4))
