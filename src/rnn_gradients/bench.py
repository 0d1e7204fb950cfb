"""Performance benchmark: `python -m rnn_gradients.bench [--quick|--tiny] [--out outputs/bench]`.

Every comparison runs side by side in this one process, interleaved in counterbalanced order
(A B, B A, A B, ...) so that load from other processes on a shared machine hits both alike; each row
reports medians over samples and the ratio of the medians. Rows (docs/benchmarks.md explains them):

 1. template_vs_plain     the template's training step (real Trainer + SequenceModule from the
                          Hydra-composed config, default callbacks) / a hand-written PyTorch loop
 2. observatory_overhead  the template with default callbacks / with callbacks=none
 1-2 *_fresh              rows 1-2 again for the shortest step, each sample one variant alone in a fresh
                          process (a cross-check: rows 1-2 build a dozen trainers in one process)
 3. data_share            task.sample() / one plain training step
 4. startup               `python -m rnn_gradients.train` from launch to the first training step
 5. sweep                 a multirun with the basic (sequential) launcher / with the joblib launcher
 6. scaling               step time against T, least-squares line
 7. gpu                   the template on trainer=gpu / a plain autocast loop (skipped without CUDA)
    gpu_observatory_overhead  the same run: default callbacks / callbacks=none, on trainer=gpu
    denormals             step time with default floating point / with denormals flushed to zero

What a template "step" costs: the time from one `on_train_batch_start` to the next (forward,
backward, clipping, optimizer, logging, every callback, the progress bar, fetching the next batch),
averaged over steady steps; the callbacks' periodic events (every 100 / 500 steps) are measured by
replaying every callback's per-step hooks at a step number of each cadence class and amortized with
that class's frequency. Start-up and validation are excluded (val_check_interval > steps run).

Writes <out>/bench.json (atomically) and prints the table on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import json
import logging
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import hydra
import lightning.pytorch as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from rnn_gradients import run as run_mod
from rnn_gradients.guards.checkpointing import GracefulInterrupt
from rnn_gradients.io_utils import write_json_atomic
from rnn_gradients.paths import config_dir
from rnn_gradients.runtime import keep_freed_memory, resolve_num_threads

log = logging.getLogger("rnn_gradients.bench")

# --------------------------------------------------------------------------------------------- modes


@dataclass(frozen=True)
class Mode:
    name: str
    hidden: int
    batch: int
    seq_lens: tuple[int, ...]  # rows 1-3: one short, one long
    val_size: int
    samples: int  # per variant, rows 1-3 (and the GPU row)
    fit_budget_s: float  # target duration of the timed window of one sample
    turn_s: float  # rows 1-3: the variants take turns of about this many seconds of steps
    warmup: int  # steps discarded at the start of every sample
    min_window: int
    max_window: int
    scaling_seq_lens: tuple[int, ...]
    scaling_rounds: int
    scaling_budget_s: float
    scaling_min_steps: int
    denormal_rounds: int
    startup_runs: int
    sweep_jobs: int
    sweep_steps: int
    sweep_runs: int  # per launcher
    sweep_models: tuple[str, ...]  # row 5 runs a sweep of each
    crosscheck_steps: int  # 0 = no direct long-window check of the amortization
    denormal_lstm_warmup: int
    threads_rounds: int
    threads_budget_s: float
    sweep_timeout_s: float
    fresh_rounds: int  # rows 1-2 again for the shortest step, one fresh process per sample
    fresh_budget_s: float  # timed window of one fresh-process sample
    train_extra: tuple[str, ...] = ()  # extra overrides of the subprocess runs (startup, sweep)


FULL = Mode(
    name="full", hidden=128, batch=64, seq_lens=(100, 500), val_size=1024,
    samples=4, fit_budget_s=2.5, turn_s=0.5, warmup=2, min_window=6, max_window=200,
    scaling_seq_lens=(50, 100, 200, 500, 1000), scaling_rounds=3, scaling_budget_s=1.5, scaling_min_steps=3,
    denormal_rounds=3, startup_runs=3, sweep_jobs=4, sweep_steps=300, sweep_runs=2, sweep_models=("lstm", "rnn"), crosscheck_steps=500,
    denormal_lstm_warmup=25, threads_rounds=3, threads_budget_s=3.0, sweep_timeout_s=300,
    fresh_rounds=3, fresh_budget_s=8.0,
)
QUICK = replace(
    FULL, name="quick", samples=2, fit_budget_s=1.0, max_window=100, scaling_rounds=1, scaling_budget_s=0.6,
    denormal_rounds=1, startup_runs=2, sweep_steps=100, sweep_runs=1, crosscheck_steps=0,
    denormal_lstm_warmup=15, threads_rounds=1, threads_budget_s=1.5, sweep_timeout_s=240,
    fresh_rounds=1, fresh_budget_s=3.0,
)
TINY = Mode(
    name="tiny", hidden=16, batch=8, seq_lens=(10, 20), val_size=32,
    samples=2, fit_budget_s=0.05, turn_s=0.01, warmup=1, min_window=4, max_window=6,
    scaling_seq_lens=(5, 10, 20, 40, 80), scaling_rounds=1, scaling_budget_s=0.02, scaling_min_steps=2,
    denormal_rounds=1, startup_runs=1, sweep_jobs=2, sweep_steps=5, sweep_runs=1, sweep_models=("lstm",), crosscheck_steps=0,
    denormal_lstm_warmup=1, threads_rounds=1, threads_budget_s=0.05, sweep_timeout_s=300,
    fresh_rounds=1, fresh_budget_s=0.05,
    train_extra=("model.hidden_size=16", "data.seq_len=10", "data.batch_size=8", "data.val_size=32"),
)
MODES = {m.name: m for m in (FULL, QUICK, TINY)}
MODELS = ("rnn", "lstm")

# Targets: (comparison, value). Ratios are A / B of the row.
TARGETS = {
    "template_vs_plain": ("<=", 1.10),
    "observatory_overhead": ("<=", 1.05),
    "template_vs_plain_fresh": ("<=", 1.10),
    "observatory_overhead_fresh": ("<=", 1.05),
    "data_share": ("<=", 0.03),
    "sweep": (">=", 1.6),
    "gpu": ("<=", 1.10),
    "gpu_observatory_overhead": ("<=", 1.05),  # the CPU target of row 2
}

# --------------------------------------------------------------------------------------------- stats


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares line y = intercept + slope * x; returns (slope, intercept)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def meets(op: str, value: float, target: float) -> bool:
    return value <= target if op == "<=" else value >= target


def counterbalanced(names: Sequence[str], round_index: int) -> list[str]:
    """A B C, C B A, A B C, ...: interleaved, and a linear drift in load cancels over pairs of rounds."""
    return list(names) if round_index % 2 == 0 else list(reversed(names))


def interleave(variants: Mapping[str, Callable[[], Any]], rounds: int) -> dict[str, list[Any]]:
    results: dict[str, list[Any]] = {name: [] for name in variants}
    for r in range(rounds):
        for name in counterbalanced(list(variants), r):
            results[name].append(variants[name]())
    return results


def side(label: str, samples: Sequence[float], unit: str) -> dict[str, Any]:
    return {"label": label, "unit": unit, "median": median(samples), "n": len(samples), "samples": list(samples)}


def ratio_row(
    row_id: str, group: str, title: str, a: dict[str, Any], b: dict[str, Any], details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op, target = TARGETS[group]
    ratio = a["median"] / b["median"]
    return {
        "id": row_id, "group": group, "title": title,
        "target": {"op": op, "value": target},
        "ratio": ratio,
        "status": "pass" if meets(op, ratio, target) else "fail",
        "a": a, "b": b, "details": details or {},
    }


def info_row(row_id: str, group: str, title: str, a: dict[str, Any], b: dict[str, Any] | None = None,
             details: dict[str, Any] | None = None) -> dict[str, Any]:
    row = {"id": row_id, "group": group, "title": title, "target": None, "status": "info", "a": a,
           "details": details or {}}
    if b is not None:
        row["b"], row["ratio"] = b, a["median"] / b["median"]
    return row


def skip_row(row_id: str, group: str, title: str, reason: str) -> dict[str, Any]:
    op, target = TARGETS[group]
    return {"id": row_id, "group": group, "title": title, "target": {"op": op, "value": target},
            "status": "skipped", "reason": reason, "details": {}}


def error_row(row_id: str, group: str, title: str, error: BaseException) -> dict[str, Any]:
    return {"id": row_id, "group": group, "title": title, "target": None, "status": "error",
            "reason": f"{type(error).__name__}: {error}"[:2000], "details": {}}


# --------------------------------------------------------------------------------------------- config


def compose_cfg(overrides: Sequence[str], run_dir: Path | None = None) -> DictConfig:
    """The config `python -m rnn_gradients.train <overrides>` would see; every `${hydra:...}` value
    (run-dir interpolations such as logger.save_dir, callbacks.grad_flow.output_dir) points at run_dir."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    if run_dir is not None:
        detach_from_hydra(cfg, run_dir)
    return cfg


