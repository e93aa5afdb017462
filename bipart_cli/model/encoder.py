"""Point-M2AE hierarchical encoder (Zhang et al. 2022), frozen, plus per-point propagation.

The module and parameter names mirror the official ``H_Encoder`` so that a
pre-training checkpoint loads by stripping its ``h_encoder.`` prefix
(``token_embed.{i}``, ``encoder_pos_embeds.{i}``, ``encoder_blocks.{i}.blocks.{j}``,
``encoder_norms.{i}``). Only the inference path is built: no masking, no
decoder, no drop-path (the encoder is always in eval mode here).

Stages (default sizes): 2048 points -> 512 centres (16-NN groups of raw points)
-> 256 centres (8-NN over the 512) -> 64 centres (8-NN over the 256), with
token widths 96, 192 and 384. Each stage's tokens are interpolated back to all
points (3-NN inverse distance) and concatenated with xyz: 99 + 195 + 387 = 681
channels, PartDistill's per-point input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..geometry import exact_cdist, farthest_point_sample, gather, knn, three_nn_interpolate
from .config import BiPartConfig

MASK_VALUE = -1e5  # added to attention logits of centre pairs beyond the local radius


class PointwiseConv(nn.Conv1d):
    """Kernel-1 ``Conv1d`` (the official parameter shape) applied channel-last as a matmul.

    (..., C_in) -> (..., C_out); far faster on CPU than a convolution over many
    tiny groups.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight[..., 0], self.bias)


class ChannelLastBatchNorm(nn.BatchNorm1d):
    """``BatchNorm1d`` over the last axis: (..., C) -> (..., C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class TokenEmbed(nn.Module):
    """Mini-PointNet turning each group of ``k`` inputs into one token.

    Stage 1 reads relative xyz (3 -> 128 -> 256, max-pool, concat -> 512 -> 512 -> out);
    later stages read the previous stage's tokens (in -> in, concat -> 2 in -> out).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        first, second = (128, 256) if in_channels == 3 else (in_channels, in_channels)
        middle = 512 if in_channels == 3 else out_channels
        self.first_conv = nn.Sequential(
            PointwiseConv(in_channels, first),
            ChannelLastBatchNorm(first),
            nn.ReLU(),
            PointwiseConv(first, second),
        )
        self.second_conv = nn.Sequential(
            PointwiseConv(2 * second, middle),
            ChannelLastBatchNorm(middle),
            nn.ReLU(),
            PointwiseConv(middle, out_channels),
        )

    def forward(self, groups: torch.Tensor) -> torch.Tensor:
        """groups : (B, G, k, C_in) -> tokens (B, G, C_out)."""
        x = self.first_conv(groups)  # (B, G, k, C1)
        pooled = x.max(dim=2, keepdim=True).values  # (B, G, 1, C1)
        x = torch.cat([pooled.expand_as(x), x], dim=-1)  # (B, G, k, 2 C1), global first
        x = self.second_conv(x)  # (B, G, k, C_out)
        return x.max(dim=2).values  # (B, G, C_out)


