"""The analysis behind the figures, on a hand-made sweep with known values (handmade_sweep; no training
is run): discovery, status counts, event files, and every median, spike, fraction and ratio the figures
and tables show, checked against values computed independently of rnn_gradients.analysis."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from handmade_sweep import (
    ARM_CELL, HIST_STEPS, HIST_TAG, N_JOBS, SPIKE_STEP, T_ARMS, VAL_BASE, VAL_STEPS, by_path, grad_norm_series,
    hist_counts, make_sweep, write_job,
)
from rnn_gradients.analysis import (
    W_HH_HIST_TAG, aggregate_curves, detect_spikes, discover_run_dirs, divergence_table, final_loss_table,
    grad_flow_data, grad_flow_table, grad_histogram_data, grad_norm_data, gradient_paths_data, learning_curve_data,
    load_runs, loss_vs_seq_len_data, read_run_events, rebin, scalar_toy_data, status_counts,
)
from rnn_gradients.cells import by_name


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    return make_sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def runs(sweep):
    return load_runs([sweep])


# ------------------------------------------------------------------------------------------ unit tests


def test_scalar_toy_autograd_matches_closed_form():
    data = scalar_toy_data(ws=(0.9, 1.0, 1.1), steps=100)
    assert list(data["t"]) == list(range(1, 101))
    for w in (0.9, 1.0, 1.1):
        closed, auto = data["closed_form"][w], data["autograd"][w]
        np.testing.assert_allclose(auto, closed, rtol=1e-6)
        assert closed[99] == pytest.approx(100 * w**99)
    assert data["autograd"][1.1][99] > 1e6 and data["autograd"][0.9][99] < 4e-3  # explodes / vanishes


def test_detect_spikes_finds_the_injected_step_only():
    values = np.array([v for _, v in grad_norm_series(SPIKE_STEP)])
    assert np.flatnonzero(detect_spikes(values)).tolist() == [SPIKE_STEP - 1]
    early = np.ones(30)
    early[5] = 1000.0  # fewer than 10 previous steps: never a spike
    early[20] = 11.0  # > 10 x median(1, ..., 1000, ...) = 10.0
    assert np.flatnonzero(detect_spikes(early)).tolist() == [20]


def test_rebin_preserves_counts_and_splits_uniformly():
    out = rebin(np.array([0.0, 1.0, 2.0]), np.array([4.0, 2.0]), np.array([0.0, 0.5, 1.5, 2.0]))
    np.testing.assert_allclose(out, [2.0, 3.0, 1.0])
    point = rebin(np.array([1.0, 1.0]), np.array([5.0]), np.array([0.0, 0.5, 1.5]))  # zero-width bucket
    np.testing.assert_allclose(point, [0.0, 5.0])


def test_aggregate_curves_median_and_band():
    agg = aggregate_curves([(np.array([1, 2]), np.array([1.0, 4.0])), (np.array([1, 2, 3]), np.array([3.0, 2.0, 9.0])),
                            (np.array([1, 2]), np.array([2.0, np.nan]))])
    assert agg["steps"].tolist() == [1, 2, 3]
    np.testing.assert_allclose(agg["median"], [2.0, 3.0, 9.0])
    np.testing.assert_allclose(agg["lo"], [1.0, 2.0, 9.0])
    np.testing.assert_allclose(agg["hi"], [3.0, 4.0, 9.0])
    assert agg["n"].tolist() == [3, 2, 1]


# ------------------------------------------------------------------------------------------ the hand-made sweep


def test_discovery_from_sweep_run_and_parent(sweep):
    assert len(discover_run_dirs([sweep])) == N_JOBS
    assert len(discover_run_dirs([sweep / "multirun" / "exploding"])) == 10
    assert discover_run_dirs([sweep / "runs" / "loose"]) == [(sweep / "runs" / "loose").resolve()]
    with pytest.raises(FileNotFoundError):
        discover_run_dirs([sweep / "nope"])


def test_status_counts_include_unfinished_and_unreadable_jobs(runs):
    counts = status_counts(runs)
    zero = {"completed": 0, "diverged": 0, "failed": 0, "interrupted": 0, "cancelled": 0, "missing": 0, "unreadable": 0}
    assert counts["arms"] == {**zero, "completed": 10, "failed": 1, "missing": 1, "total": 12}
    assert counts["exploding"] == {**zero, "completed": 7, "diverged": 1, "interrupted": 1, "missing": 1,
                                   "total": 10}
    assert counts["forget_bias"] == {**zero, "completed": 2, "unreadable": 1, "total": 3}
    assert counts["all"]["total"] == N_JOBS
    unfinished = by_path(runs, "arms/9")
    assert (unfinished.status, unfinished.get("arm"), unfinished.get("seed")) == ("missing", "RNN", 3)
    assert not unfinished.usable and not by_path(runs, "arms/10").usable and not by_path(runs, "exploding/9").usable


def test_every_histogram_is_read(sweep):
    events = read_run_events(sweep / "multirun" / "arms" / "0")
    hists = events.histograms[HIST_TAG]
    assert [h.step for h in hists] == HIST_STEPS  # the default size_guidance would keep only 1
    edges, counts = hist_counts(150)
    np.testing.assert_allclose(hists[2].counts, counts)
    np.testing.assert_allclose(hists[2].edges, edges, rtol=1e-6)
    steps, values = events.scalars["grad_norm/total_preclip"]
    assert len(steps) == 300  # all 300 scalars, none sampled away


def test_corrupt_event_file_is_skipped_with_a_warning(sweep, caplog):
    with caplog.at_level(logging.WARNING):
        runs = load_runs([sweep / "runs"])
    assert len(runs) == 1 and runs[0].status == "completed"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("events.out.tfevents.x" in m for m in warnings), warnings
    events = runs[0].events
    assert [Path(p).name for p in events.unreadable] == ["events.out.tfevents.x"]
    assert len(events.files) == 2
    steps, values = events.scalars["val/normalized_loss"]  # merged across the two valid files
    assert steps.tolist() == [100, 200, 300]
    np.testing.assert_allclose(values, [0.9, 0.8, 0.7], rtol=1e-6)


def test_resumed_run_purges_events_after_its_checkpoint(tmp_path):
    """A resumed run's writer has purge_step: what the interrupted run logged after it is dropped."""
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "run" / "tensorboard"
    for name, purge, points in (("1000", None, [(100, 1.0), (200, 2.0), (300, 3.0), (400, 4.0)]),
                                ("2000", 201, [(300, 30.0)])):
        writer = SummaryWriter(log_dir=str(tb), purge_step=purge)
        for step, value in points:
            writer.add_scalar("val/normalized_loss", value, step)
        writer.close()
        newest = max(tb.glob("events.out.tfevents.*[0-9]"), key=lambda p: p.stat().st_mtime_ns)
        newest.rename(tb / f"events.out.tfevents.{name}.host")  # name order = creation order
    steps, values = read_run_events(tmp_path / "run").scalars["val/normalized_loss"]
    assert steps.tolist() == [100, 200, 300]
    np.testing.assert_allclose(values, [1.0, 2.0, 30.0])


