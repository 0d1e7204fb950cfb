"""Command line: `rnn-gradients-figures SWEEP_DIR [SWEEP_DIR ...] [--out DIR] [--jobs N] [--only FIGURE ...]`.

Each SWEEP_DIR may be a sweep folder, a single run folder, or any parent of sweeps. Exit codes: 0 all
written; 1 a figure failed (the rest is still written, the traceback logged); 2 a path does not exist,
is not a folder, or no usable run (a finished one: a summary with status completed or diverged) was
found: one line on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

from rnn_gradients import contract
from rnn_gradients.analysis import NoRunsError, load_events, load_runs, status_counts, warn_problems
from rnn_gradients.figures.registry import FIGURE_NAMES, draw_figures, needed_tags
from rnn_gradients.figures.style import FIGURE_FAILED
from rnn_gradients.figures.summary_files import CSV_FILE, MARKDOWN_FILE, NUMBERS_FILE, UNFINISHED_MEANING, write_tables

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("outputs/figures")


def make_report(paths: Sequence[Path | str], out_dir: Path | str = DEFAULT_OUT, jobs: int = 1,
                only: Sequence[str] | None = None) -> dict[str, Any]:
    """Load every run under `paths`, draw the figures into `out_dir`, write the tables; returns the
    headline numbers (also written to out_dir/summary_numbers.json) with each figure's data added.

    Raises FileNotFoundError / NotADirectoryError for a bad path and NoRunsError when no run is finished
    (completed or diverged). Nothing is written outside out_dir.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"--out is not a folder: {out_dir}")
    runs = load_runs(paths, exclude=[out_dir], events=False, warn=False)
    where = ", ".join(str(p) for p in paths)
    if not runs:
        raise NoRunsError(f"no runs found under {where} (looked for job folders holding {contract.HYDRA_DIR}/ or "
                          f"{contract.SUMMARY_FILE})")
    if not any(r.usable for r in runs):
        counts = status_counts(runs)["all"]
        states = ", ".join(f"{n} {s} ({UNFINISHED_MEANING[s]})" if s in UNFINISHED_MEANING else f"{n} {s}"
                           for s, n in counts.items() if n and s != "total")
        raise NoRunsError(f"no usable run under {where}: {len(runs)} job folder(s), none finished (completed or "
                          f"diverged): {states}")
    warn_problems(runs)  # only now, so that the answer for a sweep without usable runs is a single line
    load_events(runs, jobs=jobs, tags=needed_tags())
    for experiment, counts in status_counts(runs).items():
        log.info("%s: %s", experiment, ", ".join(f"{k}={v}" for k, v in counts.items() if v))
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = draw_figures(runs, out_dir, only=only)
    numbers = write_tables(runs, out_dir, figures, sources=[str(p) for p in paths])
    numbers["figure_data"] = {name: info.get("data", {}) for name, info in figures.items()}
    log.info("Wrote %s, %s and %s to %s", CSV_FILE, MARKDOWN_FILE, NUMBERS_FILE, out_dir)
    return numbers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnn-gradients-figures",
        description="Figures (PNG + PDF), summary.csv, summary.md and summary_numbers.json from the runs of one or "
                    "more sweeps of `python -m rnn_gradients.train -m experiment=...`.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="SWEEP_DIR",
                        help="a sweep folder, a single run folder, or a parent folder of several sweeps")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    parser.add_argument("--jobs", type=int, default=1, help="processes reading event files (default: 1)")
    parser.add_argument("--only", nargs="+", choices=FIGURE_NAMES, metavar="FIGURE",
                        help=f"draw only these figures ({', '.join(FIGURE_NAMES)}); the tables are always written")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="[%(levelname)s] %(name)s: %(message)s")
    for noisy in ("matplotlib", "PIL", "fontTools", "absl"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # TensorBoard's reader logs each file switch and each resume purge; problems are reported by us.
    logging.getLogger("tensorboard").setLevel(logging.DEBUG if args.verbose else logging.ERROR)
    matplotlib.use("Agg")
    if args.jobs < 1:
        print("error: --jobs must be >= 1", file=sys.stderr)
        sys.exit(2)
    try:
        numbers = make_report(args.paths, args.out, jobs=args.jobs, only=args.only)
    except (FileNotFoundError, NotADirectoryError, NoRunsError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    failed = [name for name, info in numbers["figures"].items() if info["status"] == FIGURE_FAILED]
    if failed:
        log.error("Figure(s) failed: %s (see the tracebacks above)", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
