"""Every bad input a user can type is refused before any work: one line naming the key and what is
allowed, a non-zero exit, no traceback, and nothing already in outputs/ touched.

This is the one table of bad inputs (train, figures and sweep-report commands), each driven through the
real command line; the schema's own completeness is tested in tests/test_schema.py."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import cli_env

# (command, arguments, words the one-line message must contain). {tmp} is the test's folder.
TRAIN = "rnn_gradients.train"
FIGURES = "rnn_gradients.figures"
SWEEP_REPORT = "rnn_gradients.sweep_report"
BAD_INPUTS: list[tuple[str, list[str], list[str]]] = [
    (TRAIN, ["model=__nope__"], ["model", "'__nope__'", "'lstm'", "'rnn'"]),  # a value that can never become valid
    (TRAIN, ["optimizer=adamw"], ["optimizer", "'adam', 'rmsprop', 'sgd'"]),
    (TRAIN, ["data=__nope__"], ["data", "'adding'", "'copy'"]),
    (TRAIN, ["clipping=clamp"], ["clipping", "'none', 'norm', 'value'"]),
    (TRAIN, ["-m", "model=rnn,lstmx"], ["model", "'lstmx'"]),
    (TRAIN, ["data.seq_len=-5"], ["data.seq_len", "integer >= 2"]),  # the default task: adding
    (TRAIN, ["data.seq_len=0"], ["data.seq_len", "integer >= 2"]),
    (TRAIN, ["data.seq_len=ten"], ["data.seq_len", "integer >= 2"]),
    (TRAIN, ["data=adding", "data.seq_len=1"], ["data.seq_len", ">= 2", "adding task's minimum"]),
    (TRAIN, ["data=temporal_order", "data.seq_len=3"], ["data.seq_len=3", ">= 4", "temporal_order task's minimum"]),
    (TRAIN, ["clipping=norm", "clipping.threshold=0"], ["clipping.threshold", "> 0"]),
    (TRAIN, ["clipping=value", "clipping.threshold=-1"], ["clipping.threshold", "> 0"]),
    (TRAIN, ["model.hidden_size=0"], ["model.hidden_size", "integer > 0"]),
    (TRAIN, ["model.num_layers=-1"], ["model.num_layers", "integer > 0"]),
    (TRAIN, ["model.init=xavier"], ["model.init", "'default', 'orthogonal', 'spectral', 'glorot'"]),
    (TRAIN, ["model.spectral_radius=-1"], ["model.spectral_radius", "> 0"]),
    (TRAIN, ["model=rnn", "model.nonlinearity=gelu"], ["model.nonlinearity", "'tanh', 'relu'"]),
    (TRAIN, ["optimizer.lr=0"], ["optimizer.lr", "> 0"]),
    (TRAIN, ["data.batch_size=0"], ["data.batch_size", "integer > 0"]),
    (TRAIN, ["trainer.max_steps=0"], ["trainer.max_steps", "integer > 0"]),
    (TRAIN, ["seed=-1"], ["seed", ">= 0"]),
    (TRAIN, ["checkpoint.every_n_steps=-5"], ["checkpoint.every_n_steps", ">= 0"]),
    (TRAIN, ["data.seq_len=2.5"], ["data.seq_len", "integer >= 2"]),
    (TRAIN, ["data=copy", "data.seq_len=0"], ["data.seq_len", "integer > 0"]),
    (TRAIN, ["data.val_size=0"], ["data.val_size", "integer > 0"]),
    (TRAIN, ["clipping=norm", "clipping.threshold=null"], ["clipping.threshold", "> 0"]),
    (TRAIN, ["clipping.threshold=-1"], ["clipping.threshold", "> 0"]),  # refused even where clipping is off
    (TRAIN, ["clipping.mode=l2"], ["clipping.mode", "'none', 'norm', 'value'"]),
    (TRAIN, ["optimizer=sgd", "optimizer.lr=-0.1"], ["optimizer.lr", "> 0"]),
    (TRAIN, ["optimizer=sgd", "optimizer.momentum=-1"], ["optimizer.momentum", ">= 0"]),
    (TRAIN, ["model._target_=__nope__.Cell"], ["model._target_='__nope__.Cell'", "cannot be imported"]),
    (TRAIN, ["model._target_=rnn_gradients.tasks.copy.Copy"], ["model._target_", "subclass of rnn_gradients.cells.base.Cell"]),
    (TRAIN, ["data._target_=rnn_gradients.cells.rnn.RNN"], ["data._target_", "subclass of rnn_gradients.tasks.base.Task"]),
    (TRAIN, ["model.forget_bias=abc"], ["model.forget_bias", "finite number, or null"]),
    (TRAIN, ["trainer.val_check_interval=0"], ["trainer.val_check_interval", "integer > 0"]),
    (TRAIN, ["trainer.precision=8"], ["trainer.precision", "'16-mixed'"]),
    (TRAIN, ["malloc_keep_mb=-1"], ["malloc_keep_mb", ">= 0"]),
    (TRAIN, ["progress_bar_refresh_rate=0"], ["progress_bar_refresh_rate", "integer > 0"]),
    (TRAIN, ["callbacks.grad_flow.every_n_steps=0"], ["callbacks.grad_flow.every_n_steps", "integer > 0"]),
    (TRAIN, ["callbacks.grad_histograms.bins=0"], ["callbacks.grad_histograms.bins", "integer > 0"]),
    (TRAIN, ["callbacks.divergence.loss_multiple=0.5"], ["callbacks.divergence.loss_multiple", "> 1"]),
    (TRAIN, ["scheduler=warmup", "scheduler.total_iters=0"], ["scheduler.total_iters", "integer > 0"]),
    (TRAIN, ["logger.flush_secs=0"], ["logger.flush_secs", "> 0"]),
    (TRAIN, ["model=lstm", "model.nonlinearity=relu"], ["model.nonlinearity", "model=lstm", "'forget_bias'"]),
    (TRAIN, ["arm=rnn", "model.forget_bias=3"], ["model.forget_bias", "arm=rnn", "'nonlinearity'"]),
    (TRAIN, ["-m", "data.seq_len=10,-5"], ["data.seq_len=-5", "integer >= 2"]),  # every value of a sweep
    (TRAIN, ["-m", "data=copy,temporal_order", "data.seq_len=3"], ["data.seq_len=3", "temporal_order"]),
    (TRAIN, ["-m", "model=rnn,lstm", "optimizer.lr=0.1,0"], ["optimizer.lr=0", "> 0"]),
    (TRAIN, ["ckpt_path={tmp}/missing.ckpt"], ["ckpt_path", "no such file"]),
    (TRAIN, ["ckpt_path={tmp}/garbage.ckpt"], ["ckpt_path", "not a loadable checkpoint"]),
    (TRAIN, ["paths.output_dir={tmp}/a_file/out"], ["paths.output_dir", "not writable"]),
    (TRAIN, ["min_free_disk_mb=999999999"], ["min_free_disk_mb", "MB free"]),
    (FIGURES, ["{tmp}/no_such_sweep"], ["{tmp}/no_such_sweep"]),
    (FIGURES, ["{tmp}/empty"], ["no"]),
    (FIGURES, ["{tmp}/broken_sweep"], ["no"]),
    (FIGURES, ["{tmp}/empty", "--out", "{tmp}/a_file"], ["a_file"]),
    (SWEEP_REPORT, ["{tmp}/empty"], ["sweep_dir", "no job folder"]),
]


def snapshot(root: Path) -> dict[str, tuple[float, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime, p.stat().st_size) for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every bad input once (two at a time) in a folder with an existing outputs/ tree."""
    tmp = tmp_path_factory.mktemp("bad")
    (tmp / "a_file").write_text("a file, not a folder")
    (tmp / "garbage.ckpt").write_bytes(b"\x80\x04 definitely not a checkpoint")
    (tmp / "empty").mkdir()
    broken = tmp / "broken_sweep" / "0" / ".hydra"
    broken.mkdir(parents=True)
    (broken.parent / "summary.json").write_text("{ not json")
    existing = tmp / "outputs" / "runs" / "earlier_run"
    existing.mkdir(parents=True)
    (existing / "summary.json").write_text('{"status": "completed"}')
    before = snapshot(tmp)

    def run(case: tuple[str, list[str], list[str]]) -> subprocess.CompletedProcess:
        module, args, _ = case
        argv = [a.replace("{tmp}", str(tmp)) for a in args]
        return subprocess.run([sys.executable, "-m", module, *argv], cwd=tmp, env=cli_env(),
                              capture_output=True, text=True, timeout=180)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(run, BAD_INPUTS))
    return tmp, before, outcomes


@pytest.mark.parametrize("index", range(len(BAD_INPUTS)), ids=[" ".join(a) for _, a, _ in BAD_INPUTS])
def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(results, index):
    tmp, _, outcomes = results
    proc = outcomes[index]
    module, args, words = BAD_INPUTS[index]
    text = proc.stdout + proc.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert len(lines) == 1, text
    for word in words:
        assert word.replace("{tmp}", str(tmp)) in lines[0], (word, lines[0])


def test_nothing_already_written_is_touched(results):
    tmp, before, _ = results
    after = snapshot(tmp)
    assert after == before, sorted(set(after) ^ set(before))
