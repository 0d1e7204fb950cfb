"""The recurrent spectrum: σ_max and the spectral radius of every recurrent matrix (each gate block of a
gated cell) through training, beside Pascanu et al.'s (2013) bound.

Back through one step the gradient is multiplied by W_hhᵀ diag(φ'): its norm shrinks by at most
σ_max(W_hh)·γ, γ = max φ'. So σ_max < 1/γ guarantees vanishing and σ_max > 1/γ is necessary for
exploding; the radius says where repeated multiplication by W_hh alone goes. Reading both beside the
gradient flow shows which cure acts where: the orthogonal RNN pins σ_max at 1, the IRNN starts there.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from rnn_gradients import contract
from rnn_gradients.io_utils import write_bytes_atomic
from rnn_gradients.observatory.tensorboard_io import add_scalars, summary_writer
from rnn_gradients.schema import check


def spectrum(matrix: torch.Tensor) -> tuple[float, float]:
    """(σ_max, spectral radius) in float64: the largest singular value and the largest |eigenvalue|."""
    matrix = matrix.detach().double().cpu()
    return float(torch.linalg.svdvals(matrix)[0]), float(torch.linalg.eigvals(matrix).abs().max())


class SpectrumLogger(pl.Callback):
    """Every `every_n_steps` (and at steps 0 and the last one) logs spectrum/sigma_max_<m>, spectrum/radius_<m>
    and spectrum/bound_<m> (1/γ) for each recurrent matrix m = l<layer>_<block> of the cell
    (Cell.recurrent_matrices), and keeps them in <output_dir>/spectrum.npz (steps, and one array per key)
    for the figures. One SVD and one eigendecomposition of a 128 × 128 matrix: ~5 ms on one core."""

    def __init__(self, every_n_steps: int = 250, output_dir: str | None = None) -> None:
        check("callbacks.spectrum", every_n_steps=every_n_steps)
        self.every_n_steps = every_n_steps
        self.output_dir = Path(output_dir) if output_dir else None
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {}  # spectrum key -> one value per step in self.steps

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == 0:  # a resumed run continues its saved values
            self.measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.measure(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step not in self.steps:
            self.measure(trainer, pl_module)

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        network = pl_module.network
        gammas = network.cell.blocks
        measured: dict[str, float] = {}
        for matrix_name, matrix in network.cell.recurrent_matrices(network.rnn).items():
            sigma_max, radius = spectrum(matrix)
            block = matrix_name.split("_", 1)[1]
            for quantity, value in zip(contract.SPECTRUM_QUANTITIES, (sigma_max, radius, 1.0 / gammas[block]), strict=True):
                measured[contract.spectrum_key(quantity, matrix_name)] = value
        if not measured:
            return measured
        step = trainer.global_step
        self.steps.append(step)
        for key, value in measured.items():
            self.values.setdefault(key, []).append(value)
        writer = summary_writer(trainer)
        if writer is not None:
            add_scalars(writer, [contract.SPECTRUM + key for key in measured], list(measured.values()), step)
        if self.output_dir is not None:
            buffer = io.BytesIO()
            np.savez(buffer, steps=np.asarray(self.steps), **{k: np.asarray(v) for k, v in self.values.items()})
            write_bytes_atomic(self.output_dir / contract.SPECTRUM_FILE, buffer.getvalue())
        return measured

    def state_dict(self) -> dict[str, Any]:
        # In checkpoints, so a resumed run continues spectrum.npz (plain lists: weights_only=True loads them).
        return {"steps": list(self.steps), **{key: list(values) for key, values in self.values.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps = list(state_dict["steps"])
        self.values = {key: list(values) for key, values in state_dict.items() if key != "steps"}
