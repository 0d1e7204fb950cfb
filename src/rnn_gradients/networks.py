"""The trained network: a cell's recurrent core (rnn_gradients.cells) plus a linear readout.

`model._target_` names the cell; Hydra instantiates it from the model config, and the run builds this
network from it with the task's input and output sizes.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from rnn_gradients.cells import Cell, by_name


class RecurrentNetwork(nn.Module):
    """A recurrent core with a readout at every step or only the last one. The core's parameters are
    `rnn.*` (rnn.weight_hh_l0, ...: the names of TensorBoard's grad_norm/ and grad_hist/ tags)."""

    def __init__(self, cell: Cell, input_size: int, output_size: int) -> None:
        super().__init__()
        self.cell = cell
        self.rnn = cell.build(input_size)
        self.readout = nn.Linear(cell.hidden_size, output_size)
        cell.initialize(self.rnn, self.readout)

    def forward(self, x: Tensor, last_only: bool) -> Tensor:
        states, _ = self.rnn(x)
        return self.readout(states[:, -1] if last_only else states)


def network_for(cell: str, input_size: int, output_size: int, **keys: Any) -> RecurrentNetwork:
    """A network of the registered cell called `cell` with model keys `keys` (scripts and tests)."""
    return RecurrentNetwork(by_name(cell)(**keys), input_size, output_size)
