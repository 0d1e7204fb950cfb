"""The LSTM on torch's fused kernel, with its forget-gate bias and the thought experiment of the essay
("The Thing about LSTM and Exploding Gradients", docs/references.md: The thesis).

    i, f, g, o = σ, σ, tanh, σ(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
    c_t = f ⊙ c_{t-1} + i ⊙ g;   h_t = o ⊙ tanh(c_t)

The gradient reaching c_t is the sum of two paths, which this module measures (`state_gradients`):
    ∂L/∂c_t = f_{t+1} ⊙ ∂L/∂c_{t+1}              (carry, through c_{t+1})
            + o_t ⊙ (1 − tanh²(c_t)) ⊙ ∂L/∂h_t    (output, through h_t)
The total is what autograd gives at the probe's c_t node (torch's LSTMCell computes h_t from the c_t it
returns); the two paths use the forget and output gates, computed here from the layer's own weights
(`gate_values`; tests hold them to the kernel's states and the paths' sum to the total).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rnn_gradients import contract
from rnn_gradients.cells.base import COMMON_KEYS, Cell, previous
from rnn_gradients.rules import BOOL, integer, number, one_of

if TYPE_CHECKING:
    from torch import Tensor, nn

NO_CARRY_LABEL = "LSTM (no cell carry)"
CHRONO_LABEL = "LSTM (chrono)"
FORGET_INITS = ("constant", "chrono")  # model.forget_init: forget_bias added to torch's init | Tallec & Ollivier 2018
_ROW = {"input": 0, "forget": 1, "output": 3}  # gate blocks of W_ih, W_hh, b_ih, b_hh in torch's order i, f, g, o

# A forget-gate pre-activation this far below 0 gives f_t = sigmoid(z) = 0.0 exactly: exp(z) underflows
# below about -745 in float64 (-104 in float32), so 1/(1 + exp(-z)) rounds to 0 in every dtype and kernel.
# Its derivative f(1 - f) is then exactly 0 too: the forget rows get no gradient, and an optimizer step
# (Adam, RMSProp, SGD: an update proportional to a zero gradient) leaves them where they are.
CLOSED_FORGET_BIAS = -1.0e4


class LSTM(Cell):
    name = "lstm"
    label = "LSTM"
    states = ("h", "c")
    gates = ("input", "forget", "output")
    blocks = {"input": 0.25, "forget": 0.25, "cell": 1.0, "output": 0.25}  # torch's rows: i, f, g (tanh), o
    fused = "LSTM"
    order = 20
    keys = {**COMMON_KEYS,
            "forget_bias": number(nullable=True),
            "forget_init": one_of(FORGET_INITS),
            "chrono_t_max": integer(2, " (the longest dependency chrono init prepares for)"),
            "cell_carry": BOOL}

    @staticmethod
    def _carries(keys: Mapping[str, Any]) -> bool:
        return keys.get("cell_carry", True) in (True, "True", "true")

    @staticmethod
    def _chrono(keys: Mapping[str, Any]) -> bool:
        return keys.get("forget_init", "constant") == "chrono"

    @classmethod
    def arm_label(cls, keys: Mapping[str, Any]) -> str:
        return NO_CARRY_LABEL if not cls._carries(keys) else CHRONO_LABEL if cls._chrono(keys) else cls.label

    @classmethod
    def arm_labels(cls) -> tuple[str, ...]:
        return (NO_CARRY_LABEL, cls.label, CHRONO_LABEL)

    @classmethod
    def run_name_part(cls, keys: Mapping[str, Any]) -> str:
        if not cls._carries(keys):
            return f"{cls.name}_nocarry"
        return f"{cls.name}_chrono" if cls._chrono(keys) else cls.name

    @classmethod
    def ignored(cls, keys: Mapping[str, Any]) -> list[str]:
        if not cls._carries(keys) and (keys.get("forget_bias") not in (None, 0, 0.0) or cls._chrono(keys)):
            return ["model.forget_bias and model.forget_init have no effect with model.cell_carry=false (the forget gate is closed)"]
        if cls._chrono(keys) and keys.get("forget_bias") not in (None, 0, 0.0):
            return [f"model.forget_bias={keys['forget_bias']!r} has no effect with model.forget_init=chrono (chrono sets the forget bias)"]
        return []

    def initialize(self, core: nn.Module, readout: nn.Module) -> None:
        super().initialize(core, readout)
        forget_bias = self.options.get("forget_bias")
        if not self._carries(self.options):
            close_forget_gates(core)
        elif self._chrono(self.options):
            chrono_init(core, int(self.options.get("chrono_t_max", 100)))
        elif forget_bias is not None:
            shift_forget_bias(core, forget_bias)

    def gate_values(self, layer: nn.Module, x: Tensor, h_prev: Tensor, gates: tuple[str, ...] | None = None) -> dict[str, Tensor]:
        """torch's gate order in the weights is i, f, g, o; only the rows of the gates asked for are
        multiplied (the probe needs f and o: half the cost of all four)."""
        H = layer.hidden_size
        values = {}
        for gate in gates or self.gates:
            rows = slice(_ROW[gate] * H, (_ROW[gate] + 1) * H)
            pre = (x @ layer.weight_ih_l0[rows].T + layer.bias_ih_l0[rows]
                   + h_prev @ layer.weight_hh_l0[rows].T + layer.bias_hh_l0[rows])
            values[gate] = pre.sigmoid()
        return values

    def state_gradients(self, layer: nn.Module, x: Tensor, states: dict[str, Tensor],
                        grads: dict[str, Tensor]) -> dict[str, Tensor]:
        """h and c as autograd gives them, and the two paths of c (contract.GRAD_FLOW_CARRY_KEY, _OUTPUT_KEY)."""
        gates = self.gate_values(layer, x, previous(states["h"]), ("forget", "output"))
        tanh_c = states["c"].tanh()
        carry = (gates["forget"] * grads["c"]).roll(-1, dims=1)  # carry_t = f_{t+1} ⊙ ∂L/∂c_{t+1}
        carry[:, -1] = 0  # no carry path out of the last step
        output = gates["output"] * (1 - tanh_c * tanh_c) * grads["h"]
        return {"h": grads["h"], "c": grads["c"], contract.GRAD_FLOW_CARRY_KEY: carry, contract.GRAD_FLOW_OUTPUT_KEY: output}


def shift_forget_bias(lstm: nn.LSTM, forget_bias: float) -> None:
    """Add `forget_bias` to the forget-gate slice of b_ih in every layer.

    torch initialises biases uniformly in ±1/sqrt(H) (mean 0), so f_t ≈ sigmoid(0) = 0.5 and the cell
    state forgets half of itself per step. Shifting (not overwriting) keeps torch's init exactly when
    forget_bias=0 and makes the mean forget pre-activation equal forget_bias otherwise.
    """
    H = lstm.hidden_size
    for layer in range(lstm.num_layers):
        getattr(lstm, f"bias_ih_l{layer}").data[H : 2 * H] += forget_bias


def chrono_init(lstm: nn.LSTM, t_max: int) -> None:
    """Chrono initialization (Tallec & Ollivier 2018, "Can recurrent neural networks warp time?", §3): the
    forget bias b_f = log(u), u ~ U(1, T_max − 1), and the input bias b_i = −b_f, in every layer (b_ih carries
    them, b_hh's slices are 0). A unit then forgets with a characteristic time of about u steps: time scales
    spread over the range of dependencies, instead of one forget rate for all."""
    H = lstm.hidden_size
    for layer in range(lstm.num_layers):
        b_ih, b_hh = getattr(lstm, f"bias_ih_l{layer}").data, getattr(lstm, f"bias_hh_l{layer}").data
        forget = b_ih[H : 2 * H].uniform_(1.0, max(1.0, t_max - 1.0)).log_()
        b_ih[:H] = -forget
        b_hh[: 2 * H] = 0.0


def close_forget_gates(lstm: nn.LSTM) -> None:
    """The essay's thought experiment, "remove the internal cell state": c_t = i_t ⊙ g_t, no f_t ⊙ c_{t-1}.

    Done inside torch's fused kernel (so the arm trains at the LSTM's speed) by setting the forget-gate
    slice of b_hh to CLOSED_FORGET_BIAS in every layer: f_t is then exactly 0, so f_t ⊙ c_{t-1} is exactly
    0 (c_{t-1} = i ⊙ g is bounded). Every path back in time now runs through h_{t-1} and the gates, as in
    a plain RNN.
    """
    H = lstm.hidden_size
    for layer in range(lstm.num_layers):
        getattr(lstm, f"bias_hh_l{layer}").data[H : 2 * H] = CLOSED_FORGET_BIAS
