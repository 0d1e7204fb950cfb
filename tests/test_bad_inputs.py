"""Every bad input a user can type is refused before any work: one line naming the key and what is
allowed, a non-zero exit, no traceback, and nothing already in outputs/ touched.

This is the one table of bad inputs (train, figures and sweep-report commands), each driven through the
real command line; the schema's own completeness is tested in tests/test_schema.py."""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import cli_env

# (command, arguments, the one line it must print), written out: not built from the code under test.
# In the expected line {tmp} is the test's folder, {mb} a number of megabytes, {torch} torch's own reason.
TRAIN = "rnn_gradients.train"
FIGURES = "rnn_gradients.figures"
SWEEP_REPORT = "rnn_gradients.sweep_report"
MODELS = "['gru', 'irnn', 'lstm', 'orthogonal_rnn', 'rnn']"
ADDING_T = "data.seq_len must be an integer >= 2 (the adding task's minimum: one marker in each half)"
ORDER_T = "data.seq_len must be an integer >= 4 (the temporal_order task's minimum: start and end markers and two relevant symbols apart)"
LSTM_KEYS = "['hidden_size', 'num_layers', 'init', 'spectral_radius', 'forget_bias', 'forget_init', 'chrono_t_max', 'cell_carry']"
SEEDS_60 = ",".join(str(seed) for seed in range(59)) + ",-1"  # 60 values, the bad one last
LRS_60 = ",".join(f"0.{n:03d}" for n in range(1, 60)) + ",0"
BAD_INPUTS: list[tuple[str, list[str], str]] = [
    (TRAIN, ["model=__nope__"], f"model='__nope__' is not a known option: model must be one of {MODELS}"),
    (TRAIN, ["optimizer=adamw"], "optimizer='adamw' is not a known option: optimizer must be one of ['adam', 'rmsprop', 'sgd']"),
    (TRAIN, ["data=__nope__"], "data='__nope__' is not a known option: data must be one of ['adding', 'copy', 'temporal_order']"),
    (TRAIN, ["clipping=clamp"], "clipping='clamp' is not a known option: clipping must be one of ['none', 'norm', 'value']"),
    (TRAIN, ["-m", "model=rnn,lstmx"], f"model='lstmx' is not a known option: model must be one of {MODELS}"),
    (TRAIN, ["data.seq_len=-5"], f"data.seq_len=-5 is not allowed: {ADDING_T}"),  # the default task: adding
    (TRAIN, ["data.seq_len=0"], f"data.seq_len=0 is not allowed: {ADDING_T}"),
    (TRAIN, ["data.seq_len=ten"], f"data.seq_len='ten' is not allowed: {ADDING_T}"),
    (TRAIN, ["data=adding", "data.seq_len=1"], f"data.seq_len=1 is not allowed: {ADDING_T}"),
    (TRAIN, ["data=temporal_order", "data.seq_len=3"], f"data.seq_len=3 is not allowed: {ORDER_T}"),
    (TRAIN, ["clipping=norm", "clipping.threshold=0"],
     "clipping.threshold=0 is not allowed: clipping.threshold must be a number > 0, or null"),
    (TRAIN, ["clipping=value", "clipping.threshold=-1"],
     "clipping.threshold=-1 is not allowed: clipping.threshold must be a number > 0, or null"),
    (TRAIN, ["model.hidden_size=0"], "model.hidden_size=0 is not allowed: model.hidden_size must be an integer > 0"),
    (TRAIN, ["model.num_layers=-1"], "model.num_layers=-1 is not allowed: model.num_layers must be an integer > 0"),
    (TRAIN, ["model.init=xavier"],
     "model.init='xavier' is not allowed: model.init must be one of ['default', 'orthogonal', 'spectral', 'glorot']"),
    (TRAIN, ["model.spectral_radius=-1"], "model.spectral_radius=-1 is not allowed: model.spectral_radius must be a number > 0"),
    (TRAIN, ["model=rnn", "model.nonlinearity=gelu"],
     "model.nonlinearity='gelu' is not allowed: model.nonlinearity must be one of ['tanh', 'relu']"),
    (TRAIN, ["optimizer.lr=0"], "optimizer.lr=0 is not allowed: optimizer.lr must be a number > 0"),
    (TRAIN, ["data.batch_size=0"], "data.batch_size=0 is not allowed: data.batch_size must be an integer > 0"),
    (TRAIN, ["trainer.max_steps=0"], "trainer.max_steps=0 is not allowed: trainer.max_steps must be an integer > 0"),
    (TRAIN, ["seed=-1"], "seed=-1 is not allowed: seed must be an integer >= 0"),
    (TRAIN, ["checkpoint.every_n_steps=-5"], "checkpoint.every_n_steps=-5 is not allowed: checkpoint.every_n_steps must be "
                                             "an integer >= 0 (0 = only at the end and on interruption)"),
    (TRAIN, ["data.seq_len=2.5"], f"data.seq_len=2.5 is not allowed: {ADDING_T}"),
    (TRAIN, ["data=copy", "data.seq_len=0"], "data.seq_len=0 is not allowed: data.seq_len must be an integer > 0"),
    (TRAIN, ["data.val_size=0"], "data.val_size=0 is not allowed: data.val_size must be an integer > 0"),
    (TRAIN, ["clipping=norm", "clipping.threshold=null"],
     "clipping.threshold=None is not allowed: clipping.threshold must be a number > 0 with clipping=norm"),
    (TRAIN, ["clipping.threshold=-1"],  # refused even where clipping is off
     "clipping.threshold=-1 is not allowed: clipping.threshold must be a number > 0, or null"),
    (TRAIN, ["clipping.mode=l2"], "clipping.mode='l2' is not allowed: clipping.mode must be one of ['none', 'norm', 'value']"),
    (TRAIN, ["optimizer=sgd", "optimizer.lr=-0.1"], "optimizer.lr=-0.1 is not allowed: optimizer.lr must be a number > 0"),
    (TRAIN, ["optimizer=sgd", "optimizer.momentum=-1"],
     "optimizer.momentum=-1 is not allowed: optimizer.momentum must be a number >= 0 (SGD)"),
    (TRAIN, ["model._target_=__nope__.Cell"],
     "model._target_='__nope__.Cell' cannot be imported (No module named '__nope__'): is its folder on PYTHONPATH?"),
    (TRAIN, ["model._target_=rnn_gradients.tasks.copy.Copy"], "model._target_='rnn_gradients.tasks.copy.Copy' is not allowed: "
                                                              "model._target_ must name a subclass of rnn_gradients.cells.base.Cell with a name"),
    (TRAIN, ["data._target_=rnn_gradients.cells.rnn.RNN"], "data._target_='rnn_gradients.cells.rnn.RNN' is not allowed: "
                                                           "data._target_ must name a subclass of rnn_gradients.tasks.base.Task with a name"),
    (TRAIN, ["model.forget_bias=abc"], "model.forget_bias='abc' is not allowed: model.forget_bias must be a finite number, or null"),
    (TRAIN, ["trainer.val_check_interval=0"], "trainer.val_check_interval=0 is not allowed: trainer.val_check_interval must be "
                                              "an integer > 0 (steps between validations)"),
    (TRAIN, ["trainer.precision=8"], "trainer.precision=8 is not allowed: trainer.precision must be one of "
                                     "['32-true', '32', '16-mixed', 'bf16-mixed', '64-true']"),
    (TRAIN, ["malloc_keep_mb=-1"], "malloc_keep_mb=-1 is not allowed: malloc_keep_mb must be an integer >= 0 (0 = glibc's defaults)"),
    (TRAIN, ["progress_bar_refresh_rate=0"], "progress_bar_refresh_rate=0 is not allowed: progress_bar_refresh_rate must be "
                                             "an integer > 0 (steps between progress-bar redraws)"),
    (TRAIN, ["callbacks.grad_flow.every_n_steps=0"],
     "callbacks.grad_flow.every_n_steps=0 is not allowed: callbacks.grad_flow.every_n_steps must be an integer > 0"),
    (TRAIN, ["callbacks.grad_histograms.bins=0"],
     "callbacks.grad_histograms.bins=0 is not allowed: callbacks.grad_histograms.bins must be an integer > 0"),
    (TRAIN, ["callbacks.divergence.loss_multiple=0.5"],
     "callbacks.divergence.loss_multiple=0.5 is not allowed: callbacks.divergence.loss_multiple must be a number > 1"),
    (TRAIN, ["scheduler=warmup", "scheduler.total_iters=0"],
     "scheduler.total_iters=0 is not allowed: scheduler.total_iters must be an integer > 0"),
    (TRAIN, ["logger.flush_secs=0"], "logger.flush_secs=0 is not allowed: logger.flush_secs must be a number > 0"),
    (TRAIN, ["model=lstm", "model.nonlinearity=relu"],
     f"model.nonlinearity is not a key of the chosen model (model=lstm): its keys are {LSTM_KEYS}"),
    (TRAIN, ["arm=rnn", "model.forget_bias=3"], "model.forget_bias is not a key of the chosen model (arm=rnn): its keys are "
                                               "['hidden_size', 'num_layers', 'nonlinearity', 'init', 'spectral_radius']"),
    # every value of a sweep, in every combination with the other sweeps' values
    (TRAIN, ["-m", "data.seq_len=10,-5"], f"data.seq_len=-5 is not allowed: {ADDING_T}"),
    (TRAIN, ["-m", "data=copy,temporal_order", "data.seq_len=3"], f"data.seq_len=3 is not allowed: {ORDER_T}"),
    (TRAIN, ["-m", "data=copy,temporal_order", "data.seq_len=10,3"], f"data.seq_len=3 is not allowed: {ORDER_T}"),
    (TRAIN, ["-m", "model=rnn,lstm", "optimizer.lr=0.1,0"], "optimizer.lr=0 is not allowed: optimizer.lr must be a number > 0"),
    (TRAIN, ["-m", "model=rnn,lstm", "model.nonlinearity=relu"],
     f"model.nonlinearity is not a key of the chosen model (model=lstm): its keys are {LSTM_KEYS}"),
    (TRAIN, ["-m", "clipping.mode=none,norm", "clipping.threshold=1,null"],
     "clipping.threshold=None is not allowed: clipping.threshold must be a number > 0 with clipping=norm"),
    (TRAIN, ["-m", "seed=range(-1,3)"], "seed=-1 is not allowed: seed must be an integer >= 0"),
    (TRAIN, ["-m", "seed=choice(0,1,-2)"], "seed=-2 is not allowed: seed must be an integer >= 0"),
    (TRAIN, ["-m", f"seed={SEEDS_60}", "hydra.sweep.dir={tmp}/sweep_seeds"], "seed=-1 is not allowed: seed must be an integer >= 0"),
    (TRAIN, ["-m", f"optimizer.lr={LRS_60}", "hydra.sweep.dir={tmp}/sweep_lrs"],
     "optimizer.lr=0 is not allowed: optimizer.lr must be a number > 0"),
    (TRAIN, ["-m", "experiment=arms", "profile=smoke", "profile.seeds='0,-1'", "hydra.sweep.dir={tmp}/sweep_arms"],
     "seed=-1 is not allowed: seed must be an integer >= 0"),  # a value of the experiment's grid (hydra.sweeper.params)
    (TRAIN, ["-m", "experiment=arms", "profile=smoke", "profile.arms='rnn,gruu'", "hydra.sweep.dir={tmp}/sweep_arms"],
     "arm='gruu' is not a known option: arm must be one of ['gru', 'irnn', 'lstm', 'lstm_chrono', 'lstm_clip', 'lstm_no_carry', "
     "'orthogonal_rnn', 'orthogonal_rnn_modrelu', 'rnn']"),
    (TRAIN, ["-m", "experiment=lr_search", "hydra.sweeper.n_trials=0", "hydra.sweep.dir={tmp}/search"],
     "hydra.sweeper.n_trials=0 is not allowed: hydra.sweeper.n_trials must be an integer >= 1"),
    (TRAIN, ["-m", "experiment=lr_search", "optimizer.lrr=interval(0.1,0.2)", "hydra.sweep.dir={tmp}/search"],
     "hydra.sweeper.params.optimizer.lrr is not allowed: optimizer.lrr is not a key of the config "
     "(a search sets keys the config has, e.g. optimizer.lr, clipping.threshold)"),
    (TRAIN, ["-m", "experiment=lr_search", "optimizer.lr=interval(0.1,0.01)", "hydra.sweep.dir={tmp}/search"],
     "hydra.sweeper.params.optimizer.lr='interval(0.1,0.01)' is not allowed: the interval is empty (interval(low, high) needs low < high)"),
    (TRAIN, ["-m", "experiment=lr_search", "optimizer.lr=tag(log,interval(0,0.1))", "hydra.sweep.dir={tmp}/search"],
     "hydra.sweeper.params.optimizer.lr='tag(log,interval(0,0.1))' is not allowed: a log-scaled interval needs low > 0"),
    (TRAIN, ["-m", "experiment=lr_search", "clipping.threshold=choice(1,-2)", "hydra.sweep.dir={tmp}/search"],
     "clipping.threshold=-2 is not allowed: clipping.threshold must be a number > 0, or null"),
    (TRAIN, ["-m", "experiment=lr_search", "hydra/launcher=slurm", "hydra.launcher.wait=false", "hydra.sweep.dir={tmp}/search"],
     "hydra.launcher.wait=False is not allowed with hydra/sweeper=optuna: a search needs each trial's result before it "
     "asks the next (submit the search itself as a job instead)"),
    (TRAIN, ["ckpt_path={tmp}/missing.ckpt"], "ckpt_path='{tmp}/missing.ckpt' is not allowed: there is no file {tmp}/missing.ckpt "
                                              "(ckpt_path must be a .ckpt file, or 'last' with hydra.run.dir=<run dir>)"),
    (TRAIN, ["ckpt_path=last", "hydra.run.dir={tmp}/no_run"],  # refused before Hydra creates the run folder
     "ckpt_path='last' is not allowed: there is no file {tmp}/no_run/checkpoints/last.ckpt "
     "(ckpt_path must be a .ckpt file, or 'last' with hydra.run.dir=<run dir>)"),
    (TRAIN, ["ckpt_path={tmp}/garbage.ckpt"],
     "ckpt_path='{tmp}/garbage.ckpt' is not allowed: {tmp}/garbage.ckpt is not a loadable checkpoint (UnpicklingError: {torch})"),
    (TRAIN, ["paths.output_dir={tmp}/a_file/out"],
     "paths.output_dir='{tmp}/a_file/out' is not writable ({tmp}/a_file does not accept new files): choose another paths.output_dir"),
    (TRAIN, ["min_free_disk_mb=999999999"], "paths.output_dir='outputs' has {mb} MB free, below min_free_disk_mb=999999999: "
                                            "free space or choose another paths.output_dir"),
    (FIGURES, ["{tmp}/no_such_sweep"], "path does not exist: {tmp}/no_such_sweep"),
    (FIGURES, ["{tmp}/empty"], "no runs found under {tmp}/empty (looked for job folders holding .hydra/ or summary.json)"),
    (FIGURES, ["{tmp}/broken_sweep"], "no usable run under {tmp}/broken_sweep: 1 job folder(s), none finished (completed or "
                                      "diverged): 1 unreadable (a summary.json that is not a JSON object with a known status)"),
    (FIGURES, ["{tmp}/empty", "--out", "{tmp}/a_file"], "--out is not a folder: {tmp}/a_file"),
    (SWEEP_REPORT, ["{tmp}/empty"], "sweep_dir='{tmp}/empty' holds no job folder (<job>/.hydra/)"),
    (SWEEP_REPORT, ["{tmp}/empty", "--watch"], "sweep_dir='{tmp}/empty' holds no job folder (<job>/.hydra/)"),
    (SWEEP_REPORT, ["{tmp}/broken_sweep", "--watch", "--poll-s", "0"],
     "--poll-s=0.0 is not allowed: --poll-s must be a number of seconds > 0"),
]


