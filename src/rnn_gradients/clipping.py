"""Gradient clipping that also reports what it did.

Clipping is split into measure + scale (torch.nn.utils.get_total_norm / clip_grads_with_norm_), so the
pre-clip norm is computed once and shared with the observatory, and the post-clip norm is *measured*
after scaling rather than derived. Values stay on the device: no host sync per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from rnn_gradients.schema import check_clipping


@dataclass
class ClipStats:
    preclip_norm: Tensor  # total L2 norm of all gradients before clipping
    postclip_norm: Tensor  # total L2 norm after clipping (measured)
    clipped: Tensor  # 1.0 if clipping changed the gradient on this step, else 0.0
    params: list[nn.Parameter]  # the tensors that had a gradient, in order
    tensor_norms: Tensor  # their gradient norms before clipping (the terms of preclip_norm)


class GradientClipper:
    """`mode='norm'`: g ← θ·g/‖g‖ when ‖g‖ > θ (Pascanu et al. 2013). `mode='value'`: each element to [-θ, θ]."""

    def __init__(self, mode: str = "none", threshold: float | None = None) -> None:
        check_clipping(mode, threshold)  # the schema's rules: the command line's words for a bad value
        self.mode, self.threshold = mode, threshold
        self.last: ClipStats | None = None

    def __call__(self, parameters: Iterable[nn.Parameter]) -> ClipStats:
        params = [p for p in parameters if p.grad is not None]
        grads = [p.grad for p in params]
        # get_total_norm's own two steps, keeping the per-tensor norms the observatory logs
        tensor_norms = torch.stack(torch._foreach_norm(grads)) if grads else torch.zeros(0)
        pre = torch.linalg.vector_norm(tensor_norms, 2.0)
        if self.mode == "norm":
            torch.nn.utils.clip_grads_with_norm_(params, self.threshold, pre)
            clipped = (pre > self.threshold).float()
        elif self.mode == "value":
            clipped = torch.stack([g.abs().amax() for g in grads]).amax().gt(self.threshold).float()
            torch.nn.utils.clip_grad_value_(params, self.threshold)
        else:
            clipped = torch.zeros((), device=pre.device)
        post = pre if self.mode == "none" else torch.nn.utils.get_total_norm(grads, norm_type=2.0)
        self.last = ClipStats(pre.detach(), post.detach(), clipped, params, tensor_norms.detach())
        return self.last
