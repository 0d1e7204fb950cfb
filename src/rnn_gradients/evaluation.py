"""What a trained run knows: its network rebuilt from the run's own resolved config and a checkpoint, scored
on a validation set at any sequence length, with the float64 gradient-flow probe on the trained weights.

The run's `config_resolved.yaml` (written when it started) is the only source of the model and the task:
nothing is composed again, so a later change of conf/ cannot change what is evaluated. The loss is
reduced as Lightning reduces the logged val/loss (the mean of per-batch losses weighted by batch size,
over the validation loader's batches), so at the trained length it is the run's own number.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from rnn_gradients import contract
from rnn_gradients.checkpoint_files import load_checkpoint
from rnn_gradients.networks import RecurrentNetwork
from rnn_gradients.observatory.probe import time_gradient_norms
from rnn_gradients.rules import ConfigError, refuse
from rnn_gradients.tasks import Task

PROBE_DEFAULTS = {"probe_size": 64, "probe_seed": 2024, "layer": -1, "dtype": "float64"}  # GradFlowLogger's


@dataclass
class TrainedRun:
    run_dir: Path
    cfg: DictConfig
    checkpoint: Path
    step: int
    weights: dict[str, torch.Tensor]  # the network's state dict (`network.` stripped)


def is_run(folder: Path) -> bool:
    return (Path(folder) / contract.CONFIG_RESOLVED_FILE).is_file()


def load_run(run_dir: Path, checkpoint: Path | None = None) -> TrainedRun:
    """The run's config and a checkpoint's weights (default checkpoints/last.ckpt), read with
    weights_only=True; a missing or unloadable checkpoint is one line (ConfigError)."""
    run_dir = Path(run_dir)
    cfg = OmegaConf.load(run_dir / contract.CONFIG_RESOLVED_FILE)
    path = Path(checkpoint) if checkpoint is not None else run_dir / contract.CHECKPOINT_DIR / contract.LAST_CHECKPOINT
    if not path.is_file():
        raise ConfigError(f"--ckpt={str(path)!r} is not allowed: there is no file {path}"
                          + ("" if checkpoint is not None else " (the run saved no checkpoint; pass --ckpt <file>)"))
    checkpoint = load_checkpoint(path, key="--ckpt")
    weights = {k.removeprefix("network."): v for k, v in checkpoint["state_dict"].items() if k.startswith("network.")}
    return TrainedRun(run_dir, cfg, path, int(checkpoint["global_step"]), weights)


def task_at(run: TrainedRun, seq_len: int, val_seed: int | None = None, val_size: int | None = None) -> Task:
    """The run's task at `seq_len`, with its own validation set unless a seed or size is given."""
    task_class = hydra.utils.get_class(run.cfg.data._target_)
    if not task_class.seq_len_rule().check(seq_len):
        raise refuse("--seq-len", seq_len, task_class.seq_len_rule())
    extra = {k: v for k, v in (("val_seed", val_seed), ("val_size", val_size)) if v is not None}
    return hydra.utils.instantiate(run.cfg.data, seq_len=seq_len, **extra)


def network(run: TrainedRun, task: Task) -> RecurrentNetwork:
    """The run's cell with the checkpoint's weights; weights that do not fit the config are one line."""
    net = RecurrentNetwork(hydra.utils.instantiate(run.cfg.model), task.input_size, task.output_size)
    try:
        net.load_state_dict(run.weights)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:300]
        raise ConfigError(f"--ckpt={str(run.checkpoint)!r} is not allowed: its weights do not fit the run's config "
                          f"({run.run_dir / contract.CONFIG_RESOLVED_FILE}): {detail}") from None
    return net.eval()


@torch.no_grad()
def scores(net: RecurrentNetwork, task: Task) -> dict[str, float]:
    """Loss, normalized loss and the task's metric on the task's validation set, reduced as Lightning
    reduces the logged val/* (TaskDataModule.val_dataloader's batches)."""
    x, y = task.sample(task.val_size, torch.Generator().manual_seed(task.val_seed))
    batch = max(task.batch_size, 256)
    loss_sum, metric_sum = torch.zeros(()), torch.zeros(())
    for start in range(0, len(x), batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        predictions = net(xb, last_only=not task.per_step_output)
        loss_sum += task.loss(predictions, yb) * len(xb)
        metric_sum += task.metric(predictions, yb) * len(xb)
    loss = (loss_sum / len(x)).item()
    return {"loss": loss, "normalized_loss": loss / task.baseline_loss, "metric": (metric_sum / len(x)).item()}


def probe_settings(run: TrainedRun) -> dict[str, Any]:
    grad_flow = OmegaConf.select(run.cfg, "callbacks.grad_flow") or {}
    return {key: grad_flow.get(key, default) for key, default in PROBE_DEFAULTS.items()}


def probe(net: RecurrentNetwork, task: Task, settings: dict[str, Any]) -> dict[str, list[float]]:
    """The gradient-flow curves (‖∂L/∂h_t‖, ...) on the run's probe batch at this length, in float64, as
    GradFlowLogger measures them during training."""
    dtype = getattr(torch, settings["dtype"])
    x, y = task.sample(settings["probe_size"], torch.Generator().manual_seed(settings["probe_seed"]))
    y = y.to(dtype) if y.is_floating_point() else y
    result = time_gradient_norms(copy.deepcopy(net).to(dtype), task, x.to(dtype), y, layer=settings["layer"])
    return {name: norms.double().tolist() for name, norms in result.norms.items()}


def evaluate(run: TrainedRun, seq_len: int, val_seed: int | None = None, val_size: int | None = None) -> dict[str, Any]:
    """One eval.json record: the checkpoint, its step, the length, the validation set, the scores and the
    probe's log10 gradient ratio of each state (h; c for the LSTM)."""
    task = task_at(run, seq_len, val_seed, val_size)
    net = network(run, task)
    curves = probe(net, task, probe_settings(run))
    states = net.cell.states
    return {"checkpoint": str(run.checkpoint), "step": run.step, "seq_len": seq_len,
            "trained_seq_len": int(run.cfg.data.seq_len), "val_seed": task.val_seed, "val_size": task.val_size,
            "own_val_set": val_seed is None and val_size is None,
            **scores(net, task), "metric_name": task.metric_name,
            "log10_ratio": {name: contract.log10_ratio(curves[name]) for name in states if name in curves}}
