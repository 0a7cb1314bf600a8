"""CIFAR ResNets (He et al. 2016, section 4.2) with projection shortcuts."""

from collections.abc import Sequence

import torch
from torch import nn

from prunelab.errors import ConfigError
from prunelab.models.layers import init_weights
from prunelab.models.shapes import chw


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN layers; a 1x1 conv+BN shortcut where the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-`depth` for small images: depth = 6n + 2, three stages of 16/32/64 channels."""

    reset_parameters = init_weights  # also the initialiser of a pruned copy (training.rewind.reinitialise)

    def __init__(self, depth: int, input_shape: Sequence[int], num_classes: int):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            problem = f"a CIFAR ResNet needs depth = 6n + 2, got {depth}"
            raise ConfigError("model.depth", problem, "use 20, 32, 44, 56 or 110")
        c, _, _ = chw(input_shape)
        n = (depth - 2) // 6
        self.stem = nn.Sequential(nn.Conv2d(c, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        blocks, cin = [], 16
        for stage, cout in enumerate((16, 32, 64)):
            for i in range(n):
                blocks.append(BasicBlock(cin, cout, stride=2 if stage and not i else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))
