"""experiment=paper_adding is Arjovsky et al.'s adding recipe (docs/references.md), as their code runs it: the
composed config holds their numbers, and a few steps through the real command line train that network with
that optimizer (read back from the checkpoint, not from the config)."""

from __future__ import annotations

import math

import torch
import yaml

from conftest import read_summary, run_cli

RECIPE = {  # docs/references.md, "Published results" and "What Arjovsky et al.'s code does"
    ("model", "_target_"): "rnn_gradients.cells.lstm.LSTM", ("model", "hidden_size"): 128, ("model", "init"): "glorot",
    ("model", "forget_bias"): 1.0, ("optimizer", "_target_"): "torch.optim.RMSprop", ("optimizer", "lr"): 1e-3,
    ("optimizer", "alpha"): 0.9, ("clipping", "mode"): "value", ("clipping", "threshold"): 1.0,
    ("data", "_target_"): "rnn_gradients.tasks.adding.Adding", ("data", "seq_len"): 100, ("data", "batch_size"): 50, ("trainer", "max_steps"): 5000,
}


def test_the_preset_composes_to_their_recipe(tmp_path):
    result = run_cli(["experiment=paper_adding", "--cfg", "job"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    cfg = yaml.safe_load(result.stdout)
    assert {key: cfg[key[0]][key[1]] for key in RECIPE} == RECIPE


def test_a_short_run_trains_their_network(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(["experiment=paper_adding", "trainer.max_steps=2", "trainer.val_check_interval=2",
                      "callbacks=none", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = read_summary(run_dir)
    assert (summary["arm"], summary["optimizer"], summary["clipping"], summary["steps"]) == ("LSTM+clip", "rmsprop", "value", 2)
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False, map_location="cpu")
    weights = checkpoint["state_dict"]
    w_ih = weights["network.rnn.weight_ih_l0"]
    assert w_ih.shape == (4 * 128, 2)
    bound = math.sqrt(6 / (2 + 128))  # Glorot for a (2 -> 128) gate block: 2.4x torch's 1/sqrt(128)
    assert 0.8 * bound < w_ih.abs().max() < bound + 2 * 3.2e-3  # + two RMSProp steps, each at most lr/sqrt(0.1)
    [state] = checkpoint["optimizer_states"]
    assert state["param_groups"][0]["alpha"] == 0.9 and "square_avg" in next(iter(state["state"].values()))
