"""Checks that two runs are the same run: shared by the resume tests, local and on SLURM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rnn_gradients import contract
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def curve(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def assert_same_run(a: Path, b: Path, steps: int, stopped_at: int | set[int] | None = None, b_logs_every: int = 1) -> None:
    """b is the run a would have been: bit-identical weights, and curves read with TensorBoard's own reader
    over b's whole tensorboard/ folder (every event file of every attempt, purges applied, as the server
    shows it) that hold each step once, with a's values. b logs train/* every `b_logs_every` steps, at the
    end, and at each step of `stopped_at` where it was stopped and later continued (there it validated
    too: those extra val points are allowed); a reference a that logs every step checks those values too."""
    stopped = {stopped_at} if isinstance(stopped_at, int) else set(stopped_at or ())
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    expected = set(range(b_logs_every, steps + 1, b_logs_every)) | {steps}
    for tag in ("train/loss", "train/accuracy", "lr-Adam"):
        ca, cb = dict(curve(a, tag)), curve(b, tag)
        logged = [s for s, _ in cb]
        assert logged == sorted(set(logged)), f"{tag}: a step logged twice"
        assert expected <= set(logged) and set(logged) - expected <= stopped, tag
        assert all(ca[s] == v if s in ca else s in stopped for s, v in cb), f"{tag}: values differ from the uninterrupted run's"
    # the gradient norms are written every step: every step 1..steps, no gap, no repeat, a's values
    assert curve(b, "grad_norm/total_preclip") == curve(a, "grad_norm/total_preclip")
    assert [s for s, _ in curve(b, "grad_norm/total_preclip")] == list(range(1, steps + 1))
    val_a, val_b = dict(curve(a, "val/loss")), curve(b, "val/loss")
    assert len(dict(val_b)) == len(val_b), "duplicated validation steps"
    assert set(dict(val_b)) - set(val_a) <= stopped
    assert all(dict(val_b)[step] == value for step, value in val_a.items())


def assert_same_grad_flow(a: Path, b: Path) -> None:
    """grad_flow.npz and spectrum.npz of b continued across its interruptions: the same probe steps and curves as a's (with
    the LSTM's two paths of ∂L/∂c_t, c_via_carry and c_via_output)."""
    fa, fb = np.load(a / "grad_flow.npz"), np.load(b / "grad_flow.npz")
    assert fb["steps"].tolist() == fa["steps"].tolist()
    assert len(set(fb["steps"].tolist())) == len(fb["steps"]), "a probe step recorded twice"
    for key in ("h", "c", "c_via_carry", "c_via_output", "loss"):
        np.testing.assert_array_equal(fb[key], fa[key], err_msg=key)
    # and spectrum.npz: the same measured steps and values (the weights are the same at every step)
    sa, sb = np.load(a / contract.SPECTRUM_FILE), np.load(b / contract.SPECTRUM_FILE)
    assert sorted(sb.files) == sorted(sa.files) and len(sa["steps"]) > 1
    for key in sa.files:
        np.testing.assert_array_equal(sb[key], sa[key], err_msg=key)
