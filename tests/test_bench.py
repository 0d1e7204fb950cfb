"""`python -m rnn_gradients.bench --tiny`: exits 0 and writes a well-formed bench.json.

Only the report's form and internal consistency are checked (rows present, positive medians, ratios
that are the quotients of the reported medians, a least-squares line that fits the reported points),
never whether a measured ratio meets its target: timings depend on the machine and its load.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys

import pytest
import torch

from conftest import cli_env
from rnn_gradients.bench import SweepRun, sweep_throughput

RATIO_GROUPS = ("template_vs_plain", "observatory_overhead", "data_share")
STATUSES = {"pass", "fail", "skipped", "info"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "rnn_gradients.bench", "--tiny", "--out", str(out)],
        cwd=out, env=cli_env(), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}"
    report = json.loads((out / "bench.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["bench.json"]  # atomic write: no temp file left over
    return proc, report


def rows_of(report: dict, group: str) -> list[dict]:
    return [r for r in report["rows"] if r["group"] == group]


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_side(side: dict) -> None:
    assert isinstance(side["median"], float) and side["median"] > 0 and math.isfinite(side["median"])
    assert side["n"] == len(side["samples"]) >= 1
    assert all(isinstance(x, (int, float)) and x > 0 for x in side["samples"])
    assert close(side["median"], statistics.median(side["samples"]))
    assert side["unit"] in ("ms", "s")


def test_table_and_machine(tiny):
    proc, report = tiny
    assert report["mode"] == "tiny"
    m = report["machine"]
    for key in ("cpu_model", "cores", "usable_cores", "torch", "torch_threads", "date"):
        assert m[key] not in (None, ""), key
    assert m["torch"] == torch.__version__ and m["cores"] >= 1 and m["torch_threads"] >= 1
    assert "Traceback" not in proc.stderr
    for row in report["rows"]:  # the table on stdout lists every row with its status
        assert any(line.startswith(row["id"]) and row["status"] in line for line in proc.stdout.splitlines()), row["id"]


def test_every_expected_row_is_present(tiny):
    _, report = tiny
    assert all(r["status"] in STATUSES for r in report["rows"]), [(r["id"], r["status"], r.get("reason")) for r in report["rows"]]
    seq_lens = report["settings"]["seq_lens"]
    ids = {r["id"] for r in report["rows"]}
    for group in RATIO_GROUPS:
        for model in ("rnn", "lstm"):
            for seq_len in seq_lens:
                assert f"{group}/{model}/T={seq_len}" in ids
    assert {"scaling/rnn", "scaling/lstm", "startup/train", "gpu/lstm",
            "threads/all_cores_vs_one", "threads/omp_active_vs_passive"} <= ids
    for model in report["settings"]["sweep_models"]:
        assert f"sweep/{model}/parallel_vs_basic" in ids
    assert "sweep/lstm/parallel_vs_basic_1thread" in ids
    # rows 1-2 again, one fresh process per sample (the shortest step)
    assert {f"template_vs_plain_fresh/rnn/T={seq_lens[0]}", f"observatory_overhead_fresh/rnn/T={seq_lens[0]}"} <= ids
    for model in ("rnn", "lstm"):
        assert f"denormals/{model}/T={seq_lens[-1]}" in ids
        assert f"malloc/{model}/T={seq_lens[0]}" in ids
    assert len(ids) == len(report["rows"])  # no duplicates


def test_ratio_rows_are_quotients_of_their_medians(tiny):
    _, report = tiny
    checked = 0
    for row in report["rows"]:
        if "b" not in row or row["status"] == "skipped":
            continue
        check_side(row["a"])
        check_side(row["b"])
        assert close(row["ratio"], row["a"]["median"] / row["b"]["median"]), row["id"]
        target = row["target"]
        if target is None:
            assert row["status"] == "info"
        else:  # the status follows from ratio and target (whatever they are)
            met = row["ratio"] <= target["value"] if target["op"] == "<=" else row["ratio"] >= target["value"]
            assert row["status"] == ("pass" if met else "fail"), row["id"]
        checked += 1
    assert checked >= 3 * 2 * len(report["settings"]["seq_lens"]) + 1  # rows 1-3 and the sweep


def test_observatory_rows_explain_their_cost(tiny):
    _, report = tiny
    for row in rows_of(report, "observatory_overhead"):
        details = row["details"]
        replayed = details["replayed_callback_ms"]
        assert {"GradNormLogger", "GradFlowLogger", "PeriodicCheckpoint"} <= set(replayed)
        assert all(v >= 0 for costs in replayed.values() for v in costs.values())
        assert details["cpu_time"]["a_median_ms"] > 0 and details["cpu_time"]["b_median_ms"] > 0


def test_scaling_line_fits_the_reported_points(tiny):
    _, report = tiny
    rows = rows_of(report, "scaling")
    ids = {r["id"] for r in rows}
    assert {"scaling/lstm", "scaling/rnn"} <= ids  # and, where flush-to-zero exists, the same with it
    other_fp = {f"scaling/{m}/{s}" for m in ("rnn", "lstm") for s in ("flush_denormal", "denormals_kept")}
    assert ids - {"scaling/lstm", "scaling/rnn"} <= other_fp
    for row in rows:
        points = row["points"]
        assert [p["T"] for p in points] == report["settings"]["scaling_seq_lens"]
        for p in points:
            check_side({**p, "unit": "ms"})
        xs, ys = [p["T"] for p in points], [p["median"] for p in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        intercept = my - slope * mx
        fit = row["fit"]
        assert math.isclose(fit["slope_ms_per_step"], slope, rel_tol=1e-6, abs_tol=1e-9)
        assert math.isclose(fit["intercept_ms"], intercept, rel_tol=1e-6, abs_tol=1e-9)
        devs = [abs(y - (intercept + slope * x)) / y for x, y in zip(xs, ys)]
        assert math.isclose(fit["worst_relative_deviation"], max(devs), rel_tol=1e-6, abs_tol=1e-9)
        assert fit["worst_at_T"] == xs[devs.index(max(devs))]
        assert row["status"] == "info" and row["target"] is None  # reported, not judged


def test_sweep_throughput_split():
    seq = [SweepRun(wall_s=50.0, job_s=[10.0, 10.0, 10.0, 10.0])]
    par = [SweepRun(wall_s=30.0, job_s=[11.0, 11.0, 12.0, 11.0])]
    split = sweep_throughput(seq, par)
    assert split["steady_state_speedup"] == pytest.approx(2 * 10.0 / 11.0)  # median job times
    assert split["overhead_s_sequential"] == pytest.approx(50.0 - 40.0)
    assert split["overhead_s_parallel"] == pytest.approx(30.0 - 45.0 / 2)


def test_sweep_rows_split_their_speedup(tiny):
    _, report = tiny
    rows = [r for r in rows_of(report, "sweep") if r["id"].endswith("/parallel_vs_basic")]
    assert rows
    for row in rows:
        d = row["details"]
        runs = {name: [SweepRun(**r) for r in rs] for name, rs in d["runs"].items()}
        assert [r.wall_s for r in runs["basic"]] == row["a"]["samples"]
        assert [r.wall_s for r in runs["parallel"]] == row["b"]["samples"]
        assert all(len(r.job_s) == d["jobs"] and min(r.job_s) > 0 for rs in runs.values() for r in rs)
        assert all(r.wall_s > sum(r.job_s) / 2 for rs in runs.values() for r in rs)  # jobs fit inside the command
        expected = sweep_throughput(runs["basic"], runs["parallel"])
        for key, value in expected.items():
            assert d[key] == pytest.approx(value), key


def test_startup_row_has_its_breakdown(tiny):
    _, report = tiny
    (row,) = rows_of(report, "startup")
    check_side(row["a"])
    b = row["details"]["breakdown"]
    assert b["launch_to_job_start_s"] > 0 and b["imports_s"] > 0
    assert b["launch_to_job_start_s"] < row["a"]["median"] <= b["command_total_s"] + 1e-6
    assert 0 < b["first_step_end_to_exit_s"] < b["command_total_s"]
    assert row["details"]["import_top"]["top"]


@pytest.mark.parametrize("group,row_id", [("gpu", "gpu/lstm"), ("gpu_observatory_overhead", "gpu_observatory_overhead/lstm")])
def test_gpu_row(tiny, group, row_id):
    _, report = tiny
    (row,) = rows_of(report, group)
    assert row["id"] == row_id
    if torch.cuda.is_available():
        assert row["status"] in ("pass", "fail")
    else:
        assert row["status"] == "skipped" and "cuda" in row["reason"].lower()
