"""docs/extending.md works as written: its files are taken from the guide itself and put in a folder
outside src/, its commands are run as the guide gives them (a 20-step run, a 2-job multirun, the figures),
and the new cell and task show up where a user would look: summary.md, TensorBoard's run names and HParams,
grad_flow.npz. The guide's cell is also held to the probe's independent autograd check."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from conftest import cli_env, read_summary
from rnn_gradients import contract

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
FILE_BLOCK = re.compile(r"^`my_extension/(?P<path>[\w/.]+)`:\n\n```\w+\n(?P<body>.*?)^```", re.S | re.M)


def guide_files() -> dict[str, str]:
    return {m["path"]: m["body"] for m in FILE_BLOCK.finditer(GUIDE.read_text())}


def guide_commands() -> str:
    """The bash block of "## Run them"."""
    section = GUIDE.read_text().split("## Run them", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S)[1]


@pytest.fixture(scope="module")
def extension(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("guide")
    files = guide_files()
    assert sorted(files) == ["conf/data/first_symbol.yaml", "conf/model/leaky_rnn.yaml",
                             "my_cells/leaky_rnn.py", "my_tasks/first_symbol.py"]
    for path, body in files.items():
        (root / "my_extension" / path).parent.mkdir(parents=True, exist_ok=True)
        (root / "my_extension" / path).write_text(body)
    env = {**cli_env(), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "set -euo pipefail\n" + guide_commands()
    proc = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True, text=True, timeout=600)
    return root / "my_extension", proc


def test_the_guides_commands_run(extension):
    folder, proc = extension
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    single = [p.parent for p in (folder / "outputs" / "runs").glob("*/summary.json")]
    assert len(single) == 1 and read_summary(single[0])["arm"] == "Leaky RNN"
    assert read_summary(single[0])["task"] == "first_symbol" and read_summary(single[0])["steps"] == 20


def test_the_new_cell_is_in_summary_md_run_names_hparams_and_grad_flow(extension):
    folder, proc = extension
    assert proc.returncode == 0, proc.stderr[-4000:]
    jobs = sorted(p for p in (folder / "outputs" / "multirun" / "mine").iterdir() if p.is_dir())
    names = [job.name for job in jobs]
    assert names == ["0_leaky_rnn_first_symbol_T20_s0", "1_rnn_first_symbol_T20_s0"]  # TensorBoard's run list
    summary_md = (folder / "outputs" / "figures" / contract.FIGURES_MARKDOWN).read_text()
    assert "Leaky RNN" in summary_md and "first_symbol" in summary_md
    arms = {}
    for job in jobs:
        acc = EventAccumulator(str(job / contract.TENSORBOARD_DIR))
        acc.Reload()
        content = acc.PluginTagToContent("hparams")
        start = next(plugin_data_pb2.HParamsPluginData.FromString(c) for c in content.values()
                     if plugin_data_pb2.HParamsPluginData.FromString(c).HasField("session_start_info"))
        arms[job.name] = start.session_start_info.hparams["arm"].string_value
        flow = np.load(job / contract.GRAD_FLOW_FILE)
        assert flow["h"].shape == (len(flow["steps"]), 20) and flow["steps"][0] == 0
        assert np.isfinite(flow["h"]).all() and (flow["h"] > 0).all()
        assert flow["c"].size == 0  # one state: h
    assert arms == {names[0]: "Leaky RNN", names[1]: "RNN"}


@pytest.mark.parametrize("override,words", [("model.alpha=2", ["model.alpha=2", "(0, 1]"]),
                                            ("data.seq_len=1", ["data.seq_len=1", "first_symbol task's minimum"])])
def test_the_new_keys_are_refused_in_one_line(extension, override, words):
    folder, _ = extension
    before = sorted(str(p) for p in folder.rglob("*"))
    proc = subprocess.run([sys.executable, "-m", "rnn_gradients.train", f"hydra.searchpath=[file://{folder}/conf]",
                           "model=leaky_rnn", "data=first_symbol", override], cwd=folder,
                          env={**cli_env(), "PYTHONPATH": str(folder)}, capture_output=True, text=True, timeout=120)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1, lines
    assert all(word in lines[0] for word in words), lines[0]
    assert sorted(str(p) for p in folder.rglob("*")) == before  # nothing written


def test_the_guides_cell_is_measured_exactly(extension, monkeypatch):
    folder, _ = extension
    monkeypatch.syspath_prepend(str(folder))
    from my_cells.leaky_rnn import LeakyRNN  # noqa: E402 - the guide's own module
    from my_tasks.first_symbol import FirstSymbol

    from rnn_gradients.networks import RecurrentNetwork
    from rnn_gradients.observatory.probe import state_gradients
    from test_probe import perturbed_state_gradients

    torch.manual_seed(0)
    task = FirstSymbol(9)
    net = RecurrentNetwork(LeakyRNN(hidden_size=6, alpha=0.5), task.input_size, task.output_size).double()
    x, y = task.sample(4, torch.Generator().manual_seed(1))
    probe = state_gradients(net, task, x.double(), y)
    reference = perturbed_state_gradients(net, task, x.double(), y, -1)
    assert probe.grads["h"].abs().max() > 0
    torch.testing.assert_close(probe.grads["h"], reference["h"], rtol=1e-9, atol=1e-12)
