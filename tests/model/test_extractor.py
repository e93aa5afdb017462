"""Point Transformer extractor: kNN, vector attention against a per-point loop, equivariance."""

from __future__ import annotations

import pytest
import torch

from bipart_cli.geometry import _knn_dense, _knn_kdtree, gather
from bipart_cli.model.extractor import FeatureExtractor, PointTransformerLayer, ShapeNorm


def cloud(num_points: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(1, num_points, 3, generator=generator, dtype=torch.float64) * 2 - 1


def randomise_batchnorm(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial affine terms in every ShapeNorm, so the normalisation is not an identity-like map."""
    generator = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, ShapeNorm):
            size = norm.weight.numel()
            norm.weight.data.copy_(torch.randn(size, generator=generator))
            norm.bias.data.copy_(torch.randn(size, generator=generator))


def test_knn_equals_a_naive_all_pairs_reference():
    extractor = FeatureExtractor(in_channels=5, dim=8, k=16)
    xyz = cloud(60, seed=1)
    neighbours = extractor.neighbours(xyz)[0]  # (60, 16)
    for i in range(60):
        distances = [((xyz[0, i] - xyz[0, j]) ** 2).sum().item() for j in range(60)]
        naive = sorted(range(60), key=distances.__getitem__)[:16]
        assert neighbours[i].tolist() == naive


def test_kdtree_knn_equals_the_distance_matrix_knn():
    generator = torch.Generator().manual_seed(7)
    reference = torch.rand(2, 300, 3, generator=generator)  # two different clouds
    query = torch.rand(2, 120, 3, generator=generator)
    tree_d2, tree_index = _knn_kdtree(query, reference, 5)
    dense_d2, dense_index = _knn_dense(query, reference, 5, chunk=50)
    assert torch.equal(tree_index, dense_index)
    torch.testing.assert_close(tree_d2, dense_d2, rtol=1e-4, atol=1e-6)


def test_distance_matrix_knn_is_exact_away_from_the_origin():
    """torch.cdist's default computes |a|^2 + |b|^2 - 2ab for clouds over 25 points, which
    loses the small distances of points far from the origin (and, on CUDA, flipped
    neighbours enough to move training gradients by up to 7%, measured on an H200)."""
    generator = torch.Generator().manual_seed(9)
    reference = torch.rand(1, 2048, 3, generator=generator) * 0.1 + 50.0
    query = reference[:, :500]
    tree_d2, tree_index = _knn_kdtree(query, reference, 16)
    dense_d2, dense_index = _knn_dense(query, reference, 16)
    assert torch.equal(tree_index, dense_index)
    torch.testing.assert_close(tree_d2, dense_d2, rtol=1e-4, atol=1e-9)


def test_gather_equals_torch_gather_per_shape():
    generator = torch.Generator().manual_seed(8)
    values = torch.randn(3, 20, 4, generator=generator)
    indices = torch.randint(0, 20, (3, 7, 5), generator=generator)
    for b in range(3):
        expected = values[b][indices[b].reshape(-1)].reshape(7, 5, 4)
        torch.testing.assert_close(gather(values, indices)[b], expected, rtol=0, atol=0)


@pytest.mark.parametrize("grad", [True, False], ids=["training-form", "inference-kernel"])
def test_shape_norm_equals_its_formula_in_a_batch(grad):
    norm = ShapeNorm(4).double()
    randomise_batchnorm(norm, seed=9)
    batch = torch.randn(2, 30, 6, 4, dtype=torch.float64)
    with torch.set_grad_enabled(grad):
        normed = norm(batch)
    for b in range(2):
        rows = list(batch[b].reshape(-1, 4))
        expected = torch.stack(_shape_norm(rows, norm)).reshape(30, 6, 4)
        torch.testing.assert_close(normed[b], expected.detach())


def _shape_norm(values: list[torch.Tensor], norm: ShapeNorm) -> list[torch.Tensor]:
    """ShapeNorm written out: statistics over every listed vector of one shape."""
    stacked = torch.stack(values)  # (n, C)
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return [(v - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias for v in stacked]


def test_vector_attention_matches_a_per_point_loop():
    torch.manual_seed(0)
    layer = PointTransformerLayer(dim=16, share_planes=8).double()
    randomise_batchnorm(layer, seed=2)
    xyz = cloud(30, seed=3)
    features = torch.randn(1, 30, 16, dtype=torch.float64)
    neighbours = FeatureExtractor(in_channels=1, dim=8, k=6).neighbours(xyz)  # (1, 30, 6)
    result = layer(xyz, features, neighbours)[0]  # (30, 16)

    x, pairs = features[0], [(i, j) for i in range(30) for j in neighbours[0, i].tolist()]
    lin_p0, norm_p, _, lin_p1 = layer.linear_p
    norm_w0, _, lin_w0, norm_w1, _, lin_w1 = layer.linear_w
    hidden = _shape_norm([lin_p0(xyz[0, i] - xyz[0, j]) for i, j in pairs], norm_p)
    delta = {pair: lin_p1(torch.relu(h)) for pair, h in zip(pairs, hidden, strict=True)}
    relation = [layer.linear_q(x[i]) - layer.linear_k(x[j]) + delta[(i, j)] for i, j in pairs]
    hidden = [lin_w0(torch.relu(h)) for h in _shape_norm(relation, norm_w0)]
    logits = {
        pair: lin_w1(torch.relu(h))
        for pair, h in zip(pairs, _shape_norm(hidden, norm_w1), strict=True)
    }
    for i in range(30):
        js = neighbours[0, i].tolist()
        weights = torch.stack([logits[(i, j)] for j in js]).softmax(0)  # (k, 2): over neighbours
        messages = [layer.linear_v(x[j]) + delta[(i, j)] for j in js]  # (16,) each
        expected = torch.zeros(16, dtype=torch.float64)
        for c in range(16):  # channel c uses weight group c mod (C / share_planes)
            expected[c] = sum(weights[n, c % 2] * messages[n][c] for n in range(len(js)))
        torch.testing.assert_close(result[i], expected, rtol=1e-9, atol=1e-10)


def test_shape_norm_does_not_mix_shapes_of_a_batch():
    norm = ShapeNorm(4).double()
    randomise_batchnorm(norm, seed=5)
    batch = torch.randn(3, 50, 4, dtype=torch.float64)
    together = norm(batch)
    for b in range(3):
        torch.testing.assert_close(together[b : b + 1], norm(batch[b : b + 1]))


def test_extractor_is_permutation_equivariant():
    torch.manual_seed(0)
    extractor = FeatureExtractor(in_channels=7 + 3, dim=16, k=8).double()
    randomise_batchnorm(extractor, seed=4)
    extractor.eval()
    xyz = cloud(50, seed=5)
    features = torch.randn(1, 50, 7, dtype=torch.float64)
    permutation = torch.randperm(50)
    out = extractor(xyz, features)
    out_permuted = extractor(xyz[:, permutation], features[:, permutation])
    assert out.shape == (1, 50, 16)
    torch.testing.assert_close(out_permuted, out[:, permutation])


def test_gradients_reach_every_extractor_parameter():
    torch.manual_seed(0)
    extractor = FeatureExtractor(in_channels=7 + 3, dim=16, k=8).train()
    xyz = cloud(2 * 40, seed=6).float().reshape(2, 40, 3)
    out = extractor(xyz, torch.randn(2, 40, 7))
    (out * torch.randn_like(out)).sum().backward()
    for name, parameter in extractor.named_parameters():
        assert parameter.grad is not None, name
        if parameter.ndim == 2:  # biases feeding a train-mode BatchNorm get ~0 gradient by design
            assert parameter.grad.abs().sum() > 0, name
