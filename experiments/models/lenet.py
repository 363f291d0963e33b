"""LeNet-5 written the torch way: an example model file for ``experiments/port_torch_model.py``.

    python experiments/port_torch_model.py --model experiments/models/lenet.py:LeNet5 --input-shape 1,28,28

LeCun et al. (1998)'s layout for 28x28 images (the first convolution pads by 2, standing in for the
original 32x32 input): conv 5x5 (6) -> ReLU -> max pool 2 -> conv 5x5 (16) -> ReLU -> max pool 2 ->
120 -> 84 -> 10. ReLU and max pooling replace the paper's scaled tanh and trainable subsampling, as
in torch's tutorials. Nothing here imports fnnet: any torch model file in this form can be ported.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)
