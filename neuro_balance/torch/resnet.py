"""A torchvision-style small ResNet (basic blocks, batch norm, identity and 1x1 shortcuts) for demos and tests."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "small_resnet"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual ``+`` (identity, or 1x1 conv + BN on a change)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.shortcut is None else self.shortcut(x)))


def small_resnet(in_channels: int = 3, width: int = 16, blocks: tuple[int, ...] = (2, 2, 2),
                 n_out: int = 10) -> nn.Sequential:
    """A CIFAR-style ResNet: a 3x3 stem, stages of `BasicBlock` (width doubling, stride 2 from the second
    stage on), global average pooling and a linear classifier. ``blocks=(2, 2, 2)`` is ResNet-14.

    Examples
    --------
    >>> import torch
    >>> small_resnet(width=4, blocks=(1, 1))(torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2, 10])
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    c = width
    for stage, n in enumerate(blocks):
        c_out = width * 2 ** stage
        for k in range(n):
            layers.append(BasicBlock(c, c_out, stride=2 if stage and k == 0 else 1))
            c = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, n_out)]
    return nn.Sequential(*layers)
