"""The configs the benchmark measures: composed as `python -m rnn_gradients.train` would, and the
callbacks' periodic events (cadence classes) a template step is amortized over."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from bench.modes import Mode
from rnn_gradients.paths import config_dir


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