class Attention(nn.Module):
    """Multi-head self-attention with an additive mask; no qkv bias (as in Point-M2AE)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None) -> torch.Tensor:
        """x : (B, G, C); attn_bias : (B, G, G) additive or None -> (B, G, C)."""
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, dim // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, G, C/heads)
        bias = None if attn_bias is None else attn_bias.unsqueeze(1).to(q.dtype)  # (B, 1, G, G)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, heads, G, C/heads)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, attn_bias: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), attn_bias)
        return x + self.mlp(self.norm2(x))


class EncoderStage(nn.Module):
    """The blocks of one stage; the positional embedding is added before every block."""

    def __init__(self, dim: int, depth: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio) for _ in range(depth))

    def forward(
        self, x: torch.Tensor, pos: torch.Tensor, attn_bias: torch.Tensor | None
    ) -> torch.Tensor:
        for block in self.blocks:
            x = block(x + pos, attn_bias)
        return x


def local_attention_bias(centres: torch.Tensor, radius: float) -> torch.Tensor | None:
    """Additive mask: ``-1e5`` where two centres are at least ``radius`` apart.

    centres : (B, G, 3) -> (B, G, G), or None when ``radius <= 0``.
    """
    if radius <= 0:
        return None
    far = exact_cdist(centres, centres) >= radius  # (B, G, G)
    return far.to(centres.dtype) * MASK_VALUE


def build_hierarchy(
    points: torch.Tensor, group_sizes: list[int], group_k: list[int]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """FPS centres and kNN groups of every stage.

    Stage 1 groups the raw points; stage i > 1 samples its centres from stage
    i-1's centres and groups those.

    points : (B, N, 3)
    Returns ``centres`` [(B, G_i, 3)] and ``neighbours`` [(B, G_i, k_i) long], the latter
    indexing the points (stage 1) or the previous stage's centres.
    """
    centres, neighbours = [], []
    source = points  # (B, M, 3)
    for num_groups, k in zip(group_sizes, group_k, strict=True):
        picked = farthest_point_sample(source, num_groups)  # (B, G)
        centre = gather(source, picked)  # (B, G, 3)
        _, idx = knn(centre, source, k)  # (B, G, k)
        centres.append(centre)
        neighbours.append(idx)
        source = centre
    return centres, neighbours


def propagate_to_points(
    points: torch.Tensor, centres: list[torch.Tensor], tokens: list[torch.Tensor]
) -> torch.Tensor:
    """Per-point features: each stage's tokens 3-NN interpolated to the points, plus xyz.

    points : (B, N, 3); centres : [(B, G_i, 3)]; tokens : [(B, G_i, C_i)]
    Returns (B, N, Σ_i (C_i + 3)), laid out ``[tokens_1, xyz, tokens_2, xyz, ...]``.
    """
    parts = []
    for centre, token in zip(centres, tokens, strict=True):
        parts.append(three_nn_interpolate(points, centre, token))  # (B, N, C_i)
        parts.append(points)
    return torch.cat(parts, dim=-1)


class PointM2AEEncoder(nn.Module):
    """The hierarchical encoder. ``forward`` returns each stage's normalised tokens."""

    def __init__(self, config: BiPartConfig) -> None:
        super().__init__()
        self.group_sizes = list(config.group_sizes)
        self.group_k = list(config.group_k)
        self.local_radius = list(config.local_radius)
        dims = list(config.encoder_dims)
        self.token_embed = nn.ModuleList(
            TokenEmbed(3 if i == 0 else dims[i - 1], dim) for i, dim in enumerate(dims)
        )
        self.encoder_pos_embeds = nn.ModuleList(
            nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim)) for dim in dims
        )
        self.encoder_blocks = nn.ModuleList(
            EncoderStage(dim, depth, config.encoder_heads, config.mlp_ratio)
            for dim, depth in zip(dims, config.encoder_depths, strict=True)
        )
        self.encoder_norms = nn.ModuleList(nn.LayerNorm(dim) for dim in dims)

    def forward(self, points: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """points : (B, N, 3) -> (centres [(B, G_i, 3)], tokens [(B, G_i, C_i)])."""
        centres, neighbours = build_hierarchy(points, self.group_sizes, self.group_k)
        tokens = []
        previous_tokens = points  # stage 1 groups raw points
        for stage, (centre, idx) in enumerate(zip(centres, neighbours, strict=True)):
            if stage == 0:
                groups = gather(points, idx) - centre.unsqueeze(2)  # (B, G, k, 3) relative xyz
            else:
                groups = gather(previous_tokens, idx)  # (B, G, k, C_prev)
            x = self.token_embed[stage](groups)  # (B, G, C)
            pos = self.encoder_pos_embeds[stage](centre)  # (B, G, C)
            bias = local_attention_bias(centre, self.local_radius[stage])  # (B, G, G)
            x = self.encoder_blocks[stage](x, pos, bias)  # (B, G, C)
            previous_tokens = x  # the next stage merges the un-normalised tokens
            tokens.append(self.encoder_norms[stage](x))
        return centres, tokens

    def point_features(self, points: torch.Tensor) -> torch.Tensor:
        """points : (B, N, 3) -> per-point features (B, N, Σ (C_i + 3)), 681 at default sizes."""
        centres, tokens = self(points)
        return propagate_to_points(points, centres, tokens)
