"""The CUDA path against the CPU path: the outer training loss, an adapted head, and
``segment`` end to end. Skipped where torch sees no GPU (CI, developer machines); run
on a GPU machine with ``pytest tests/test_cuda.py``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from _chairs import N_DENSE, PARTS, few_shot_segment, ground_truth, write_chair
from _training import loss_and_grads, make_shapes, small_settings, tiny_model

from bipart_cli.adapt import AdaptSettings, adapt_head, pack_labels
from bipart_cli.evaluate import shape_miou
from bipart_cli.index.shape import default_basis
from bipart_cli.procedural import write_examples
from bipart_cli.train import outer_loss, training_supports

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
CUDA = torch.device("cuda")


def test_outer_loss_and_gradients_on_cuda_match_cpu():
    shapes = make_shapes(6, default_basis().points)
    settings = small_settings()
    batch = [0, 3]
    supports = training_supports(shapes, batch, settings, np.random.default_rng(0))
    model = tiny_model()
    cpu_loss, cpu_grads = loss_and_grads(outer_loss, model, shapes, batch, supports, settings)

    gpu_model = copy.deepcopy(model).to(CUDA).train()
    gpu_loss = outer_loss(gpu_model, shapes, batch, supports, settings, CUDA)
    params = {n: p for n, p in gpu_model.named_parameters() if p.requires_grad}
    gpu_grads = torch.autograd.grad(gpu_loss, list(params.values()))

    torch.testing.assert_close(gpu_loss.detach().cpu(), cpu_loss, rtol=1e-3, atol=1e-5)
    for name, grad in zip(params, gpu_grads, strict=True):
        # second-order terms through two inner steps: summation order differs by device, so
        # single entries near zero differ in relative terms; the whole gradient must not
        expected = cpu_grads[name]
        error = float((grad.cpu() - expected).norm() / expected.norm().clamp_min(1e-12))
        assert error < 1e-2, (name, error)


def test_pretrain_loss_under_cuda_bf16_autocast_matches_cpu_float32():
    """``bipart pretrain`` runs its masked autoencoder under bf16 autocast on CUDA."""
    from _tiny import tiny_config

    from bipart_cli.pretrain.masked_autoencoder import MaskedAutoencoder

    torch.manual_seed(0)
    model = MaskedAutoencoder(tiny_config())
    points = torch.randn(4, model.config.num_points, 3)
    points /= points.norm(dim=-1).amax(dim=1)[:, None, None]
    cpu_loss = model(points, 0.6, torch.Generator().manual_seed(1)).sum()
    gpu_model = copy.deepcopy(model).to(CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        gpu_loss = gpu_model(points.to(CUDA), 0.6, torch.Generator().manual_seed(1)).sum()
    gpu_loss.backward()
    gpu_loss, cpu_loss = float(gpu_loss.detach()), float(cpu_loss.detach())
    assert abs(gpu_loss - cpu_loss) < 0.05 * cpu_loss, (gpu_loss, cpu_loss)
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in gpu_model.parameters())


def test_adapted_head_on_cuda_matches_cpu():
    """Same features, labels and seed: the minibatch draw is on the CPU generator, so the
    two devices take the same Adam steps and end within float error of each other."""
    shapes = make_shapes(4, default_basis().points)
    head_0 = {k: v.detach() for k, v in tiny_model().head_params().items()}
    width = head_0["fc1.weight"].shape[1]
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(4, shapes[0].points.shape[0], width, generator=generator)
    settings = AdaptSettings()
    heads = {}
    for device in ("cpu", "cuda"):
        labels = pack_labels(
            [s.pseudo_labels for s in shapes],
            [s.part_count for s in shapes],
            device=device,
            normalise=settings.normalise,
        )
        head = adapt_head(
            features.to(device),
            labels,
            {k: v.to(device) for k, v in head_0.items()},
            settings.steps,
            settings.lr,
            box_reduction=settings.shape_reduction,
            optimizer=settings.optimizer,
            batch_points=settings.batch_points,
            seed=0,
        )
        heads[device] = {k: v.cpu() for k, v in head.items()}
    for name, value in heads["cpu"].items():
        torch.testing.assert_close(heads["cuda"][name], value, rtol=1e-2, atol=1e-3, msg=name)


def test_few_shot_segment_on_cuda_agrees_with_cpu(tmp_path):
    write_examples(tmp_path, categories=(), n_chairs=5)
    target = write_chair(tmp_path / "target.glb", seed=11)
    cpu, gpu = (
        few_shot_segment(tmp_path, [target], device=device)[0] for device in ("cpu", "cuda")
    )
    assert cpu.ok and gpu.ok, (cpu.error, gpu.error)
    assert gpu.dense_labels.shape == (N_DENSE,)
    agreement = float((cpu.dense_labels == gpu.dense_labels).mean())
    assert agreement > 0.95, agreement
    truth = ground_truth(target)
    cpu_miou = shape_miou(cpu.dense_labels, truth, len(PARTS))
    gpu_miou = shape_miou(gpu.dense_labels, truth, len(PARTS))
    assert abs(cpu_miou - gpu_miou) < 0.03, (cpu_miou, gpu_miou)
