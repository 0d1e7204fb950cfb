"""GradientClipper against torch's reference clipping (inside Lightning: tests/test_clipping_lightning.py)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from rnn_gradients.clipping import GradientClipper
from conftest import network

# Lightning 2.6 vs torch 2.13 deprecation notice, unrelated to this project
pytestmark = pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*")


def model_with_grads(seed: int = 0, scale: float = 1.0) -> nn.Module:
    """A small LSTM network whose .grad buffers hold a real backward pass (one parameter has none)."""
    torch.manual_seed(seed)
    net = network("lstm", 3, 8, 2, num_layers=2, forget_bias=1.0)
    x = torch.randn(4, 7, 3)
    (net(x, last_only=False).pow(2).sum() * scale).backward()
    net.rnn.bias_hh_l1.grad = None  # parameters without a gradient must be skipped, not crash
    return net


def clone_with_grads(net: nn.Module) -> nn.Module:
    """deepcopy does not copy .grad buffers: copy them by hand."""
    twin = copy.deepcopy(net)
    for p, q in zip(net.parameters(), twin.parameters()):
        q.grad = None if p.grad is None else p.grad.clone()
    return twin


def grads(net: nn.Module) -> list[torch.Tensor | None]:
    return [None if p.grad is None else p.grad.clone() for p in net.parameters()]


def total_norm(net: nn.Module) -> float:
    """Independent measurement: sqrt of the sum of squares of every gradient element, in float64."""
    return math.sqrt(sum(float(p.grad.double().pow(2).sum()) for p in net.parameters() if p.grad is not None))


def assert_same_grads(a: list, b: list, **tol) -> None:
    assert len(a) == len(b)
    for ga, gb in zip(a, b):
        if ga is None or gb is None:
            assert ga is None and gb is None
        else:
            torch.testing.assert_close(ga, gb, **tol)


# ----------------------------------------------------------------------------- norm


def test_norm_clipping_above_threshold_matches_torch():
    net = model_with_grads()
    ref = clone_with_grads(net)
    pre_measured = total_norm(net)
    threshold = pre_measured / 7
    assert pre_measured > threshold

    stats = GradientClipper("norm", threshold)(net.parameters())
    torch_pre = torch.nn.utils.clip_grad_norm_([p for p in ref.parameters() if p.grad is not None], threshold)

    assert total_norm(net) == pytest.approx(threshold, rel=1e-5)
    assert_same_grads(grads(net), grads(ref), rtol=1e-6, atol=1e-9)
    assert stats.preclip_norm.item() == pytest.approx(torch_pre.item(), rel=1e-6)
    assert stats.preclip_norm.item() == pytest.approx(pre_measured, rel=1e-5)
    assert stats.postclip_norm.item() == pytest.approx(total_norm(net), rel=1e-5)
    assert stats.clipped.item() == 1.0
    # direction is kept: every gradient is the original one scaled by threshold / ||g||
    original = model_with_grads()
    for p, q in zip(net.parameters(), original.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad * (threshold / pre_measured), rtol=1e-5, atol=1e-9)


def test_norm_clipping_below_threshold_leaves_grads_unchanged():
    net = model_with_grads()
    before = grads(net)
    pre_measured = total_norm(net)
    clipper = GradientClipper("norm", pre_measured * 2)
    stats = clipper(net.parameters())
    assert_same_grads(grads(net), before, rtol=0, atol=0)
    assert stats.clipped.item() == 0.0
    assert stats.preclip_norm.item() == pytest.approx(pre_measured, rel=1e-5)
    assert stats.postclip_norm.item() == pytest.approx(pre_measured, rel=1e-5)
    assert clipper.last is stats


# ----------------------------------------------------------------------------- value


@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_value_clipping_matches_torch(fraction):
    net = model_with_grads(seed=1)
    ref = clone_with_grads(net)
    pre_measured = total_norm(net)
    largest = max(float(p.grad.abs().max()) for p in net.parameters() if p.grad is not None)
    threshold = largest * fraction

    stats = GradientClipper("value", threshold)(net.parameters())
    torch.nn.utils.clip_grad_value_([p for p in ref.parameters() if p.grad is not None], threshold)

    assert_same_grads(grads(net), grads(ref), rtol=0, atol=0)
    for p in net.parameters():
        if p.grad is not None:
            assert p.grad.abs().max().item() <= threshold * (1 + 1e-7)
    assert stats.clipped.item() == 1.0
    assert stats.preclip_norm.item() == pytest.approx(pre_measured, rel=1e-5)
    assert stats.postclip_norm.item() == pytest.approx(total_norm(net), rel=1e-5)
    assert stats.postclip_norm.item() < pre_measured


def test_value_clipping_below_threshold():
    net = model_with_grads(seed=1)
    before = grads(net)
    largest = max(float(p.grad.abs().max()) for p in net.parameters() if p.grad is not None)
    stats = GradientClipper("value", largest * 1.01)(net.parameters())
    assert_same_grads(grads(net), before, rtol=0, atol=0)
    assert stats.clipped.item() == 0.0
    assert stats.postclip_norm.item() == pytest.approx(stats.preclip_norm.item(), rel=1e-6)


# ----------------------------------------------------------------------------- none


@pytest.mark.parametrize("threshold", [None, 1e-9])
def test_none_leaves_grads_untouched(threshold):
    net = model_with_grads(scale=1e3)
    before = grads(net)
    pre_measured = total_norm(net)
    stats = GradientClipper("none", threshold)(net.parameters())
    assert_same_grads(grads(net), before, rtol=0, atol=0)
    assert stats.clipped.item() == 0.0
    assert stats.preclip_norm.item() == pytest.approx(pre_measured, rel=1e-5)
    assert stats.postclip_norm.item() == pytest.approx(pre_measured, rel=1e-5)


# ----------------------------------------------------------------------------- invalid settings


@pytest.mark.parametrize(
    "mode,threshold,key",
    [
        ("norm", 0, "clipping.threshold"),
        ("norm", 0.0, "clipping.threshold"),
        ("norm", -1.0, "clipping.threshold"),
        ("norm", None, "clipping.threshold"),
        ("value", 0, "clipping.threshold"),
        ("value", -0.5, "clipping.threshold"),
        ("value", None, "clipping.threshold"),
        ("norm", float("nan"), "clipping.threshold"),
        ("l2", 1.0, "clipping.mode"),
        ("Norm", 1.0, "clipping.mode"),
        ("", 1.0, "clipping.mode"),
    ],
)
def test_invalid_settings_raise(mode, threshold, key):
    with pytest.raises(ValueError, match=key):
        GradientClipper(mode, threshold)
