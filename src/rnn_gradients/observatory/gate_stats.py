"""LSTM gate activations on a fixed probe batch: forget gates near 1 are what cure vanishing."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from rnn_gradients import contract
from rnn_gradients.observatory.gradient_flow import GradFlowLogger
from rnn_gradients.observatory.tensorboard_io import add_histogram, summary_writer
from rnn_gradients.reference import Trace, unrolled_forward


class GateStatsLogger(pl.Callback):
    """gates/<gate>_l<layer> histograms and gates/<gate>_mean_l<layer> scalars for the input, forget and
    output gates, every `every_n_steps` and at step 0. Does nothing for a vanilla RNN."""

    def __init__(self, every_n_steps: int = 100, probe_size: int = 64, probe_seed: int = 2024, bins: int = 64) -> None:
        if every_n_steps <= 0 or probe_size <= 0:
            raise ValueError("callbacks.gate_stats.every_n_steps and probe_size must be > 0")
        self.every_n_steps, self.probe_size, self.probe_seed, self.bins = every_n_steps, probe_size, probe_seed, bins
        self._probe: torch.Tensor | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.network.cell != "lstm":
            return
        x, _ = pl_module.task.sample(self.probe_size, torch.Generator().manual_seed(self.probe_seed))
        self._probe = x.to(pl_module.device)
        if trainer.global_step == 0:  # a resumed run already logged its start
            self.measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._probe is not None and trainer.global_step % self.every_n_steps == 0:
            self.measure(trainer, pl_module)

    def _shared_trace(self, trainer: pl.Trainer) -> Trace | None:
        """The unrolled pass GradFlowLogger already made at this step on the same probe batch, if any:
        reusing it halves the observatory's cost at LSTM steps where both fire."""
        for callback in trainer.callbacks:
            if (
                isinstance(callback, GradFlowLogger)
                and callback.last_measured is not None
                and callback.last_measured[0] == trainer.global_step
                and (callback.probe_size, callback.probe_seed) == (self.probe_size, self.probe_seed)
            ):
                return callback.last_measured[1].trace
        return None

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, torch.Tensor]:
        trace = self._shared_trace(trainer)
        if trace is None:
            _, trace = unrolled_forward(pl_module.network, self._probe, last_only=not pl_module.task.per_step_output)
        writer, step = summary_writer(trainer), trainer.global_step
        activations = {}
        for layer, gates in enumerate(trace.gates):
            for gate, values in gates.items():
                stacked = torch.stack(values).detach().float()  # the probe's trace may be float64
                activations[f"{gate}_l{layer}"] = stacked
                if writer is not None:
                    add_histogram(writer, contract.gate_tag(gate, layer), stacked, step, self.bins)
                    writer.add_scalar(contract.gate_tag(gate, layer, mean=True), float(stacked.mean()), step)
        if writer is not None:
            writer.flush()
        return activations