def test_learning_curves_median_and_min_max_over_seeds(runs):
    data = learning_curve_data(runs)
    assert set(data) == {("adding", T_ARMS), ("adding", 20)}
    for arm, base in VAL_BASE.items():
        agg = data[("adding", T_ARMS)][arm]
        assert agg["steps"].tolist() == VAL_STEPS and agg["n"].tolist() == [3, 3, 3]
        np.testing.assert_allclose(agg["median"], np.array(base) * 1.1, rtol=1e-6)
        np.testing.assert_allclose(agg["lo"], np.array(base) * 1.0, rtol=1e-6)
        np.testing.assert_allclose(agg["hi"], np.array(base) * 1.2, rtol=1e-6)
    lsl = loss_vs_seq_len_data(runs)["adding"]
    assert lsl["LSTM"][T_ARMS]["median"] == pytest.approx(0.11) and lsl["LSTM"][T_ARMS]["n"] == 3
    assert lsl["RNN"][20]["median"] == pytest.approx(0.7)


def test_final_loss_table(runs):
    rows = {(r["experiment"], r["arm"], r["seq_len"]): r for r in final_loss_table(runs)}
    lstm = rows[("arms", "LSTM", T_ARMS)]
    assert lstm["n_seeds"] == 3
    assert lstm["median_val_normalized_loss"] == pytest.approx(0.11)
    assert lstm["min_val_normalized_loss"] == pytest.approx(0.10)
    assert lstm["max_val_normalized_loss"] == pytest.approx(0.12)
    assert not any(r["experiment"] == "exploding" for r in rows.values())


