"""Rows 1-3, in one process, the three variants step-interleaved: template / plain loop, default
callbacks / callbacks=none, task.sample / plain step; and the cross-check of the amortized step."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.clock import window_for
from bench.config import compose_cfg, step_overrides
from bench.modes import MODELS, Mode
from bench.plain_loop import estimate_step_s, plain_participant
from bench.stats import error_row, median, ratio_row, side
from bench.template import TemplateSample, template_participant, template_sample
from bench.turns import interleaved_samples, turn_block

log = logging.getLogger(__name__)


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
