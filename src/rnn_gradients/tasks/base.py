"""A sequence task as a plug-in: one class declares its inputs, targets, loss, baseline, metric, minimum
length and config keys; the schema, the data stream, the module and the figures read them from here.

A task module (rnn_gradients/tasks/<name>.py, or a user's own module named by `_target_` in a
conf/data/<name>.yaml) subclasses `Task`. Declarations are class attributes and torch-free class methods
(the command line refuses a too-short sequence and the figures compute baselines without torch); the
built-in tasks import torch inside the methods that draw and score batches, for the same reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from rnn_gradients.rules import Rule, integer, require

if TYPE_CHECKING:
    import torch
    from torch import Tensor

COMMON_KEYS: Mapping[str, Rule] = {
    "batch_size": integer(1),
    "val_size": integer(1),
    "val_seed": integer(0),
}


class Task(ABC):
    """A task of length seq_len and its batch stream's sizes (the data module draws from `sample`)."""

    name: ClassVar[str] = ""
    input_size: ClassVar[int]
    output_size: ClassVar[int]
    per_step_output: ClassVar[bool]  # True: a prediction at every position; False: only at the last one
    metric_name: ClassVar[str]
    min_seq_len: ClassVar[int] = 1
    min_seq_len_reason: ClassVar[str] = ""  # completes "the <name> task needs data.seq_len >= N (...)"
    keys: ClassVar[Mapping[str, Rule]] = COMMON_KEYS  # its keys under data.*, seq_len aside
    order: ClassVar[int] = 100  # position in tables and figure panels (built-ins: 10, 20, ...)

    def __init__(self, seq_len: int, batch_size: int = 64, val_size: int = 1024, val_seed: int = 12345,
                 **options: Any) -> None:
        # the rules the schema applies to data.* (its own, not a copy): the command line's words for a bad value
        require("data.seq_len", seq_len, self.seq_len_rule())
        given = {"batch_size": batch_size, "val_size": val_size, "val_seed": val_seed, **options}
        for key, rule in self.keys.items():
            if key in given:
                require(f"data.{key}", given[key], rule)
        self.seq_len, self.batch_size, self.val_size, self.val_seed = seq_len, batch_size, val_size, val_seed
        self.options = options

    # ------------------------------------------------------------------ declarations (no torch)
    @classmethod
    def seq_len_rule(cls) -> Rule:
        note = f" (the {cls.name} task's minimum{': ' + cls.min_seq_len_reason if cls.min_seq_len_reason else ''})"
        return integer(cls.min_seq_len, note if cls.min_seq_len > 1 else "")

    @classmethod
    @abstractmethod
    def baseline(cls, seq_len: int) -> float:
        """Loss of the best memoryless predictor: normalized loss 1.0 means 'learned nothing'."""

    @classmethod
    def length(cls, seq_len: int) -> int:
        """Number of time steps the network reads."""
        return seq_len

    @property
    def baseline_loss(self) -> float:
        return self.baseline(self.seq_len)

    @property
    def input_length(self) -> int:
        return self.length(self.seq_len)

    # ------------------------------------------------------------------ torch side
    @abstractmethod
    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """Draw (inputs, targets) from `generator` only; inputs are float (batch, input_length, input_size)."""

    @abstractmethod
    def loss(self, predictions: Tensor, targets: Tensor) -> Tensor: ...

    @abstractmethod
    def metric(self, predictions: Tensor, targets: Tensor) -> Tensor:
        """Task-specific accuracy in [0, 1]: 1 means solved."""
