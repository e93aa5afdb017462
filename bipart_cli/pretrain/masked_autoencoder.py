"""Point-M2AE's multi-scale masked autoencoder around our encoder (Zhang et al. 2022, Sec. 3).

Masking is decided at the coarsest scale (``mask_ratio`` of its tokens) and
carried down: a finer token is visible when a visible coarser token groups it,
so every scale hides the same regions. The encoder (``h_encoder``, the official
key names) reads only the visible tokens of each scale; its stages are padded to
the batch's most visible tokens and the padding is masked out of attention.

The light decoder runs coarse to fine, one transformer block per scale: visible
tokens keep their encoding, hidden ones get the scale's mask token, and the
coarser scale's decoded tokens are projected and 3-NN interpolated in. A linear
head then predicts, for every hidden token of the finest scale, the relative xyz
of its ``k`` grouped points; the loss is the Chamfer L2 distance to the real group.
"""

from __future__ import annotations

import torch
from torch import nn

from ..geometry import gather, three_nn_interpolate
from ..model.config import BiPartConfig
from ..model.encoder import (
    MASK_VALUE,
    EncoderStage,
    PointM2AEEncoder,
    build_hierarchy,
    local_attention_bias,
)

MODEL_TYPE = "point-m2ae-pretraining"
ENCODER_ATTRIBUTE = "h_encoder"  # the official prefix: h_encoder.* keys load as official ones


def _positional_mlp(dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim))


def visible_tokens(
    neighbours: list[torch.Tensor], group_sizes: list[int], mask_ratio: float, generator
) -> list[torch.Tensor]:
    """Multi-scale masks, each scale's ``(B, G_i)`` bool, True where the token is visible.

    neighbours : [(B, G_i, k_i) long], stage i > 0 indexing stage i-1's centres.
    The coarsest scale hides ``int(mask_ratio * G)`` random tokens per shape; each
    finer token is visible iff a visible coarser token has it among its neighbours.
    """
    batch = neighbours[-1].shape[0]
    device = neighbours[-1].device
    coarsest = group_sizes[-1]
    hidden = int(mask_ratio * coarsest)
    scores = torch.rand(batch, coarsest, generator=generator).to(device)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # (B, G) a random permutation per shape
    visible = [ranks >= hidden]  # (B, G_last)
    for stage in range(len(group_sizes) - 1, 0, -1):
        idx = neighbours[stage]  # (B, G_stage, k) indices into stage-1's centres
        chosen = idx * visible[0].unsqueeze(-1)  # hidden groups point at index 0 ...
        finer = torch.zeros(batch, group_sizes[stage - 1], dtype=torch.long, device=device)
        weight = visible[0].unsqueeze(-1).expand_as(idx).long()  # ... with weight 0
        finer.scatter_add_(1, chosen.reshape(batch, -1), weight.reshape(batch, -1))
        visible.insert(0, finer > 0)
    return visible


