"""The probe rows (issue 18): what one gradient-flow probe call costs now that the probe steps the cell's
own fused layer one time step at a time (rnn_gradients.observatory.probe), against the hand-written
unrolled twin it replaced (tests/unrolled_twin.py). The callback runs this call every
callbacks.grad_flow.every_n_steps steps, so a slower probe is observatory cost (row 2) paid there.

Both compute ∂L/∂h_t (and ∂L/∂c_t) for every t in float64 on the same network, task and probe batch; calls
alternate A B, B A, A B, ... in one process, so load from other processes hits both alike; one sample is
one call; the row is the ratio of the medians.
"""

from __future__ import annotations

import copy
import importlib.util
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from bench.clock import flush_denormal, now
from bench.config import compose_cfg
from bench.modes import MODELS, Mode
from bench.stats import error_row, interleave, median, ratio_row, side
from rnn_gradients.networks import RecurrentNetwork, network_for
from rnn_gradients.observatory.probe import time_gradient_norms
from rnn_gradients.tasks.adding import Adding

log = logging.getLogger(__name__)

GROUP = "probe"
TITLE = "gradient-flow probe (fused layer stepped, autograd) / unrolled twin"
# Imported from tests/ on purpose: the twin is the reference the probe replaced, kept there as the tests'
# independent computation of the same gradients (the probe's tests hold it to the twin). The benchmark
# times exactly that file rather than a copy of it that could drift from what the tests compare against.
TWIN_PATH = Path(__file__).resolve().parents[2] / "tests" / "unrolled_twin.py"
TWIN_MODULE = "_bench_unrolled_twin"  # not `unrolled_twin`: never shadows the tests' own import of it


def load_twin(path: Path = TWIN_PATH) -> ModuleType:
    """tests/unrolled_twin.py as a module, loaded by path (tests/ is no package and not on sys.path)."""
    if TWIN_MODULE in sys.modules:
        return sys.modules[TWIN_MODULE]
    spec = importlib.util.spec_from_file_location(TWIN_MODULE, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the unrolled twin from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[TWIN_MODULE] = module  # its dataclasses look their module up there while the file runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[TWIN_MODULE]
        raise
    return module


def probe_inputs(model: str, seq_len: int, hidden: int, batch: int, seed: int, dtype: torch.dtype
                 ) -> tuple[RecurrentNetwork, Adding, Tensor, Tensor]:
    """What GradFlowLogger hands the probe: a `dtype` copy of the network (here at its initialization,
    seeded, without disturbing the process's global RNG), the task, and the fixed probe batch. The copy is
    made once, outside the timed calls: the callback makes it either way, whichever probe it calls."""
    task = Adding(seq_len)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = network_for(model, task.input_size, task.output_size, hidden_size=hidden)
    x, y = task.sample(batch, torch.Generator().manual_seed(seed))
    return copy.deepcopy(net).to(dtype), task, x.to(dtype), (y.to(dtype) if y.is_floating_point() else y)


def timed(fn: Callable[[], Any]) -> Callable[[], tuple[float, float]]:
    """One call of fn as a sample: (wall ms, thread CPU ms)."""
    def call() -> tuple[float, float]:
        wall0, cpu0 = now()
        fn()
        wall1, cpu1 = now()
        return (wall1 - wall0) * 1e3, (cpu1 - cpu0) * 1e3
    return call


def max_relative_difference(a: Tensor, b: Tensor) -> float:
    """max |a - b| / |b| over the curve (0 where both are 0): the two probes must measure the same thing."""
    a, b = a.double(), b.double()
    return float(((a - b).abs() / b.abs().clamp_min(1e-300)).max())


def agreement(new: Any, old: Any) -> dict[str, float]:
    """How far the probe's curves are from the twin's, per state (h; c for the LSTM)."""
    out = {"h": max_relative_difference(new.norms["h"], old.hidden)}
    if old.cell is not None and "c" in new.norms:
        out["c"] = max_relative_difference(new.norms["c"], old.cell)
    return out


def rounds_for(pair_s: float, mode: Mode) -> int:
    """Rounds (one call of each probe) that fill mode.probe_budget_s at pair_s per round."""
    return max(mode.probe_min_rounds, min(mode.probe_max_rounds, int(mode.probe_budget_s / max(pair_s, 1e-6))))


def probe_row(model: str, seq_len: int, mode: Mode, batch: int, seed: int, dtype: torch.dtype) -> dict[str, Any]:
    """One row: two warm-up calls of each (the first checks that both agree, the second sizes the rounds),
    then `rounds` rounds of one call each."""
    twin = load_twin()
    net, task, x, y = probe_inputs(model, seq_len, mode.probe_hidden, batch, seed, dtype)
    probes: dict[str, Callable[[], Any]] = {"probe": lambda: time_gradient_norms(net, task, x, y),
                                            "twin": lambda: twin.time_gradient_norms(net, task, x, y)}
    first = {name: fn() for name, fn in probes.items()}  # the first call of each is 2-5x slower: not timed
    close = agreement(first["probe"], first["twin"])
    del first  # the timed calls keep no result alive: neither runs with the other's tensors still held
    variants = {name: timed(fn) for name, fn in probes.items()}
    warm = {name: call()[0] for name, call in variants.items()}  # a second warm-up call: the estimate
    rounds = rounds_for(sum(warm.values()) / 1e3, mode)
    log.info("probe %s/T=%d: warm-up %.1f / %.1f ms, %d rounds", model, seq_len, warm["probe"], warm["twin"], rounds)
    res = interleave(variants, rounds)
    wall = {name: [s[0] for s in samples] for name, samples in res.items()}
    cpu = {name: median([s[1] for s in samples]) for name, samples in res.items()}
    return ratio_row(
        f"{GROUP}/{model}/T={seq_len}", GROUP, f"{model.upper()} T={seq_len}: {TITLE}",
        side("probe: fused layer stepped + autograd", wall["probe"], "ms"),
        side("unrolled twin (tests/unrolled_twin.py)", wall["twin"], "ms"),
        {"model": model, "seq_len": seq_len, "hidden": mode.probe_hidden, "batch": batch, "task": "adding",
         "dtype": str(dtype).removeprefix("torch."), "rounds": rounds, "weights": "initialization, torch.manual_seed(0)",
         "warmup_ms": warm, "agreement_max_rel_diff": close,
         "cpu_time": {"a_median_ms": cpu["probe"], "b_median_ms": cpu["twin"], "ratio": cpu["probe"] / cpu["twin"]}},
    )


def bench_probe(mode: Mode) -> list[dict[str, Any]]:
    """A row per model and T of mode.probe_seq_lens, in the floating-point mode the training run is in."""
    cfg = compose_cfg([])
    flow = cfg.callbacks.grad_flow
    batch = mode.probe_batch or int(flow.probe_size)
    dtype = getattr(torch, str(flow.get("dtype", "float64")))
    rows: list[dict[str, Any]] = []
    with flush_denormal(bool(cfg.get("flush_denormal", False))):
        for seq_len in mode.probe_seq_lens:
            for model in MODELS:
                try:
                    rows.append(probe_row(model, seq_len, mode, batch, int(flow.probe_seed), dtype))
                except Exception as error:  # noqa: BLE001 - a broken row is reported, the others still run
                    log.exception("probe %s/T=%d failed", model, seq_len)
                    rows.append(error_row(f"{GROUP}/{model}/T={seq_len}", GROUP, f"{model.upper()} T={seq_len}: {TITLE}", error))
    return rows
