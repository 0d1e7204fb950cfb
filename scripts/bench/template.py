"""The template side of a row: the real Trainer + SequenceModule from the composed config (what
run.train builds), a callback that times every optimizer step and takes turns, and the replay that
prices the callbacks' periodic events.

What a template "step" costs: the time from one `on_train_batch_start` to the next (forward,
backward, clipping, optimizer, logging, every callback, the progress bar, fetching the next batch),
averaged over steady steps; the callbacks' periodic events (every 100 / 500 steps) are measured by
replaying every callback's per-step hooks at a step number of each cadence class and amortized with
that class's frequency. Start-up and validation are excluded (val_check_interval > steps run).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig

from bench.clock import apply_fp_mode, now, quiet, sync
from bench.config import cadence_classes, class_of, compose_cfg, sig_name
from bench.stats import median
from bench.turns import Participant, Turns, TurnTaker, alternate, counted_window, steps_needed
from rnn_gradients import run as run_mod
from rnn_gradients.guards.checkpointing import GracefulInterrupt


class _TrainerAt:
    """The real trainer, seen at another global step (and as a long run): replays a callback hook as it
    would run at that step. Everything else is the real trainer's."""

    def __init__(self, trainer: pl.Trainer, global_step: int) -> None:
        object.__setattr__(self, "_trainer", trainer)
        object.__setattr__(self, "global_step", global_step)
        object.__setattr__(self, "max_steps", 10**9)
        object.__setattr__(self, "should_stop", False)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "_trainer"), name)

    def __setattr__(self, name: str, value: Any) -> None:  # e.g. should_stop: kept on the proxy
        object.__setattr__(self, name, value)


class _InterruptOffMainThread(GracefulInterrupt):
    """GracefulInterrupt that installs its signal handlers only from the main thread (Python refuses
    elsewhere); its per-step work, the part measured, is the original's."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            super().on_train_start(trainer, pl_module)


def replay_step(trainer: pl.Trainer, module: pl.LightningModule, callbacks: Sequence[pl.Callback], step: int,
                optimizer: Any, loss: Any, outputs: Any, batch: Any, idx: int,
                device: torch.device) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds each callback's per-step hooks take when optimizer step `step` is the one taken."""
    before, after = _TrainerAt(trainer, step - 1), _TrainerAt(trainer, step)
    costs: dict[str, tuple[float, float]] = {}
    for cb in callbacks:
        sync(device)
        w0, c0 = now()
        cb.on_train_batch_start(before, module, batch, idx)
        cb.on_before_backward(before, module, loss)
        cb.on_after_backward(before, module)
        cb.on_before_optimizer_step(before, module, optimizer)
        cb.on_train_batch_end(after, module, outputs, batch, idx)
        sync(device)
        w1, c1 = now()
        name = type(cb).__name__
        w, c = costs.get(name, (0.0, 0.0))
        costs[name] = (w + w1 - w0, c + c1 - c0)
    return costs


class StepTimer(pl.Callback):
    """Step boundaries of a template run: the whole cost of optimizer step s runs from the start of its
    batch (on_train_batch_start with global_step s-1) to the start of the next one, and includes every
    hook, logging, the progress bar and fetching the next batch. Takes its turn between steps, and at the
    last step replays the other callbacks' hooks at a step of every cadence class."""

    def __init__(self, taker: TurnTaker, device: torch.device, classes: Sequence[tuple[int, ...]],
                 reps: Mapping[tuple[int, ...], int]) -> None:
        self.taker, self.device = taker, device
        self.classes, self.reps = list(classes), dict(reps)
        self.starts: dict[int, tuple[float, float]] = {}
        self.ends: dict[int, tuple[float, float]] = {}
        self.counted: dict[int, bool] = {}
        self.replay: dict[str, dict[str, tuple[float, float]]] = {}  # class -> callback -> (wall, cpu) seconds

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        sync(self.device)
        if step > 0:
            self.ends[step] = now()
        self.counted[step + 1] = self.taker.boundary()
        self.starts[step] = now()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.max_steps is not None and trainer.global_step >= trainer.max_steps:
            self._replay_all(trainer, pl_module, outputs, batch, batch_idx)

    def interval(self, step: int, clock: int = 0) -> float:
        return self.ends[step][clock] - self.starts[step - 1][clock]

    def _replay_all(self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, idx: int) -> None:
        callbacks = [c for c in trainer.callbacks if c is not self and not isinstance(c, pl.callbacks.ProgressBar)]
        optimizer = trainer.optimizers[0]
        loss = outputs["loss"] if isinstance(outputs, Mapping) else outputs
        base = ()
        runs = [replay_step(trainer, module, callbacks, self.reps[base], optimizer, loss, outputs, batch, idx, self.device)
                for _ in range(3)]  # the first also warms up
        self.replay[sig_name(base)] = {
            name: (median([r[name][0] for r in runs[1:]]), median([r[name][1] for r in runs[1:]])) for name in runs[0]}
        for sig in self.classes:
            if sig != base:
                self.replay[sig_name(sig)] = replay_step(
                    trainer, module, callbacks, self.reps[sig], optimizer, loss, outputs, batch, idx, self.device)


