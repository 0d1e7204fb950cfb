"""The two classic long-range benchmarks, generated on the fly.

Both generators are fully vectorized and draw only from the `torch.Generator` they are given, so a
batch stream is reproducible from its seed and resumable from the generator's state.
Recipes follow Arjovsky, Shah & Bengio (2016), section 4 (docs/references.md).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import Tensor

BLANK, DELIMITER, NUM_SYMBOLS, NUM_CLASSES, COPY_LENGTH = 0, 9, 8, 10, 10
ADDING_TOLERANCE = 0.04


class Task(ABC):
    """A sequence task: how to sample a batch, score predictions, and what 'no memory' scores."""

    name: str
    input_size: int
    output_size: int
    per_step_output: bool  # True: a prediction at every position; False: only at the last one.
    metric_name: str

    def __init__(self, seq_len: int) -> None:
        if seq_len <= 0:
            raise ValueError(f"data.seq_len must be a positive integer, got {seq_len}")
        self.seq_len = seq_len

    @property
    @abstractmethod
    def input_length(self) -> int:
        """Number of time steps the network reads."""

    @property
    @abstractmethod
    def baseline_loss(self) -> float:
        """Loss of the best memoryless predictor: normalized loss 1.0 means 'learned nothing'."""

    @abstractmethod
    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw (inputs, targets); inputs are float (batch, input_length, input_size)."""

    @abstractmethod
    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor: ...

    @abstractmethod
    def metric(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Task-specific accuracy in [0, 1]: 1 means solved."""


class CopyTask(Task):
    """Copying memory: read 10 symbols, wait T steps, then reproduce them after a delimiter.

    Input (length T+20): 10 symbols from 1..8, T-1 blanks, the delimiter 9, 10 blanks.
    Target: T+10 blanks, then the 10 symbols. Loss: cross-entropy averaged over all T+20 positions.
    """

    name = "copy"
    input_size = NUM_CLASSES
    output_size = NUM_CLASSES
    per_step_output = True
    metric_name = "accuracy on the 10 copied symbols"

    @property
    def input_length(self) -> int:
        return self.seq_len + 2 * COPY_LENGTH

    @property
    def baseline_loss(self) -> float:
        # Blanks are predicted perfectly; each of the 10 copied symbols is a uniform guess among 8.
        return COPY_LENGTH * math.log(NUM_SYMBOLS) / self.input_length

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        T, L = self.seq_len, self.input_length
        symbols = torch.randint(1, NUM_SYMBOLS + 1, (batch_size, COPY_LENGTH), generator=generator)
        tokens = torch.full((batch_size, L), BLANK, dtype=torch.long)
        tokens[:, :COPY_LENGTH] = symbols
        tokens[:, T + COPY_LENGTH - 1] = DELIMITER
        targets = torch.full((batch_size, L), BLANK, dtype=torch.long)
        targets[:, -COPY_LENGTH:] = symbols
        return F.one_hot(tokens, NUM_CLASSES).float(), targets

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(predictions.reshape(-1, NUM_CLASSES), targets.reshape(-1))

    def metric(self, predictions: Tensor, targets: Tensor) -> Tensor:
        guessed = predictions[:, -COPY_LENGTH:].argmax(-1)
        return (guessed == targets[:, -COPY_LENGTH:]).float().mean()


class AddingTask(Task):
    """Adding problem: sum the two values marked in a stream of T uniform numbers.

    Channel 0: values from U[0, 1]. Channel 1: zeros except one marker in the first half and one in
    the second half (Arjovsky's variant). Target: the sum of the two marked values. Loss: MSE.
    """

    name = "adding"
    input_size = 2
    output_size = 1
    per_step_output = False
    metric_name = f"fraction within {ADDING_TOLERANCE} of the target"

    def __init__(self, seq_len: int) -> None:
        super().__init__(seq_len)
        if seq_len < 2:
            raise ValueError(f"data.seq_len must be >= 2 for the adding task (one marker per half), got {seq_len}")

    @property
    def input_length(self) -> int:
        return self.seq_len

    @property
    def baseline_loss(self) -> float:
        # Always predicting E[u1 + u2] = 1 leaves Var(u1 + u2) = 2 * (1/12).
        return 1.0 / 6.0

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        T, half = self.seq_len, self.seq_len // 2
        values = torch.rand(batch_size, T, generator=generator)
        first = torch.randint(0, half, (batch_size,), generator=generator)
        second = half + torch.randint(0, T - half, (batch_size,), generator=generator)
        rows = torch.arange(batch_size)
        markers = torch.zeros(batch_size, T)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        targets = values[rows, first] + values[rows, second]
        return torch.stack([values, markers], dim=-1), targets

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return F.mse_loss(predictions.squeeze(-1), targets)

    def metric(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return ((predictions.squeeze(-1) - targets).abs() < ADDING_TOLERANCE).float().mean()


TASKS: dict[str, type[Task]] = {"copy": CopyTask, "adding": AddingTask}


def make_task(name: str, seq_len: int) -> Task:
    if name not in TASKS:
        raise ValueError(f"data.name must be one of {sorted(TASKS)}, got {name!r}")
    return TASKS[name](seq_len)
