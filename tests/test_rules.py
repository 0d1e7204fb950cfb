"""One rule, one message: a config value the command line refuses is refused by the constructor it goes to
with the same line, and the rules themselves do what they say (the loss-multiple divergence rule; every
value of a sweep, as Hydra expands it)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from conftest import cli_env
from rnn_gradients import config_checks
from rnn_gradients.clipping import GradientClipper
from rnn_gradients.checkpoint_files import checkpoint_step
from rnn_gradients.guards.divergence_monitor import DivergenceMonitor
from rnn_gradients.networks import network_for
from rnn_gradients.observatory.cliff_recorder import LossCliffRecorder
from rnn_gradients.observatory.gate_stats import GateStatsLogger
from rnn_gradients.observatory.gradient_flow import GradFlowLogger
from rnn_gradients.observatory.gradient_histograms import GradHistogramLogger
from rnn_gradients.paths import config_dir
from rnn_gradients.rules import ConfigError
from rnn_gradients.tasks.adding import Adding

LOSS_MULTIPLE_1 = "callbacks.divergence.loss_multiple=1 is not allowed: callbacks.divergence.loss_multiple must be a number > 1"

# (command-line overrides, the same value given to its constructor directly, the line both must give)
SAME_VALUE: list[tuple[list[str], Callable[[Path], Any], str]] = [
    (["callbacks.divergence.loss_multiple=1"], lambda tmp: DivergenceMonitor(loss_multiple=1), LOSS_MULTIPLE_1),
    (["callbacks.divergence.warmup_steps=-1"], lambda tmp: DivergenceMonitor(warmup_steps=-1),
     "callbacks.divergence.warmup_steps=-1 is not allowed: callbacks.divergence.warmup_steps must be an integer >= 0"),
    (["clipping=norm", "clipping.threshold=0"], lambda tmp: GradientClipper("norm", 0),
     "clipping.threshold=0 is not allowed: clipping.threshold must be a number > 0, or null"),
    (["clipping=value", "clipping.threshold=null"], lambda tmp: GradientClipper("value", None),
     "clipping.threshold=None is not allowed: clipping.threshold must be a number > 0 with clipping=value"),
    (["clipping.mode=l2"], lambda tmp: GradientClipper("l2", 1.0),
     "clipping.mode='l2' is not allowed: clipping.mode must be one of ['none', 'norm', 'value']"),
    (["callbacks.grad_flow.plot_every_n_steps=-1"], lambda tmp: GradFlowLogger(plot_every_n_steps=-1),
     "callbacks.grad_flow.plot_every_n_steps=-1 is not allowed: callbacks.grad_flow.plot_every_n_steps must be "
     "an integer >= 0 (0 = never)"),
    (["callbacks.grad_flow.dtype=float16"], lambda tmp: GradFlowLogger(dtype="float16"),
     "callbacks.grad_flow.dtype='float16' is not allowed: callbacks.grad_flow.dtype must be one of ['float64', 'float32']"),
    (["callbacks.grad_histograms.bins=0"], lambda tmp: GradHistogramLogger(bins=0),
     "callbacks.grad_histograms.bins=0 is not allowed: callbacks.grad_histograms.bins must be an integer > 0"),
    (["data.seq_len=1"], lambda tmp: Adding(seq_len=1),
     "data.seq_len=1 is not allowed: data.seq_len must be an integer >= 2 (the adding task's minimum: one marker in each half)"),
    (["data.batch_size=0"], lambda tmp: Adding(seq_len=10, batch_size=0),
     "data.batch_size=0 is not allowed: data.batch_size must be an integer > 0"),
    (["model=rnn", "model.init=xavier"], lambda tmp: network_for("rnn", 2, 1, init="xavier"),
     "model.init='xavier' is not allowed: model.init must be one of ['default', 'orthogonal', 'spectral', 'glorot']"),
    (["model=rnn", "model.hidden_size=0"], lambda tmp: network_for("rnn", 2, 1, hidden_size=0),
     "model.hidden_size=0 is not allowed: model.hidden_size must be an integer > 0"),
    (["callbacks.gate_stats.probe_size=0"], lambda tmp: GateStatsLogger(probe_size=0),
     "callbacks.gate_stats.probe_size=0 is not allowed: callbacks.gate_stats.probe_size must be an integer > 0"),
    (["ckpt_path={tmp}/missing.ckpt"], lambda tmp: checkpoint_step(tmp / "missing.ckpt"),
     "ckpt_path='{tmp}/missing.ckpt' is not allowed: there is no file {tmp}/missing.ckpt "
     "(ckpt_path must be a .ckpt file, or 'last' with hydra.run.dir=<run dir>)"),
]


def cli_line(args: list[str], cwd: Path) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-m", "rnn_gradients.train", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=180)
    return proc.returncode, [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]


@pytest.fixture(scope="module")
def cli_lines(tmp_path_factory) -> tuple[Path, list[tuple[int, list[str]]]]:
    tmp = tmp_path_factory.mktemp("same")
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda case: cli_line([a.replace("{tmp}", str(tmp)) for a in case[0]], tmp), SAME_VALUE))
    return tmp, outcomes


@pytest.mark.parametrize("index", range(len(SAME_VALUE)), ids=[" ".join(args) for args, _, _ in SAME_VALUE])
def test_the_command_line_and_the_constructor_refuse_a_value_with_one_line(cli_lines, index):
    tmp, outcomes = cli_lines
    _, construct, expected = SAME_VALUE[index]
    expected = expected.replace("{tmp}", str(tmp))
    with pytest.raises(ConfigError) as refused:
        construct(tmp)
    assert str(refused.value) == expected
    returncode, lines = outcomes[index]
    assert (returncode, lines) == (2, [f"error: {expected}"])
    assert not (tmp / "outputs").exists()


def test_a_loss_cliff_range_is_refused_by_the_recorder_as_by_the_schema(compose_cfg):
    from rnn_gradients.schema import validate

    expected = ("callbacks.loss_cliff.alpha_min=20.0 is not allowed: callbacks.loss_cliff.alpha_min must be below "
                "callbacks.loss_cliff.alpha_max=10.0")
    with pytest.raises(ConfigError) as refused:
        LossCliffRecorder(alpha_min=20.0, alpha_max=10.0)
    assert str(refused.value) == expected
    with pytest.raises(ConfigError) as by_schema:
        validate(compose_cfg(["experiment=exploding", "callbacks.loss_cliff.alpha_min=20.0", "callbacks.loss_cliff.alpha_max=10.0"]))
    assert str(by_schema.value) == expected


# ----------------------------------------------------------------------------- the loss-multiple rule


def step(monitor: DivergenceMonitor, loss: float, global_step: int, baseline: float) -> SimpleNamespace:
    """One on_train_batch_end with a trainer and a module reduced to what the monitor reads."""
    trainer = SimpleNamespace(global_step=global_step, should_stop=False, precision_plugin=None)
    module = SimpleNamespace(task=SimpleNamespace(baseline_loss=baseline), clipper=SimpleNamespace(last=None))
    monitor.on_train_batch_end(trainer, module, {"loss": torch.tensor(loss)}, None, 0)
    return trainer


def test_a_loss_above_the_multiple_of_the_baseline_is_divergence():
    monitor = DivergenceMonitor(loss_multiple=10.0, warmup_steps=3)
    # baseline 0.5: the line is at 10 x 0.5 = 5.0
    assert not step(monitor, 4.99, global_step=4, baseline=0.5).should_stop and monitor.diverged_at is None
    assert not step(monitor, 50.0, global_step=3, baseline=0.5).should_stop  # still in the warm-up
    assert monitor.diverged_at is None
    trainer = step(monitor, 5.01, global_step=5, baseline=0.5)
    assert trainer.should_stop and monitor.diverged_at == 5
    assert monitor.reason == "loss 5.01 > 10 x baseline 0.5"
    step(monitor, math.inf, global_step=6, baseline=0.5)  # the first reason is the one kept
    assert (monitor.diverged_at, monitor.reason) == (5, "loss 5.01 > 10 x baseline 0.5")


def test_a_non_finite_loss_is_divergence_whatever_the_multiple():
    monitor = DivergenceMonitor(loss_multiple=1e9, warmup_steps=100)
    assert step(monitor, math.nan, global_step=1, baseline=0.5).should_stop
    assert (monitor.diverged_at, monitor.reason) == (1, "non-finite loss (nan)")


def test_a_loss_multiple_of_one_is_refused():
    """At 1 x the baseline a run that has learned nothing yet would count as diverged."""
    with pytest.raises(ConfigError) as refused:
        DivergenceMonitor(loss_multiple=1)
    assert str(refused.value) == LOSS_MULTIPLE_1  # and the command line: test_the_command_line_and_the_constructor...
    assert DivergenceMonitor(loss_multiple=1.01).loss_multiple == 1.01


# ----------------------------------------------------------------------------- every value of a sweep


def hydra_jobs(overrides: list[str]) -> list[dict]:
    """Every job of a sweep as Hydra's BasicSweeper expands and composes it: the reference."""
    parsed = OverridesParser.create(GlobalHydra.instance().config_loader()).parse_overrides(overrides)
    jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
    return [OmegaConf.to_container(compose(config_name="config", overrides=job)) for job in jobs]


