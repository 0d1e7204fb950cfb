"""python -m rnn_gradients.evaluate <run dir or sweep dir>: what a trained run knows, on fresh data and at
longer sequences, from any checkpoint (rnn_gradients.evaluation).

Per run: eval.json (one record per length and checkpoint, with the command that produced it) and
TensorBoard scalars under eval/ at the checkpoint's step, in an event file of their own beside the run's
(its HParams entry and training curves are not touched). A sweep folder: every completed job, one process
per core (the cores training would use: the affinity mask, capped by SLURM_CPUS_PER_TASK), their torch
threads divided among them as a joblib sweep's jobs.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import multiprocessing
import shlex
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rnn_gradients.cluster import cpu_allocation

log = logging.getLogger(__name__)


def _lengths(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seq-len={text!r}: a comma-separated list of integers, e.g. 100,200,400") from None
    if not values:
        raise argparse.ArgumentTypeError(f"--seq-len={text!r}: a comma-separated list of integers, e.g. 100,200,400")
    return values


def runs_under(path: Path) -> list[Path]:
    """The run folder itself, or the completed jobs of a sweep folder (by the report's reader)."""
    from rnn_gradients import contract
    from rnn_gradients.analysis.run_status import read_run
    from rnn_gradients.evaluation import is_run

    if is_run(path):
        return [path]
    jobs = sorted((p.parent for p in path.glob("*/.hydra") if is_run(p.parent)), key=lambda p: (contract.job_number(p.name) or 0, p.name))
    return [job for job in jobs if read_run(job).status == contract.COMPLETED]


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: a ratio that underflowed is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return {k: finite(v) for k, v in value.items()} if isinstance(value, dict) else value


def evaluate_run(run_dir: Path, checkpoint: Path | None, lengths: list[int] | None, val_seed: int | None,
                 val_size: int | None, command: str, threads: int = 0) -> list[dict[str, Any]]:
    """Every record of one run, then eval.json and the eval/ scalars (written only once all are computed)."""
    import torch

    from rnn_gradients import contract, evaluation
    from rnn_gradients.io_utils import write_json_atomic

    if threads:
        torch.set_num_threads(threads)
    run = evaluation.load_run(run_dir, checkpoint)
    trained = int(run.cfg.data.seq_len)
    records = [finite(evaluation.evaluate(run, T, val_seed, val_size)) for T in (lengths or [trained, 2 * trained, 4 * trained])]
    for record in records:
        record["command"] = command
    path = Path(run_dir) / contract.EVAL_FILE
    kept = []
    if path.is_file():
        same = {(r["checkpoint"], r["seq_len"], r["val_seed"], r["val_size"]) for r in records}
        kept = [r for r in json.loads(path.read_text()).get("records", [])
                if (r.get("checkpoint"), r.get("seq_len"), r.get("val_seed"), r.get("val_size")) not in same]
    write_json_atomic(path, {"records": kept + records})
    write_scalars(Path(run_dir), records)
    return records


def write_scalars(run_dir: Path, records: list[dict[str, Any]]) -> None:
    """eval/T<T>/{loss,normalized_loss,metric,log10_ratio_<state>} at the checkpoint's step."""
    from torch.utils.tensorboard import SummaryWriter

    from rnn_gradients import contract

    writer = SummaryWriter(log_dir=str(run_dir / contract.TENSORBOARD_DIR), filename_suffix=".eval")
    for r in records:
        values = {"loss": r["loss"], "normalized_loss": r["normalized_loss"], "metric": r["metric"],
                  **{f"log10_ratio_{s}": v for s, v in r["log10_ratio"].items()}}
        for name, value in values.items():
            if value is not None:
                writer.add_scalar(contract.eval_tag(r["seq_len"], name), value, r["step"])
    writer.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnn_gradients.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="a run folder (holding config_resolved.yaml) or a sweep folder")
    parser.add_argument("--ckpt", type=Path, help="a checkpoint of the run (default: <run>/checkpoints/last.ckpt)")
    parser.add_argument("--seq-len", type=_lengths, help="lengths to evaluate (default: the trained T, 2T and 4T)")
    parser.add_argument("--val-seed", type=int, help="draw a fresh validation set with this seed (default: the run's)")
    parser.add_argument("--val-size", type=int, help="its size (default: the run's data.val_size)")
    parser.add_argument("--jobs", type=int, default=0, help="processes for a sweep (default 0: one per core)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    command = shlex.join([sys.executable, "-m", "rnn_gradients.evaluate", *(sys.argv[1:] if argv is None else argv)])
    runs = runs_under(args.path) if args.path.is_dir() else []
    error = check(args, runs)
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cores, source = cpu_allocation()  # training's rule: the affinity mask, capped by SLURM_CPUS_PER_TASK
    workers = min(len(runs), args.jobs or cores)
    log.info("Evaluating %d run(s), %d at a time (%d cores: %s)", len(runs), max(workers, 1), cores, source)
    jobs = [(run, args.ckpt, args.seq_len, args.val_seed, args.val_size, command, max(1, cores // max(workers, 1)))
            for run in runs]
    if workers > 1:
        # spawn, not fork: check() has run torch in this process, and a forked OpenMP runtime can hang
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_evaluate_job, jobs))
    else:
        results = [_evaluate_job(job) for job in jobs]
    for run, records in zip(runs, results):
        for r in records:
            log.info("%s | T=%d: normalized loss %.4g, %s %.3g, log10 ratio %s", run.name, r["seq_len"], r["normalized_loss"],
                     r["metric_name"], r["metric"], r["log10_ratio"])
    return 0


def _evaluate_job(job: tuple) -> list[dict[str, Any]]:
    return evaluate_run(*job)


def check(args: argparse.Namespace, runs: list[Path]) -> str | None:
    """Everything refused before anything is written (`runs`: runs_under the path): one line each."""
    from rnn_gradients import evaluation
    from rnn_gradients.rules import ConfigError

    if not args.path.is_dir():
        return f"path={str(args.path)!r} is not a folder"
    if not runs:
        return f"path={str(args.path)!r} holds no run (no config_resolved.yaml, and no completed job folder holding one)"
    if args.ckpt is not None and len(runs) > 1:
        return f"--ckpt={str(args.ckpt)!r} is not allowed with a sweep folder: --ckpt names one run's checkpoint"
    if args.val_size is not None and args.val_size < 1:
        return f"--val-size={args.val_size} is not allowed: --val-size must be an integer >= 1"
    if args.jobs < 0:
        return f"--jobs={args.jobs} is not allowed: --jobs must be an integer >= 0"
    try:
        for run_dir in runs:
            run = evaluation.load_run(run_dir, args.ckpt)
            trained = int(run.cfg.data.seq_len)
            for T in args.seq_len or [trained]:
                evaluation.network(run, evaluation.task_at(run, T, args.val_seed, args.val_size))
    except ConfigError as error:
        return str(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
