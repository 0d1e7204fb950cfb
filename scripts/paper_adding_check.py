"""Which detail of Arjovsky et al.'s adding recipe makes their LSTM leave the baseline sooner than ours?

A plain-PyTorch loop of their recipe (LSTM 128, RMSProp lr 1e-3 decay 0.9, element-wise clipping at 1,
batch 50, T=100, forget bias 1; docs/references.md), outside Lightning so that each difference of their
code (amarshah/complex_RNN) from torch's defaults can be switched alone:

    --init torch|glorot|hh|io   torch's init, or Glorot-uniform on every matrix (their initialize_matrix),
                                on W_hh only (hh), or on W_ih and the readout only (io)
    --v0 0|1e-3 --eps 1e-8|0    RMSProp's running mean of g² starts at 0 with ε (torch) or at 1e-3 without ε (theirs)
    --data fresh|fixed          a fresh batch every step (ours), or a fixed set of 1e5 sequences cycled (theirs)

It prints validation MSE (1e4 fixed sequences) every 250 steps, then one JSON line: `left` is the first
step with MSE below 0.15 (0.9 × the baseline 1/6), `final` the MSE at the end. The README's table of
these runs: `python scripts/paper_adding_check.py --init glorot --seed 0` and so on, one thread each.
Kept outside the package: it is a measurement of the paper, not part of the template.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from torch import nn

from rnn_gradients.tasks.adding import Adding

LEFT_BASELINE = 0.15  # MSE: 0.9 × 1/6
TRAIN_SET = 100_000  # their n_train


def glorot_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    weight.uniform_(-bound, bound)


@torch.no_grad()
def initialise(lstm: nn.LSTM, readout: nn.Linear, init: str) -> None:
    H = lstm.hidden_size
    if init == "glorot":  # every matrix, biases 0, forget bias 1: their models.LSTM
        for block in lstm.weight_ih_l0.chunk(4, 0):
            glorot_(block, lstm.input_size, H)
        for block in lstm.weight_hh_l0.chunk(4, 0):
            glorot_(block, H, H)
        glorot_(readout.weight, H, 1)
        lstm.bias_ih_l0.zero_(), lstm.bias_hh_l0.zero_(), readout.bias.zero_()
        lstm.bias_ih_l0[H : 2 * H] = 1.0
        return
    if init == "hh":
        for block in lstm.weight_hh_l0.chunk(4, 0):
            glorot_(block, H, H)
    elif init == "io":
        for block in lstm.weight_ih_l0.chunk(4, 0):
            glorot_(block, lstm.input_size, H)
        glorot_(readout.weight, H, 1)
    lstm.bias_ih_l0[H : 2 * H] += 1.0  # torch's biases, shifted as model.forget_bias=1 does


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--init", default="torch", choices=["torch", "glorot", "hh", "io"])
    parser.add_argument("--v0", type=float, default=0.0, help="RMSProp's running mean of g² at the start")
    parser.add_argument("--eps", type=float, default=1e-8, help="RMSProp's ε, added outside the square root")
    parser.add_argument("--data", default="fresh", choices=["fresh", "fixed"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--out", help="also write the result, with the whole curve, to this JSON file")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    task = Adding(100)
    lstm, readout = nn.LSTM(2, args.hidden, batch_first=True), nn.Linear(args.hidden, 1)
    initialise(lstm, readout, args.init)
    params = list(lstm.parameters()) + list(readout.parameters())
    square_avg = [torch.full_like(p, args.v0) for p in params]
    stream = torch.Generator().manual_seed(1000 + args.seed)
    val_x, val_y = task.sample(10_000, torch.Generator().manual_seed(7))
    if args.data == "fixed":
        train_x, train_y = task.sample(TRAIN_SET, stream)

    def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        states, _ = lstm(x)
        return ((readout(states[:, -1]).squeeze(-1) - y) ** 2).mean()

    curve, start = [], time.time()
    for step in range(args.steps):
        if args.data == "fixed":
            i = step % (TRAIN_SET // args.batch) * args.batch
            x, y = train_x[i : i + args.batch], train_y[i : i + args.batch]
        else:
            x, y = task.sample(args.batch, stream)
        loss = mse(x, y)
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():  # RMSProp on element-wise clipped gradients, as their optimizations.rms_prop
            for p, v in zip(params, square_avg):
                g = p.grad.clamp(-1, 1)
                v.mul_(0.9).addcmul_(g, g, value=0.1)
                p.addcdiv_(g, v.sqrt().add_(args.eps), value=-1e-3)
        if (step + 1) % 250 == 0:
            with torch.no_grad():
                curve.append((step + 1, mse(val_x, val_y).item()))
            print(step + 1, round(curve[-1][1], 4), flush=True)
    left = next((s for s, m in curve if m < LEFT_BASELINE), None)
    result = dict(vars(args), left=left, final=curve[-1][1], wall_s=round(time.time() - start, 1))
    print(json.dumps({k: v for k, v in result.items() if k != "out"}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(result, curve=curve), f)


if __name__ == "__main__":
    main()