def detach_from_hydra(cfg: DictConfig, run_dir: Path) -> None:
    raw = OmegaConf.to_container(cfg, resolve=False)

    def walk(node: Any, prefix: str) -> Iterator[tuple[str, str]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}.{key}" if prefix else str(key))
        elif isinstance(node, str) and "${hydra:" in node:
            yield prefix, node

    for key, value in list(walk(raw, "")):
        OmegaConf.update(cfg, key, re.sub(r"\$\{hydra:[^}]*\}", str(run_dir), value), merge=False)


def step_overrides(mode: Mode, model: str, seq_len: int, callbacks: str = "default") -> list[str]:
    """Adding task, Adam, norm clipping (template runs add max_steps and a val_check_interval beyond it)."""
    return [
        f"model={model}", "data=adding", f"data.seq_len={seq_len}", f"model.hidden_size={mode.hidden}",
        f"data.batch_size={mode.batch}", f"data.val_size={mode.val_size}", "optimizer=adam", "clipping=norm",
        f"callbacks={callbacks}",
    ]


def cadence_classes(cfg: DictConfig) -> tuple[list[tuple[int, ...]], dict[tuple[int, ...], float], dict[tuple[int, ...], int]]:
    """Periodic events of the callbacks: every `*every_n_steps` > 1 of cfg.callbacks and
    checkpoint.every_n_steps. Steps fall into classes by which periods divide them; returns the classes,
    their long-run frequencies and a representative step of each (beyond one hyperperiod, so step 1's
    one-off events never count). The class () holds the plain steps."""
    periods: set[int] = set()
    for entry in (cfg.get("callbacks") or {}).values():
        if entry is None:
            continue
        for key, value in entry.items():
            if str(key).endswith("every_n_steps") and isinstance(value, int) and value > 1:
                periods.add(value)
    every = OmegaConf.select(cfg, "checkpoint.every_n_steps", default=0)
    if isinstance(every, int) and every > 1:
        periods.add(every)
    hyper = math.lcm(*periods) if periods else 1
    if hyper > 1_000_000:
        raise ValueError(f"callback cadences {sorted(periods)} have a hyperperiod of {hyper} steps")
    counts: dict[tuple[int, ...], int] = {}
    first: dict[tuple[int, ...], int] = {}
    for s in range(1, hyper + 1):
        sig = tuple(p for p in sorted(periods) if s % p == 0)
        counts[sig] = counts.get(sig, 0) + 1
        first.setdefault(sig, hyper + s)
    classes = sorted(counts, key=lambda sig: (len(sig), sig))
    return classes, {sig: counts[sig] / hyper for sig in classes}, first


