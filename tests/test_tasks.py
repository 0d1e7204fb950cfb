"""Copy and adding tasks: recipes, baselines, metrics; every registered task: the interface, the minimum
length, the determinism of its data stream."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from rnn_gradients import tasks
from rnn_gradients.tasks.adding import Adding as AddingTask
from rnn_gradients.tasks.copy import Copy as CopyTask

REGISTERED = [task.name for task in tasks.registered()]


def make_task(name: str, seq_len: int, **keys) -> tasks.Task:
    return tasks.by_name(name)(seq_len, **keys)



def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- copy task recipe


@pytest.mark.parametrize("T", [1, 5, 37])
def test_copy_recipe(T):
    task = CopyTask(T)
    B = 64
    x, y = task.sample(B, gen(0))
    L = T + 20
    assert task.input_length == L
    assert x.shape == (B, L, 10) and x.dtype == torch.float32
    assert y.shape == (B, L) and y.dtype == torch.long
    # one-hot inputs
    assert torch.all((x == 0) | (x == 1))
    assert torch.all(x.sum(-1) == 1)
    tokens = x.argmax(-1)

    symbols = tokens[:, :10]
    assert symbols.min() >= 1 and symbols.max() <= 8
    # blanks between the symbols and the delimiter (T-1 of them), delimiter 9 at index T+9, 10 blanks
    assert torch.all(tokens[:, 10 : T + 9] == 0)
    assert tokens[:, 10 : T + 9].shape[1] == T - 1
    assert torch.all(tokens[:, T + 9] == 9)
    assert torch.all(tokens[:, T + 10 :] == 0)
    assert tokens[:, T + 10 :].shape[1] == 10
    # the delimiter appears exactly once, nowhere else
    assert torch.all((tokens == 9).sum(1) == 1)

    # target: T+10 blanks then the same 10 symbols
    assert torch.all(y[:, : T + 10] == 0)
    assert torch.equal(y[:, T + 10 :], symbols)


def test_copy_symbols_cover_alphabet_uniformly():
    x, _ = CopyTask(3).sample(4000, gen(1))
    symbols = x.argmax(-1)[:, :10].flatten()
    counts = torch.bincount(symbols, minlength=10).float()
    assert counts[0] == 0 and counts[9] == 0
    freq = counts[1:9] / counts.sum()
    # 40k draws: each of the 8 frequencies is within ~5 sigma (sigma ~ 0.0017) of 1/8
    assert torch.all((freq - 1 / 8).abs() < 0.01)


# ----------------------------------------------------------------------------- adding task recipe


@pytest.mark.parametrize("T", [2, 3, 11, 50])
def test_adding_recipe(T):
    task = AddingTask(T)
    B = 2000
    x, y = task.sample(B, gen(0))
    assert task.input_length == T
    assert x.shape == (B, T, 2)
    assert y.shape == (B,)
    values, markers = x[..., 0], x[..., 1]
    assert values.min() >= 0 and values.max() < 1
    assert torch.all((markers == 0) | (markers == 1))
    assert torch.all(markers.sum(1) == 2)
    half = T // 2
    assert torch.all(markers[:, :half].sum(1) == 1)
    assert torch.all(markers[:, half:].sum(1) == 1)
    # target: the sum of the two marked values (independent computation)
    expected = (values * markers).sum(1)
    torch.testing.assert_close(y, expected, rtol=0, atol=1e-6)


def test_adding_marker_positions_cover_each_half():
    T = 10
    x, _ = AddingTask(T).sample(5000, gen(3))
    positions = x[..., 1].nonzero()[:, 1]
    counts = torch.bincount(positions, minlength=T)
    assert torch.all(counts > 0), "every position of each half must be reachable"
    # each half: 5000 markers spread uniformly over 5 positions
    assert counts[:5].sum() == 5000 and counts[5:].sum() == 5000
    assert torch.all((counts.float() / 1000 - 1).abs() < 0.15)


# ----------------------------------------------------------------------------- baselines


@pytest.mark.parametrize("T", [1, 10, 100, 200, 300, 500, 1000])
def test_copy_baseline_formula(T):
    assert CopyTask(T).baseline_loss == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-12)


@pytest.mark.parametrize("T,published", [(100, 0.1733), (200, 0.0945), (300, 0.0650), (500, 0.0400)])
def test_copy_baseline_published_numbers(T, published):
    assert round(CopyTask(T).baseline_loss, 4) == published


def test_adding_baseline_exact():
    assert AddingTask(100).baseline_loss == pytest.approx(1 / 6, rel=1e-12)


def test_adding_baseline_empirical():
    task = AddingTask(20)
    N = 200_000
    _, y = task.sample(N, gen(11))
    predictions = torch.ones(N, 1)  # the memoryless predictor: always E[u1+u2] = 1
    mse = task.loss(predictions, y).item()
    # Var((u1+u2-1)^2) = E[d^4] - (1/6)^2 with E[d^4] = 1/15 (triangular on [-1,1]) -> sd ~ 0.0746
    sd_of_mean = math.sqrt(1 / 15 - 1 / 36) / math.sqrt(N)
    assert abs(mse - 1 / 6) < 5 * sd_of_mean
    # and 1.0 really is the best constant: any other constant scores worse by (c-1)^2
    assert task.loss(torch.full((N, 1), 1.1), y).item() > mse


@pytest.mark.parametrize("T", [5, 100])
def test_copy_baseline_is_memoryless_predictor_loss(T):
    task = CopyTask(T)
    B = 32
    x, y = task.sample(B, gen(5))
    L = task.input_length
    logits = torch.zeros(B, L, 10)
    logits[:, : L - 10, 0] = 1e4  # certain 'blank' before the copy window
    logits[:, L - 10 :, 1:9] = 0.0  # uniform over the 8 symbols inside it ...
    logits[:, L - 10 :, 0] = -1e4  # ... and nothing else
    logits[:, L - 10 :, 9] = -1e4
    loss = task.loss(logits, y).item()
    assert loss == pytest.approx(task.baseline_loss, rel=1e-5)
    # independent: the same number from F.cross_entropy on log-probabilities written by hand
    log_probs = torch.full((B, L, 10), -1e4)
    log_probs[:, : L - 10, 0] = 0.0
    log_probs[:, L - 10 :, 1:9] = -math.log(8)
    manual = -log_probs.gather(-1, y.unsqueeze(-1)).mean().item()
    assert loss == pytest.approx(manual, rel=1e-5)


# ----------------------------------------------------------------------------- metrics


def test_copy_metric_counts_only_the_last_ten_positions():
    task = CopyTask(7)
    B = 4
    _, y = task.sample(B, gen(2))
    L = task.input_length
    # predictions: always wrong before the copy window (class 9), right on the first k of the last 10
    logits = torch.zeros(B, L, 10)
    logits[:, :, 9] = 5.0
    k = [0, 3, 7, 10]
    for b in range(B):
        for j in range(k[b]):
            t = L - 10 + j
            logits[b, t] = 0.0
            logits[b, t, y[b, t]] = 5.0
    accuracy = task.metric(logits, y).item()
    assert accuracy == pytest.approx(sum(k) / (10 * B))
    # perfect everywhere -> 1; perfect inside the window only -> still 1
    perfect = F.one_hot(y, 10).float() * 5
    assert task.metric(perfect, y).item() == 1.0
    window_only = perfect.clone()
    window_only[:, : L - 10] = torch.roll(window_only[:, : L - 10], 1, dims=-1)
    assert task.metric(window_only, y).item() == 1.0


def test_adding_metric_tolerance():
    task = AddingTask(10)
    targets = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 1.5, 1.5])
    offsets = torch.tensor([0.0, 0.039, -0.039, 0.041, -0.045, 0.02, 0.5, -0.0399])
    predictions = (targets + offsets).unsqueeze(-1)
    expected = (offsets.abs() < 0.04).float().mean().item()  # 5 of 8 within tolerance
    assert expected == pytest.approx(5 / 8)
    assert task.metric(predictions, targets).item() == pytest.approx(expected)


def test_adding_loss_is_mse():
    task = AddingTask(10)
    p = torch.tensor([[0.2], [1.0], [1.7]])
    t = torch.tensor([0.5, 1.0, 1.2])
    assert task.loss(p, t).item() == pytest.approx(((0.3**2) + 0 + 0.5**2) / 3, rel=1e-6)


# ----------------------------------------------------------------------------- bad seq_len


@pytest.mark.parametrize("name", REGISTERED)
def test_below_the_minimum_length_raises(name):
    task = tasks.by_name(name)
    for T in (task.min_seq_len - 1, 0, -3):
        with pytest.raises(ValueError, match="data.seq_len"):
            make_task(name, T)
    assert make_task(name, task.min_seq_len).seq_len == task.min_seq_len
    assert task.seq_len_rule().check(task.min_seq_len) and not task.seq_len_rule().check(task.min_seq_len - 1)


def test_unknown_task_raises():
    with pytest.raises(ValueError, match="no registered task"):
        tasks.by_name("__nope__")


@pytest.mark.parametrize("name", REGISTERED)
def test_every_task_keeps_its_interface(name):
    """What the rest of the project reads of a task: shapes and dtypes of a batch, the loss a scalar that is
    the baseline for the best memoryless guess's order of magnitude, the metric in [0, 1], and the same
    baseline from the class (torch-free, for the figures) and the instance."""
    cls = tasks.by_name(name)
    T = max(cls.min_seq_len, 11)
    task = make_task(name, T)
    x, y = task.sample(32, gen(0))
    assert x.shape == (32, task.input_length, cls.input_size) and x.dtype == torch.float32
    assert task.input_length == cls.length(T) and cls.baseline(T) == task.baseline_loss > 0
    predictions = torch.zeros(32, *((task.input_length,) if cls.per_step_output else ()), cls.output_size)
    loss = task.loss(predictions, y)
    assert loss.shape == () and torch.isfinite(loss)
    metric = task.metric(predictions, y)
    assert 0 <= float(metric) <= 1 and isinstance(cls.metric_name, str) and cls.metric_name


# ----------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("task", [make_task(name, 9) for name in REGISTERED], ids=REGISTERED)
def test_same_seed_same_batches_different_seed_different(task):
    a = [task.sample(16, g) for g in [gen(7)] for _ in range(3)]
    g = gen(7)
    b = [task.sample(16, g) for _ in range(3)]
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # consecutive batches of one stream differ
    assert not torch.equal(a[0][0], a[1][0])
    xc, _ = task.sample(16, gen(8))
    assert not torch.equal(a[0][0], xc)
