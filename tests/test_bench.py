"""The benchmark (scripts/bench): its pure parts and its probe section at tiny sizes directly, and `python
scripts/bench --tiny` (slow: a subprocess of about a minute) exits 0 and writes a well-formed bench.json.

Only the report's form and internal consistency are checked (rows present, positive medians, ratios that are
the quotients of the reported medians, a least-squares line that fits the reported points, each recomputed
here independently), never whether a measured ratio meets its target: timings depend on the machine and load.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import threading

import pytest
import torch
from omegaconf import OmegaConf

from conftest import ROOT, cli_env

sys.path.insert(0, str(ROOT / "scripts"))  # the benchmark is a development tool, not part of the package

from bench.config import cadence_classes, class_of  # noqa: E402
from bench.modes import MODELS, TINY  # noqa: E402
from bench.rows_probe import bench_probe  # noqa: E402
from bench.rows_sweep import SweepRun, sweep_throughput  # noqa: E402
from bench.stats import counterbalanced, error_row, info_row, interleave, linear_fit, ratio_row, side, skip_row  # noqa: E402
from bench.turns import Participant, Turns, TurnTaker, alternate, counted_window, steps_needed  # noqa: E402

BENCH = ROOT / "scripts" / "bench"
RATIO_GROUPS = ("template_vs_plain", "observatory_overhead", "data_share")
STATUSES = {"pass", "fail", "skipped", "info"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--tiny", "--out", str(out)],
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


def check_probe_rows(rows: list[dict], settings: dict) -> None:
    """Issue 18's probe rows: one per model and T, judged against <= 1.25, the ratio the quotient of the medians
    of the samples recorded, both sides as many interleaved calls, both probes measuring the same gradients."""
    assert [r["id"] for r in rows] == [f"probe/{m}/T={t}" for t in settings["probe_seq_lens"] for m in MODELS]
    for row in rows:
        a, b, d = row["a"], row["b"], row["details"]
        assert row["group"] == "probe" and row["target"] == {"op": "<=", "value": 1.25}, row["id"]
        check_side(a)
        check_side(b)
        assert a["n"] == b["n"] == d["rounds"] >= settings["probe_min_rounds"]
        assert close(row["ratio"], statistics.median(a["samples"]) / statistics.median(b["samples"]))
        assert row["status"] == ("pass" if row["ratio"] <= 1.25 else "fail"), row["id"]
        assert (d["dtype"], d["hidden"], d["task"]) == ("float64", settings["probe_hidden"], "adding")
        assert max(d["agreement_max_rel_diff"].values()) < 1e-9  # the same curves, to float64 rounding


@pytest.mark.slow
def test_table_and_machine(tiny):
    proc, report = tiny
    assert report["mode"] == "tiny"
    m = report["machine"]
    assert all(m[key] not in (None, "") for key in ("cpu_model", "cores", "usable_cores", "torch", "torch_threads", "date")), m
    assert m["torch"] == torch.__version__ and m["cores"] >= 1 and m["torch_threads"] >= 1
    assert "Traceback" not in proc.stderr
    for row in report["rows"]:  # the table on stdout lists every row with its status
        assert any(line.startswith(row["id"]) and row["status"] in line for line in proc.stdout.splitlines()), row["id"]


@pytest.mark.slow
def test_every_expected_row_is_present(tiny):
    _, report = tiny
    assert all(r["status"] in STATUSES for r in report["rows"]), [(r["id"], r["status"], r.get("reason")) for r in report["rows"]]
    seq_lens = report["settings"]["seq_lens"]
    ids = {r["id"] for r in report["rows"]}
    assert {f"{group}/{model}/T={seq_len}" for group in RATIO_GROUPS for model in MODELS for seq_len in seq_lens} <= ids
    assert {"scaling/rnn", "scaling/lstm", "startup/train", "gpu/lstm",
            "threads/all_cores_vs_one", "threads/omp_active_vs_passive", "sweep/lstm/parallel_vs_basic_1thread"} <= ids
    assert {f"sweep/{model}/parallel_vs_basic" for model in report["settings"]["sweep_models"]} <= ids
    # rows 1-2 again, one fresh process per sample (the shortest step)
    assert {f"template_vs_plain_fresh/rnn/T={seq_lens[0]}", f"observatory_overhead_fresh/rnn/T={seq_lens[0]}"} <= ids
    assert {f"{kind}/{model}/T={t}" for kind, t in (("denormals", seq_lens[-1]), ("malloc", seq_lens[0])) for model in MODELS} <= ids
    check_probe_rows(rows_of(report, "probe"), report["settings"])
    assert len(ids) == len(report["rows"])  # no duplicates


@pytest.mark.slow
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


@pytest.mark.slow
def test_observatory_rows_explain_their_cost(tiny):
    _, report = tiny
    for row in rows_of(report, "observatory_overhead"):
        details = row["details"]
        replayed = details["replayed_callback_ms"]
        assert {"GradNormLogger", "GradFlowLogger", "PeriodicCheckpoint"} <= set(replayed)
        assert all(v >= 0 for costs in replayed.values() for v in costs.values())
        assert details["cpu_time"]["a_median_ms"] > 0 and details["cpu_time"]["b_median_ms"] > 0


@pytest.mark.slow
def test_scaling_line_fits_the_reported_points(tiny):
    _, report = tiny
    rows = rows_of(report, "scaling")
    ids = {r["id"] for r in rows}
    assert {"scaling/lstm", "scaling/rnn"} <= ids  # and, where flush-to-zero exists, the same with it
    assert ids - {"scaling/lstm", "scaling/rnn"} <= {f"scaling/{m}/{s}" for m in MODELS for s in ("flush_denormal", "denormals_kept")}
    for row in rows:
        points = row["points"]
        assert [p["T"] for p in points] == report["settings"]["scaling_seq_lens"]
        for p in points:
            check_side({**p, "unit": "ms"})
        xs, ys = [p["T"] for p in points], [p["median"] for p in points]
        slope, intercept = statistics.linear_regression(xs, ys)
        fit = row["fit"]
        assert (fit["slope_ms_per_step"], fit["intercept_ms"]) == pytest.approx((slope, intercept), rel=1e-6, abs=1e-9)
        devs = [abs(y - (intercept + slope * x)) / y for x, y in zip(xs, ys)]
        assert math.isclose(fit["worst_relative_deviation"], max(devs), rel_tol=1e-6, abs_tol=1e-9)
        assert fit["worst_at_T"] == xs[devs.index(max(devs))]
        assert row["status"] == "info" and row["target"] is None  # reported, not judged


def test_sweep_throughput_split():
    seq = [SweepRun(wall_s=50.0, job_s=[10.0, 10.0, 10.0, 10.0])]
    par = [SweepRun(wall_s=30.0, job_s=[11.0, 11.0, 12.0, 11.0])]
    split = sweep_throughput(seq, par)
    assert (split["steady_state_speedup"], split["overhead_s_sequential"], split["overhead_s_parallel"]) == pytest.approx(
        (2 * 10.0 / 11.0, 50.0 - 40.0, 30.0 - 45.0 / 2))  # speed-up from the median job times


@pytest.mark.slow
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
        # the split, recomputed from the runs' own times
        seq_job = statistics.median([t for r in runs["basic"] for t in r.job_s])
        par_job = statistics.median([t for r in runs["parallel"] for t in r.job_s])
        assert (d["job_s_sequential"], d["job_s_parallel"]) == pytest.approx((seq_job, par_job))
        assert d["steady_state_speedup"] == pytest.approx(2 * seq_job / par_job)
        assert d["overhead_s_sequential"] == pytest.approx(statistics.median([r.wall_s - sum(r.job_s) for r in runs["basic"]]))
        assert d["overhead_s_parallel"] == pytest.approx(
            statistics.median([r.wall_s - sum(r.job_s) / 2 for r in runs["parallel"]]))


@pytest.mark.slow
def test_startup_row_has_its_breakdown(tiny):
    _, report = tiny
    (row,) = rows_of(report, "startup")
    check_side(row["a"])
    b = row["details"]["breakdown"]
    assert 0 < b["launch_to_job_start_s"] < row["a"]["median"] <= b["command_total_s"] + 1e-6 and b["imports_s"] > 0
    assert 0 < b["first_step_end_to_exit_s"] < b["command_total_s"]
    assert row["details"]["import_top"]["top"]


@pytest.mark.slow
@pytest.mark.parametrize("group,row_id", [("gpu", "gpu/lstm"), ("gpu_observatory_overhead", "gpu_observatory_overhead/lstm")])
def test_gpu_row(tiny, group, row_id):
    _, report = tiny
    (row,) = rows_of(report, group)
    assert row["id"] == row_id and row["status"] in (("pass", "fail") if torch.cuda.is_available() else ("skipped",))
    assert torch.cuda.is_available() or "cuda" in row["reason"].lower()


# ------------------------------------------------------------------ the pure parts, without a subprocess


def test_side_and_ratio_row_judge_the_quotient_of_medians():
    a, b = side("a", [3.0, 1.0, 2.0, 10.0], "ms"), side("b", [2.0, 2.0, 4.0], "ms")
    assert (a["median"], a["n"], b["median"], b["n"]) == (2.5, 4, 2.0, 3)
    row = ratio_row("template_vs_plain/x", "template_vs_plain", "t", a, b)  # target <= 1.10
    assert row["ratio"] == pytest.approx(1.25) and row["status"] == "fail"
    assert row["target"] == {"op": "<=", "value": 1.10}
    assert ratio_row("template_vs_plain/x", "template_vs_plain", "t", b, a)["status"] == "pass"
    assert ratio_row("sweep/x", "sweep", "t", side("s", [3.3], "s"), side("p", [2.0], "s"))["status"] == "pass"  # >= 1.6
    assert ratio_row("sweep/x", "sweep", "t", side("s", [3.1], "s"), side("p", [2.0], "s"))["status"] == "fail"
    info = info_row("i", "threads", "t", a, b)
    assert info["status"] == "info" and info["target"] is None and info["ratio"] == pytest.approx(1.25)
    assert "ratio" not in info_row("i", "startup", "t", a)
    skipped = skip_row("gpu/lstm", "gpu", "t", "no cuda")
    assert skipped["status"] == "skipped" and skipped["target"] == {"op": "<=", "value": 1.10}
    error = error_row("steps/error", "steps", "steps", ValueError("x" * 5000))
    assert error["status"] == "error" and error["reason"].startswith("ValueError: x") and len(error["reason"]) == 2000


def test_probe_rows_in_process():
    """The probe section alone at --tiny sizes (a second or two): the same form as in the report."""
    check_probe_rows(bench_probe(TINY), vars(TINY))


def test_linear_fit_is_least_squares():
    xs, ys = [5, 10, 20, 40, 80], [1.1, 1.9, 4.2, 7.8, 16.5]
    assert linear_fit(xs, ys) == pytest.approx(tuple(statistics.linear_regression(xs, ys)))  # (slope, intercept)


def test_variants_alternate_in_counterbalanced_order():
    assert [counterbalanced("ABC", r) for r in range(3)] == [list("ABC"), list("CBA"), list("ABC")]
    calls: list[str] = []
    res = interleave({n: (lambda n=n: calls.append(n) or len(calls)) for n in "AB"}, 3)
    assert "".join(calls) == "ABBAAB" and res == {"A": [1, 4, 5], "B": [2, 3, 6]}


def test_cadence_classes_partition_the_steps():
    cfg = OmegaConf.create({"callbacks": {"hist": {"every_n_steps": 100}, "flow": {"plot_every_n_steps": 500}, "off": None,
                                          "norms": {"log_every_n_steps": 1}}, "checkpoint": {"every_n_steps": 250}})
    classes, freq, reps = cadence_classes(cfg)
    assert classes == [(), (100,), (250,), (100, 250, 500)]  # every 500th step is also a 100th and a 250th
    assert [round(freq[c] * 500) for c in classes] == [494, 4, 1, 1]
    assert reps == {(): 501, (100,): 600, (250,): 750, (100, 250, 500): 1000}  # beyond one hyperperiod
    assert all(class_of(reps[c], classes) == c for c in classes)
    assert cadence_classes(OmegaConf.create({"callbacks": None})) == ([()], {(): 1.0}, {(): 2})


@pytest.mark.parametrize("warmup,window,block", [(1, 4, 2), (2, 6, 3), (2, 200, 11), (0, 5, 10**9)])
def test_steps_needed_leave_a_full_window(warmup, window, block):
    steps = steps_needed(warmup, window, block)
    counted = {s: (s - 1) % block != 0 for s in range(1, steps + 1)}  # the first step of every turn is not counted
    assert len(counted_window(counted, warmup, window, steps - 1)) == window


def test_participants_take_turns_of_block_steps():
    log: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def participant(steps: int):
        def make(turns: Turns, name: str) -> Participant:
            taker = TurnTaker(turns, name, block=3)

            def run() -> None:
                for _ in range(steps):
                    counted = taker.boundary()
                    with lock:
                        log.append((name, counted))

            return Participant(run, lambda: steps)

        return make

    assert alternate({"A": participant(7), "B": participant(8)}) == {"A": 7, "B": 8}
    assert "".join(n for n, _ in log) == "AAABBBAAABBBABB"
    assert [c for n, c in log if n == "A"] == [False, True, True] * 2 + [False]


def test_job_start_probe_imports_no_torch():
    """Hydra instantiates it in a training command's parent process, before the job: torch there would
    move the run's imports in front of the mark it takes (this was tests/test_lazy_imports.py's check)."""
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT / 'scripts')!r}); import bench.probe_job_start; "
            "print(json.dumps([m for m in ('torch', 'lightning', 'matplotlib', 'tensorboard') if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