def checked_jobs(overrides: list[str]) -> list[dict]:
    configs = config_checks._job_configs(overrides, True, config_dir())
    return [{k: v for k, v in OmegaConf.to_container(cfg).items() if k != "hydra"} for cfg in configs]


@pytest.mark.parametrize("overrides,jobs", [
    (["model=rnn,lstm", "seed=1,2,3", "optimizer.lr=0.1,0.01"], 12),
    (["data=copy,temporal_order", "data.seq_len=10,20", "clipping=norm", "clipping.threshold=1,2.5"], 8),
    (["seed=range(0,4)", "callbacks.grad_flow=null"], 4),
    (["model=glob(rnn*)", "model.hidden_size=8,16"], 2),
])
def test_the_checked_configs_are_the_jobs_hydra_launches(overrides, jobs):
    """The sweep check composes a config per group choice and sets scalar values in place: the configs it
    checks are, job for job, the ones Hydra composes."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        expected = hydra_jobs(overrides)
        got = checked_jobs(overrides)
    assert len(got) == len(expected) == jobs
    assert sorted(json.dumps(job, sort_keys=True) for job in got) == sorted(json.dumps(job, sort_keys=True) for job in expected)


def test_a_good_60_value_sweep_is_not_refused():
    seeds = ",".join(str(seed) for seed in range(60))
    assert config_checks.check_values(["-m", f"seed={seeds}", "model=rnn,lstm"], config_dir()) is None
