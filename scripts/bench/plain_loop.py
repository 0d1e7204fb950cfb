"""The hand-written PyTorch loop the template is measured against: same network, optimizer, batches and
clipping, none of Lightning."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from bench.clock import apply_fp_mode, flush_denormal, now, sync
from bench.turns import Participant, Turns, TurnTaker, steps_needed
from rnn_gradients import run as run_mod


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
        sync(device)
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
    """The plain loop as one variant of a step-interleaved row."""

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
                sync(device)
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


def estimate_step_s(cfg: DictConfig, device: torch.device) -> float:
    """A rough plain step time (2 steps), to size the timed windows."""
    with flush_denormal(bool(cfg.get("flush_denormal", False))):
        return plain_sample(cfg, warmup=1, window=2, device=device).step_ms / 1e3
