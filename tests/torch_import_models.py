"""Small PyTorch models for tests/test_import_torch.py, built by name as `archcalc import torch
torch_import_models:NAME` builds a user's model (this directory is on sys.path under pytest)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class Gate(nn.Module):
    """x + x * scale (addcmul, a learned per-channel scale) and an erf: two operations archcalc
    has no op for, one holding parameters."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.erf(torch.addcmul(x, x, self.scale))


class GatedNet(nn.Module):
    """conv -> Gate -> pool -> linear: the gate's two operations are what an import must list."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.gate = Gate(channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.gate(self.conv(x))), 1))


def gated_net(**kwargs: Any) -> nn.Module:
    return GatedNet(**kwargs)


class Unused(nn.Module):
    """A linear layer whose forward skips its second one: its parameters are never read."""

    def __init__(self) -> None:
        super().__init__()
        self.used = nn.Linear(4, 4)
        self.skipped = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.used(x)


def unused() -> nn.Module:
    return Unused()


def small_cnn() -> nn.Module:
    """conv-bn-relu, two chained residual-free stages of one structure, pooling and a classifier."""
    def stage(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))
    return nn.Sequential(stage(3, 8), stage(8, 8), stage(8, 8), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
