"""Category-specific segmentation head φ: a 2-layer MLP with ``R_max`` logits.

The head is small on purpose: the inner loop (Eq. 3) adapts only these weights,
on cached extractor features. :func:`head_forward` is the functional form used
with a parameter dict (``torch.func``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SegmentationHead(nn.Module):
    """features (B, N, C) -> logits (B, N, R_max). Only the first R logits of an asset are used."""

    def __init__(self, in_channels: int, hidden: int, r_max: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_channels, hidden)
        self.fc2 = nn.Linear(hidden, r_max)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return head_forward(features, dict(self.named_parameters()))


def head_forward(features: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """The head as a pure function of its parameters.

    features : (B, N, C); params : ``fc1.weight`` (H, C), ``fc1.bias`` (H,),
    ``fc2.weight`` (R_max, H), ``fc2.bias`` (R_max,)  ->  logits (B, N, R_max)
    """
    hidden = F.relu(F.linear(features, params["fc1.weight"], params["fc1.bias"]))  # (B, N, H)
    return F.linear(hidden, params["fc2.weight"], params["fc2.bias"])  # (B, N, R_max)
