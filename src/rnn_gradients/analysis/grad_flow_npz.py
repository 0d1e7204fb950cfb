"""The raw gradient-flow curves a run keeps (contract.GRAD_FLOW_FILE, written by
rnn_gradients.observatory.gradient_flow): ‖∂L/∂h_t‖ and ‖∂L/∂c_t‖ over t at each measured step."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class GradFlow:
    """steps (K,), h (K, L), c (K, L) or None for the RNN, loss (K,)."""

    def __init__(self, steps: np.ndarray, h: np.ndarray, c: np.ndarray | None, loss: np.ndarray) -> None:
        self.steps, self.h, self.c, self.loss = steps, h, c, loss

    @classmethod
    def load(cls, path: Path) -> GradFlow:
        with np.load(path, allow_pickle=False) as z:
            steps = np.asarray(z["steps"]).reshape(-1)
            h = np.atleast_2d(np.asarray(z["h"], dtype=float))
            c = np.asarray(z["c"], dtype=float) if "c" in z.files else np.zeros((0, 0))
            loss = np.asarray(z["loss"], dtype=float).reshape(-1) if "loss" in z.files else np.full(len(steps), np.nan)
        if h.shape[0] != len(steps) or h.size == 0:
            raise ValueError(f"h has shape {h.shape} for {len(steps)} steps")
        if c.size == 0:
            c = None
        elif c.shape != h.shape:
            raise ValueError(f"c has shape {c.shape}, h {h.shape}")
        return cls(steps, h, c, loss)

    @property
    def has_init(self) -> bool:
        """The first measurement is at step 0 (initialization)."""
        return len(self.steps) > 0 and int(self.steps[0]) == 0
