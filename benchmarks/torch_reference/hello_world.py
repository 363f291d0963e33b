"""PyTorch reference of experiments/hello_world.py: the author's ``backprop_pytorch.py``.

    python benchmarks/torch_reference/hello_world.py [--out DIR]

``Net`` with the hand-set weights, ``nn.MSELoss`` and one ``optim.SGD(lr=0.1)`` step
(``net.zero_grad(); loss.backward(); optimizer.step()``), then the article's hand computation with
torch scalars; prints the same lines and writes ``output.txt`` like the fnnet experiment.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import torch
import torch.nn as nn
from _common import write_atomic


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden_layer = nn.Linear(1, 1)
        self.hidden_layer.weight = nn.Parameter(torch.tensor([[1.58]]))
        self.hidden_layer.bias = nn.Parameter(torch.tensor([-0.14]))
        self.output_layer = nn.Linear(1, 1)
        self.output_layer.weight = nn.Parameter(torch.tensor([[2.45]]))
        self.output_layer.bias = nn.Parameter(torch.tensor([-0.11]))

    def forward(self, x):
        x = torch.sigmoid(self.hidden_layer(x))
        return torch.sigmoid(self.output_layer(x))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/torch_hello_world"))
    parser.add_argument("--seed", type=int, default=0, help="unused: the weights are fixed")
    args = parser.parse_args(argv)
    net = Net()
    lines = [f"network topology: {net}"]

    def scalars(prefix):
        return {
            f"{prefix}w_l1": net.hidden_layer.weight.item(),
            f"{prefix}b_l1": net.hidden_layer.bias.item(),
            f"{prefix}w_l2": net.output_layer.weight.item(),
            f"{prefix}b_l2": net.output_layer.bias.item(),
        }

    x, target = torch.tensor([0.8]), torch.tensor([1.0])
    values = scalars("")
    output = net(x)
    values["a_l2"] = output.item()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    net.zero_grad()
    nn.MSELoss()(output, target).backward()
    optimizer.step()
    values.update(scalars("updated_"))
    values["updated_a_l2"] = net(x).item()
    lines += [f"{k} = {round(v, 4)}" for k, v in values.items()]

    lines.append("hand-computed (plain torch, no autograd):")
    sigmoid = torch.sigmoid
    a_l0, w_l1, b_l1, w_l2, b_l2 = (torch.tensor(v) for v in (0.8, 1.58, -0.14, 2.45, -0.11))
    z_l1 = w_l1 * a_l0 + b_l1
    a_l1 = sigmoid(z_l1)
    z_l2 = w_l2 * a_l1 + b_l2
    a_l2 = sigmoid(z_l2)
    dc_da_l2 = 2 * (a_l2 - 1)
    dc_db_l2 = sigmoid(z_l2) * (1 - sigmoid(z_l2)) * dc_da_l2
    dc_dw_l2 = a_l1 * dc_db_l2
    dc_da_l1 = w_l2 * dc_db_l2
    dc_db_l1 = sigmoid(z_l1) * (1 - sigmoid(z_l1)) * dc_da_l1
    dc_dw_l1 = a_l0 * dc_db_l1
    up = {
        "updated_w_l1": w_l1 - dc_dw_l1 * 0.1,
        "updated_b_l1": b_l1 - dc_db_l1 * 0.1,
        "updated_w_l2": w_l2 - dc_dw_l2 * 0.1,
        "updated_b_l2": b_l2 - dc_db_l2 * 0.1,
    }
    updated_a_l1 = sigmoid(up["updated_w_l1"] * a_l0 + up["updated_b_l1"])
    updated_a_l2 = sigmoid(up["updated_w_l2"] * updated_a_l1 + up["updated_b_l2"])
    hand = {"w_l1": w_l1, "b_l1": b_l1, "w_l2": w_l2, "b_l2": b_l2, "a_l2": a_l2, **up, "updated_a_l2": updated_a_l2}
    lines += [f"{k} = {round(float(v), 4)}" for k, v in hand.items()]
    text = "\n".join(lines)
    print(text)
    write_atomic(args.out / "output.txt", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
