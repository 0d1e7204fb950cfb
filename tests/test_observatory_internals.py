"""The cheap paths the observatory takes to stay within its time budget compute the same values as the
slow, obvious ones: bincount histograms vs numpy, one multi-value event vs add_scalar, gate statistics
against the hand-written twin's gates, glibc keeping freed memory."""

from __future__ import annotations

import copy

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from unrolled_twin import unrolled_forward
from conftest import compose_config
from rnn_gradients.observatory.gate_stats import GateStatsLogger
from rnn_gradients.observatory.tensorboard_io import add_histogram, add_scalars
from rnn_gradients.runtime import keep_freed_memory
from rnn_gradients.run import build

KEEP_ALL = {"scalars": 0, "histograms": 0, "images": 0, "tensors": 0}


def read_events(log_dir) -> EventAccumulator:
    acc = EventAccumulator(str(log_dir), size_guidance=KEEP_ALL)
    acc.Reload()
    return acc


def test_histogram_buckets_match_numpy_and_skip_non_finite(tmp_path):
    values = torch.randn(10_000, generator=torch.Generator().manual_seed(0)) * 3
    with_bad = torch.cat([values, torch.tensor([float("nan"), float("inf"), -float("inf")])])
    writer = SummaryWriter(str(tmp_path))
    add_histogram(writer, "h", with_bad, step=7, bins=16)
    add_histogram(writer, "const", torch.full((5,), 2.5), step=7, bins=16)
    writer.close()
    acc = read_events(tmp_path)
    (event,) = acc.Histograms("h")
    h = event.histogram_value
    expected, edges = np.histogram(values.numpy(), bins=16, range=(float(values.min()), float(values.max())))
    assert event.step == 7 and h.num == 10_000
    assert h.min == pytest.approx(float(values.min())) and h.max == pytest.approx(float(values.max()))
    assert h.sum == pytest.approx(float(values.sum()), rel=1e-4, abs=1e-2)
    assert h.sum_squares == pytest.approx(float((values**2).sum()), rel=1e-5)
    np.testing.assert_allclose(h.bucket_limit, edges[1:], rtol=1e-5)
    assert sum(h.bucket) == 10_000
    # same counts up to a value sitting on a bucket edge (float rounding may put it on either side)
    assert np.abs(np.asarray(h.bucket) - expected).sum() <= 2
    const = acc.Histograms("const")[0].histogram_value
    assert const.num == 5 and const.bucket[0] == 5 and const.min == const.max == 2.5


def test_scalars_in_one_event_read_back_like_add_scalar(tmp_path):
    writer = SummaryWriter(str(tmp_path))
    add_scalars(writer, ["a/x", "a/y", "b"], [1.5, -2.0, 1e-30], step=3)
    add_scalars(writer, ["a/x", "a/y", "b"], [2.5, -3.0, 7.0], step=4)
    writer.close()
    acc = read_events(tmp_path)
    assert {e.step: e.value for e in acc.Scalars("a/x")} == {3: 1.5, 4: 2.5}
    assert {e.step: e.value for e in acc.Scalars("a/y")} == {3: -2.0, 4: -3.0}
    assert acc.Scalars("b")[0].value == pytest.approx(1e-30)


@pytest.mark.parametrize("layers", [1, 2])
def test_gate_stats_equal_the_twins_gates(layers):
    """GateStatsLogger's gates (the LSTM module's own computation, one fused pass per layer) against the
    hand-written twin's trace of the same probe batch (tests/unrolled_twin.py), every layer."""
    cfg = compose_config(["model=lstm", "model.hidden_size=16", "data.seq_len=30", f"model.num_layers={layers}"])
    module, _ = build(cfg)

    class FakeTrainer:  # what the callback reads from a trainer
        global_step = 40
        loggers: list = []

    stats = GateStatsLogger(probe_size=8)
    stats.on_train_start(FakeTrainer(), module)  # step 40 is not 0: nothing measured yet
    measured = stats.measure(FakeTrainer(), module)
    x, _ = module.task.sample(8, torch.Generator().manual_seed(stats.probe_seed))
    _, trace = unrolled_forward(copy.deepcopy(module.network).double(), x.double(), last_only=True)
    assert sorted(measured) == sorted(f"{g}_l{k}" for g in ("input", "forget", "output") for k in range(layers))
    for layer in range(layers):
        for gate, values in trace.gates[layer].items():
            expected = torch.stack(values, dim=1).float()  # (batch, T, hidden)
            torch.testing.assert_close(measured[f"{gate}_l{layer}"], expected, rtol=1e-5, atol=1e-6)


