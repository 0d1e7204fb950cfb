"""Gate activations on a fixed probe batch, for any cell that declares gates (Cell.gates): forget gates near
1 are what cure vanishing in the LSTM."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from rnn_gradients import contract
from rnn_gradients.observatory.probe import gate_values
from rnn_gradients.observatory.tensorboard_io import add_histogram, summary_writer
from rnn_gradients.schema import check


class GateStatsLogger(pl.Callback):
    """gates/<gate>_l<layer> histograms and gates/<gate>_mean_l<layer> scalars for every gate the cell
    declares, every `every_n_steps` and at step 0. Does nothing for a cell without gates (the RNN).
    One fused pass per layer on the probe batch, no gradient: a few ms at T=100."""

    def __init__(self, every_n_steps: int = 100, probe_size: int = 64, probe_seed: int = 2024, bins: int = 64) -> None:
        check("callbacks.gate_stats", every_n_steps=every_n_steps, probe_size=probe_size, probe_seed=probe_seed)
        self.every_n_steps, self.probe_size, self.probe_seed, self.bins = every_n_steps, probe_size, probe_seed, bins
        self._probe: torch.Tensor | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not pl_module.network.cell.gates:
            return
        x, _ = pl_module.task.sample(self.probe_size, torch.Generator().manual_seed(self.probe_seed))
        self._probe = x.to(pl_module.device)
        if trainer.global_step == 0:  # a resumed run already logged its start
            self.measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._probe is not None and trainer.global_step % self.every_n_steps == 0:
            self.measure(trainer, pl_module)

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, torch.Tensor]:
        writer, step = summary_writer(trainer), trainer.global_step
        activations = {}
        with torch.autocast(device_type=pl_module.device.type, enabled=False):
            layers = gate_values(pl_module.network, self._probe)
        for layer, gates in enumerate(layers):
            for gate, values in gates.items():
                stacked = values.detach().float()
                activations[f"{gate}_l{layer}"] = stacked
                if writer is not None:
                    add_histogram(writer, contract.gate_tag(gate, layer), stacked, step, self.bins)
                    writer.add_scalar(contract.gate_tag(gate, layer, mean=True), float(stacked.mean()), step)
        if writer is not None:
            writer.flush()
        return activations
