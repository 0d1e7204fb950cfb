"""The data stream of every registered task (rnn_gradients.data): seeded, resumable from a checkpoint at the
first batch not yet trained on, with a validation set fixed by its own seed."""

from __future__ import annotations

import pytest
import torch

from rnn_gradients import tasks
from rnn_gradients.data import TaskDataModule

REGISTERED = [task.name for task in tasks.registered()]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def make_task(name: str, seq_len: int) -> tasks.Task:
    return tasks.by_name(name)(seq_len)


def data_module(name: str, seq_len: int, batch_size: int, seed: int, val_size: int, val_seed: int) -> TaskDataModule:
    task = tasks.by_name(name)(seq_len, batch_size=batch_size, val_size=val_size, val_seed=val_seed)
    return TaskDataModule(task, seed=seed)


def _stream(dm: TaskDataModule, n: int):
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)]


@pytest.mark.parametrize("name", REGISTERED)
def test_datamodule_stream_seeded(name):
    task = make_task(name, 8)
    a = _stream(data_module(name, task.seq_len, 4, seed=1, val_size=8, val_seed=99), 3)
    b = _stream(data_module(name, task.seq_len, 4, seed=1, val_size=8, val_seed=99), 3)
    c = _stream(data_module(name, task.seq_len, 4, seed=2, val_size=8, val_seed=99), 3)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.shape == (4, task.input_length, task.input_size)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(a[0][0], c[0][0])
    # the stream is exactly task.sample on a generator seeded with `seed`
    g = gen(1)
    for xa, ya in a:
        xr, yr = task.sample(4, g)
        assert torch.equal(xa, xr) and torch.equal(ya, yr)


@pytest.mark.parametrize("name", REGISTERED)
def test_datamodule_state_dict_resumes_stream(name):
    """The saved position is the first batch not yet trained on, even when the loader has pre-fetched."""
    task = make_task(name, 8)
    dm = data_module(name, task.seq_len, 4, seed=3, val_size=8, val_seed=99)
    it = iter(dm.train_dataloader())
    uninterrupted = [next(it) for _ in range(5)]  # 5 batches drawn (as if pre-fetched) ...
    dm.next_batch = 2  # ... but only 2 trained on when the checkpoint is taken (no trainer attached)
    state = dm.state_dict()
    assert state["next_batch"] == 2 and state["seed"] == 3

    resumed = data_module(name, task.seq_len, 4, seed=3, val_size=8, val_seed=99)
    resumed.load_state_dict(state)
    for (xa, ya), (xb, yb) in zip(uninterrupted[2:], _stream(resumed, 3)):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # a checkpoint of another seed is refused rather than silently continuing a different stream
    other = data_module(name, task.seq_len, 4, seed=4, val_size=8, val_seed=99)
    with pytest.raises(ValueError, match="seed"):
        other.load_state_dict(state)


@pytest.mark.parametrize("name", REGISTERED)
def test_validation_set_independent_of_training_seed(name):
    task = make_task(name, 12)
    a = data_module(name, task.seq_len, 4, seed=0, val_size=40, val_seed=12345)
    b = data_module(name, task.seq_len, 16, seed=1, val_size=40, val_seed=12345)
    xa, ya = a.val_set.tensors
    xb, yb = b.val_set.tensors
    assert xa.shape[0] == 40
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # the loaders yield the whole fixed set in order
    xs = torch.cat([x for x, _ in a.val_dataloader()])
    assert torch.equal(xs, xa)
    # and it is not the training stream
    assert not torch.equal(_stream(a, 1)[0][0], xa[:4])
    # a different val_seed gives a different validation set
    c = data_module(name, task.seq_len, 4, seed=0, val_size=40, val_seed=1)
    assert not torch.equal(c.val_set.tensors[0], xa)
