#!/usr/bin/env python
"""Run the four ablation sweeps of a profile, evaluate the arms sweep's trained runs at 2T and 4T
(python -m rnn_gradients.evaluate: 19 s for the quick profile), then rebuild every figure: what
`make reproduce` does.

    python scripts/reproduce.py [--profile smoke|quick|full] [--out outputs/figures] [hydra overrides ...]

Each sweep is an ordinary Hydra multirun (printed before it starts, so it can be re-run by hand);
sweeps land in outputs/reproduce/<profile>_<timestamp>/<experiment>/.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from rnn_gradients.paths import config_dir

EXPERIMENTS = ("arms", "exploding", "forget_bias", "cures")
log = logging.getLogger("reproduce")


def parse_args() -> argparse.Namespace:
    profiles = sorted(p.stem for p in (config_dir() / "profile").glob("*.yaml"))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="quick", choices=profiles, help="scale of the sweeps (default: quick)")
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS)
    parser.add_argument("--output-dir", default="outputs", help="root of the sweeps (default: outputs)")
    parser.add_argument("--out", default=None, help="figures folder (default: <output-dir>/figures)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every sweep, e.g. trainer=gpu")
    return parser.parse_args()


def run(cmd: list[str]) -> int:
    log.info("$ %s", shlex.join(cmd))
    return subprocess.run(cmd, check=False).returncode


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    args = parse_args()
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    root = Path(args.output_dir) / "reproduce" / f"{args.profile}_{stamp}"
    out = Path(args.out) if args.out else Path(args.output_dir) / "figures"
    start, failed = time.perf_counter(), []
    for experiment in args.experiments:
        code = run([
            sys.executable, "-m", "rnn_gradients.train", "-m",
            f"experiment={experiment}", f"profile={args.profile}",
            f"paths.output_dir={args.output_dir}", f"hydra.sweep.dir={root / experiment}",
            "trainer.enable_progress_bar=false", *args.overrides,
        ])
        if code != 0:  # keep going: the figures report what is missing
            failed.append(experiment)
            log.error("sweep %s exited with code %d", experiment, code)
    log.info("sweeps done in %.0fs", time.perf_counter() - start)
    if (root / "arms").is_dir() and run([sys.executable, "-m", "rnn_gradients.evaluate", str(root / "arms")]) != 0:
        failed.append("evaluate arms")  # the figures go on without the length_generalization figure
    jobs = str(len(os.sched_getaffinity(0)))  # read the event files in parallel
    code = run([sys.executable, "-m", "rnn_gradients.figures", str(root), "--out", str(out), "--jobs", jobs])
    log.info("total %.0fs; sweeps in %s, figures in %s", time.perf_counter() - start, root, out)
    if failed:
        log.error("these steps failed: %s", ", ".join(failed))
    return code or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
