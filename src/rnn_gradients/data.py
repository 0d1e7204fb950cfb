"""Lightning data module over an on-the-fly task: an endless training stream, a fixed validation set."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from rnn_gradients.tasks import Task


class BatchStream(IterableDataset):
    """Yields whole batches forever; the generator's state is the stream's position."""

    def __init__(self, task: Task, batch_size: int, generator: torch.Generator) -> None:
        self.task, self.batch_size, self.generator = task, batch_size, generator

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        while True:
            yield self.task.sample(self.batch_size, self.generator)


class TaskDataModule(pl.LightningDataModule):
    """Training batches come from `seed`; the validation set from `val_seed`, so it is identical
    across runs, models and training seeds (only the task and T change it)."""

    def __init__(self, task: Task, batch_size: int, seed: int, val_size: int, val_seed: int) -> None:
        super().__init__()
        self.task, self.batch_size, self.val_size = task, batch_size, val_size
        self.generator = torch.Generator().manual_seed(seed)
        self.val_set = TensorDataset(*task.sample(val_size, torch.Generator().manual_seed(val_seed)))

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: the stream already yields batches (vectorized generation, no collation).
        return DataLoader(BatchStream(self.task, self.batch_size, self.generator), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=max(self.batch_size, 256), shuffle=False)

    def state_dict(self) -> dict[str, Any]:
        return {"generator_state": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.generator.set_state(state_dict["generator_state"])
