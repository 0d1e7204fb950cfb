"""Rows 1-2 again for the shortest step (RNN, the first T), each sample one variant alone in a fresh
process (`--fresh-probe`), the variants alternating in counterbalanced order: a cross-check of the
in-process, step-interleaved rows, which build a dozen trainers in one process."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bench.clock import apply_fp_mode, window_for
from bench.config import compose_cfg, step_overrides
from bench.modes import MODES, Mode
from bench.plain_loop import estimate_step_s, plain_sample
from bench.proc import bench_command, run_command
from bench.stats import interleave, ratio_row, side
from bench.template import template_sample
from rnn_gradients import run as run_mod
from rnn_gradients.runtime import keep_freed_memory

log = logging.getLogger(__name__)

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
    model, seq_len = "rnn", mode.seq_lens[0]
    key = f"{model}/T={seq_len}"
    est = estimates.setdefault((model, seq_len), estimate_step_s(compose_cfg(step_overrides(mode, model, seq_len)), torch.device("cpu")))
    window = window_for(est, mode.fresh_budget_s, mode.min_window, 10 * mode.max_window)

    def probe(variant: str) -> float:
        spec = {"mode": mode.name, "model": model, "seq_len": seq_len, "variant": variant, "window": window,
                "threads": threads}
        _, proc = run_command(bench_command("--fresh-probe", json.dumps(spec)), workdir, 900)
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
