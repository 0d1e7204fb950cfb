"""A recurrent cell as a plug-in: one class declares everything the rest of the project needs of it.

A cell module (rnn_gradients/cells/<name>.py, or a user's own module named by `_target_` in a
conf/model/<name>.yaml) subclasses `Cell` and sets
  name, label   what run folders, summaries, HParams and figure legends call it;
  states        its recurrent state, one tensor each; states[0] is also what the layer outputs (h);
  gates         the gates `gate_values` computes, logged as gates/<gate>_l<layer>;
  keys          its config keys under model.* with their rules (COMMON_KEYS plus its own);
  blocks        the square blocks of W_hh in its row order, each with γ, the largest derivative of the
                nonlinearity it feeds (tanh, ReLU: 1; sigmoid: 1/4): the spectrum logger's matrices and
                Pascanu et al.'s (2013) bound 1/γ;
  fused         the torch.nn class of its fused layer ("RNN", "LSTM", ...), or it overrides `build` with a
                module called like torch's: forward(x, state=None) -> (outputs, state), state tensors
                (1, batch, hidden), outputs[:, t] equal to states[0] after step t;
and may override arm_label / arm_labels / run_name_part (variants, such as the LSTM without its cell
carry), check and ignored (rules between its keys), initialize, and state_gradients (measurements of its
own, such as the LSTM's two paths of ∂L/∂c_t).

The observatory needs nothing else: it steps the cell's own layer one time step at a time on a float64
copy and asks autograd for the gradient at every step's state (observatory/probe.py), so every cell that
runs is measured exactly, with no hand-written twin to get wrong.

The declarations are class attributes that the command line reads without torch. The built-in cells use
only tensor methods and fused_layers imports torch where it is needed, so bad input is refused before
torch loads (~2 s). A user's cell may import torch at its top: it works the same, its refusals are slower.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from rnn_gradients.rules import Rule, integer, number, one_of, require

if TYPE_CHECKING:
    from torch import Tensor, nn

INITS = ("default", "orthogonal", "spectral", "glorot")
COMMON_KEYS: Mapping[str, Rule] = {
    "hidden_size": integer(1),
    "num_layers": integer(1),
    "init": one_of(INITS),
    "spectral_radius": number(above=0),
}


class Cell:
    """A configured cell: its keys as attributes (model.hidden_size, ...), the rest in `options`."""

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    states: ClassVar[tuple[str, ...]] = ("h",)
    gates: ClassVar[tuple[str, ...]] = ()
    blocks: ClassVar[Mapping[str, float]] = {"hh": 1.0}
    keys: ClassVar[Mapping[str, Rule]] = COMMON_KEYS
    fused: ClassVar[str | None] = None
    order: ClassVar[int] = 100  # position in tables, legends and the colour palette (built-ins: 10, 20, ...)

    def __init__(self, hidden_size: int = 128, num_layers: int = 1, init: str = "default",
                 spectral_radius: float = 1.0, **options: Any) -> None:
        given = {"hidden_size": hidden_size, "num_layers": num_layers, "init": init, "spectral_radius": spectral_radius, **options}
        for key, rule in self.keys.items():  # the rules the schema applies to model.*: one line, same words
            if key in given:
                require(f"model.{key}", given[key], rule)
        self.check(given)
        self.hidden_size, self.num_layers, self.init, self.spectral_radius = hidden_size, num_layers, init, spectral_radius
        self.options = options

    # ------------------------------------------------------------------ declarations (no torch)
    @classmethod
    def arm_label(cls, keys: Mapping[str, Any]) -> str:
        """The arm a model config of this cell is ("+clip" is added for clipping)."""
        return cls.label

    @classmethod
    def arm_labels(cls) -> tuple[str, ...]:
        """Every label `arm_label` can give, in the order tables and legends show them."""
        return (cls.label,)

    @classmethod
    def run_name_part(cls, keys: Mapping[str, Any]) -> str:
        """The cell's part of a run folder's name (contract.run_name)."""
        return cls.name

    @classmethod
    def check(cls, keys: Mapping[str, Any]) -> None:
        """Rules between the cell's keys (each key's own rule has passed): raise rules.ConfigError."""

    @classmethod
    def ignored(cls, keys: Mapping[str, Any]) -> list[str]:
        """Valid values the other keys make pointless, one warning line each."""
        return []

    # ------------------------------------------------------------------ torch side (in a job only)
    def build(self, input_size: int) -> nn.Module:
        """The recurrent core: forward(x (batch, T, in), state=None) -> (outputs (batch, T, hidden), state)."""
        from rnn_gradients.cells import fused_layers

        return fused_layers.build(self.fused, input_size, self.hidden_size, self.num_layers, **self.fused_options())

    def fused_options(self) -> dict[str, Any]:
        """Extra keyword arguments of the torch.nn class (nn.RNN's nonlinearity)."""
        return {}

    def layers(self, core: nn.Module) -> list[nn.Module]:
        """One module per layer over the core's own parameters (nothing copied), each called like the core:
        the probe steps one of them and runs the others whole. A core that is not a fused torch layer is
        taken as one layer."""
        from rnn_gradients.cells import fused_layers

        return fused_layers.layer_views(core) if fused_layers.is_fused(core) else [core]

    def stepper(self, layer: nn.Module) -> Callable[[Tensor, tuple[Tensor, ...] | None], tuple[Tensor, tuple[Tensor, ...]]]:
        """One time step of one layer, for the probe: (x_t (batch, in), state or None) -> (output, state),
        every state a (batch, hidden) tensor in the order of `states`. A fused layer steps through torch's
        own cell module; any other layer is called with a sequence of length 1."""
        from rnn_gradients.cells import fused_layers

        return fused_layers.stepper(layer) if fused_layers.is_fused(layer) else _step_by_call(layer)

    def initialize(self, core: nn.Module, readout: nn.Module) -> None:
        """model.init on a fused core (and, for glorot, the readout); torch's own init for 'default'. A cell
        that builds its own core and wants another init overrides this."""
        from rnn_gradients.cells import fused_layers

        if fused_layers.is_fused(core):
            fused_layers.initialize(core, readout, self.init, self.spectral_radius)
        elif self.init != "default":
            raise ValueError(f"model.init={self.init!r} applies to torch's fused layers; the {self.label} cell builds "
                             "its own (it overrides Cell.initialize to offer other inits)")

    def recurrent_matrices(self, core: nn.Module) -> dict[str, Tensor]:
        """Each square recurrent matrix, named l<layer>_<block> (`blocks` gives the block names): what the
        spectrum logger measures. Read from a fused core's W_hh; a core of a cell's own gives none unless
        the cell overrides this."""
        from rnn_gradients.cells import fused_layers

        if not fused_layers.is_fused(core):
            return {}
        return {f"l{layer}_{block}": matrix for layer in range(core.num_layers)
                for block, matrix in zip(self.blocks, fused_layers.recurrent_blocks(core, layer), strict=True)}

    def gate_values(self, layer: nn.Module, x: Tensor, h_prev: Tensor) -> dict[str, Tensor]:
        """Each gate's activations (batch, T, hidden) in one layer, given its inputs x (batch, T, in) and its
        previous outputs h_prev (h_{t-1}; 0 at t = 0). No gates: {}."""
        return {}

    def state_gradients(self, layer: nn.Module, x: Tensor, states: dict[str, Tensor],
                        grads: dict[str, Tensor]) -> dict[str, Tensor]:
        """The curves to report, each (batch, T, hidden), from autograd's gradients at the state nodes the
        probe's steps return (grads[s][:, t] = ∂L/∂s_t) and the states themselves. Default: as they are."""
        return dict(grads)


def _step_by_call(layer: nn.Module) -> Callable[[Tensor, tuple[Tensor, ...] | None], tuple[Tensor, tuple[Tensor, ...]]]:
    """Steps a layer called like torch's (x (batch, T, in), state (1, batch, hidden)) one step at a time."""

    def step(x: Tensor, state: tuple[Tensor, ...] | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        packed = None if state is None else tuple(s.unsqueeze(0) for s in state)
        output, new = layer(x.unsqueeze(1), packed if packed is None or len(packed) > 1 else packed[0])
        return output[:, 0], tuple(s[0] for s in (new if isinstance(new, tuple) else (new,)))

    return step


def previous(h: Tensor) -> Tensor:
    """h_{t-1} for every t of (batch, T, hidden) outputs: shifted by one step, zeros at t = 0 (the initial state)."""
    shifted = h.roll(1, dims=1)
    shifted[:, 0] = 0
    return shifted
