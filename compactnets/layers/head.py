"""Classifier head: global average pool -> (hidden layer) -> dropout -> fully connected."""

from __future__ import annotations

import torch
from torch import nn

from .activations import ActLayer, create_act


class ClassifierHead(nn.Module):
    """Global average pooling, dropout and a linear classifier; ``num_classes=0`` keeps pooled features.

    ``hidden_chs`` adds a linear layer with bias and ``hidden_act`` after the pooling (MobileNetV3's
    last 1x1 conv without BN, Howard et al. 2019, Sec. 5.3.1); ``pre_logits`` then returns its output.
    """

    def __init__(
        self,
        in_chs: int,
        num_classes: int,
        drop_rate: float = 0.0,
        hidden_chs: int = 0,
        hidden_act: str | ActLayer | None = "hswish",
    ) -> None:
        super().__init__()
        self.in_chs, self.drop_rate, self.hidden_chs = in_chs, drop_rate, hidden_chs
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.hidden = (
            nn.Sequential(nn.Linear(in_chs, hidden_chs), create_act(hidden_act)) if hidden_chs else nn.Identity()
        )
        self.dropout = nn.Dropout(drop_rate) if drop_rate > 0 else nn.Identity()
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    def reset(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` outputs."""
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.num_classes = num_classes
        if num_classes:
            self.fc = nn.Linear(self.hidden_chs or self.in_chs, num_classes)
            nn.init.normal_(self.fc.weight, 0, 0.01)
            nn.init.zeros_(self.fc.bias)
        else:
            self.fc = nn.Identity()

    def forward(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(self.hidden(self.flatten(self.pool(x))))
        return x if pre_logits else self.fc(x)