def line_pattern(expected: str, tmp: Path) -> re.Pattern[str]:
    """The whole line, as printed (`error: ` and the message), with the placeholders above."""
    pattern = re.escape(f"error: {expected}")
    for placeholder, part in (("{tmp}", re.escape(str(tmp))), ("{mb}", r"\d+"), ("{torch}", r".+")):
        pattern = pattern.replace(re.escape(placeholder), part)
    return re.compile(pattern)


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


@pytest.mark.parametrize("index", range(len(BAD_INPUTS)), ids=[" ".join(a)[:100] for _, a, _ in BAD_INPUTS])
def test_bad_input_gets_one_clear_line_and_a_nonzero_exit(results, index):
    tmp, _, outcomes = results
    proc = outcomes[index]
    _, _, expected = BAD_INPUTS[index]
    text = proc.stdout + proc.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert proc.returncode == 2, text
    assert len(lines) == 1, text
    assert line_pattern(expected, tmp).fullmatch(lines[0]), (expected, lines[0])


def test_a_refused_sweep_creates_no_sweep_folder(results):
    """The 60-value sweeps above name their own hydra.sweep.dir: refused before Hydra creates it."""
    tmp, _, _ = results
    assert [p.name for p in tmp.iterdir() if p.name.startswith("sweep_")] == []


def test_nothing_already_written_is_touched(results):
    tmp, before, _ = results
    after = snapshot(tmp)
    assert after == before, sorted(set(after) ^ set(before))
