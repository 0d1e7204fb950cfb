"""The one statistic of how far the gradient vanishes back in time that every table and figure reports:
contract.log10_ratio of a run's grad-flow curve (log10 ‖∂L/∂x_0‖ / ‖∂L/∂x_{T-1}‖) at initialization or at
the last measurement, and its median over seeds (the median of the per-seed ratios, -inf kept: a seed
whose first norm underflowed pulls the median down rather than vanishing from it).

Kept apart so the gradient-flow table, the per-run CSV, the cures table and the legends and captions of the
grad_flow_through_time, gradient_paths and cures figures cannot drift into different statistics for the same
number (the ratio of the median curve is another number: a figure draws that curve, but labels it with this).
"""

from __future__ import annotations

from collections.abc import Sequence

from rnn_gradients import contract
from rnn_gradients.analysis.run_folder import Run
from rnn_gradients.analysis.seed_stats import median_of

INIT, FINAL = "init", "final"  # when: the measurement at training step 0, or the last one


def run_log10_ratio(run: Run, state: str, when: str) -> float | None:
    """contract.log10_ratio of the run's `state` ('h' or 'c') curve at `when`; None when the run has no such
    curve, or (init) its first measurement is not at step 0."""
    gf = run.grad_flow
    matrix = None if gf is None else getattr(gf, state)
    if matrix is None:
        return None
    if when == INIT:
        return contract.log10_ratio(matrix[0]) if gf.has_init else None
    if when == FINAL:
        return contract.log10_ratio(matrix[-1])
    raise ValueError(f"when must be {INIT!r} or {FINAL!r}, got {when!r}")


def seed_log10_ratios(runs: Sequence[Run], state: str, when: str) -> list[float]:
    """The per-seed ratios of the runs that have one (see run_log10_ratio)."""
    values = (run_log10_ratio(r, state, when) for r in runs)
    return [v for v in values if v is not None]


def median_log10_ratio(runs: Sequence[Run], state: str, when: str) -> float | None:
    """The median over seeds of run_log10_ratio (None when no run has the curve)."""
    return median_of(seed_log10_ratios(runs, state, when))
