"""Gradient flow through time: ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) against t on a fixed probe batch.

This is the picture no per-parameter tool shows. The fused kernel hides h_t, so the probe
(observatory/probe.py) steps the cell's own layer on a float64 copy of the current weights every N
steps, at initialization (step 0) and at the end.
"""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch

from rnn_gradients import contract
from rnn_gradients.callback_interfaces import HParamsMetrics
from rnn_gradients.observatory.tensorboard_io import add_curve_as_histogram, add_histogram, summary_writer
from rnn_gradients.io_utils import write_bytes_atomic
from rnn_gradients.observatory.probe import TimeGradients, time_gradient_norms
from rnn_gradients.schema import check

log = logging.getLogger(__name__)

# Heights of the grad_flow/*_through_time 'histograms': decades above this floor, relative to max_t.
DECADES_SHOWN = 12


class GradFlowLogger(HParamsMetrics, pl.Callback):
    """Every `every_n_steps` (and at steps 0 and the last one) logs, for the probe batch:

    - grad_flow/log10_ratio_h (and _c for the LSTM: one per state of the cell): see `contract.log10_ratio`;
    - grad_flow/h_t<t> (and c_t<t>) at `num_scalar_points` evenly spaced t;
    - grad_flow/h_through_time (and c_): the curve as a TensorBoard 'histogram' over t (depth = training
      step); bucket height = decades of ‖∂L/∂h_t‖ above 10^-12 × max_t ‖∂L/∂h_t‖;
    - grad_hist/time_norms_h: histogram of log10 ‖∂L/∂h_t‖ over t;
    - grad_flow/plot: an image of the curves (every `plot_every_n_steps`);
    and keeps every raw curve in <output_dir>/grad_flow.npz (steps, loss, and one (steps, T) array per
    curve the cell reports: h, c, and for the LSTM the two paths of ∂L/∂c_t, contract.GRAD_FLOW_PATH_KEYS)
    for the figures. A curve first reported after a resume has NaN rows for the steps before it.
    """

    def __init__(
        self,
        every_n_steps: int = 100,
        probe_size: int = 64,
        probe_seed: int = 2024,
        layer: int = -1,
        num_scalar_points: int = 5,
        plot_every_n_steps: int = 500,
        output_dir: str | None = None,
        dtype: str = "float64",
    ) -> None:
        check("callbacks.grad_flow", every_n_steps=every_n_steps, probe_size=probe_size, probe_seed=probe_seed, layer=layer,
              num_scalar_points=num_scalar_points, plot_every_n_steps=plot_every_n_steps, dtype=dtype)
        self.every_n_steps, self.probe_size, self.probe_seed = every_n_steps, probe_size, probe_seed
        self.layer, self.num_scalar_points = layer, num_scalar_points
        self.plot_every_n_steps = plot_every_n_steps
        self.output_dir = Path(output_dir) if output_dir else None
        self.dtype = getattr(torch, dtype)
        self.steps: list[int] = []
        self.curves: dict[str, list[np.ndarray]] = {}  # name -> one row per step in self.steps
        self.states: tuple[str, ...] = ()  # the cell's states: the curves logged to TensorBoard
        self.losses: list[float] = []
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None
        self._plot = CurvePlot()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        x, y = pl_module.task.sample(self.probe_size, torch.Generator().manual_seed(self.probe_seed))
        self._probe = (x.to(pl_module.device), y.to(pl_module.device))
        if trainer.global_step == 0:  # initialization; a resumed run continues its saved curves
            self.measure(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.measure(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step not in self.steps:
            self.measure(trainer, pl_module)

    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> TimeGradients | None:
        if self._probe is None:
            return None
        step = trainer.global_step
        with torch.autocast(device_type=pl_module.device.type, enabled=False):
            result = time_gradient_norms(*self._probe_copy(pl_module), layer=self.layer)
        self.states = result.states
        for name, norms in result.norms.items():
            rows = self.curves.setdefault(name, [])
            rows += [np.full(len(norms), np.nan)] * (len(self.steps) - len(rows))  # not measured before
            rows.append(norms.cpu().double().numpy())
        self.steps.append(step)
        self.losses.append(result.loss)
        writer = summary_writer(trainer)
        if writer is not None:
            self._log(writer, step, result)
        if self.output_dir is not None:
            self._save(self.output_dir / contract.GRAD_FLOW_FILE)
        return result

    def _probe_copy(self, pl_module: pl.LightningModule) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
        """The network, task and probe batch in `dtype`: float64 resolves decays far below float32's
        smallest number (an RNN's ∂L/∂h_0 over 100 steps underflows to exactly 0 in float32)."""
        network = copy.deepcopy(pl_module.network).to(self.dtype)
        x, y = self._probe
        return network, pl_module.task, x.to(self.dtype), (y.to(self.dtype) if y.is_floating_point() else y)

    def last_log10_ratios(self) -> dict[str, float]:
        """contract.log10_ratio of the latest measured curve of each state: {"h": ..., "c": ... (LSTM)}."""
        return {name: contract.log10_ratio(self.curves[name][-1]) for name in self.states if self.curves.get(name)}

    def hparams_metrics(self) -> dict[str, float]:
        """The HParams columns log10_ratio_h and _c: the last measured curve's ratios."""
        tags = {"h": contract.HPARAM_LOG10_RATIO_H, "c": contract.HPARAM_LOG10_RATIO_C}
        return {tags[name]: ratio for name, ratio in self.last_log10_ratios().items() if name in tags}

    def state_dict(self) -> dict[str, Any]:
        # Kept in checkpoints so a resumed run continues grad_flow.npz instead of starting it over.
        # Plain lists of floats: loadable with torch.load(weights_only=True).
        return {"steps": list(self.steps), "loss": list(self.losses), "states": list(self.states),
                **{name: [row.tolist() for row in rows] for name, rows in self.curves.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps, self.losses = list(state_dict["steps"]), list(state_dict["loss"])
        self.states = tuple(state_dict.get("states", ()))
        self.curves = {name: [np.asarray(row, dtype=float) for row in rows] for name, rows in state_dict.items()
                       if name not in ("steps", "loss", "states") and rows}

    def _log(self, writer: Any, step: int, result: TimeGradients) -> None:
        curves = {name: result.norms[name] for name in result.states}
        T = len(result.norms[result.states[0]])
        points = sorted({round(i * (T - 1) / max(1, self.num_scalar_points - 1)) for i in range(self.num_scalar_points)})
        for name, norms in curves.items():
            norms = norms.double().cpu()
            writer.add_scalar(contract.log10_ratio_tag(name), contract.log10_ratio(norms), step)
            for t in points:
                writer.add_scalar(contract.grad_flow_point_tag(name, t), float(norms[t]), step)
            log_norms = torch.log10(norms.clamp_min(1e-300))
            decades = (log_norms - log_norms.max() + DECADES_SHOWN).clamp_min(0)
            add_curve_as_histogram(writer, contract.through_time_tag(name), decades, step)
            add_histogram(writer, contract.time_norms_tag(name), log_norms, step, bins=32)
        if self.plot_every_n_steps and (step % self.plot_every_n_steps == 0 or step == 0):
            writer.add_image(contract.GRAD_FLOW_PLOT, self._plot.render(curves, step), step, dataformats="HWC")
        writer.flush()

    def _save(self, path: Path) -> None:
        buffer = io.BytesIO()
        # "c" and the LSTM's path keys are always there (empty for other cells): readers of older files rely on it
        empty = {name: np.zeros((0, 0)) for name in ("c", *contract.GRAD_FLOW_PATH_KEYS)}
        np.savez_compressed(
            buffer,
            **{**empty, **{name: np.stack(rows) for name, rows in self.curves.items()}},
            steps=np.asarray(self.steps),
            loss=np.asarray(self.losses),
            layer=np.asarray(self.layer),
        )
        write_bytes_atomic(path, buffer.getvalue())


class CurvePlot:
    """The grad_flow/plot image: ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) against t, log scale.

    One figure is drawn once and then only its lines' data change: redrawing costs 80-120 ms instead of
    ~250 ms for a fresh pyplot figure with tight_layout (measured on a 2-core VM). No pyplot, so no
    global state and no GUI backend.
    """


    def __init__(self) -> None:
        self._figure: Any = None
        self._lines: dict[str, Any] = {}

    def _setup(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self._figure = Figure(figsize=(5, 3), dpi=80)
        FigureCanvasAgg(self._figure)
        self._axes = self._figure.add_subplot()
        self._axes.set_yscale("log")
        self._axes.set_xlabel("time step t")
        self._axes.set_ylabel("gradient norm")
        self._figure.subplots_adjust(left=0.17, right=0.97, bottom=0.16, top=0.9)

    def render(self, curves: dict[str, torch.Tensor], step: int) -> np.ndarray:
        """An RGB image (H, W, 3) of the curves at training step `step`."""
        if self._figure is None:
            self._setup()
        ax = self._axes
        for name, norms in curves.items():
            y = norms.double().cpu().clamp_min(1e-300).numpy()
            if name not in self._lines:
                (self._lines[name],) = ax.plot(y, label=f"‖∂L/∂{name}_t‖")
                ax.legend(loc="best")
            self._lines[name].set_data(np.arange(len(y)), y)
        ax.relim()
        ax.autoscale_view()
        ax.set_title(f"gradient through time, training step {step}")
        self._figure.canvas.draw()
        return np.asarray(self._figure.canvas.buffer_rgba())[..., :3].copy()
