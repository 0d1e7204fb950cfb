"""Lightning data module over an on-the-fly task: an endless training stream, a fixed validation set.

The stream remembers the generator state before each batch it yields, so a checkpoint can store the
state before the first batch *not yet trained on*, whatever the data loader has pre-fetched: a
resumed run sees the very batches an uninterrupted one would have.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from rnn_gradients.tasks import Task

_STATES_KEPT = 8  # pre-fetching runs at most a batch or two ahead of training


class BatchStream(IterableDataset):
    """Yields whole batches forever from one generator; batch numbering starts at `start`."""

    def __init__(self, task: Task, batch_size: int, generator: torch.Generator, start: int = 0) -> None:
        self.task, self.batch_size, self.generator = task, batch_size, generator
        self.next_index = start
        self._states: dict[int, Tensor] = {}

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        while True:
            self._states[self.next_index] = self.generator.get_state()
            self._states.pop(self.next_index - _STATES_KEPT, None)
            self.next_index += 1
            yield self.task.sample(self.batch_size, self.generator)

    def state_before(self, index: int) -> Tensor:
        """Generator state just before batch `index` was (or will be) drawn."""
        if index == self.next_index:
            return self.generator.get_state()
        if index not in self._states:
            raise RuntimeError(f"stream state before batch {index} is no longer known (next batch {self.next_index})")
        return self._states[index]


class TaskDataModule(pl.LightningDataModule):
    """Training batches (task.batch_size each) come from `seed`; the validation set (task.val_size) from
    task.val_seed, so it is identical across runs, models and training seeds (only the task and T change it)."""

    def __init__(self, task: Task, seed: int) -> None:
        super().__init__()
        self.task, self.batch_size, self.seed, self.val_size = task, task.batch_size, seed, task.val_size
        self.generator = torch.Generator().manual_seed(seed)
        self.next_batch = 0  # where the training stream (re)starts; restored from checkpoints
        self.stream: BatchStream | None = None
        self.val_set = TensorDataset(*task.sample(task.val_size, torch.Generator().manual_seed(task.val_seed)))

    def train_dataloader(self) -> DataLoader:
        self.stream = BatchStream(self.task, self.batch_size, self.generator, self.next_batch)
        # batch_size=None: the stream already yields batches (vectorized generation, no collation).
        return DataLoader(self.stream, batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=max(self.batch_size, 256), shuffle=False)

    def state_dict(self) -> dict[str, Any]:
        # One batch per optimizer step: the batches trained on so far are the finished steps.
        trained = self.trainer.global_step if self.trainer is not None else self.next_batch
        state = self.stream.state_before(trained) if self.stream is not None else self.generator.get_state()
        return {"next_batch": trained, "generator_state": state, "seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if state_dict["seed"] != self.seed:
            raise ValueError(f"checkpoint was trained with seed={state_dict['seed']}, this run has seed={self.seed}")
        self.generator.set_state(state_dict["generator_state"])
        self.next_batch = int(state_dict["next_batch"])

