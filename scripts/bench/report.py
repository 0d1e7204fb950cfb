"""What the benchmark reports besides its rows: the machine, the table printed on stdout, the summary."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch


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
