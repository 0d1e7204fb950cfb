"""Adding problem (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): sum the two marked values.

Channel 0: values from U[0, 1]. Channel 1: zeros except one marker in the first half and one in the
second half (Arjovsky's variant). Target: the sum of the two marked values. Loss: MSE.
Recipe: docs/references.md. Vectorized, and drawn only from the generator it is given, so a batch stream
is reproducible from its seed and resumable from the generator's state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnn_gradients.tasks.base import Task

if TYPE_CHECKING:
    import torch
    from torch import Tensor

TOLERANCE = 0.04


class Adding(Task):
    name = "adding"
    input_size = 2
    output_size = 1
    per_step_output = False
    metric_name = f"fraction within {TOLERANCE} of the target"
    min_seq_len = 2
    min_seq_len_reason = "one marker in each half"
    order = 10

    @classmethod
    def baseline(cls, seq_len: int) -> float:
        # Always predicting E[u1 + u2] = 1 leaves Var(u1 + u2) = 2 * (1/12).
        return 1.0 / 6.0

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        import torch

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
        from torch.nn.functional import mse_loss

        return mse_loss(predictions.squeeze(-1), targets)

    def metric(self, predictions: Tensor, targets: Tensor) -> Tensor:
        return ((predictions.squeeze(-1) - targets).abs() < TOLERANCE).float().mean()
