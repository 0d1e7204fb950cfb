"""Performance benchmark: `python scripts/bench [--quick|--tiny] [--out outputs/bench]`.

The command line and the run: one section after another (a section that fails becomes an error row and
the others still run), then <out>/bench.json (atomically) and the table on stdout. The rows are listed
in the package's docstring (scripts/bench/__init__.py) and explained in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from bench.clock import quiet
from bench.config import compose_cfg
from bench.modes import FULL, QUICK, TINY, Mode
from bench.report import machine_info, render_table, summarize
from bench.rows_fresh import bench_fresh, fresh_probe
from bench.rows_gpu import bench_gpu
from bench.rows_probe import bench_probe
from bench.rows_spectrum import bench_spectrum
from bench.rows_scaling import bench_denormals, bench_scaling
from bench.rows_startup import bench_startup
from bench.rows_steps import bench_crosscheck, bench_steps
from bench.rows_sweep import bench_sweep
from bench.rows_threads import bench_malloc, bench_threads, step_probe
from bench.stats import error_row
from rnn_gradients import run as run_mod
from rnn_gradients.io_utils import write_json_atomic
from rnn_gradients.runtime import keep_freed_memory, thread_plan

log = logging.getLogger(__name__)

SECTIONS = ("steps", "fresh", "crosscheck", "scaling", "denormals", "probe", "spectrum", "malloc", "threads", "startup", "sweep", "gpu")


def run_section(section: str, mode: Mode, workdir: Path, threads: int, estimates: dict[tuple[str, int], float],
                extra: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one section (the cross-check goes into `extra`: it belongs to the observatory rows)."""
    device = torch.device("cpu")
    if section == "steps":
        return bench_steps(mode, workdir, device, estimates)
    if section == "fresh":
        return bench_fresh(mode, workdir, threads, estimates)
    if section == "crosscheck":
        if mode.crosscheck_steps:
            extra["amortization_crosscheck"] = bench_crosscheck(mode, workdir, device)
        return []
    if section == "scaling":
        return bench_scaling(mode, device, estimates)
    if section == "denormals":
        return bench_denormals(mode, device, estimates)
    if section == "probe":
        return bench_probe(mode)
    if section == "spectrum":
        return bench_spectrum(mode)
    if section == "malloc":
        return bench_malloc(mode, workdir)
    if section == "threads":
        return bench_threads(mode, workdir)
    if section == "startup":
        return bench_startup(mode, workdir)
    if section == "sweep":
        return bench_sweep(mode, workdir)
    if section == "gpu":
        return bench_gpu(mode, workdir)
    return []


def run_benchmark(mode: Mode, threads: int, out_dir: Path, sections: Sequence[str] = SECTIONS) -> dict[str, Any]:
    torch.set_num_threads(threads)
    # The process-wide allocator setting train.py applies: template and plain loop both run under it.
    malloc_keep_mb = int(compose_cfg([]).malloc_keep_mb)
    malloc_applied = keep_freed_memory(malloc_keep_mb)
    run_mod.quiet_known_warnings()
    estimates: dict[tuple[str, int], float] = {}
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    result = {"mode": mode.name, "machine": machine_info(threads), "settings": asdict(mode), "rows": rows,
              "malloc_keep_mb": malloc_keep_mb if malloc_applied else 0}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rnn-gradients-bench-") as tmp:
        for section in sections:
            t0 = time.perf_counter()
            log.info("== %s", section)
            try:
                rows += run_section(section, mode, Path(tmp), threads, estimates, extra)
            except Exception as error:  # noqa: BLE001 - report it as a row, go on with the others
                log.exception("section %s failed", section)
                rows.append(error_row(f"{section}/error", section, section, error))
            log.info("   %s took %.0f s", section, time.perf_counter() - t0)
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
    parser = argparse.ArgumentParser(prog="python scripts/bench", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a shorter real run (a few minutes)")
    size.add_argument("--tiny", action="store_true", help="tiny sizes, a few steps: seconds (what the test runs)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench"), help="where bench.json goes")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the in-process rows (default 1: per-core numbers, and immune to "
                             "the OpenMP stalls a multi-threaded process suffers on a shared machine); 0 = the "
                             "template's auto (all usable cores)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--step-probe", metavar="JSON", help=argparse.SUPPRESS)  # internal: rows_threads' subprocess
    parser.add_argument("--fresh-probe", metavar="JSON", help=argparse.SUPPRESS)  # internal: rows_fresh's subprocess
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
    threads = args.threads if args.threads > 0 else thread_plan(0)[0]
    result = run_benchmark(mode, threads, args.out, sections)
    sys.stdout.write(render_table(result))
    sys.stdout.write(f"\nwrote {args.out / 'bench.json'} in {result['duration_s']:.0f} s\n")
    return 1 if any(r["status"] == "error" for r in result["rows"]) else 0