def test_grad_norm_spike_detected_at_injected_step(runs):
    data = grad_norm_data(runs)
    assert (data["task"], data["seq_len"]) == ("adding", T_ARMS)
    assert list(data["arms"]) == list(VAL_BASE)  # every arm of the sweep, in the registry's order
    assert {a["seed"] for a in data["arms"].values()} == {0}  # the same seed in every arm
    lstm, clip = data["arms"]["LSTM"], data["arms"]["LSTM+clip"]
    assert lstm["steps"][lstm["spikes"]].tolist() == [SPIKE_STEP]
    assert not clip["spikes"].any()
    assert clip["threshold"] == 1.0


def test_divergence_fractions_are_exact(runs):
    rows = {(r["optimizer"], r["clipping"], r["lr"]): r for r in divergence_table(runs)}
    expected = {("sgd", "none", 1.0): (2, 1, 1, 2), ("sgd", "none", 0.01): (2, 0, 0, 0),
                ("sgd", "norm", 1.0): (2, 0, 1, 1), ("sgd", "norm", 0.01): (2, 1, 0, 1)}
    assert set(rows) == set(expected)
    for key, (n, diverged, excursion, bad) in expected.items():
        row = rows[key]
        counted = (row["n_runs"], row["n_diverged"], row["n_loss_excursion"], row["n_diverged_or_excursion"])
        assert counted == (n, diverged, excursion, bad), key
        assert row["fraction"] == pytest.approx(bad / n)
    assert rows[("sgd", "none", 1.0)]["n_not_finished"] == 1  # no summary.json
    assert rows[("sgd", "norm", 1.0)]["n_not_finished"] == 1  # interrupted


def test_grad_flow_ratios(runs):
    rows = {(r["experiment"], r["arm"], r["forget_bias"], r["seq_len"]): r for r in grad_flow_table(runs)}
    rnn = rows[("arms", "RNN", None, T_ARMS)]
    assert rnn["n_seeds"] == 3
    assert rnn["log10_ratio_h_init"] == pytest.approx(-(0.1 + 0.01) * (T_ARMS - 1))  # median slope: seed 1
    assert rnn["log10_ratio_h_final"] == pytest.approx(-(0.1 + 0.01) / 2 * (T_ARMS - 1))
    assert rnn["log10_ratio_c_init"] is None
    lstm = rows[("arms", "LSTM", 1.0, T_ARMS)]
    assert lstm["log10_ratio_c_init"] == pytest.approx(-(0.02 + 0.01) / 4 * (T_ARMS - 1))
    assert rows[("forget_bias", "LSTM", 5.0, 30)]["log10_ratio_c_init"] == pytest.approx(0.01 * 29)
    data = grad_flow_data(runs)
    assert list(data["tasks"]) == ["adding"] and data["source"] == "arms experiment"
    panel = data["tasks"]["adding"]
    assert panel["seq_len"] == T_ARMS  # the largest of the task (the loose run is at T=20)
    # every unclipped arm of the sweep, h for each and c where the cell has one; LSTM+clip is LSTM's twin
    unclipped = [arm for arm in VAL_BASE if not arm.endswith("+clip")]
    assert list(panel["curves"]) == [(arm, q) for arm in unclipped for q in by_name(ARM_CELL[arm][0]).states]
    assert panel["curves"][("RNN", "h")]["init_ratio"] == pytest.approx(-0.11 * (T_ARMS - 1))
    assert panel["curves"][("LSTM", "c")]["final_ratio"] == pytest.approx(-(0.02 + 0.01) / 4 * (T_ARMS - 1))
    assert list(data["forget_bias"]["curves"]) == [0.0, 5.0] and data["forget_bias"]["cell"] == "LSTM"


