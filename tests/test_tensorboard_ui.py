"""TensorBoard as the place to compare a sweep, tested as a user sees it: a real server on loopback over a
real multirun, read through its HTTP API, and its HParams and Custom Scalars tabs rendered in headless
Chromium, read back as the text on screen (scripts/tensorboard_screens.Page)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TINY, cli_env, name_of, read_summary

sys.path.insert(0, str(ROOT / "scripts"))
from tensorboard_screens import Page, Text, ensure_chromium, get_json, start_tensorboard  # noqa: E402

ARMS = ("rnn", "lstm", "lstm_clip")
HPARAMS = {"arm", "model", "task", "seq_len", "hidden_size", "num_layers", "init", "forget_bias", "optimizer", "lr",
           "clipping", "clip_threshold", "seed", "experiment"}
METRICS = {"hparams/val_normalized_loss", "hparams/val_accuracy", "hparams/diverged", "hparams/diverged_at_step",
           "hparams/steps", "hparams/wall_time_s", "hparams/log10_ratio_h", "hparams/log10_ratio_c"}
ALL_STATUSES = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
                "colParams": [], "startIndex": 0, "sliceSize": 100}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, str]:
    """Three arms in parallel (joblib), as `make reproduce` runs its sweeps; returns the folder and the console."""
    sweep = tmp_path_factory.mktemp("tb") / "sweep"
    args = ["-m", "hydra/launcher=parallel", f"arm={','.join(ARMS)}", *TINY, "trainer.max_steps=12",
            "trainer.enable_progress_bar=true", "callbacks.grad_flow.every_n_steps=4", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run([sys.executable, "-m", "rnn_gradients.train", *args], cwd=sweep.parent, env=cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def port(sweep):
    server, port = start_tensorboard(sweep[0], len(ARMS))
    yield port
    server.terminate()
    server.wait(timeout=30)


def summary_of(sweep: Path, run: str) -> dict:
    """The summary.json of the job a TensorBoard run name belongs to (`<job folder>/tensorboard`)."""
    return read_summary(sweep / run.split("/")[0])


def test_run_names_say_what_each_run_is(sweep, port):
    runs = get_json(port, "/data/runs")
    assert len(runs) == len(ARMS)
    for run in runs:
        folder, rest = run.split("/", 1)
        assert rest == "tensorboard"
        assert folder.split("_", 1)[1] == name_of(summary_of(sweep[0], run)), run


def test_hparams_lists_every_job_with_its_hyperparameters_and_final_metrics(sweep, port):
    experiment = get_json(port, "/data/plugin/hparams/experiment", {"experimentName": ""})
    assert {h["name"] for h in experiment["hparamInfos"]} == HPARAMS
    assert {m["name"]["tag"] for m in experiment["metricInfos"]} == METRICS  # no hp_metric placeholder
    groups = get_json(port, "/data/plugin/hparams/session_groups", ALL_STATUSES)["sessionGroups"]
    assert len(groups) == len(ARMS)
    for group in groups:
        summary = summary_of(sweep[0], group["name"])
        hparams = group["hparams"]
        assert (hparams["arm"], hparams["model"], hparams["task"]) == (summary["arm"], summary["model"], summary["task"])
        assert hparams["seq_len"] == summary["seq_len"] and hparams["lr"] == pytest.approx(summary["lr"])
        metrics = {m["name"]["tag"]: m["value"] for m in group["metricValues"]}
        assert metrics["hparams/val_normalized_loss"] == pytest.approx(summary["val_normalized_loss"], rel=1e-6)
        assert metrics["hparams/steps"] == summary["steps"] == 12
        assert metrics["hparams/diverged"] == 0 and metrics["hparams/wall_time_s"] == pytest.approx(summary["wall_time_s"], rel=1e-5)
        assert float(metrics["hparams/log10_ratio_h"]) < 0  # measured: the gradient shrinks back in time at T=10 here too
        assert [s["status"] for s in group["sessions"]] == ["STATUS_SUCCESS"]


def test_one_custom_scalars_layout_for_the_thesis(port):
    layout = get_json(port, "/data/plugin/custom_scalars/layout")
    (category,) = layout["category"]
    charts = [set(chart["multiline"]["tag"]) for chart in category["chart"]]
    assert charts == [
        {"grad_norm/total_preclip", "grad_norm/total_postclip", "grad_norm/threshold"},
        {r"grad_flow/h_t\d+", r"grad_flow/c_t\d+"},
        {"spectrum/.*"},
        {"train/normalized_loss", "val/normalized_loss"},
    ]
    scalars = get_json(port, "/data/plugin/scalars/tags")
    clipped = next(tags for run, tags in scalars.items() if "normclip" in run)
    assert "grad_norm/threshold" in clipped and any(tag.startswith("grad_flow/h_t") for tag in clipped)
    assert any(tag.startswith("spectrum/") and "sigma_max" in tag for tag in clipped)  # the chart has lines to draw


def test_console_has_one_line_per_fact(sweep):
    _, console = sweep
    assert "litlogger" not in console and "srun" not in console
    assert "it/s]" not in console  # no per-job progress bars interleaving in a parallel sweep
    lines = [line for line in console.splitlines() if "Sweep: " in line and "jobs finished" in line]
    assert sorted(int(line.split("Sweep: ")[1].split("/")[0]) for line in lines) == [1, 2, 3]
    assert all(f"/{len(ARMS)} jobs finished (0 diverged, 0 failed)" in line for line in lines)


@pytest.fixture(scope="module")
def chromium() -> None:
    try:
        ensure_chromium()
    except (RuntimeError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(str(error))


def hparams_table(texts: list[Text]) -> list[dict[str, str]]:
    """The HParams table view as it is drawn: one {column header: cell text} per line below the header,
    each cell under the header it is aligned with (the filter panel to the table's left is left out)."""
    header = next((t for t in texts if t.text == "Trial ID"), None)
    if header is None:
        return []
    columns = sorted((t for t in texts if abs(t.middle - header.middle) < 12 and t.left >= header.left - 2),
                     key=lambda t: t.left)
    lines: list[list[Text]] = []
    for t in sorted((t for t in texts if t.middle > header.middle + 12 and t.left >= header.left - 2), key=lambda t: t.middle):
        if lines and abs(t.middle - lines[-1][0].middle) < 4:
            lines[-1].append(t)
        else:
            lines.append([t])
    def column(cell: Text) -> str:
        return next((c.text for c in reversed(columns) if c.left <= cell.left + 2), "?")
    return [{column(cell): cell.text for cell in line} for line in lines]


def test_hparams_tab_shows_one_row_per_job_in_a_real_browser(chromium, sweep, port):
    """A row per job, led by its run name (the Trial ID column shows it cut short; the cell holds it whole),
    with the job's arm, clipping and final normalized validation loss, as its summary.json has them."""
    jobs = {f"{folder.name}/tensorboard": read_summary(folder) for folder in sweep[0].iterdir() if (folder / "summary.json").is_file()}
    assert len(jobs) == len(ARMS)
    metric = "hparams/val_normalized_loss"
    with Page(f"http://127.0.0.1:{port}/#hparams", width=1800) as page:
        texts = page.wait_for(lambda seen: {row.get("Trial ID") for row in hparams_table(seen) if metric in row} == set(jobs))
    rows = {row["Trial ID"]: row for row in hparams_table(texts)}
    assert len(rows) == len(jobs)
    for run, summary in jobs.items():
        row = rows[run]
        assert (row["arm"], row["clipping"]) == (summary["arm"], summary["clipping"]), row
        assert float(row[metric]) == pytest.approx(summary["val_normalized_loss"], abs=5.1e-5), row  # shown to 4 places


def test_custom_scalars_tab_draws_every_chart_in_a_real_browser(chromium, sweep, port):
    """Every chart of the layout, under its title, with lines matched in it, and every job in the run list."""
    (category,) = get_json(port, "/data/plugin/custom_scalars/layout")["category"]
    titles = [chart["title"] for chart in category["chart"]]
    runs = {f"{folder.name}/tensorboard" for folder in sweep[0].iterdir() if (folder / "tensorboard").is_dir()}

    def matched_charts(texts: list[Text]) -> int:
        return sum(1 for t in texts if t.text.startswith("Matches (") and t.text != "Matches (0)")

    with Page(f"http://127.0.0.1:{port}/#custom_scalars", width=1800) as page:
        texts = page.wait_for(lambda seen: matched_charts(seen) == len(titles) and runs <= {t.text for t in seen})
    shown = {t.text for t in texts}
    assert category["title"] in shown
    assert [title for title in titles if title not in shown] == []
