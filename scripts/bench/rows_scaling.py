"""Row 6 and the denormals rows: plain step time against T (least-squares line), and with denormals
kept / flushed to zero."""

from __future__ import annotations

from typing import Any

import torch

from bench.clock import flush_denormal, window_for
from bench.config import compose_cfg, step_overrides
from bench.modes import MODELS, Mode
from bench.plain_loop import estimate_step_s, plain_sample
from bench.stats import counterbalanced, info_row, interleave, linear_fit, median, side


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


def bench_denormals(mode: Mode, device: torch.device, estimates: dict[tuple[str, int], float]) -> list[dict[str, Any]]:
    """The longest T of rows 1-3, plain step with the IEEE default / torch.set_flush_denormal(True)."""
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
