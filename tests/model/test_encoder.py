"""Point-M2AE encoder: hierarchy, local attention, per-point propagation, frozen and seeded."""

from __future__ import annotations

import math

import pytest
import torch
from _tiny import small_config
from _tiny import unit_cloud_tensor as unit_cloud

from bipart_cli.model.bipart import BiPartModel
from bipart_cli.model.encoder import (
    MASK_VALUE,
    Attention,
    TokenEmbed,
    build_hierarchy,
    local_attention_bias,
    propagate_to_points,
)


def test_propagation_matches_a_naive_loop():
    points = unit_cloud(40, seed=1).double()  # (1, 40, 3)
    centres = [unit_cloud(10, seed=2).double(), unit_cloud(5, seed=3).double()]
    tokens = [torch.randn(1, 10, 4, dtype=torch.float64), torch.randn(1, 5, 2, dtype=torch.float64)]
    result = propagate_to_points(points, centres, tokens)  # (1, 40, 4 + 3 + 2 + 3)
    assert result.shape == (1, 40, 12)
    for n in range(40):
        p = points[0, n]
        expected = []
        for centre, token in zip(centres, tokens, strict=True):
            distances = [math.dist(p.tolist(), c.tolist()) for c in centre[0]]
            nearest = sorted(range(len(distances)), key=distances.__getitem__)[:3]
            inverse = [1.0 / (distances[i] + 1e-8) for i in nearest]
            value = sum(w * token[0, i] for w, i in zip(inverse, nearest, strict=True)) / sum(
                inverse
            )
            expected += [value, p]
        torch.testing.assert_close(result[0, n], torch.cat(expected), rtol=1e-9, atol=1e-12)


def test_hierarchy_groups_raw_points_then_previous_centres():
    points = unit_cloud(100, seed=4)
    centres, neighbours = build_hierarchy(points, [20, 10, 4], [6, 3, 3])
    assert [c.shape[1] for c in centres] == [20, 10, 4]
    assert [n.shape[-1] for n in neighbours] == [6, 3, 3]
    sources = [points, centres[0], centres[1]]
    for stage, (centre, idx) in enumerate(zip(centres, neighbours, strict=True)):
        source = sources[stage][0]
        # every centre is one of its source points (FPS), and its group is its k nearest
        assert all((source == c).all(-1).any() for c in centre[0])
        for g, c in enumerate(centre[0]):
            naive = torch.argsort(((source - c) ** 2).sum(-1))[: idx.shape[-1]]
            assert set(idx[0, g].tolist()) == set(naive.tolist())


def test_local_attention_equals_attention_restricted_to_the_radius():
    torch.manual_seed(0)
    attention = Attention(dim=8, num_heads=2).double()
    centres = unit_cloud(12, seed=5).double()
    x = torch.randn(1, 12, 8, dtype=torch.float64)
    radius = 0.8
    bias = local_attention_bias(centres, radius)
    assert bias is not None and set(bias.unique().tolist()) <= {0.0, MASK_VALUE}
    result = attention(x, bias)[0]  # (12, 8)
    q, k, v = attention.qkv(x[0]).reshape(12, 3, 2, 4).unbind(1)  # (12, heads, 4)
    for i in range(12):
        near = [j for j in range(12) if torch.dist(centres[0, i], centres[0, j]) < radius]
        heads = []
        for h in range(2):
            logits = torch.stack([q[i, h] @ k[j, h] / 2.0 for j in near])  # scale 1/sqrt(4)
            weights = logits.softmax(0)
            heads.append(sum(w * v[j, h] for w, j in zip(weights, near, strict=True)))
        expected = attention.proj(torch.cat(heads))
        torch.testing.assert_close(result[i], expected, rtol=1e-9, atol=1e-9)


def test_token_embedding_ignores_the_order_inside_a_group():
    torch.manual_seed(0)
    embed = TokenEmbed(3, 16).eval()
    groups = torch.randn(2, 5, 8, 3)  # (B, G, k, 3)
    shuffled = groups[:, :, torch.randperm(8)]
    torch.testing.assert_close(embed(groups), embed(shuffled))
    assert embed(groups).shape == (2, 5, 16)


def test_encoder_is_frozen_and_stays_in_eval_mode():
    config = small_config()
    model = BiPartModel(config).train()
    assert not model.encoder.training
    assert all(not p.requires_grad for p in model.encoder.parameters())
    running = [b.clone() for b in model.encoder.buffers()]
    features = model.encode(unit_cloud(256, seed=6))
    assert not features.requires_grad
    assert features.shape == (1, 256, config.encoder_feature_dim)
    assert all(torch.equal(a, b) for a, b in zip(running, model.encoder.buffers(), strict=True))


def test_encoder_is_deterministic_given_its_seed():
    points = unit_cloud(256, seed=7)
    first = BiPartModel(small_config(encoder_seed=3)).encode(points)
    torch.manual_seed(123)  # the global RNG must not matter
    again = BiPartModel(small_config(encoder_seed=3)).encode(points)
    other = BiPartModel(small_config(encoder_seed=4)).encode(points)
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_encoder_rejects_too_few_points():
    with pytest.raises(ValueError, match="at least 64 points"):
        BiPartModel(small_config()).encode(unit_cloud(32))
