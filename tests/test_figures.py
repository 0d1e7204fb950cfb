"""The figures command on a hand-made sweep with known values (handmade_sweep; no training is run):
every figure and table written, the exit codes and one-line errors. The numbers behind the figures are
checked in test_analysis.py; the import graph in test_figures_imports.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from handmade_sweep import N_JOBS, make_sweep, write_job
from rnn_gradients.figures.registry import FIGURE_NAMES, needed_tags

# Every figure, in the order README.md's table of figures lists them: the registry must hold exactly these.
ALL_FIGURES = ("scalar_toy", "grad_flow_through_time", "gradient_paths", "learning_curves", "grad_norm_training",
               "loss_vs_seq_len", "divergence_vs_lr", "loss_cliff", "grad_histograms", "cures", "recurrent_spectrum",
               "length_generalization")
# What the hand-made sweep has data for. It lacks: the cell-state paths in grad_flow.npz (gradient_paths),
# loss_cliff.npz (loss_cliff: drawn in test_loss_cliff_figure.py), the cures experiment and spectrum.npz (cures,
# recurrent_spectrum: drawn in test_pipeline.py); those are skipped here.
FIGURES = ("scalar_toy", "grad_flow_through_time", "learning_curves", "grad_norm_training", "loss_vs_seq_len",
           "divergence_vs_lr", "grad_histograms")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("sweep"))


def test_registry_holds_the_documented_figures_in_order():
    assert FIGURE_NAMES == ALL_FIGURES
    # what is kept of the event files: the figures' tags and the tables' (the rest is not read)
    assert needed_tags() == {"val/normalized_loss", "train/loss", "grad_norm/total_preclip", "grad_norm/clipped",
                             "grad_hist/rnn.weight_hh_l0"}


def run_figures(args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "rnn_gradients.figures", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def cli_out(sweep, tmp_path_factory):
    out = sweep / "figures"  # inside the scanned tree: must not be taken for a run
    result = run_figures([sweep, "--out", out, "-q"], cwd=tmp_path_factory.mktemp("cwd"))
    return result, out


def test_cli_missing_path_exits_2_with_one_line(tmp_path):
    result = run_figures([tmp_path / "does-not-exist"], cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does-not-exist" in lines[0]
    assert not (tmp_path / "outputs").exists()


def test_cli_no_usable_runs_exits_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_figures([empty], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "no runs found" in result.stderr
    waiting = tmp_path / "waiting"
    write_job(waiting / "0", experiment="arms", summary=None)
    write_job(waiting / "1", experiment="arms", summary="{broken")
    result = run_figures([waiting], cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "none finished" in result.stderr and "1 unreadable" in result.stderr
    assert not (tmp_path / "outputs").exists()  # nothing written


def test_cli_writes_every_figure_and_table(cli_out):
    import matplotlib.image

    result, out = cli_out
    assert result.returncode == 0, result.stderr
    for name in FIGURES:
        png, pdf = out / f"{name}.png", out / f"{name}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        image = matplotlib.image.imread(png)
        assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500, (name, image.shape)
        assert pdf.read_bytes()[:5] == b"%PDF-", name
    assert "events.out.tfevents.x" in result.stderr  # the corrupt file is named in the warnings


def test_cli_tables(cli_out):
    import csv

    result, out = cli_out
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == N_JOBS  # one per job folder, finished or not; the output folder is not a run
    statuses = sorted(r["status"] for r in rows)
    assert statuses.count("missing") == 2 and statuses.count("unreadable") == 1
    assert statuses.count("failed") == 1 and statuses.count("interrupted") == 1
    spike_row = next(r for r in rows if r["run_dir"].endswith(os.path.join("arms", "3")))
    assert spike_row["n_grad_norm_spikes"] == "1"
    md = (out / "summary.md").read_text()
    assert "| arms | LSTM | 1 | adding | 50 | 3 | 0.11 |" in md
    assert "| sgd | norm | 1 | 2 | 0 | 1 | 1 | 0.5 |" in md
    numbers = json.loads((out / "summary_numbers.json").read_text())
    assert numbers["counts"]["all"]["total"] == N_JOBS
    # one status vocabulary (rnn_gradients.contract), as in the sweep report
    assert numbers["counts"]["all"]["missing"] == 2 and numbers["counts"]["all"]["unreadable"] == 1
    assert len(numbers["missing"]) == 2 and len(numbers["unreadable"]) == 1
    # failed lists the failed job only; the interrupted one has its own list and line
    assert [Path(p).parts[-2:] for p in numbers["failed"]] == [("arms", "10")]
    assert [Path(p).parts[-2:] for p in numbers["interrupted"]] == [("exploding", "9")]
    assert "| experiment | completed | diverged | failed | interrupted | cancelled | missing | unreadable | other | total |" in md
    assert "| **all** | 19 | 1 | 1 | 1 | 0 | 2 | 1 | 0 | 25 |" in md
    failed_line = next(line for line in md.splitlines() if line.startswith("Failed jobs: "))
    interrupted_line = next(line for line in md.splitlines() if line.startswith("Interrupted jobs: "))
    assert failed_line.count("`") == 2 and failed_line.endswith(f"{os.sep}arms{os.sep}10`")
    assert interrupted_line.count("`") == 2 and interrupted_line.endswith(f"{os.sep}exploding{os.sep}9`")
    # the aggregation of every number over seeds is named once, at the top
    assert md.splitlines()[2].startswith("Aggregation: a number over seeds is the median of the per-seed values")
    assert "failed_or_running" not in (out / "summary_numbers.json").read_text()
    assert all(numbers["figures"][name]["status"] == "written" for name in FIGURES)
    fractions = {(d["optimizer"], d["clipping"], d["lr"]): d["fraction"] for d in numbers["divergence"]}
    assert fractions == {("sgd", "none", 0.01): 0.0, ("sgd", "none", 1.0): 1.0, ("sgd", "norm", 0.01): 0.5,
                         ("sgd", "norm", 1.0): 0.5}
