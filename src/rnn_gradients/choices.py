"""Allowed values of the config's categorical keys.

Kept free of torch so that the command line can refuse a bad choice, and a sweep's parent process can
launch its jobs, without loading torch and Lightning (about 5 s of every command here).
"""

from __future__ import annotations

TASK_NAMES = ("adding", "copy")  # the keys of tasks.TASKS (a test holds them equal)
CELLS = ("rnn", "lstm")
NONLINEARITIES = ("tanh", "relu")
INITS = ("default", "orthogonal", "spectral", "glorot")
CLIP_MODES = ("none", "norm", "value")
