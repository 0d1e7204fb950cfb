"""Allowed values of the config's categorical keys that belong to no plug-in (a cell's or task's own
choices live in its module: rnn_gradients.cells, rnn_gradients.tasks).

Torch-free, so that the command line can refuse a bad choice without loading torch.
"""

from __future__ import annotations

CLIP_MODES = ("none", "norm", "value")
