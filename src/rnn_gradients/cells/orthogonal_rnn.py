"""The orthogonal RNN: an RNN whose W_hh is kept orthogonal during training (Lezcano-Casado & Martínez-Rubio
2019, expRNN; torch.nn.utils.parametrizations.orthogonal does the parametrization).

Every singular value of an orthogonal W_hh is 1, so W_hh can make the gradient neither vanish nor explode,
at any step of training (the IRNN's identity only holds at the start); only the nonlinearity's derivative
(≤ 1 for tanh, ReLU and modReLU) still shrinks it. tanh and ReLU run on torch's fused kernel; modReLU,
expRNN's own nonlinearity for copy, steps in Python (cells/_orthogonal_layers.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rnn_gradients.cells.base import COMMON_KEYS
from rnn_gradients.cells.rnn import NONLINEARITIES, RNN
from rnn_gradients.rules import one_of

if TYPE_CHECKING:
    from torch import nn

ORTHOGONAL_MAPS = ("matrix_exp", "cayley")  # torch's maps from skew-symmetric matrices onto the rotations
ORTHOGONAL_INITS = ("haar", "henaff")  # uniform on the orthogonal group | Henaff et al. 2016's rotations


class OrthogonalRNN(RNN):
    name = "orthogonal_rnn"
    label = "RNN (orthogonal)"
    order = 50
    keys = {"hidden_size": COMMON_KEYS["hidden_size"], "num_layers": COMMON_KEYS["num_layers"],
            "nonlinearity": one_of((*NONLINEARITIES, "modrelu")), "orthogonal_map": one_of(ORTHOGONAL_MAPS),
            "orthogonal_init": one_of(ORTHOGONAL_INITS)}

    modrelu_label = "RNN (orthogonal, modReLU)"  # expRNN's own cell: on copy it is another arm than the tanh one

    @classmethod
    def arm_label(cls, keys: Mapping[str, Any]) -> str:
        return cls.modrelu_label if keys.get("nonlinearity") == "modrelu" else cls.label

    @classmethod
    def arm_labels(cls) -> tuple[str, ...]:
        return (cls.label, cls.modrelu_label)

    @classmethod
    def run_name_part(cls, keys: Mapping[str, Any]) -> str:
        return f"{cls.name}_modrelu" if keys.get("nonlinearity") == "modrelu" else cls.name

    def _modrelu(self) -> bool:
        return self.options.get("nonlinearity", "tanh") == "modrelu"

    def build(self, input_size: int) -> nn.Module:
        from rnn_gradients.cells import _orthogonal_layers as layers

        init, mapping = self.options.get("orthogonal_init", "haar"), self.options.get("orthogonal_map", "matrix_exp")
        if not self._modrelu():
            return layers.OrthogonalRNN(input_size, self.hidden_size, self.num_layers, init, mapping, **self.fused_options())
        return layers.Stack([layers.ModReLURNN(input_size if k == 0 else self.hidden_size, self.hidden_size, init, mapping)
                             for k in range(self.num_layers)])

    def layers(self, core: nn.Module) -> list[nn.Module]:
        return super().layers(core) if not self._modrelu() else list(core)

    def initialize(self, core: nn.Module, readout: nn.Module) -> None:
        """Nothing more: build() started every W_hh orthogonal and the rest keeps its layer's own init."""

    def recurrent_matrices(self, core: nn.Module) -> dict[str, nn.Module]:
        if not self._modrelu():
            return super().recurrent_matrices(core)
        return {f"l{layer}_hh": module.weight_hh for layer, module in enumerate(core)}