@dataclass
class TemplateSample:
    step_ms: float  # amortized: steady steps + every periodic event class x its frequency
    steady_ms: float  # mean of the window's steps outside any periodic event
    events_ms: float  # amortized cost of the periodic events per step
    direct_ms: float  # plain mean over every step of the window (events included as they fell)
    step_cpu_ms: float  # step_ms in main-thread CPU time
    window: int
    replay_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> callback -> wall ms


def template_trainer(cfg: DictConfig, run_dir: Path, extra: Sequence[pl.Callback]) -> tuple[pl.Trainer, Any, Any]:
    """What rnn_gradients.run.train builds (run.make_trainer), with interrupt handling that works off
    the main thread."""
    module, data = run_mod.build(cfg)
    trainer = run_mod.make_trainer(cfg, run_dir, None, [_InterruptOffMainThread(run_dir / "checkpoints"), *extra])
    return trainer, module, data


def template_participant(overrides: Sequence[str], warmup: int, window: int, workdir: Path, device: torch.device,
                         block: int = 10**9) -> Callable[[Turns, str], Participant]:
    """The template's training step as one variant of a step-interleaved row."""

    def make(turns: Turns, name: str) -> Participant:
        steps = steps_needed(warmup, window, block)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
        cfg = compose_cfg([*overrides, f"trainer.max_steps={steps}", f"trainer.val_check_interval={steps + 1}"], run_dir)
        classes, freq, reps = cadence_classes(cfg)
        timer = StepTimer(TurnTaker(turns, name, block), device, classes, reps)
        trainer, module, data = template_trainer(cfg, run_dir, [timer])

        def run() -> None:
            apply_fp_mode(cfg)
            trainer.fit(module, datamodule=data)
            if trainer.global_step != steps:
                raise RuntimeError(f"template run stopped at step {trainer.global_step} of {steps}")

        def result() -> TemplateSample:
            window_steps = counted_window(timer.counted, warmup, window, steps - 1)
            steady_steps = [s for s in window_steps if not class_of(s, classes)] or window_steps

            def amortized(clock: int) -> tuple[float, float]:
                steady = 1e3 * sum(timer.interval(s, clock) for s in steady_steps) / len(steady_steps)
                base = sum(v[clock] for v in timer.replay[sig_name(())].values())
                events = sum(1e3 * freq[sig] * (sum(v[clock] for v in timer.replay[sig_name(sig)].values()) - base)
                             for sig in classes if sig)
                return steady, events

            steady_ms, events_ms = amortized(0)
            steady_cpu, events_cpu = amortized(1)
            direct_ms = 1e3 * sum(timer.interval(s) for s in window_steps) / len(window_steps)
            replay_ms = {cls: {k: 1e3 * v[0] for k, v in costs.items()} for cls, costs in timer.replay.items()}
            return TemplateSample(steady_ms + events_ms, steady_ms, events_ms, direct_ms, steady_cpu + events_cpu,
                                  window, replay_ms)

        return Participant(run, result)

    return make


def template_sample(overrides: Sequence[str], warmup: int, window: int, workdir: Path, device: torch.device
                    ) -> TemplateSample:
    """One template run on its own (no interleaving)."""
    with quiet():
        return alternate({"template": template_participant(overrides, warmup, window, workdir, device)})["template"]
