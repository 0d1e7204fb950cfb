"""Row 7 on a CUDA device (skipped without one): the template on trainer=gpu / a plain autocast loop,
and the observatory's cost there, from one step-interleaved run of three variants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.clock import window_for
from bench.config import compose_cfg, step_overrides
from bench.modes import Mode
from bench.plain_loop import plain_participant, plain_sample
from bench.rows_steps import observatory_breakdown
from bench.stats import median, ratio_row, side, skip_row
from bench.template import template_participant
from bench.turns import interleaved_samples, turn_block


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
