"""Copying memory (Arjovsky et al. 2016): read 10 symbols, wait T steps, reproduce them after a delimiter.

Input (length T+20): 10 symbols from 1..8, T-1 blanks, the delimiter 9, 10 blanks.
Target: T+10 blanks, then the 10 symbols. Loss: cross-entropy averaged over all T+20 positions.
Recipe: docs/references.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rnn_gradients.tasks.base import Task

if TYPE_CHECKING:
    import torch
    from torch import Tensor

BLANK, DELIMITER, NUM_SYMBOLS, NUM_CLASSES, COPY_LENGTH = 0, 9, 8, 10, 10


class Copy(Task):
    name = "copy"
    input_size = NUM_CLASSES
    output_size = NUM_CLASSES
    per_step_output = True
    metric_name = "accuracy on the 10 copied symbols"
    order = 20

    @classmethod
    def length(cls, seq_len: int) -> int:
        return seq_len + 2 * COPY_LENGTH

    @classmethod
    def baseline(cls, seq_len: int) -> float:
        # Blanks are predicted perfectly; each of the 10 copied symbols is a uniform guess among 8.
        return COPY_LENGTH * math.log(NUM_SYMBOLS) / cls.length(seq_len)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        import torch
        from torch.nn.functional import one_hot

        T, L = self.seq_len, self.input_length
        symbols = torch.randint(1, NUM_SYMBOLS + 1, (batch_size, COPY_LENGTH), generator=generator)
        tokens = torch.full((batch_size, L), BLANK, dtype=torch.long)
        tokens[:, :COPY_LENGTH] = symbols
        tokens[:, T + COPY_LENGTH - 1] = DELIMITER
        targets = torch.full((batch_size, L), BLANK, dtype=torch.long)
        targets[:, -COPY_LENGTH:] = symbols
        return one_hot(tokens, NUM_CLASSES).float(), targets

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        from torch.nn.functional import cross_entropy

        return cross_entropy(predictions.reshape(-1, NUM_CLASSES), targets.reshape(-1))

    def metric(self, predictions: Tensor, targets: Tensor) -> Tensor:
        guessed = predictions[:, -COPY_LENGTH:].argmax(-1)
        return (guessed == targets[:, -COPY_LENGTH:]).float().mean()
