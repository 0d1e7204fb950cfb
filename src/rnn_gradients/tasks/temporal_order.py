"""Temporal order (Hochreiter & Schmidhuber 1997, experiment 6a): which of X and Y came first, and second?

A sequence of T one-hot symbols out of 8: the start marker E at t = 0, the end marker B at t = T-1,
two relevant symbols (X or Y each) at t1 in [T/10, T/5] and t2 in [T/2, 3T/5], and distractors a, b, c,
d everywhere else. The class of the order (XX, XY, YX, YY: 4 classes) is predicted at the last step.
The paper draws T from 100..110 and t1 in 10..20, t2 in 50..60; here T is fixed (data.seq_len) and the
windows scale with it. Loss: cross-entropy; the memoryless baseline is ln 4, chance accuracy 0.25.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rnn_gradients.tasks.base import Task

if TYPE_CHECKING:
    import torch
    from torch import Tensor

DISTRACTORS = (0, 1, 2, 3)  # a, b, c, d
X, Y, START, END = 4, 5, 6, 7
NUM_SYMBOLS, NUM_CLASSES = 8, 4


def windows(seq_len: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """The inclusive position ranges of the two relevant symbols (both inside 1..T-2, apart)."""
    first = (max(1, seq_len // 10), max(1, seq_len // 5))
    second = (max(first[1] + 1, seq_len // 2), max(first[1] + 1, 3 * seq_len // 5))
    return first, second


class TemporalOrder(Task):
    name = "temporal_order"
    input_size = NUM_SYMBOLS
    output_size = NUM_CLASSES
    per_step_output = False
    metric_name = "accuracy on the order class"
    min_seq_len = 4
    min_seq_len_reason = "start and end markers and two relevant symbols apart"
    order = 30

    @classmethod
    def baseline(cls, seq_len: int) -> float:
        # The 4 classes are equally likely and the markers carry no information about them.
        return math.log(NUM_CLASSES)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        import torch
        from torch.nn.functional import one_hot

        T = self.seq_len
        (lo1, hi1), (lo2, hi2) = windows(T)
        tokens = torch.randint(0, len(DISTRACTORS), (batch_size, T), generator=generator)
        tokens[:, 0], tokens[:, -1] = START, END
        first = torch.randint(lo1, hi1 + 1, (batch_size,), generator=generator)
        second = torch.randint(lo2, hi2 + 1, (batch_size,), generator=generator)
        which = torch.randint(0, 2, (batch_size, 2), generator=generator)  # 0: X, 1: Y
        rows = torch.arange(batch_size)
        tokens[rows, first] = X + which[:, 0]
        tokens[rows, second] = X + which[:, 1]
        return one_hot(tokens, NUM_SYMBOLS).float(), 2 * which[:, 0] + which[:, 1]

    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor:
        from torch.nn.functional import cross_entropy

        return cross_entropy(predictions, targets)

    def metric(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return (predictions.argmax(-1) == targets).float().mean()
