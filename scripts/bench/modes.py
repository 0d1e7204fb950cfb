"""The benchmark's sizes: the full run, --quick and --tiny (what the test runs)."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Mode:
    name: str
    hidden: int
    batch: int
    seq_lens: tuple[int, ...]  # rows 1-3: one short, one long
    val_size: int
    samples: int  # per variant, rows 1-3 (and the GPU row)
    fit_budget_s: float  # target duration of the timed window of one sample
    turn_s: float  # rows 1-3: the variants take turns of about this many seconds of steps
    warmup: int  # steps discarded at the start of every sample
    min_window: int
    max_window: int
    scaling_seq_lens: tuple[int, ...]
    scaling_rounds: int
    scaling_budget_s: float
    scaling_min_steps: int
    denormal_rounds: int
    startup_runs: int
    sweep_jobs: int
    sweep_steps: int
    sweep_runs: int  # per launcher
    sweep_models: tuple[str, ...]  # row 5 runs a sweep of each
    crosscheck_steps: int  # 0 = no direct long-window check of the amortization
    denormal_lstm_warmup: int
    threads_rounds: int
    threads_budget_s: float
    sweep_timeout_s: float
    fresh_rounds: int  # rows 1-2 again for the shortest step, one fresh process per sample
    fresh_budget_s: float  # timed window of one fresh-process sample
    train_extra: tuple[str, ...] = ()  # extra overrides of the subprocess runs (startup, sweep)
    # the probe rows: the gradient-flow probe (callbacks.grad_flow) / the unrolled twin it replaced
    probe_seq_lens: tuple[int, ...] = (100, 500)
    probe_hidden: int = 128
    probe_batch: int = 0  # 0: callbacks.grad_flow.probe_size of the default config (64)
    probe_budget_s: float = 6.0  # per row: calls alternate A B, B A, ... until about this much time is spent
    probe_min_rounds: int = 5
    probe_max_rounds: int = 40


FULL = Mode(
    name="full", hidden=128, batch=64, seq_lens=(100, 500), val_size=1024,
    samples=4, fit_budget_s=2.5, turn_s=0.5, warmup=2, min_window=6, max_window=200,
    scaling_seq_lens=(50, 100, 200, 500, 1000), scaling_rounds=3, scaling_budget_s=1.5, scaling_min_steps=3,
    denormal_rounds=3, startup_runs=3, sweep_jobs=4, sweep_steps=300, sweep_runs=2, sweep_models=("lstm", "rnn"), crosscheck_steps=500,
    denormal_lstm_warmup=25, threads_rounds=3, threads_budget_s=3.0, sweep_timeout_s=300,
    fresh_rounds=3, fresh_budget_s=8.0,
)
QUICK = replace(
    FULL, name="quick", samples=2, fit_budget_s=1.0, max_window=100, scaling_rounds=1, scaling_budget_s=0.6,
    denormal_rounds=1, startup_runs=2, sweep_steps=100, sweep_runs=1, crosscheck_steps=0,
    denormal_lstm_warmup=15, threads_rounds=1, threads_budget_s=1.5, sweep_timeout_s=240,
    fresh_rounds=1, fresh_budget_s=3.0,
    probe_seq_lens=(100,), probe_budget_s=2.0, probe_min_rounds=3, probe_max_rounds=15,
)
TINY = Mode(
    name="tiny", hidden=16, batch=8, seq_lens=(10, 20), val_size=32,
    samples=2, fit_budget_s=0.05, turn_s=0.01, warmup=1, min_window=4, max_window=6,
    scaling_seq_lens=(5, 10, 20, 40, 80), scaling_rounds=1, scaling_budget_s=0.02, scaling_min_steps=2,
    denormal_rounds=1, startup_runs=1, sweep_jobs=2, sweep_steps=5, sweep_runs=1, sweep_models=("lstm",), crosscheck_steps=0,
    denormal_lstm_warmup=1, threads_rounds=1, threads_budget_s=0.05, sweep_timeout_s=300,
    fresh_rounds=1, fresh_budget_s=0.05,
    train_extra=("model.hidden_size=16", "data.seq_len=10", "data.batch_size=8", "data.val_size=32"),
    probe_seq_lens=(10, 20), probe_hidden=16, probe_batch=8, probe_budget_s=0.05, probe_min_rounds=2, probe_max_rounds=3,
)
MODES = {m.name: m for m in (FULL, QUICK, TINY)}
MODELS = ("rnn", "lstm")