FAULTS = textwrap.dedent("""
    import resource, sys, torch
    from rnn_gradients.runtime import keep_freed_memory
    print(keep_freed_memory(int(sys.argv[1])))
    for _ in range(3):
        torch.ones(16 * 2**20).sum()  # 64 MB: above glibc's mmap threshold unless it is raised
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        torch.ones(16 * 2**20).sum()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_keeping_freed_memory_stops_page_faulting_buffers_in_every_step():
    def faults(megabytes: int) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", FAULTS, str(megabytes)], capture_output=True, text=True, check=True)
        applied, count = out.stdout.split()
        return applied, int(count)

    default_applied, default_faults = faults(0)
    kept_applied, kept_faults = faults(256)
    assert (default_applied, kept_applied) == ("False", "True")
    # 20 x 64 MB freshly mapped = 20 x 16,384 pages faulted in by default; reused when kept
    assert default_faults > 20 * 10_000
    assert kept_faults < default_faults / 20
    assert keep_freed_memory(0) is False


FINAL_GC = textwrap.dedent("""
    import atexit, gc, sys
    import torch  # what makes the final collection slow: ~165k objects

    def report():  # registered first, so it runs after the handlers registered later (atexit is LIFO)
        print(gc.get_freeze_count(), flush=True)

    atexit.register(report)
    before = atexit._ncallbacks()
    if sys.argv[1] == "runtime":
        from rnn_gradients.runtime import skip_final_gc
        skip_final_gc()
        skip_final_gc()
        print(atexit._ncallbacks() - before, flush=True)
    elif sys.argv[1] == "cli":  # the real entry point, refusing bad input
        from rnn_gradients import train
        sys.argv = ["train", "model=__nope__"]
        train.main()
""")


@pytest.mark.parametrize("how", ["runtime", "cli", "off"])
def test_exit_skips_the_final_garbage_collection(how):
    """By the time the interpreter finalizes, every object is frozen (out of the final collection's reach,
    2 s per exit with torch and Lightning loaded); installed once, and by the CLI even when it refuses input."""
    proc = subprocess.run([sys.executable, "-c", FINAL_GC, how], capture_output=True, text=True)
    lines = proc.stdout.split()
    frozen = int(lines[-1])
    if how == "off":
        assert frozen == 0
        return
    assert frozen > 100_000
    if how == "runtime":
        assert proc.returncode == 0 and lines[0] == "1"  # one atexit handler for two calls
    else:
        assert proc.returncode == 2 and "model" in proc.stderr


def test_train_metrics_are_logged_exactly_when_lightning_writes_them(tmp_path):
    """The module skips self.log on steps Lightning would not write (every log_every_n_steps): the event
    file must still have every written step, and the final step's loss must reach summary.json."""
    import lightning.pytorch as pl

    from rnn_gradients.tb_logger import StepAlignedTensorBoardLogger

    class LossRecorder(pl.Callback):
        def __init__(self) -> None:
            self.loss: dict[int, float] = {}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self.loss[trainer.global_step] = float(outputs["loss"])

    module, data = build(compose_config(["model.hidden_size=8", "data.seq_len=10", "data.batch_size=8"]))
    recorder = LossRecorder()
    logger = StepAlignedTensorBoardLogger(save_dir=str(tmp_path), name="tb", version="")
    trainer = pl.Trainer(accelerator="cpu", max_steps=12, log_every_n_steps=5, logger=logger, callbacks=[recorder],
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=data)
    acc = read_events(logger.log_dir)
    written = {e.step: e.value for e in acc.Scalars("train/loss")}
    assert sorted(written) == [5, 10]
    for step, value in written.items():
        assert value == pytest.approx(recorder.loss[step], rel=1e-6)
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(recorder.loss[12], rel=1e-6)
