"""The loss_cliff figure and its summary table on hand-made exploding runs (no training is run): job folders
as handmade_sweep writes them (summary.json + .hydra/) with hand-made loss_cliff.npz files whose numbers are
chosen here. Checked: the loader, which setting and seeds loss_cliff_data picks and what it returns, the
table's numbers (recomputed here from the arrays written), the figure written by the command line, and a
sweep without any loss_cliff.npz (the figure skips, the others are drawn). The file's keys are spelled out
on purpose: the reader is checked against the documented format, not against its own constants."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from handmade_sweep import ADDING_BASELINE, by_path, make_sweep, write_job
from rnn_gradients.analysis import LossCliff, load_loss_cliff, load_runs, loss_cliff_data, loss_cliff_table

B = ADDING_BASELINE
ALPHAS = np.logspace(-4, 1, 11)  # 1e-4 .. 10, half a decade apart
NAN = float("nan")
# what the hand-made sweep draws besides this one (gradient_paths: its grad_flow.npz predates the paths; cures and
# recurrent_spectrum: it has no cures sweep and no spectrum.npz, both drawn in test_pipeline)
OTHER_FIGURES = ("scalar_toy", "grad_flow_through_time", "learning_curves", "grad_norm_training", "loss_vs_seq_len",
                 "divergence_vs_lr", "grad_histograms")


def run_figures(args, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "rnn_gradients.figures", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=240)


def wall(height: float, at: float = 0.3) -> np.ndarray:
    """A flat floor at 0.9 × baseline up to α = `at`, then a wall rising `height` decades per decade of α."""
    return np.where(ALPHAS < at, 0.9 * B, 0.9 * B * (ALPHAS / at) ** height)


def record(step: int, grad_norm: float, losses: np.ndarray, actual_alpha: float, actual_loss: float) -> dict:
    return {"step": step, "grad_norm": grad_norm, "alphas": ALPHAS, "losses": losses, "loss0": 0.9 * B,
            "actual_alpha": actual_alpha, "actual_loss": actual_loss}


def write_cliff(job: Path, records: dict[str, dict], baseline: float | None = B) -> None:
    arrays = {f"{kind}_{field}": np.asarray(value) for kind, rec in records.items() for field, value in rec.items()}
    if baseline is not None:
        arrays["baseline_loss"] = np.asarray(baseline)
    np.savez_compressed(job / "loss_cliff.npz", **arrays)


NONE0_LOSSES = np.append(wall(3.0)[:-1], NAN)  # the last α (10) not finite
# (optimizer, clipping, lr, seed) -> (records, summary overrides); every job of the exploding experiment
CASES = {
    ("sgd", "none", 0.5, 0): ({"max_norm": record(20, 80.0, NONE0_LOSSES, 2.0, 50 * B),
                               "before_divergence": record(21, 300.0, wall(4.0, 0.1), 6.0, NAN),
                               "first_uphill": record(1, 3.0, wall(1.5), 1.6, 2.7 * B)},
                              {"status": "diverged", "diverged": True, "diverged_at_step": 22}),
    ("sgd", "none", 0.5, 1): ({"max_norm": record(35, 40.0, wall(2.0), 1.0, 3 * B)}, {}),
    ("sgd", "norm", 0.5, 0): ({"max_norm": record(18, 70.0, wall(3.0), 0.05, 0.88 * B)}, {}),
    ("sgd", "norm", 0.5, 1): ({"max_norm": record(40, 50.0, wall(3.0), 0.04, 0.85 * B)}, {}),
    ("sgd", "value", 0.5, 1): ({"max_norm": record(22, 90.0, wall(3.0), 1.5, NAN)}, {}),  # landed on a NaN
    ("sgd", "none", 0.1, 0): ({"max_norm": record(5, 10.0, wall(1.0), 0.5, 1.2 * B)}, {}),
    ("sgd", "norm", 0.1, 0): ({"max_norm": record(6, 9.0, wall(1.0), 0.05, 0.9 * B)}, {}),
    ("sgd", "norm", 1.0, 0): ({"max_norm": record(3, 100.0, wall(3.0), 0.1, 0.9 * B)}, {}),  # no unclipped run
    ("adam", "none", 0.5, 0): ({"max_norm": record(7, 5.0, wall(1.0), 0.3, 1.0 * B)}, {}),
    ("adam", "norm", 0.5, 0): ({"max_norm": record(8, 4.0, wall(1.0), 0.3, 1.0 * B)}, {}),
}


@pytest.fixture(scope="module")
def cliff_sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cliff") / "exploding"
    for job, ((optimizer, clipping, lr, seed), (records, summary)) in enumerate(CASES.items()):
        folder = write_job(root / str(job), experiment="exploding", arm="LSTM" if clipping == "none" else "LSTM+clip",
                           clipping=clipping, optimizer=optimizer, lr=lr, seed=seed, steps=100, summary=summary)
        write_cliff(folder, records)
    n = len(CASES)
    write_job(root / str(n), experiment="exploding", arm="LSTM", clipping="none", optimizer="sgd", lr=0.5, seed=2,
              steps=100)  # a run without the file (made before the recorder)
    damaged = write_job(root / str(n + 1), experiment="exploding", arm="LSTM", clipping="none", optimizer="sgd",
                        lr=0.5, seed=3, steps=100)
    broken = CASES[("sgd", "none", 0.5, 1)][0]["max_norm"]
    write_cliff(damaged, {"max_norm": {k: v for k, v in broken.items() if k != "actual_loss"}})
    return root


@pytest.fixture(scope="module")
def runs(cliff_sweep):
    return load_runs([cliff_sweep], events=False, warn=False)


def job_of(case: tuple) -> str:
    return f"exploding/{list(CASES).index(case)}"


# ------------------------------------------------------------------------------------------------ loader


def test_loader_reads_every_field_and_each_kind(cliff_sweep):
    job = cliff_sweep / str(list(CASES).index(("sgd", "none", 0.5, 0)))
    written = CASES[("sgd", "none", 0.5, 0)][0]
    top = load_loss_cliff(job)
    assert top.kind == "max_norm" and top.step == 20 and top.grad_norm == 80.0 and top.baseline_loss == B
    np.testing.assert_array_equal(top.alphas, ALPHAS)
    np.testing.assert_array_equal(top.losses, written["max_norm"]["losses"])  # NaN kept as NaN
    assert (top.loss0, top.actual_alpha, top.actual_loss) == (0.9 * B, 2.0, 50 * B)
    before = load_loss_cliff(job, "before_divergence")
    assert before.step == 21 and before.grad_norm == 300.0 and math.isnan(before.actual_loss)
    assert load_loss_cliff(cliff_sweep / "1", "before_divergence") is None  # a run that did not diverge
    uphill = load_loss_cliff(job, "first_uphill")
    assert (uphill.step, uphill.grad_norm, uphill.actual_alpha, uphill.actual_loss) == (1, 3.0, 1.6, 2.7 * B)
    np.testing.assert_array_equal(uphill.losses, wall(1.5))
    assert load_loss_cliff(cliff_sweep / "1", "first_uphill") is None  # files without the kind still load
    assert load_loss_cliff(cliff_sweep / str(len(CASES))) is None  # no file


def test_loader_baseline_from_the_run_and_infinite_losses(tmp_path):
    losses = wall(3.0)
    losses[-2:] = [np.inf, -np.inf]
    write_cliff(tmp_path, {"max_norm": record(1, 2.0, losses, 0.1, 0.2)}, baseline=None)
    cliff = LossCliff.load(tmp_path / "loss_cliff.npz", baseline_loss=0.5)
    assert cliff.baseline_loss == 0.5 and cliff.before_divergence is None
    assert np.isnan(cliff.max_norm.losses[-2:]).all() and np.isfinite(cliff.max_norm.losses[:-2]).all()
    with pytest.raises(ValueError):
        LossCliff.load(tmp_path / "loss_cliff.npz")  # no baseline anywhere


def test_runs_load_with_or_without_the_file(runs):
    assert len(runs) == len(CASES) + 2 and all(r.usable for r in runs)
    plain = by_path(runs, f"exploding/{len(CASES)}")
    assert plain.loss_cliff is None and plain.problems == [] and plain.get("lr") == 0.5
    damaged = by_path(runs, f"exploding/{len(CASES) + 1}")
    assert damaged.loss_cliff is None
    assert len(damaged.problems) == 1 and "loss_cliff.npz: unreadable" in damaged.problems[0]
    assert "max_norm_actual_loss" in damaged.problems[0]
    diverged = by_path(runs, job_of(("sgd", "none", 0.5, 0)))
    assert diverged.loss_cliff.max_norm.step == 20 and diverged.loss_cliff.before_divergence.step == 21


# ------------------------------------------------------------------------------------ the figure's data


def test_loss_cliff_data_picks_sgd_at_its_largest_paired_lr(runs):
    data = loss_cliff_data(runs)
    # sgd lr 1 has no unclipped run, adam is only second choice: sgd at 0.5
    assert (data["optimizer"], data["lr"], data["paired"]) == ("sgd", 0.5, True)
    assert (data["task"], data["seq_len"]) == ("adding", 100) and data["n_runs"] == len(CASES)
    assert list(data["modes"]) == ["none", "norm", "value"]
    assert {m: e["seed"] for m, e in data["modes"].items()} == {"none": 0, "norm": 0, "value": 1}
    none = data["modes"]["none"]
    assert none["diverged"] and none["run"].endswith(job_of(("sgd", "none", 0.5, 0)))
    np.testing.assert_allclose(none["max_norm"]["alphas"], ALPHAS)
    np.testing.assert_allclose(none["max_norm"]["loss"], NONE0_LOSSES / B)  # loss / baseline, NaN where written
    assert none["max_norm"]["actual_alpha"] == 2.0 and none["max_norm"]["actual_loss"] == pytest.approx(50.0)
    assert none["max_norm"]["step_rise"] == pytest.approx(math.log10(50 / 0.9))
    before = none["before_divergence"]
    np.testing.assert_allclose(before["loss"], wall(4.0, 0.1) / B)
    assert (before["step"], before["grad_norm"], before["actual_alpha"]) == (21, 300.0, 6.0)
    assert math.isnan(before["actual_loss"]) and before["step_rise"] == math.inf
    assert none["first_uphill"]["step"] == 1 and none["first_uphill"]["step_rise"] == pytest.approx(math.log10(2.7 / 0.9))
    assert none["drawn"] == "first_uphill"  # diverged: its steepest step is the blown-up one
    assert data["modes"]["norm"]["drawn"] == data["modes"]["value"]["drawn"] == "max_norm"
    norm = data["modes"]["norm"]
    assert not norm["diverged"] and norm["before_divergence"] is None and norm["first_uphill"] is None
    assert norm["max_norm"]["actual_loss"] == pytest.approx(0.88)
    assert data["modes"]["value"]["max_norm"]["step_rise"] == math.inf


def test_loss_cliff_data_falls_back_on_adam_and_on_unpaired_settings(runs):
    adam_and_lone = [r for r in runs if r.get("optimizer") == "adam" or r.get("lr") == 1.0]
    data = loss_cliff_data(adam_and_lone)
    assert (data["optimizer"], data["lr"], data["paired"]) == ("adam", 0.5, True)
    data = loss_cliff_data([r for r in runs if r.get("lr") == 1.0])
    assert (data["optimizer"], data["lr"], data["paired"]) == ("sgd", 1.0, False) and list(data["modes"]) == ["norm"]
    assert loss_cliff_data([r for r in runs if r.loss_cliff is None]) == {}


# ------------------------------------------------------------------------------------------------ table


def expected_rows() -> dict[tuple, dict]:
    """Recomputed from CASES: median over seeds of log10(actual_loss / loss at alpha = 1e-4) (inf: NaN after),
    and the step numbers of the first uphill records."""
    groups: dict[tuple, list[dict]] = {}
    for (optimizer, clipping, lr, _), (records, _) in CASES.items():
        groups.setdefault((optimizer, clipping, lr), []).append(records)
    rows = {}
    for key, group in groups.items():
        recs = [g["max_norm"] for g in group]
        rises = [math.inf if math.isnan(r["actual_loss"]) else math.log10(r["actual_loss"] / r["losses"][0])
                 for r in recs]
        rows[key] = {"n_seeds": len(recs), "rise": float(np.median(rises)),
                     "grad_norm": float(np.median([r["grad_norm"] for r in recs])),
                     "step": float(np.median([r["actual_alpha"] for r in recs])),
                     "nonfinite": sum(math.isinf(x) for x in rises),
                     "uphill": [g["first_uphill"]["step"] for g in group if "first_uphill" in g]}
    return rows


def test_loss_cliff_table_numbers(runs):
    table = loss_cliff_table(runs)
    expected = expected_rows()
    assert [(r["optimizer"], r["clipping"], r["lr"]) for r in table] == sorted(expected)  # the runs without a file
    for row in table:                                                                   # are not counted
        want = expected[(row["optimizer"], row["clipping"], row["lr"])]
        assert row["n_seeds"] == want["n_seeds"] and row["n_nonfinite_after_step"] == want["nonfinite"]
        assert row["median_log10_step_rise"] == pytest.approx(want["rise"])
        assert row["median_grad_norm"] == pytest.approx(want["grad_norm"])
        assert row["median_step_size"] == pytest.approx(want["step"])
        assert row["n_first_uphill"] == len(want["uphill"])
        assert row["median_first_uphill_step"] == (float(np.median(want["uphill"])) if want["uphill"] else None)
    sgd_none = next(r for r in table if (r["optimizer"], r["clipping"], r["lr"]) == ("sgd", "none", 0.5))
    assert sgd_none["n_seeds"] == 2  # seeds 0 and 1; seed 2 has no file, seed 3's is damaged
    assert sgd_none["median_log10_step_rise"] == pytest.approx((math.log10(50 / 0.9) + math.log10(3 / 0.9)) / 2)


# ------------------------------------------------------------------------------------- the command line


def test_cli_draws_the_loss_cliff_and_writes_its_table(cliff_sweep, tmp_path):
    out = tmp_path / "figures"
    result = run_figures([cliff_sweep, "--out", out, "-q"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "loss_cliff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "loss_cliff.pdf").read_bytes()[:5] == b"%PDF-"
    numbers = json.loads((out / "summary_numbers.json").read_text())
    figure = numbers["figures"]["loss_cliff"]
    assert figure["status"] == "written"
    for words in ("sgd at lr 0.5", "step 20", "‖g‖ = 80", "step 21", "‖g‖ = 300", "non-finite loss",
                  "first uphill step: step 1, ‖g‖ = 3,"):
        assert words in figure["caption"], words
    rows = {(r["optimizer"], r["clipping"], r["lr"]): r for r in numbers["loss_cliff"]}
    expected = expected_rows()
    assert set(rows) == set(expected)
    for key, want in expected.items():
        got = rows[key]["median_log10_step_rise"]
        assert got is None if math.isinf(want["rise"]) else got == pytest.approx(want["rise"])  # JSON: inf -> null
    md = (out / "summary.md").read_text()
    rise = expected[("sgd", "norm", 0.5)]["rise"]
    assert "## Loss cliff (exploding experiment)" in md
    assert f"| sgd | norm | 0.5 | 2 | {rise:.3g} | 0 | 60 | 0.045 | 0 | n/a | n/a |" in md
    assert "| sgd | value | 0.5 | 1 | non-finite | 1 | 90 | 1.5 | 0 | n/a | n/a |" in md
    uphill_rise = math.log10(2.7 / 0.9)
    assert f"| sgd | none | 0.5 | 2 | +{expected[('sgd', 'none', 0.5)]['rise']:.3g} | 0 | 60 | 1.5 | 1 | 1 | +{uphill_rise:.3g} |" in md
    assert "## Divergence (exploding experiment)" in md  # the other tables are still there


def test_a_sweep_without_loss_cliff_files_draws_every_other_figure(tmp_path):
    sweep = make_sweep(tmp_path / "sweep")
    out = tmp_path / "figures"
    result = run_figures([sweep, "--out", out, "-q"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    numbers = json.loads((out / "summary_numbers.json").read_text())
    skipped = numbers["figures"]["loss_cliff"]
    assert skipped["status"] == "skipped" and not (out / "loss_cliff.png").exists()
    assert "loss_cliff.npz" in skipped["reason"] and "python -m rnn_gradients.train -m experiment=exploding" in skipped["reason"]
    for name in ("cures", "recurrent_spectrum"):  # no cures runs, no spectrum.npz: skipped with the command to run
        assert numbers["figures"][name]["status"] == "skipped", name
        assert "-m experiment=cures" in numbers["figures"][name]["reason"], name
    for name in OTHER_FIGURES:
        assert numbers["figures"][name]["status"] == "written", name
        assert (out / f"{name}.png").is_file() and (out / f"{name}.pdf").is_file()
    assert numbers["loss_cliff"] == []
    assert "| n/a | | | 0 | n/a | | n/a | n/a | 0 | n/a | n/a |" in (out / "summary.md").read_text()
