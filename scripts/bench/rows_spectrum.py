"""The spectrum row (issue 19): what the recurrent spectrum costs training, amortized over its cadence.

One SpectrumLogger measurement (an SVD and an eigendecomposition of every W_hh block) every
callbacks.spectrum.every_n_steps steps, against one plain training step (forward, backward, Adam) of the
same network; the two alternate in one process, so load hits both alike. The row is
(median measurement / every_n_steps) / median step: the share of training the spectrum takes.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import torch

from bench.clock import now
from bench.config import compose_cfg
from bench.modes import MODELS, Mode
from bench.stats import error_row, interleave, median, ratio_row, side
from rnn_gradients.networks import network_for
from rnn_gradients.observatory.spectrum import SpectrumLogger
from rnn_gradients.tasks.adding import Adding

log = logging.getLogger(__name__)

GROUP = "spectrum"
TITLE = "recurrent spectrum every N steps / one training step"
HIDDEN, SEQ_LEN, BATCH, ROUNDS = 128, 100, 64, 30  # the 128 x 128 matrices, the default batch


def spectrum_row(model: str, every_n_steps: int) -> dict[str, Any]:
    task = Adding(SEQ_LEN)
    torch.manual_seed(0)
    net = network_for(model, task.input_size, task.output_size, hidden_size=HIDDEN)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    x, y = task.sample(BATCH, torch.Generator().manual_seed(0))
    logger = SpectrumLogger(every_n_steps)
    trainer, module = SimpleNamespace(global_step=0, loggers=[]), SimpleNamespace(network=net)

    def step() -> None:
        loss = torch.nn.functional.mse_loss(net(x, last_only=True).squeeze(-1), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def timed(fn: Any) -> Any:
        def call() -> float:
            start = now()[0]
            fn()
            return (now()[0] - start) * 1e3
        return call

    step(), logger.measure(trainer, module)  # warm-up, not timed
    res = interleave({"spectrum": timed(lambda: logger.measure(trainer, module)), "step": timed(step)}, ROUNDS)
    amortized = [ms / every_n_steps for ms in res["spectrum"]]
    return ratio_row(f"{GROUP}/{model}", GROUP, f"{model.upper()} H={HIDDEN}: {TITLE}",
                     side(f"spectrum measurement / {every_n_steps} steps", amortized, "ms"),
                     side("training step (plain loop)", res["step"], "ms"),
                     {"model": model, "hidden": HIDDEN, "seq_len": SEQ_LEN, "batch": BATCH, "rounds": ROUNDS,
                      "every_n_steps": every_n_steps, "measurement_median_ms": median(res["spectrum"]),
                      "matrices": len(logger.values) // 3})


def bench_spectrum(mode: Mode) -> list[dict[str, Any]]:
    """A row per model, at the default cadence (the grad-flow cadence)."""
    every = int(compose_cfg([]).callbacks.spectrum.every_n_steps)
    rows = []
    for model in MODELS:
        try:
            rows.append(spectrum_row(model, every))
        except Exception as error:  # noqa: BLE001 - a broken row is reported, the others still run
            log.exception("spectrum %s failed", model)
            rows.append(error_row(f"{GROUP}/{model}", GROUP, f"{model.upper()}: {TITLE}", error))
    return rows