def class_of(step: int, classes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    periods = sorted({p for sig in classes for p in sig})
    return tuple(p for p in periods if step % p == 0)


def sig_name(sig: tuple[int, ...]) -> str:
    return "plain" if not sig else "every_" + "_".join(str(p) for p in sig)


# --------------------------------------------------------------------------------------------- in-process timing


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Lightning's progress bar and banners go to /dev/null, its info logs and known warnings are off."""
    names = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
    levels = {n: logging.getLogger(n).level for n in names}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in names:
            logging.getLogger(n).setLevel(logging.WARNING)
        try:
            yield
        finally:
            for n, level in levels.items():
                logging.getLogger(n).setLevel(level)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def now() -> tuple[float, float]:
    """(wall seconds, CPU seconds of the calling thread). Wall time is what a user waits and the primary
    number; the thread's CPU time (which leaves out background threads such as TensorBoard's writer) is a
    cross-check that a time slice taken by another process barely touches."""
    return time.perf_counter(), time.thread_time()


class Turns:
    """Step-level interleaving. Each variant runs in its own thread and exactly one runs at any moment:
    first each sets up in turn (Trainer.fit's set-up, the observatory's step-0 probes, up to its first
    batch), then they take turns a few optimizer steps at a time (A B C A B C ...), so a burst of load
    from another process hits every variant alike. A participant waits for its first turn with begin(),
    calls arrive() at its first step boundary, switch() between turns and leave() when done (its
    teardown runs in its last turn)."""

    TIMEOUT_S = 3600.0

    def __init__(self, names: Sequence[str]) -> None:
        self.order, self.active, self.arrived = list(names), set(names), set()
        self.current: str | None = self.order[0] if self.order else None
        self.cond = threading.Condition()

    def _next_after(self, name: str) -> str | None:
        """The next participant in order: during set-up one that has not arrived yet, afterwards any."""
        setting_up = not self.arrived >= self.active
        i = self.order.index(name)
        for k in range(1, len(self.order) + 1):
            candidate = self.order[(i + k) % len(self.order)]
            if candidate in self.active and not (setting_up and candidate in self.arrived):
                return candidate
        return None

    def _wait_turn(self, name: str) -> None:
        if not self.cond.wait_for(lambda: self.current == name, timeout=self.TIMEOUT_S):
            raise RuntimeError(f"{name} waited over {self.TIMEOUT_S:.0f} s for its turn")

    def _pass(self, name: str) -> None:
        self.current = self._next_after(name)
        if self.current is None and self.active:  # everyone else has arrived: start the turns
            self.current = next(n for n in self.order if n in self.active)
        self.cond.notify_all()

    def begin(self, name: str) -> None:
        with self.cond:
            self._wait_turn(name)

    def arrive(self, name: str) -> None:
        with self.cond:
            self.arrived.add(name)
            if self.arrived >= self.active:  # the last to set up: the turns start from the first
                self.current = next(n for n in self.order if n in self.active)
                self.cond.notify_all()
            else:
                self._pass(name)
            self._wait_turn(name)

    def switch(self, name: str) -> None:
        with self.cond:
            self._pass(name)
            self._wait_turn(name)

    def leave(self, name: str) -> None:
        with self.cond:
            was_current = self.current == name
            self.active.discard(name)
            self.arrived.discard(name)
            if not self.active:
                self.current = None
            elif was_current:
                self.current = self._next_after(name) or next(n for n in self.order if n in self.active)
            self.cond.notify_all()


class TurnTaker:
    """One participant's side of Turns: its turn lasts `block` steps, of which the first is not counted:
    it runs on caches the other variants filled (a cost of the interleaving, not of the variant)."""

    def __init__(self, turns: Turns, name: str, block: int) -> None:
        self.turns, self.name, self.block = turns, name, block
        self.arrived, self.in_turn = False, 0

    def boundary(self) -> bool:
        """Call before every step; returns whether that step's time counts."""
        if not self.arrived:
            self.turns.arrive(self.name)
            self.arrived, self.in_turn = True, 0
        elif self.in_turn >= self.block:
            self.turns.switch(self.name)
            self.in_turn = 0
        counted = self.in_turn > 0
        self.in_turn += 1
        return counted


def steps_needed(warmup: int, window: int, block: int) -> int:
    """Optimizer steps to run so that `window` counted steps follow `warmup` (one per turn is not counted)."""
    per_turn = max(1, block - 1)
    return warmup + window + -(-(window + 1) // per_turn) + 2


def counted_window(counted: Mapping[int, bool], warmup: int, window: int, last: int) -> list[int]:
    steps = [s for s in range(warmup + 1, last + 1) if counted.get(s)]
    return steps[:window]


@dataclass
class Participant:
    run: Callable[[], None]  # runs in its own thread: arrive, steps with switch() between them
    result: Callable[[], Any]  # called after the thread ended


def alternate(participants: Mapping[str, Callable[[Turns, str], Participant]]) -> dict[str, Any]:
    """Build every participant (here, in the main thread), then run them step-interleaved."""
    turns = Turns(list(participants))
    built = {name: make(turns, name) for name, make in participants.items()}
    errors: list[BaseException] = []

    def target(name: str) -> None:
        try:
            turns.begin(name)
            built[name].run()
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(error)
        finally:
            turns.leave(name)

    threads = [threading.Thread(target=target, args=(name,), name=f"bench-{name}") for name in built]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return {name: p.result() for name, p in built.items()}


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
        _sync(self.device)
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


def callback_name(cb: pl.Callback) -> str:
    return type(cb).__name__


def replay_step(trainer: pl.Trainer, module: pl.LightningModule, callbacks: Sequence[pl.Callback], step: int,
                optimizer: Any, loss: Any, outputs: Any, batch: Any, idx: int,
                device: torch.device) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds each callback's per-step hooks take when optimizer step `step` is the one taken."""
    before, after = _TrainerAt(trainer, step - 1), _TrainerAt(trainer, step)
    costs: dict[str, tuple[float, float]] = {}
    for cb in callbacks:
        _sync(device)
        w0, c0 = now()
        cb.on_train_batch_start(before, module, batch, idx)
        cb.on_before_backward(before, module, loss)
        cb.on_after_backward(before, module)
        cb.on_before_optimizer_step(before, module, optimizer)
        cb.on_train_batch_end(after, module, outputs, batch, idx)
        _sync(device)
        w1, c1 = now()
        name = callback_name(cb)
        w, c = costs.get(name, (0.0, 0.0))
        costs[name] = (w + w1 - w0, c + c1 - c0)
    return costs


@dataclass
class TemplateSample:
    step_ms: float  # amortized: steady steps + every periodic event class x its frequency
    steady_ms: float  # mean of the window's steps outside any periodic event
    events_ms: float  # amortized cost of the periodic events per step
    direct_ms: float  # plain mean over every step of the window (events included as they fell)
    step_cpu_ms: float  # step_ms in main-thread CPU time
    window: int
    replay_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # class -> callback -> wall ms


def apply_fp_mode(cfg: DictConfig) -> None:
    """What run.train does to floating point: flush denormals to zero when cfg.flush_denormal (the
    setting lives in the CPU's per-thread control register, so every thread that computes calls this)."""
    torch.set_flush_denormal(bool(cfg.get("flush_denormal", False)))


def template_trainer(cfg: DictConfig, run_dir: Path, extra: Sequence[pl.Callback]) -> tuple[pl.Trainer, Any, Any]:
    """What rnn_gradients.run.train builds (run.make_trainer), with interrupt handling that works off
    the main thread."""
    module, data = run_mod.build(cfg)
    trainer = run_mod.make_trainer(cfg, run_dir, None, [_InterruptOffMainThread(run_dir / "checkpoints"), *extra])
    return trainer, module, data


def template_participant(overrides: Sequence[str], warmup: int, window: int, workdir: Path, device: torch.device,
                         block: int = 10**9) -> Callable[[Turns, str], Participant]:
    """The template's training step: the real Trainer + SequenceModule from the composed config."""

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


@dataclass
class PlainSample:
    step_ms: float
    sample_ms: float  # task.sample per step
    loader_ms: float  # one batch through the template's DataLoader (TaskDataModule stream)
    step_cpu_ms: float


def plain_stepper(cfg: DictConfig, device: torch.device, amp: bool = False) -> tuple[Callable[[], float], Any]:
    """The hand-written loop: same network (build), same optimizer factory, same batches (task.sample from
    a torch.Generator seeded like the data module), loss.backward, clip_grad_norm_, opt.step. Returns one
    step as a function (which returns the seconds task.sample took) and the data module (for its loader)."""
    module, data = run_mod.build(cfg)
    net, task = module.network.to(device), module.task
    opt = hydra.utils.instantiate(cfg.optimizer)(net.parameters())
    generator = torch.Generator().manual_seed(cfg.seed)
    mode, threshold, batch_size = cfg.clipping.mode, cfg.clipping.threshold, cfg.data.batch_size
    last_only = not task.per_step_output
    params = list(net.parameters())
    scaler = torch.amp.GradScaler(device.type) if amp else None

    def step() -> float:
        t0 = time.perf_counter()
        x, y = task.sample(batch_size, generator)
        sampled = time.perf_counter() - t0
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        if scaler is None:
            loss = task.loss(net(x, last_only=last_only), y)
            loss.backward()
        else:
            with torch.autocast(device_type=device.type, dtype=torch.float16):
                loss = task.loss(net(x, last_only=last_only), y)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        if mode == "norm":
            torch.nn.utils.clip_grad_norm_(params, threshold)
        elif mode == "value":
            torch.nn.utils.clip_grad_value_(params, threshold)
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()
        _sync(device)
        return sampled

    return step, data


def loader_ms(data: Any, batches: int) -> float:
    """ms per batch through the template's own DataLoader over the TaskDataModule stream."""
    it = iter(data.train_dataloader())
    next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return 1e3 * (time.perf_counter() - t0) / batches


def plain_participant(cfg: DictConfig, warmup: int, window: int, device: torch.device, amp: bool = False,
                      loader_batches: int = 0, block: int = 10**9) -> Callable[[Turns, str], Participant]:
    def make(turns: Turns, name: str) -> Participant:
        step, data = plain_stepper(cfg, device, amp)
        taker = TurnTaker(turns, name, block)
        walls: list[float] = []
        cpus: list[float] = []
        sampled: list[float] = []
        loader: list[float] = []

        def run() -> None:
            apply_fp_mode(cfg)
            for i in range(steps_needed(warmup, window, block)):
                counted = taker.boundary()
                _sync(device)
                w0, c0 = now()
                took = step()
                w1, c1 = now()
                if counted and i >= warmup and len(walls) < window:
                    walls.append(w1 - w0)
                    cpus.append(c1 - c0)
                    sampled.append(took)
            if loader_batches:
                loader.append(loader_ms(data, loader_batches))

        def result() -> PlainSample:
            n = len(walls)
            return PlainSample(1e3 * sum(walls) / n, 1e3 * sum(sampled) / n,
                               loader[0] if loader else float("nan"), 1e3 * sum(cpus) / n)

        return Participant(run, result)

    return make


def plain_sample(cfg: DictConfig, warmup: int, window: int, device: torch.device, amp: bool = False,
                 max_seconds: float | None = None) -> PlainSample:
    """The plain loop alone (no interleaving). With max_seconds the timed window ends early, after at
    least 2 steps, once that much time has passed."""
    step, _ = plain_stepper(cfg, device, amp)
    for _ in range(warmup):
        step()
    walls: list[float] = []
    cpus: list[float] = []
    sampled: list[float] = []
    t_start = time.perf_counter()
    for i in range(window):
        if max_seconds is not None and i >= 2 and time.perf_counter() - t_start > max_seconds:
            break
        w0, c0 = now()
        sampled.append(step())
        w1, c1 = now()
        walls.append(w1 - w0)
        cpus.append(c1 - c0)
    n = len(walls)
    return PlainSample(1e3 * sum(walls) / n, 1e3 * sum(sampled) / n, float("nan"), 1e3 * sum(cpus) / n)


def template_sample(overrides: Sequence[str], warmup: int, window: int, workdir: Path, device: torch.device
                    ) -> TemplateSample:
    """One template run on its own (no interleaving)."""
    with quiet():
        return alternate({"template": template_participant(overrides, warmup, window, workdir, device)})["template"]


def window_for(est_step_s: float, budget_s: float, lo: int, hi: int) -> int:
    n = int(budget_s / max(est_step_s, 1e-6))
    if n >= 10:
        n = n // 10 * 10  # whole periods of trainer.log_every_n_steps (10)
    return max(lo, min(hi, n))


def turn_block(est_step_s: float, mode: Mode, window: int) -> int:
    """Steps per turn: one uncounted step plus enough counted ones to fill about mode.turn_s."""
    return 1 + max(1, min(window, round(mode.turn_s / max(est_step_s, 1e-6))))


def estimate_step_s(cfg: DictConfig, device: torch.device) -> float:
    with flush_denormal(bool(cfg.get("flush_denormal", False))):
        return plain_sample(cfg, warmup=1, window=2, device=device).step_ms / 1e3


# --------------------------------------------------------------------------------------------- rows 1-3


def interleaved_samples(variants: Mapping[str, Callable[[Turns, str], Participant]], samples: int) -> dict[str, list[Any]]:
    """`samples` step-interleaved runs of all variants (fresh models each time), the order of turns
    reversed every other run: per variant, one sample per run."""
    out: dict[str, list[Any]] = {name: [] for name in variants}
    for r in range(samples):
        order = counterbalanced(list(variants), r)
        with quiet():
            res = alternate({name: variants[name] for name in order})
        for name in variants:
            out[name].append(res[name])
        gc.collect()
    return out


def bench_steps(mode: Mode, workdir: Path, device: torch.device, estimates: dict[tuple[str, int], float]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for seq_len in mode.seq_lens:
        for model in MODELS:
            key = f"{model}/T={seq_len}"
            base = step_overrides(mode, model, seq_len)
            try:
                plain_cfg = compose_cfg(base)
                est = estimates.setdefault((model, seq_len), estimate_step_s(plain_cfg, device))
                window = window_for(est, mode.fit_budget_s, mode.min_window, mode.max_window)
                block = turn_block(est, mode, window)
                log.info("steps %s: ~%.1f ms/step, %d counted steps x %d samples, turns of %d steps",
                         key, est * 1e3, window, mode.samples, block)
                res = interleaved_samples({
                    "template": template_participant(base, mode.warmup, window, workdir, device, block),
                    "template_none": template_participant(
                        step_overrides(mode, model, seq_len, callbacks="none"), mode.warmup, window, workdir, device, block),
                    "plain": plain_participant(plain_cfg, mode.warmup, window, device, loader_batches=10, block=block),
                }, mode.samples)
            except Exception as error:  # noqa: BLE001 - a broken row is reported, the others still run
                log.exception("steps %s failed", key)
                for group, title in (("template_vs_plain", "template step / plain loop"),
                                     ("observatory_overhead", "default callbacks / callbacks=none"),
                                     ("data_share", "task.sample / plain step")):
                    rows.append(error_row(f"{group}/{key}", group, title, error))
                continue
            tpl, none, plain = res["template"], res["template_none"], res["plain"]
            tpl_side = side("template (default callbacks)", [s.step_ms for s in tpl], "ms")
            none_side = side("template (callbacks=none)", [s.step_ms for s in none], "ms")
            plain_side = side("plain PyTorch loop", [s.step_ms for s in plain], "ms")
            common = {"model": model, "seq_len": seq_len, "hidden": mode.hidden, "batch": mode.batch, "window": window,
                      "turn_block": block}
            tpl_cpu, none_cpu, plain_cpu = (median([s.step_cpu_ms for s in xs]) for xs in (tpl, none, plain))
            rows.append(ratio_row(
                f"template_vs_plain/{key}", "template_vs_plain", f"{model.upper()} T={seq_len}: template step / plain loop",
                tpl_side, plain_side,
                {**common, "template_steady_ms": median([s.steady_ms for s in tpl]),
                 "template_events_ms_per_step": median([s.events_ms for s in tpl]),
                 "callbacks_none_ms": none_side["median"],
                 "cpu_time": {"a_median_ms": tpl_cpu, "b_median_ms": plain_cpu, "ratio": tpl_cpu / plain_cpu}},
            ))
            rows.append(ratio_row(
                f"observatory_overhead/{key}", "observatory_overhead",
                f"{model.upper()} T={seq_len}: default callbacks / callbacks=none", tpl_side, none_side,
                {**common, **observatory_breakdown(tpl, none),
                 "cpu_time": {"a_median_ms": tpl_cpu, "b_median_ms": none_cpu, "ratio": tpl_cpu / none_cpu}},
            ))
            rows.append(ratio_row(
                f"data_share/{key}", "data_share", f"{model.upper()} T={seq_len}: task.sample / plain step",
                side("task.sample", [s.sample_ms for s in plain], "ms"), plain_side,
                {**common, "loader_ms": median([s.loader_ms for s in plain])},
            ))
    return rows


def observatory_breakdown(tpl: Sequence[TemplateSample], none: Sequence[TemplateSample]) -> dict[str, Any]:
    """Where the observatory's time goes: steady-step difference, and per-callback replayed costs."""
    classes = list(tpl[0].replay_ms)
    per_callback: dict[str, dict[str, float]] = {}
    for cls in classes:
        for name in tpl[0].replay_ms[cls]:
            per_callback.setdefault(name, {})[cls] = median([s.replay_ms[cls][name] for s in tpl])
    return {
        "steady_ms": {"default": median([s.steady_ms for s in tpl]), "none": median([s.steady_ms for s in none])},
        "events_ms_per_step": {"default": median([s.events_ms for s in tpl]), "none": median([s.events_ms for s in none])},
        "replayed_callback_ms": per_callback,  # class -> time of that callback's hooks on such a step
    }


def bench_crosscheck(mode: Mode, workdir: Path, device: torch.device) -> dict[str, Any]:
    """The amortized estimate against a direct mean over one whole hyperperiod of real steps."""
    overrides = step_overrides(mode, "rnn", mode.seq_lens[0])
    samples = [template_sample(overrides, mode.warmup, mode.crosscheck_steps, workdir, device) for _ in range(2)]
    direct, amortized = median([s.direct_ms for s in samples]), median([s.step_ms for s in samples])
    return {"config": f"rnn/T={mode.seq_lens[0]}", "window": mode.crosscheck_steps, "direct_ms": direct,
            "amortized_ms": amortized, "relative_difference": amortized / direct - 1, "n": len(samples)}


# --------------------------------------------------------------------------------------------- rows 1-2 in fresh processes

FRESH_VARIANTS = {"template": "default", "template_none": "none", "plain": None}  # variant -> callbacks (None: plain loop)


def fresh_probe(spec: Mapping[str, Any]) -> dict[str, float]:
    """One variant of rows 1-2 alone in this fresh process (`--fresh-probe`, internal), as a user's own run
    has it: no other trainer ever built in the process, and the settings run.train applies (threads,
    malloc, denormals). The template's step is measured as in rows 1-2 (periodic events amortized)."""
    mode = MODES[spec["mode"]]
    torch.set_num_threads(int(spec["threads"]))
    cfg = compose_cfg(step_overrides(mode, spec["model"], spec["seq_len"]))
    keep_freed_memory(int(cfg.malloc_keep_mb))
    run_mod.quiet_known_warnings()
    device, callbacks = torch.device("cpu"), FRESH_VARIANTS[spec["variant"]]
    if callbacks is None:
        apply_fp_mode(cfg)
        return {"step_ms": plain_sample(cfg, mode.warmup, int(spec["window"]), device).step_ms}
    overrides = step_overrides(mode, spec["model"], spec["seq_len"], callbacks=callbacks)
    with tempfile.TemporaryDirectory(prefix="rnn-gradients-fresh-") as tmp:
        return {"step_ms": template_sample(overrides, mode.warmup, int(spec["window"]), Path(tmp), device).step_ms}


def bench_fresh(mode: Mode, workdir: Path, threads: int, estimates: dict[tuple[str, int], float]) -> list[dict[str, Any]]:
    """Rows 1-2 again for the shortest step (RNN, the first T), each sample one variant alone in a fresh
    process, the variants alternating in counterbalanced order: a cross-check of the in-process,
    step-interleaved rows, which build a dozen trainers in one process."""
    model, seq_len = "rnn", mode.seq_lens[0]
    key = f"{model}/T={seq_len}"
    est = estimates.setdefault((model, seq_len), estimate_step_s(compose_cfg(step_overrides(mode, model, seq_len)), torch.device("cpu")))
    window = window_for(est, mode.fresh_budget_s, mode.min_window, 10 * mode.max_window)

    def probe(variant: str) -> float:
        spec = {"mode": mode.name, "model": model, "seq_len": seq_len, "variant": variant, "window": window,
                "threads": threads}
        _, proc = _run([sys.executable, "-m", "rnn_gradients.bench", "--fresh-probe", json.dumps(spec)], workdir, 900)
        return float(json.loads(proc.stdout.strip().splitlines()[-1])["step_ms"])

    log.info("fresh %s: %d counted steps x %d rounds, one process per sample", key, window, mode.fresh_rounds)
    res = interleave({v: (lambda v=v: probe(v)) for v in FRESH_VARIANTS}, mode.fresh_rounds)
    tpl = side("template (default callbacks), own process", res["template"], "ms")
    none = side("template (callbacks=none), own process", res["template_none"], "ms")
    plain = side("plain PyTorch loop, own process", res["plain"], "ms")
    details = {"model": model, "seq_len": seq_len, "hidden": mode.hidden, "batch": mode.batch, "window": window,
               "rounds": mode.fresh_rounds, "callbacks_none_ms": none["median"]}
    return [
        ratio_row(f"template_vs_plain_fresh/{key}", "template_vs_plain_fresh",
                  f"{model.upper()} T={seq_len}: template step / plain loop, each alone in a fresh process", tpl, plain, details),
        ratio_row(f"observatory_overhead_fresh/{key}", "observatory_overhead_fresh",
                  f"{model.upper()} T={seq_len}: default callbacks / callbacks=none, each alone in a fresh process",
                  tpl, none, details),
    ]


# --------------------------------------------------------------------------------------------- rows 6, denormals


def bench_scaling(mode: Mode, device: torch.device, estimates: dict[tuple[str, int], float]) -> list[dict[str, Any]]:
    """Plain step time against T for both models, with the config's floating-point mode (flush_denormal)
    and, where flush-to-zero exists, with the other one; all points round-robin, n rounds."""
    ftz_ok = device.type == "cpu" and torch.set_flush_denormal(False)
    default_ftz = bool(compose_cfg([]).get("flush_denormal", False)) and ftz_ok
    modes = (default_ftz, not default_ftz) if ftz_ok else (False,)
    series = [(model, ftz) for model in MODELS for ftz in modes]
    points = [(model, ftz, T) for model, ftz in series for T in mode.scaling_seq_lens]
    cfgs = {T: {m: compose_cfg(step_overrides(mode, m, T)) for m in MODELS} for T in mode.scaling_seq_lens}
    samples: dict[tuple[str, bool, int], list[float]] = {p: [] for p in points}
    for r in range(mode.scaling_rounds):
        for model, ftz, T in counterbalanced(points, r):
            seen = samples[(model, ftz, T)]
            est = seen[0] / 1e3 if seen else estimates.get((model, T)) if ftz == default_ftz else None
            window = mode.scaling_min_steps if est is None else window_for(est, mode.scaling_budget_s, mode.scaling_min_steps, 200)
            with flush_denormal(ftz):
                ms = plain_sample(cfgs[T][model], warmup=1, window=window, device=device).step_ms
            samples[(model, ftz, T)].append(ms)
    rows = []
    for model, ftz in series:
        Ts = list(mode.scaling_seq_lens)
        meds = [median(samples[(model, ftz, T)]) for T in Ts]
        slope, intercept = linear_fit(Ts, meds)
        devs = [abs(y - (intercept + slope * T)) / y for T, y in zip(Ts, meds)]
        worst = max(range(len(Ts)), key=lambda i: devs[i])
        suffix = "" if ftz == default_ftz else "/flush_denormal" if ftz else "/denormals_kept"
        rows.append({
            "id": f"scaling/{model}{suffix}", "group": "scaling",
            "title": f"{model.upper()}: plain step time against T, "
                     + ("denormals flushed to zero" if ftz else "denormals kept (IEEE default)"),
            "target": None,  # reported, not judged: how far from linear the cost is
            "status": "info",
            "points": [{"T": T, "median": m, "n": len(samples[(model, ftz, T)]), "samples": samples[(model, ftz, T)],
                        "unit": "ms"} for T, m in zip(Ts, meds)],
            "fit": {"slope_ms_per_step": slope, "intercept_ms": intercept,
                    "worst_relative_deviation": devs[worst], "worst_at_T": Ts[worst]},
            "details": {"hidden": mode.hidden, "batch": mode.batch, "flush_denormal": ftz,
                        "config_default": ftz == default_ftz,
                        "steps": "fresh model each sample, 1 warm-up step, then the timed window"},
        })
    return rows


@contextlib.contextmanager
def flush_denormal(enabled: bool) -> Iterator[None]:
    """Flush-to-zero on (or off) in the calling thread for the block, off again after it."""
    torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def bench_denormals(mode: Mode, device: torch.device, estimates: dict[tuple[str, int], float]) -> list[dict[str, Any]]:
    rows = []
    seq_len = mode.seq_lens[-1]
    for model in MODELS:
        row_id = f"denormals/{model}/T={seq_len}"
        if device.type != "cpu" or not torch.set_flush_denormal(False):
            rows.append({"id": row_id, "group": "denormals", "title": f"{model.upper()} T={seq_len}: denormals",
                         "target": None, "status": "skipped", "reason": "flush-to-zero not supported here", "details": {}})
            continue
        cfg = compose_cfg(step_overrides(mode, model, seq_len))
        est = estimates.get((model, seq_len)) or estimate_step_s(cfg, device)
        window = window_for(est, mode.fit_budget_s / 2, mode.min_window, mode.max_window)
        # the LSTM's gradients decay into the denormal range only once it has trained a little
        warmup = mode.denormal_lstm_warmup if model == "lstm" else mode.warmup

        def run(ftz: bool) -> float:
            with flush_denormal(ftz):
                return plain_sample(cfg, warmup, window, device).step_ms

        res = interleave({"default": lambda: run(False), "flush": lambda: run(True)}, mode.denormal_rounds)
        rows.append(info_row(
            row_id, "denormals", f"{model.upper()} T={seq_len}: plain step, default FP / denormals flushed to zero",
            side("default (denormals kept)", res["default"], "ms"),
            side("torch.set_flush_denormal(True)", res["flush"], "ms"),
            {"model": model, "seq_len": seq_len, "window": window, "after_steps": warmup},
        ))
    return rows


# --------------------------------------------------------------------------------------------- row 7


def bench_gpu(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    """Row 7 and the observatory's cost on the GPU, from one interleaved run of three variants: the
    template with default callbacks, with callbacks=none, and the plain autocast loop (on a GPU the
    callbacks cost kernel launches and host syncs more than arithmetic: not what the CPU rows measure)."""
    row_id, title = "gpu/lstm", "LSTM on trainer=gpu: template step / plain autocast loop"
    obs_id, obs_title = "gpu_observatory_overhead/lstm", "LSTM on trainer=gpu: default callbacks / callbacks=none"
    if not torch.cuda.is_available():
        reason = "torch.cuda.is_available() is False"
        return [skip_row(row_id, "gpu", title, reason), skip_row(obs_id, "gpu_observatory_overhead", obs_title, reason)]
    device = torch.device("cuda")
    seq_len = mode.seq_lens[0]
    overrides = [*step_overrides(mode, "lstm", seq_len), "trainer=gpu"]
    none_overrides = [*step_overrides(mode, "lstm", seq_len, callbacks="none"), "trainer=gpu"]
    cfg = compose_cfg(overrides)
    precision = str(cfg.trainer.precision)
    amp = precision.startswith("16")
    est = plain_sample(cfg, warmup=3, window=5, device=device, amp=amp).step_ms / 1e3
    window = window_for(est, mode.fit_budget_s, mode.min_window, max(mode.max_window, 200))
    block = turn_block(est, mode, window)
    res = interleaved_samples({
        "template": template_participant(overrides, mode.warmup + 3, window, workdir, device, block),
        "template_none": template_participant(none_overrides, mode.warmup + 3, window, workdir, device, block),
        "plain": plain_participant(cfg, mode.warmup + 3, window, device, amp=amp, block=block),
    }, mode.samples)
    tpl, none = res["template"], res["template_none"]
    tpl_side = side(f"template (trainer=gpu, {precision})", [s.step_ms for s in tpl], "ms")
    details = {"device": torch.cuda.get_device_name(0), "seq_len": seq_len, "window": window, "precision": precision,
               "turn_block": block}
    return [
        ratio_row(row_id, "gpu", title, tpl_side,
                  side(f"plain loop (autocast fp16={amp})", [s.step_ms for s in res["plain"]], "ms"),
                  {**details, "callbacks_none_ms": median([s.step_ms for s in none])}),
        ratio_row(obs_id, "gpu_observatory_overhead", obs_title, tpl_side,
                  side(f"template (callbacks=none, trainer=gpu, {precision})", [s.step_ms for s in none], "ms"),
                  {**details, **observatory_breakdown(tpl, none)}),
    ]


# --------------------------------------------------------------------------------------------- threads


def step_probe(spec: Mapping[str, Any]) -> dict[str, list[float]]:
    """Plain-loop step times of each model at each thread count, interleaved; keys "model/threads". Runs
    in a subprocess (bench_threads, bench_malloc): OMP_WAIT_POLICY and MALLOC_* act only at process start."""
    mode = MODES[spec["mode"]]
    cfgs = {m: compose_cfg(step_overrides(mode, m, spec["seq_len"])) for m in spec["models"]}
    variants = [(m, t) for m in spec["models"] for t in spec["threads"]]
    out: dict[str, list[float]] = {f"{m}/{t}": [] for m, t in variants}
    apply_fp_mode(next(iter(cfgs.values())))
    for r in range(spec["rounds"]):
        for m, t in counterbalanced(variants, r):
            torch.set_num_threads(t)
            out[f"{m}/{t}"].append(plain_sample(cfgs[m], 2, 100_000, torch.device("cpu"), max_seconds=spec["seconds"]).step_ms)
    return out


def run_probe(mode: Mode, workdir: Path, models: Sequence[str], seq_len: int, threads: Sequence[int],
              env: Mapping[str, str | None]) -> dict[str, list[float]]:
    spec = {"mode": mode.name, "models": list(models), "seq_len": seq_len, "threads": list(threads), "rounds": 1,
            "seconds": mode.threads_budget_s}
    _, proc = _run([sys.executable, "-m", "rnn_gradients.bench", "--step-probe", json.dumps(spec)], workdir, 900, env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_threads(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    """LSTM step with all usable cores vs one thread, and with OpenMP's default (spinning) wait policy vs
    OMP_WAIT_POLICY=PASSIVE: a multi-threaded process whose cores are shared with other busy processes
    can stall at every parallel region."""
    cores = len(os.sched_getaffinity(0))
    model, seq_len = "lstm", mode.seq_lens[0]
    titles = {
        "threads/all_cores_vs_one": f"LSTM T={seq_len}: plain step, {cores} threads / 1 thread",
        "threads/omp_active_vs_passive": f"LSTM T={seq_len}: {cores} threads, default OMP wait policy / PASSIVE",
    }
    if cores < 2:
        return [{"id": k, "group": "threads", "title": v, "target": None, "status": "skipped",
                 "reason": "one usable core", "details": {}} for k, v in titles.items()]
    res = interleave({
        "default": lambda: run_probe(mode, workdir, [model], seq_len, [cores, 1], {"OMP_WAIT_POLICY": None}),
        "passive": lambda: run_probe(mode, workdir, [model], seq_len, [cores], {"OMP_WAIT_POLICY": "PASSIVE"}),
    }, mode.threads_rounds)
    all_default = [x for r in res["default"] for x in r[f"{model}/{cores}"]]
    one = [x for r in res["default"] for x in r[f"{model}/1"]]
    all_passive = [x for r in res["passive"] for x in r[f"{model}/{cores}"]]
    details = {"model": model, "seq_len": seq_len, "hidden": mode.hidden, "batch": mode.batch, "cores": cores,
               "loadavg": list(os.getloadavg()), "inherited_OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY")}
    return [
        info_row("threads/all_cores_vs_one", "threads", titles["threads/all_cores_vs_one"],
                 side(f"{cores} threads (default OMP wait policy)", all_default, "ms"), side("1 thread", one, "ms"), details),
        info_row("threads/omp_active_vs_passive", "threads", titles["threads/omp_active_vs_passive"],
                 side(f"{cores} threads, default OMP wait policy", all_default, "ms"),
                 side(f"{cores} threads, OMP_WAIT_POLICY=PASSIVE", all_passive, "ms"), details),
    ]


MALLOC_TUNED = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "268435456"}


def bench_malloc(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    """glibc's default malloc returns the large activation buffers to the kernel after every step (a
    freed block over the mmap threshold is unmapped, a free heap top over the trim threshold is trimmed),
    so the next step page-faults them in again. Keeping them (thresholds of 256 MB) removes that."""
    seq_len = mode.seq_lens[0]
    res = interleave({
        "default": lambda: run_probe(mode, workdir, MODELS, seq_len, [1], {k: None for k in MALLOC_TUNED}),
        "tuned": lambda: run_probe(mode, workdir, MODELS, seq_len, [1], MALLOC_TUNED),
    }, mode.threads_rounds)
    rows = []
    for model in MODELS:
        default = [x for r in res["default"] for x in r[f"{model}/1"]]
        tuned = [x for r in res["tuned"] for x in r[f"{model}/1"]]
        rows.append(info_row(
            f"malloc/{model}/T={seq_len}", "malloc", f"{model.upper()} T={seq_len}: plain step, default glibc malloc / "
            "large blocks kept (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ = 256 MB)",
            side("default malloc", default, "ms"), side("malloc thresholds 256 MB", tuned, "ms"),
            {"model": model, "seq_len": seq_len, "env": MALLOC_TUNED, "threads": 1},
        ))
    return rows


# --------------------------------------------------------------------------------------------- row 4: start-up


class FirstStepProbe(pl.Callback):
    """Added to a real `python -m rnn_gradients.train` run through Hydra
    (`+callbacks.bench_probe._target_=rnn_gradients.bench.FirstStepProbe +callbacks.bench_probe.path=...`):
    records wall-clock times of the start-up phases and writes them as JSON after the first step."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.marks: dict[str, float] = {"callbacks_built": time.time()}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.marks.setdefault("setup", time.time())

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.setdefault("fit_start", time.time())

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.setdefault("train_start", time.time())

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self.marks.setdefault("first_step", time.time())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if "first_step_end" not in self.marks:
            self.marks["first_step_end"] = time.time()
            write_json_atomic(self.path, self.marks)


def _run(cmd: Sequence[str], cwd: Path, timeout: float, env_extra: Mapping[str, str | None] | None = None
         ) -> tuple[float, subprocess.CompletedProcess]:
    """Run a command in its own process group; on timeout the whole group (joblib workers too) is killed
    and subprocess.TimeoutExpired raised."""
    env = dict(os.environ)
    env.pop("HYDRA_FULL_ERROR", None)
    for key, value in (env_extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.communicate()
        raise
    wall = time.perf_counter() - t0
    done = subprocess.CompletedProcess(list(cmd), proc.returncode, stdout, stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... exited {proc.returncode}:\n{(stdout + stderr)[-3000:]}")
    return wall, done


def import_breakdown(stderr: str) -> dict[str, Any]:
    """Parse `python -X importtime` output: import seconds by top-level package (the modules' own times
    summed, so the packages add up to the total)."""
    totals: dict[str, float] = {}
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)", line)
        if m:
            root = m.group(3).split(".")[0]
            totals[root] = totals.get(root, 0.0) + int(m.group(1)) / 1e6
    top = sorted(totals.items(), key=lambda kv: -kv[1])[:12]
    return {"total_s": sum(totals.values()), "top": [{"package": k, "self_s": v} for k, v in top]}


# What a run imports: the torch-free command line, then the run itself once the job starts.
RUN_IMPORTS = "import rnn_gradients.train, rnn_gradients.run"


def bench_startup(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    py = sys.executable
    runs: list[dict[str, float]] = []

    def train_run() -> dict[str, float]:
        i = len(runs)
        out = workdir / f"startup{i}"
        marks_path, job_path = workdir / f"startup{i}.json", workdir / f"startup{i}_job.json"
        cmd = [py, "-m", "rnn_gradients.train", "trainer.max_steps=1", f"paths.output_dir={out}", *mode.train_extra,
               "+callbacks.bench_probe._target_=rnn_gradients.bench.FirstStepProbe", f"+callbacks.bench_probe.path={marks_path}",
               "+hydra.callbacks.bench_probe._target_=rnn_gradients.bench_probes.HydraJobProbe",
               f"+hydra.callbacks.bench_probe.path={job_path}"]
        launch = time.time()
        wall, _ = _run(cmd, workdir, 600)
        marks = {**json.loads(job_path.read_text()), **json.loads(marks_path.read_text())}
        rel = {k: v - launch for k, v in marks.items()}
        rel["exit"] = wall
        runs.append(rel)
        return rel

    def timed(cmd: Sequence[str]) -> Callable[[], float]:
        return lambda: _run(cmd, workdir, 300)[0]

    traced: list[str] = []  # stderr of `-X importtime` runs

    def imports() -> float:
        """Seconds the imports of a run take (the command line, then the run it loads: torch, Lightning),
        timed inside a fresh interpreter (so neither its start nor its exit counts); --tiny runs it under
        -X importtime, sparing a process."""
        importtime = ["-X", "importtime"] if mode.name == "tiny" else []
        code = f"import time; t = time.perf_counter(); {RUN_IMPORTS}; print(time.perf_counter() - t)"
        _, proc = _run([py, *importtime, "-c", code], workdir, 300)
        if importtime:
            traced.append(proc.stderr)
        return float(proc.stdout.strip().splitlines()[-1])

    def compose_s() -> float:
        t0 = time.perf_counter()
        compose_cfg([])
        return time.perf_counter() - t0

    res = interleave({
        "train": train_run,
        "interpreter": timed([py, "-c", "pass"]),
        "imports": imports,
        "compose": compose_s,
    }, mode.startup_runs)
    train_runs = res["train"]

    def phase(start: str | None, end: str) -> float:  # median over the runs of one process's own phase
        return median([r[end] - (r[start] if start else 0.0) for r in train_runs])

    interp = median(res["interpreter"])
    breakdown = {
        # phases of the real command, from the wall-clock marks its probes wrote; medians over the runs
        "launch_to_job_start_s": phase(None, "job_start"),  # interpreter, the CLI's torch-free imports, main()'s checks, Hydra composition, run dir
        "job_start_to_model_built_s": phase("job_start", "callbacks_built"),  # the run's imports (torch, Lightning), validation, config_resolved.yaml, model, data, callbacks
        "trainer_construction_s": phase("callbacks_built", "setup"),
        "fit_setup_to_train_start_s": phase("setup", "train_start"),  # includes the observatory's step-0 probes and plot
        "train_start_to_first_step_s": phase("train_start", "first_step"),
        "first_step_duration_s": phase("first_step", "first_step_end"),
        "first_step_end_to_exit_s": phase("first_step_end", "exit"),  # closing validation, summary, checkpoint, exit
        "command_total_s": median([r["exit"] for r in train_runs]),
        # parts of the first phase, measured separately (interleaved with the runs above)
        "interpreter_s": interp,
        "imports_s": median(res["imports"]),  # RUN_IMPORTS in a fresh interpreter
        "hydra_compose_in_process_s": median(res["compose"]),  # one composition; main() composes twice
    }
    if not traced:  # where the import time goes: one more run, under -X importtime (not timed)
        traced.append(_run([py, "-X", "importtime", "-c", RUN_IMPORTS], workdir, 300)[1].stderr)
    details = {"breakdown": breakdown, "runs": train_runs, "import_top": import_breakdown(traced[-1]),
               "command": "python -m rnn_gradients.train trainer.max_steps=1 " + " ".join(mode.train_extra)}
    return [info_row("startup/train", "startup", "launch of `python -m rnn_gradients.train` to its first training step",
                     side("time to first step", [r["first_step"] for r in train_runs], "s"), None, details)]


# --------------------------------------------------------------------------------------------- row 5: sweep


SWEEP_LAUNCHERS = {
    # name -> overrides; num_threads=0 (auto) gives a sequential job all cores and each of 2 parallel jobs one
    "basic": ["hydra/launcher=basic"],
    "parallel": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
    "basic_1thread": ["hydra/launcher=basic", "num_threads=1"],
}
# The LSTM gains more from a second thread than the RNN (threads rows): the two bracket the speed-up.
# basic_1thread separates the launcher's own efficiency from what a second thread buys one job.
SWEEP_VARIANTS = {"lstm": ("basic", "parallel", "basic_1thread"), "rnn": ("basic", "parallel", "basic_1thread")}
PARALLEL_JOBS = 2


@dataclass
class SweepRun:
    wall_s: float  # the whole command, start-up and exit included
    job_s: list[float]  # each job's own training time (summary.json wall_time_s)

    def overhead_s(self, concurrent: int) -> float:
        """Wall time not spent in jobs: start-up (imports, Hydra, joblib workers), report, exit."""
        return self.wall_s - sum(self.job_s) / concurrent


def sweep_throughput(seq: Sequence[SweepRun], par: Sequence[SweepRun]) -> dict[str, Any]:
    """The parallel speed-up split into fixed costs and the rate at which jobs finish once running: the
    latter is what a long sweep (jobs of thousands of steps) gets."""
    seq_job = median([t for r in seq for t in r.job_s])
    par_job = median([t for r in par for t in r.job_s])
    return {
        "job_s_sequential": seq_job,
        "job_s_parallel": par_job,
        "steady_state_speedup": PARALLEL_JOBS * seq_job / par_job,
        "overhead_s_sequential": median([r.overhead_s(1) for r in seq]),
        "overhead_s_parallel": median([r.overhead_s(PARALLEL_JOBS) for r in par]),
    }


def bench_sweep(mode: Mode, workdir: Path) -> list[dict[str, Any]]:
    """Row 5: a sweep's wall time with the joblib launcher vs sequentially (all cores per job, the
    default), for the LSTM and the RNN; and vs sequentially at one thread per job (what
    the parallel launcher's jobs get: isolates the launcher's own efficiency from what a second thread
    buys a single job). Each row also splits the speed-up into fixed costs and steady-state throughput."""
    seeds = ",".join(str(i) for i in range(mode.sweep_jobs))
    rows: list[dict[str, Any]] = []
    for model in mode.sweep_models:
        variants = SWEEP_VARIANTS[model]
        counter = dict.fromkeys(variants, 0)
        timed_out = dict.fromkeys(variants, 0)

        def sweep(launcher: str) -> SweepRun | None:
            counter[launcher] += 1
            out = workdir / f"sweep_{model}_{launcher}{counter[launcher]}"
            cmd = [sys.executable, "-m", "rnn_gradients.train", "-m", f"model={model}", f"seed={seeds}",
                   f"trainer.max_steps={mode.sweep_steps}", "trainer.enable_progress_bar=false",
                   f"paths.output_dir={out}", *mode.train_extra, *SWEEP_LAUNCHERS[launcher]]
            try:
                wall, _ = _run(cmd, workdir, mode.sweep_timeout_s)
            except subprocess.TimeoutExpired:  # the time so far is a lower bound; the row says so
                log.warning("%s %s sweep killed after %.0f s", model, launcher, mode.sweep_timeout_s)
                timed_out[launcher] += 1
                return None
            done = [json.loads(p.read_text()) for p in out.glob("multirun/*/*/summary.json")]
            if len(done) != mode.sweep_jobs or any(s.get("status") not in ("completed", "diverged") for s in done):
                raise RuntimeError(f"{model} {launcher} sweep finished {[s.get('status') for s in done]}, "
                                   f"expected {mode.sweep_jobs} completed jobs")
            return SweepRun(wall, [float(s["wall_time_s"]) for s in done])

        runs: dict[str, list[SweepRun]] = {name: [] for name in variants}
        walls: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(mode.sweep_runs):
            for launcher in counterbalanced(list(variants), r):
                if timed_out[launcher]:  # another run would only repeat the same lower bound
                    continue
                run = sweep(launcher)
                walls[launcher].append(float(mode.sweep_timeout_s) if run is None else run.wall_s)
                if run is not None:
                    runs[launcher].append(run)

        def bound(a: str, b: str) -> str | None:
            # a killed run counts as the timeout: then the speed-up is a lower (a) or upper (b) bound
            if not (timed_out[a] or timed_out[b]):
                return None
            return "lower" if not timed_out[b] else "upper" if not timed_out[a] else "unknown"

        def split(a: str) -> dict[str, Any]:
            return sweep_throughput(runs[a], runs["parallel"]) if runs[a] and runs["parallel"] else {}

        details = {"model": model, "jobs": mode.sweep_jobs, "steps": mode.sweep_steps,
                   "cores": len(os.sched_getaffinity(0)), "launchers": {v: SWEEP_LAUNCHERS[v] for v in variants},
                   "extra_overrides": list(mode.train_extra), "timed_out_runs": timed_out,
                   "timeout_s": mode.sweep_timeout_s}
        parallel = side(f"hydra/launcher=parallel n_jobs={PARALLEL_JOBS}, wall", walls["parallel"], "s")
        rows.append(ratio_row(
            f"sweep/{model}/parallel_vs_basic", "sweep",
            f"{model.upper()}: {mode.sweep_jobs}-job multirun, {mode.sweep_steps} steps each: basic (sequential, "
            f"all cores per job) / joblib n_jobs={PARALLEL_JOBS} (speed-up)",
            side("hydra/launcher=basic, wall", walls["basic"], "s"), parallel,
            {**details, **split("basic"), "ratio_bound": bound("basic", "parallel"),
             "runs": {v: [asdict(r) for r in runs[v]] for v in variants}},
        ))
        if "basic_1thread" in variants:
            rows.append(info_row(
                f"sweep/{model}/parallel_vs_basic_1thread", "sweep",
                f"{model.upper()}: {mode.sweep_jobs}-job multirun: basic at num_threads=1 / joblib "
                f"n_jobs={PARALLEL_JOBS} (the launcher's own efficiency)",
                side("hydra/launcher=basic num_threads=1, wall", walls["basic_1thread"], "s"), parallel,
                {**details, **split("basic_1thread"), "ratio_bound": bound("basic_1thread", "parallel")},
            ))
    return rows


# --------------------------------------------------------------------------------------------- report


def machine_info(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "python": platform.python_version(),
        "torch_threads": threads,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OMP_", "GOMP_", "MALLOC_", "MKL_", "KMP_"))},
        "loadavg_start": list(os.getloadavg()),
    }


def fmt_value(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.3f} ms" if value < 10 else f"{value:.1f} ms"


def render_table(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"rnn-gradients benchmark ({result['mode']}) on {m['cpu_model']}, {m['usable_cores']} cores, "
        f"torch {m['torch']}, {m['torch_threads']} thread(s), {m['date']}",
        "",
        f"{'row':<38} {'target':>9} {'measured':>10} {'status':>8}   A median (n) / B median (n)",
        "-" * 110,
    ]
    for row in result["rows"]:
        target = row.get("target")
        tgt = f"{target['op']} {target['value']:g}" if target else "-"
        if row["group"] == "scaling":
            fit = row["fit"]
            measured = f"{fit['worst_relative_deviation']:.3f}"
            raw = (f"slope {fit['slope_ms_per_step']:.3f} ms/step, intercept {fit['intercept_ms']:.2f} ms; "
                   + ", ".join(f"T={p['T']}: {fmt_value(p['median'], 'ms')}" for p in row["points"]))
        elif row["status"] in ("skipped", "error"):
            measured, raw = "-", row.get("reason", "")[:80]
        else:
            a, b = row["a"], row.get("b")
            measured = f"{row['ratio']:.3f}" if "ratio" in row else fmt_value(a["median"], a["unit"])
            raw = f"{fmt_value(a['median'], a['unit'])} ({a['n']})"
            if b:
                raw += f" / {fmt_value(b['median'], b['unit'])} ({b['n']})"
            if "steady_state_speedup" in row["details"]:
                d = row["details"]
                raw += (f"; once running {d['steady_state_speedup']:.2f}x (jobs {d['job_s_sequential']:.1f} / "
                        f"{d['job_s_parallel']:.1f} s), fixed {d['overhead_s_sequential']:.1f} / {d['overhead_s_parallel']:.1f} s")
            if row["details"].get("ratio_bound"):
                raw += f"  [{row['details']['ratio_bound']} bound: a run hit the {row['details']['timeout_s']:.0f} s timeout]"
        lines.append(f"{row['id']:<38} {tgt:>9} {measured:>10} {row['status']:>8}   {raw}")
    summary = result.get("summary", {})
    if summary:
        lines.append("")
        lines += [f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in summary.items()]
    return "\n".join(lines) + "\n"


def summarize(rows: Sequence[dict[str, Any]], threads: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in rows:
        if row["id"] == "template_vs_plain/lstm/T=100" and row["status"] in ("pass", "fail"):
            out["lstm_T100_template_steps_per_s_per_core"] = 1e3 / row["a"]["median"] / threads
            out["lstm_T100_plain_steps_per_s_per_core"] = 1e3 / row["b"]["median"] / threads
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    out["statuses"] = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
    return out


SECTIONS = ("steps", "fresh", "crosscheck", "scaling", "denormals", "malloc", "threads", "startup", "sweep", "gpu")


def run_benchmark(mode: Mode, threads: int, out_dir: Path, sections: Sequence[str] = SECTIONS) -> dict[str, Any]:
    torch.set_num_threads(threads)
    # The process-wide allocator setting train.py applies: template and plain loop both run under it.
    malloc_keep_mb = int(compose_cfg([]).malloc_keep_mb)
    malloc_applied = keep_freed_memory(malloc_keep_mb)
    run_mod.quiet_known_warnings()
    device = torch.device("cpu")
    estimates: dict[tuple[str, int], float] = {}
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    result = {"mode": mode.name, "machine": machine_info(threads), "settings": asdict(mode), "rows": rows,
              "malloc_keep_mb": malloc_keep_mb if malloc_applied else 0}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnn-gradients-bench-") as tmp:
        workdir = Path(tmp)
        for section in sections:
            t0 = time.perf_counter()
            log.info("== %s", section)
            try:
                if section == "steps":
                    rows += bench_steps(mode, workdir, device, estimates)
                elif section == "fresh":
                    rows += bench_fresh(mode, workdir, threads, estimates)
                elif section == "crosscheck" and mode.crosscheck_steps:
                    extra["amortization_crosscheck"] = bench_crosscheck(mode, workdir, device)
                elif section == "scaling":
                    rows += bench_scaling(mode, device, estimates)
                elif section == "denormals":
                    rows += bench_denormals(mode, device, estimates)
                elif section == "malloc":
                    rows += bench_malloc(mode, workdir)
                elif section == "threads":
                    rows += bench_threads(mode, workdir)
                elif section == "startup":
                    rows += bench_startup(mode, workdir)
                elif section == "sweep":
                    rows += bench_sweep(mode, workdir)
                elif section == "gpu":
                    rows += bench_gpu(mode, workdir)
            except Exception as error:  # noqa: BLE001 - report it as a row, go on with the others
                log.exception("section %s failed", section)
                rows.append(error_row(f"{section}/error", section, section, error))
            log.info("   %s took %.0f s", section, time.perf_counter() - t0)
    # the cross-check belongs to the observatory rows: attach it to each of them
    if "amortization_crosscheck" in extra:
        for row in rows:
            if row["group"] == "observatory_overhead":
                row["details"]["amortization_crosscheck"] = extra["amortization_crosscheck"]
    result["machine"]["loadavg_end"] = list(os.getloadavg())
    result["duration_s"] = time.perf_counter() - started
    result["summary"] = summarize(rows, threads)
    write_json_atomic(out_dir / "bench.json", result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnn_gradients.bench", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a shorter real run (a few minutes)")
    size.add_argument("--tiny", action="store_true", help="tiny sizes, a few steps: seconds (what the test runs)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"), help="where bench.json goes")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the in-process rows (default 1: per-core numbers, and immune to "
                             "the OpenMP stalls a multi-threaded process suffers on a shared machine); 0 = the "
                             "template's auto (all usable cores)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--step-probe", metavar="JSON", help=argparse.SUPPRESS)  # internal: bench_threads' subprocess
    parser.add_argument("--fresh-probe", metavar="JSON", help=argparse.SUPPRESS)  # internal: bench_fresh's subprocess
    args = parser.parse_args(argv)
    if args.fresh_probe:
        with quiet():
            result = fresh_probe(json.loads(args.fresh_probe))
        sys.stdout.write(json.dumps(result) + "\n")
        return 0
    if args.step_probe:
        run_mod.quiet_known_warnings()
        sys.stdout.write(json.dumps(step_probe(json.loads(args.step_probe))) + "\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    mode = TINY if args.tiny else QUICK if args.quick else FULL
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown --only section(s) {unknown}; choose from {list(SECTIONS)}")
    threads = args.threads if args.threads > 0 else resolve_num_threads(0)
    result = run_benchmark(mode, threads, args.out, sections)
    sys.stdout.write(render_table(result))
    sys.stdout.write(f"\nwrote {args.out / 'bench.json'} in {result['duration_s']:.0f} s\n")
    return 1 if any(r["status"] == "error" for r in result["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