def two_point_curve(first: float, last: float, length: int = 5) -> np.ndarray:
    """A gradient-norm curve over t from `first` (t=0) to `last` (t=T-1), geometric in between."""
    return np.geomspace(first, last, length)


def test_legends_and_tables_give_the_median_of_the_seeds_ratios(tmp_path):
    """Three seeds whose log10(first/last) are -10, -4 and -5: the median of the ratios is -5, while the ratio of
    the median curve is log10(median(1e-10, 1e-6, 1e-8) / median(1, 1e-2, 1e-3)) = -6. Every table, legend and
    caption prints -5 (analysis.flow_ratios), never -6."""
    ends = [(1e-10, 1.0), (1e-6, 1e-2), (1e-8, 1e-3)]
    for seed, (first, last) in enumerate(ends):
        h = np.stack([two_point_curve(first, last), two_point_curve(first, last)])
        c = np.stack([two_point_curve(first, last), two_point_curve(first, last)])
        flow = {"steps": np.array([0, 300]), "h": h, "c": c, "loss": np.array([0.2, 0.1])}
        write_job(tmp_path / "arms" / str(seed), experiment="arms", arm="LSTM", seq_len=5, seed=seed, grad_flow=flow)
        write_job(tmp_path / "fb" / str(seed), experiment="forget_bias", arm="LSTM", seq_len=5, seed=seed,
                  forget_bias=1.0, grad_flow=flow)
    runs = load_runs([tmp_path], events=False)
    table = {(r["experiment"], r["arm"]): r for r in grad_flow_table(runs)}
    panel = grad_flow_data(runs)
    for when in ("init", "final"):
        assert table[("arms", "LSTM")][f"log10_ratio_h_{when}"] == pytest.approx(-5)
        assert table[("forget_bias", "LSTM")][f"log10_ratio_c_{when}"] == pytest.approx(-5)
        assert panel["tasks"]["adding"]["curves"][("LSTM", "h")][f"{when}_ratio"] == pytest.approx(-5)
        assert panel["tasks"]["adding"]["curves"][("LSTM", "c")][f"{when}_ratio"] == pytest.approx(-5)
    assert panel["forget_bias"]["curves"][1.0]["init_ratio"] == pytest.approx(-5)
    median_curve = panel["tasks"]["adding"]["curves"][("LSTM", "h")]["init"]  # what the figure draws
    assert np.log10(median_curve[0] / median_curve[-1]) == pytest.approx(-6)
    # the gradient-paths figure's words about ‖∂L/∂c_t‖ read the same statistic
    for seed, (first, last) in enumerate(ends):
        c = np.stack([two_point_curve(first, last)] * 2)
        flow = {"steps": np.array([0, 300]), "h": c, "c": c, "loss": np.array([0.2, 0.1]),
                "c_via_carry": c / 2, "c_via_output": c / 3}
        write_job(tmp_path / "paths" / str(seed), experiment="forget_bias", arm="LSTM", seq_len=5, seed=seed,
                  forget_bias=2.0, grad_flow=flow)
    entry = gradient_paths_data(load_runs([tmp_path / "paths"], events=False))["biases"][2.0]
    assert entry["c_ratio_init"] == pytest.approx(-5) and entry["c_ratio_final"] == pytest.approx(-5)


def test_histogram_heatmap_keeps_every_count(runs):
    assert W_HH_HIST_TAG == HIST_TAG
    data = grad_histogram_data(runs)
    assert set(data["arms"]) == {"RNN", "LSTM", "LSTM+clip"}
    rnn = data["arms"]["RNN"]
    assert rnn["steps"].tolist() == HIST_STEPS
    expected_totals = [hist_counts(s)[1].sum() for s in HIST_STEPS]
    np.testing.assert_allclose(rnn["counts"].sum(axis=1), expected_totals, rtol=1e-6)
