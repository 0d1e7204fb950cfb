"""Gradient flow through time: ‖∂L/∂h_t‖ (and ‖∂L/∂c_t‖) against t on a fixed probe batch.

This is the picture no per-parameter tool shows. The fused kernel hides h_t, so the probe runs the
unrolled twin (rnn_gradients.reference) on the current weights every N steps, at initialization
(step 0) and at the end.
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
from rnn_gradients.observatory.tensorboard_io import add_curve_as_histogram, add_histogram, summary_writer
from rnn_gradients.io_utils import write_bytes_atomic
from rnn_gradients.reference import TimeGradients, time_gradient_norms

log = logging.getLogger(__name__)

# Heights of the grad_flow/*_through_time 'histograms': decades above this floor, relative to max_t.
DECADES_SHOWN = 12


class GradFlowLogger(pl.Callback):
    """Every `every_n_steps` (and at steps 0 and the last one) logs, for the probe batch:

    - grad_flow/log10_ratio_h (and _c for the LSTM): see `contract.log10_ratio`;
    - grad_flow/h_t<t> (and c_t<t>) at `num_scalar_points` evenly spaced t;
    - grad_flow/h_through_time (and c_): the curve as a TensorBoard 'histogram' over t (depth = training
      step); bucket height = decades of ‖∂L/∂h_t‖ above 10^-12 × max_t ‖∂L/∂h_t‖;
    - grad_hist/time_norms_h: histogram of log10 ‖∂L/∂h_t‖ over t;
    - grad_flow/plot: an image of the curves (every `plot_every_n_steps`);
    and keeps every raw curve in <output_dir>/grad_flow.npz (steps, h, c, loss) for the figures, with, for
    the LSTM, the norms of the two paths of ∂L/∂c_t (contract.GRAD_FLOW_PATH_KEYS: carry through c_{t+1},
    output through h_t; computed from the same pass, see reference.cell_gradient_paths).
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
        if every_n_steps <= 0 or probe_size <= 0 or plot_every_n_steps < 0:
            raise ValueError("callbacks.grad_flow.every_n_steps and probe_size must be > 0, plot_every_n_steps >= 0")
        self.every_n_steps, self.probe_size, self.probe_seed = every_n_steps, probe_size, probe_seed
        self.layer, self.num_scalar_points = layer, num_scalar_points
        self.plot_every_n_steps = plot_every_n_steps
        self.output_dir = Path(output_dir) if output_dir else None
        self.dtype = getattr(torch, dtype)
        self.steps: list[int] = []
        self.h_curves: list[np.ndarray] = []
        self.c_curves: list[np.ndarray] = []
        self.path_curves: dict[str, list[np.ndarray]] = {key: [] for key in contract.GRAD_FLOW_PATH_KEYS}
        self.losses: list[float] = []
        self._probe: tuple[torch.Tensor, torch.Tensor] | None = None
        self.last_measured: tuple[int, TimeGradients] | None = None  # (step, result): GateStatsLogger reuses its trace
        self._plot = CurvePlot()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        x, y = pl_module.task.sample(self.probe_size, torch.Generator().manual_seed(self.probe_seed))
        self._probe = (x.to(pl_module.device), y.to(pl_module.device))
        if trainer.global_step == 0:  # initialization; a resumed run continues its saved curves
            self.measure(trainer, pl_module)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self.last_measured = None  # the trace is T x batch x hidden float64 per state: do not keep it around

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
        self.steps.append(step)
        self.h_curves.append(result.hidden.cpu().double().numpy())
        if result.cell is not None:
            self.c_curves.append(result.cell.cpu().double().numpy())
            for key, norms in zip(contract.GRAD_FLOW_PATH_KEYS, (result.cell_carry, result.cell_output)):
                self.path_curves[key].append(norms.cpu().double().numpy())
        self.losses.append(result.loss)
        self.last_measured = (step, result)
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
        """contract.log10_ratio of the latest measured curves: {"h": ..., "c": ... (LSTM)}."""
        ratios = {"h": contract.log10_ratio(self.h_curves[-1])} if self.h_curves else {}
        if self.c_curves:
            ratios["c"] = contract.log10_ratio(self.c_curves[-1])
        return ratios

    def state_dict(self) -> dict[str, Any]:
        # Kept in checkpoints so a resumed run continues grad_flow.npz instead of starting it over.
        # Plain lists of floats: loadable with torch.load(weights_only=True).
        return {
            "steps": list(self.steps),
            "h": [h.tolist() for h in self.h_curves],
            "c": [c.tolist() for c in self.c_curves],
            **{key: [curve.tolist() for curve in curves] for key, curves in self.path_curves.items()},
            "loss": list(self.losses),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.steps, self.losses = list(state_dict["steps"]), list(state_dict["loss"])
        self.h_curves = [np.asarray(h) for h in state_dict["h"]]
        self.c_curves = [np.asarray(c) for c in state_dict["c"]]
        # a checkpoint written before the paths were measured: NaN rows (not measured) for its steps
        self.path_curves = {key: [np.asarray(curve) for curve in state_dict[key]] if key in state_dict
                            else [np.full_like(c, np.nan, dtype=float) for c in self.c_curves]
                            for key in contract.GRAD_FLOW_PATH_KEYS}

    def _log(self, writer: Any, step: int, result: TimeGradients) -> None:
        curves = {"h": result.hidden}
        if result.cell is not None:
            curves["c"] = result.cell
        T = len(result.hidden)
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
        np.savez_compressed(
            buffer,
            steps=np.asarray(self.steps),
            h=np.stack(self.h_curves),
            c=np.stack(self.c_curves) if self.c_curves else np.zeros((0, 0)),
            **{key: np.stack(curves) if curves else np.zeros((0, 0)) for key, curves in self.path_curves.items()},
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

    LABELS = {"h": "‖∂L/∂h_t‖", "c": "‖∂L/∂c_t‖"}

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
                (self._lines[name],) = ax.plot(y, label=self.LABELS[name])
                ax.legend(loc="best")
            self._lines[name].set_data(np.arange(len(y)), y)
        ax.relim()
        ax.autoscale_view()
        ax.set_title(f"gradient through time, training step {step}")
        self._figure.canvas.draw()
        return np.asarray(self._figure.canvas.buffer_rgba())[..., :3].copy()
