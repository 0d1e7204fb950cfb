"""The raw gradient-flow curves a run keeps (contract.GRAD_FLOW_FILE, written by
rnn_gradients.observatory.gradient_flow): ‖∂L/∂h_t‖ and ‖∂L/∂c_t‖ over t at each measured step, and for
the LSTM the norms of the two paths of ∂L/∂c_t (contract.GRAD_FLOW_PATH_KEYS; absent in older files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rnn_gradients import contract


class GradFlow:
    """steps (K,), h (K, L), c (K, L) or None for the RNN, loss (K,); c_carry and c_output (K, L): the norms
    of ∂L/∂c_t's carry path (through c_{t+1}) and output path (through h_t), None for the RNN and for a
    file written before they were measured (NaN rows: steps not measured, e.g. before a resume)."""

    def __init__(self, steps: np.ndarray, h: np.ndarray, c: np.ndarray | None, loss: np.ndarray,
                 c_carry: np.ndarray | None = None, c_output: np.ndarray | None = None) -> None:
        self.steps, self.h, self.c, self.loss = steps, h, c, loss
        self.c_carry, self.c_output = c_carry, c_output

    @classmethod
    def load(cls, path: Path) -> GradFlow:
        with np.load(path, allow_pickle=False) as z:
            steps = np.asarray(z["steps"]).reshape(-1)
            h = np.atleast_2d(np.asarray(z["h"], dtype=float))
            c = np.asarray(z["c"], dtype=float) if "c" in z.files else np.zeros((0, 0))
            loss = np.asarray(z["loss"], dtype=float).reshape(-1) if "loss" in z.files else np.full(len(steps), np.nan)
            paths = [np.asarray(z[key], dtype=float) if key in z.files else np.zeros((0, 0))
                     for key in contract.GRAD_FLOW_PATH_KEYS]
        if h.shape[0] != len(steps) or h.size == 0:
            raise ValueError(f"h has shape {h.shape} for {len(steps)} steps")
        if c.size == 0:
            c = None
        elif c.shape != h.shape:
            raise ValueError(f"c has shape {c.shape}, h {h.shape}")
        for key, matrix in zip(contract.GRAD_FLOW_PATH_KEYS, paths):
            if matrix.size and (c is None or matrix.shape != c.shape):
                raise ValueError(f"{key} has shape {matrix.shape}, c {None if c is None else c.shape}")
        carry, output = (m if m.size and c is not None else None for m in paths)
        return cls(steps, h, c, loss, carry, output)

    @property
    def has_init(self) -> bool:
        """The first measurement is at step 0 (initialization)."""
        return len(self.steps) > 0 and int(self.steps[0]) == 0

    @property
    def has_paths(self) -> bool:
        """Both paths of ∂L/∂c_t were kept (an LSTM run written since they are measured)."""
        return self.c_carry is not None and self.c_output is not None