def chamfer_l2(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Chamfer L2 between point sets, both directions' mean squared nearest distance.

    predicted, target : (..., k, 3) -> (...)
    """
    d2 = torch.cdist(predicted, target).square()  # (..., k, k)
    return d2.min(dim=-1).values.mean(-1) + d2.min(dim=-2).values.mean(-1)


class MaskedAutoencoder(nn.Module):
    """The encoder to pre-train (``h_encoder``) plus a decoder that exists only for it."""

    def __init__(self, config: BiPartConfig, decoder_depth: int = 1) -> None:
        super().__init__()
        self.config = config
        dims = list(config.encoder_dims)
        self.h_encoder = PointM2AEEncoder(config)
        self.mask_tokens = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, dim)) for dim in dims)
        self.decoder_pos_embeds = nn.ModuleList(_positional_mlp(dim) for dim in dims)
        self.decoder_blocks = nn.ModuleList(
            EncoderStage(dim, decoder_depth, config.encoder_heads, config.mlp_ratio) for dim in dims
        )
        self.decoder_norms = nn.ModuleList(nn.LayerNorm(dim) for dim in dims)
        # up_projections[i]: scale i+1's decoded width -> scale i's
        self.up_projections = nn.ModuleList(
            nn.Linear(dims[i + 1], dims[i]) for i in range(len(dims) - 1)
        )
        self.rec_head = nn.Linear(dims[0], 3 * config.group_k[0])
        for token in self.mask_tokens:
            nn.init.trunc_normal_(token, std=0.02)

    def encode_visible(
        self,
        points: torch.Tensor,
        centres: list[torch.Tensor],
        neighbours: list[torch.Tensor],
        visible: list[torch.Tensor],
    ) -> list[torch.Tensor]:
        """Each scale's normalised visible tokens, in place in a (B, G_i, C_i) tensor (zeros where hidden)."""
        encoder = self.h_encoder
        encoded = []
        previous = points
        for stage, (centre, idx, seen) in enumerate(zip(centres, neighbours, visible, strict=True)):
            if stage == 0:
                groups = gather(points, idx) - centre.unsqueeze(2)  # (B, G, k, 3)
            else:
                groups = gather(previous, idx)  # (B, G, k, C_prev)
            tokens = encoder.token_embed[stage](groups)  # (B, G, C), every group
            count = seen.sum(dim=1)  # (B,)
            length = int(count.max())
            order = (~seen).to(torch.int8).argsort(dim=1, stable=True)[:, :length]  # visible first
            valid = torch.arange(length, device=points.device) < count.unsqueeze(1)  # (B, L)
            x = gather(tokens, order)  # (B, L, C)
            where = gather(centre, order)  # (B, L, 3)
            bias = local_attention_bias(where, encoder.local_radius[stage])
            padding = (~valid).to(x.dtype).unsqueeze(
                1
            ) * MASK_VALUE  # (B, 1, L): no one reads padding
            bias = padding.expand(-1, length, -1) if bias is None else bias + padding
            x = encoder.encoder_blocks[stage](x, encoder.encoder_pos_embeds[stage](where), bias)
            keep = valid.unsqueeze(-1)
            # the next scale groups the processed visible tokens and the raw hidden ones
            previous = torch.where(seen.unsqueeze(-1), _scatter(x * keep, order, tokens), tokens)
            normed = encoder.encoder_norms[stage](x) * keep
            encoded.append(_scatter(normed, order, tokens))  # (B, G, C)
        return encoded

    def decode(
        self, centres: list[torch.Tensor], encoded: list[torch.Tensor], visible: list[torch.Tensor]
    ) -> torch.Tensor:
        """Coarse to fine; returns the finest scale's decoded tokens (B, G_0, C_0)."""
        decoded = None
        for stage in range(len(centres) - 1, -1, -1):
            mask_token = self.mask_tokens[stage].to(encoded[stage].dtype)
            x = torch.where(visible[stage].unsqueeze(-1), encoded[stage], mask_token)  # (B, G, C)
            if decoded is not None:
                coarser = self.up_projections[stage](decoded)  # (B, G_{i+1}, C_i)
                x = x + three_nn_interpolate(centres[stage], centres[stage + 1], coarser)
            pos = self.decoder_pos_embeds[stage](centres[stage])
            decoded = self.decoder_norms[stage](self.decoder_blocks[stage](x, pos, None))
        return decoded

    def forward(self, points: torch.Tensor, mask_ratio: float, generator=None) -> torch.Tensor:
        """points : (B, N, 3) -> per-shape reconstruction loss (B,), over the hidden finest tokens."""
        config = self.config
        with torch.no_grad():
            centres, neighbours = build_hierarchy(points, config.group_sizes, config.group_k)
            visible = visible_tokens(neighbours, config.group_sizes, mask_ratio, generator)
        encoded = self.encode_visible(points, centres, neighbours, visible)
        decoded = self.decode(centres, encoded, visible)  # (B, G0, C0)
        batch, groups, _ = decoded.shape
        predicted = self.rec_head(decoded).reshape(batch, groups, -1, 3).float()  # (B, G0, k, 3)
        target = gather(points, neighbours[0]) - centres[0].unsqueeze(2)  # (B, G0, k, 3)
        per_group = chamfer_l2(predicted, target.float())  # (B, G0)
        hidden = (~visible[0]).float()
        return (per_group * hidden).sum(1) / hidden.sum(1).clamp_min(1.0)

    # --- checkpoints (train.checkpoints calls these two) ----------------------

    def save_pretrained(self, directory) -> None:
        """``model.safetensors`` (encoder and decoder) and ``config.json`` (the encoder sizes)."""
        import json
        from pathlib import Path

        from safetensors.torch import save_file

        from ..io.atomic import atomic_path, atomic_write_text

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(tensors, str(tmp), metadata={"format": "pt", "model_type": MODEL_TYPE})
        config = {"model_type": MODEL_TYPE, **self.config.to_dict()}
        atomic_write_text(directory / "config.json", json.dumps(config, indent=2) + "\n")

    def load_weights(self, path) -> MaskedAutoencoder:
        from safetensors.torch import load_file

        self.load_state_dict(load_file(str(path)), strict=True)
        return self

    def encoder_state(self) -> dict[str, torch.Tensor]:
        """The encoder's weights under the official names (``h_encoder.*``)."""
        return {
            f"{ENCODER_ATTRIBUTE}.{key}": value
            for key, value in self.h_encoder.state_dict().items()
        }


def _scatter(rows: torch.Tensor, order: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Put ``rows`` (B, L, C) back at positions ``order`` (B, L) of a zero tensor shaped ``like``.

    The result has ``rows``' dtype: under CUDA's bf16 autocast a LayerNorm's float32 output
    is scattered into the shape of bf16 tokens.
    """
    index = order.unsqueeze(-1).expand(-1, -1, rows.shape[-1])
    return rows.new_zeros(like.shape).scatter(1, index, rows)
