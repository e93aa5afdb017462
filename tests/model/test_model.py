"""BiPartModel: functional head, save/load round trip, ablation, errors."""

from __future__ import annotations

import json

import pytest
import torch
from _tiny import small_config
from _tiny import unit_cloud_tensor as unit_cloud

from bipart_cli.errors import CheckpointError, ModelUnavailableError
from bipart_cli.model import BiPartConfig, BiPartModel
from bipart_cli.model.bipart import unit_features


@pytest.fixture
def model() -> BiPartModel:
    torch.manual_seed(0)
    return BiPartModel(small_config()).eval()


def test_forward_shapes_and_the_random_encoder_is_declared(model):
    points = unit_cloud(256, batch=2)
    logits = model(points)
    assert logits.shape == (2, 256, 5)
    assert model.extract(points).shape == (2, 256, 16)
    assert not model.encoder_is_pretrained
    assert model.summary()["encoder_init"] == "random-seeded"


def test_cached_encoder_features_give_the_same_logits(model):
    points = unit_cloud(256, seed=1)
    torch.testing.assert_close(model(points, encoder_features=model.encode(points)), model(points))


def test_functional_head_equals_forward(model):
    points = unit_cloud(256, seed=2)
    features = model.extract(points)
    params = model.head_params()
    assert set(params) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    torch.testing.assert_close(model.head_logits(features, params), model(points))
    # other parameters: the dict is used, not the module's own weights
    shifted = {name: value.detach() + 0.1 for name, value in params.items()}
    via_func = torch.func.functional_call(model.head, shifted, (features,))
    torch.testing.assert_close(model.head_logits(features, shifted), via_func)
    assert not torch.allclose(via_func, model(points))


def test_torch_func_grad_reaches_the_head_only(model):
    points = unit_cloud(256, seed=3)
    features = model.extract(points).detach()
    params = {name: value.detach() for name, value in model.head_params().items()}
    grads = torch.func.grad(lambda p: model.head_logits(features, p).logsumexp(-1).mean())(params)
    assert set(grads) == set(params)
    assert all(g.abs().sum() > 0 for g in grads.values())


def test_training_reaches_extractor_and_head_but_not_the_encoder(model):
    model.train()
    model(unit_cloud(256, seed=4, batch=2)).square().mean().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.extractor.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    assert not model.encoder.training


def test_save_and_load_give_identical_logits(model, tmp_path):
    points = unit_cloud(256, seed=5)
    model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["encoder_init"] == "random-seeded"
    torch.manual_seed(99)  # a different global RNG must not matter
    loaded = BiPartModel.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    assert torch.equal(loaded(points), model(points))
    assert not loaded.encoder.training and not any(
        p.requires_grad for p in loaded.encoder.parameters()
    )


def test_a_seeded_encoder_is_rebuilt_from_its_seed_and_checked(model, tmp_path):
    from safetensors import safe_open

    model.save_pretrained(tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), framework="pt") as handle:
        keys, metadata = list(handle.keys()), handle.metadata()
    assert keys and not any(key.startswith("encoder.") for key in keys)
    assert metadata["seeded_encoder_sha256"] == model.encoder_sha256()
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    config["encoder_seed"] += 1  # another seed rebuilds another encoder: refused
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="re-derived from encoder_seed"):
        BiPartModel.from_pretrained(tmp_path / "ckpt")


def test_a_changed_encoder_round_trips_too(model, tmp_path):
    """A changed encoder is saved, not re-derived from the seed."""
    points = unit_cloud(256, seed=6)
    bias = model.encoder.encoder_norms[0].bias
    original = bias.detach().clone()
    with torch.no_grad():
        bias.add_(0.5)
    try:
        model.save_pretrained(tmp_path / "ckpt")
        expected = model.encode(points)
    finally:
        with torch.no_grad():
            bias.copy_(original)  # the shared fixture back to its init
    loaded = BiPartModel.from_pretrained(str(tmp_path / "ckpt"))
    assert torch.equal(loaded.encode(points), expected)
    assert not torch.equal(loaded.encode(points), model.encode(points))


def test_half_precision_save_is_close(model, tmp_path):
    model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    loaded = BiPartModel.from_pretrained(tmp_path / "half")
    assert loaded.head.fc1.weight.dtype == torch.float32
    points = unit_cloud(256, seed=7)
    torch.testing.assert_close(loaded(points), model(points), atol=2e-2, rtol=2e-2)


def test_no_extractor_ablation_feeds_encoder_features_to_the_head(tmp_path):
    ablation = BiPartModel(small_config(use_extractor=False)).eval()
    points = unit_cloud(256, seed=8)
    assert ablation.extractor is None
    assert torch.equal(ablation.extract(points), unit_features(ablation.encode(points)))
    assert ablation.head.fc1.in_features == ablation.config.encoder_feature_dim
    ablation.save_pretrained(tmp_path / "ablation")
    loaded = BiPartModel.from_pretrained(tmp_path / "ablation")
    assert torch.equal(loaded(points), ablation(points))


def test_missing_folder_or_uncached_hub_id_is_model_unavailable(tmp_path, monkeypatch):
    with pytest.raises(ModelUnavailableError, match="no such folder"):
        BiPartModel.from_pretrained(tmp_path / "nowhere")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelUnavailableError, match="offline"):
        BiPartModel.from_pretrained("bipart-test/not-cached", revision="v1")


def test_mismatched_weights_are_a_checkpoint_error(model, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    config["r_max"] = 7
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="head.fc2.weight has shape"):
        BiPartModel.from_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read"):
        BiPartModel.from_pretrained(tmp_path / "ckpt")
    config["typo_key"] = 1
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="typo_key"):
        BiPartModel.from_pretrained(tmp_path / "ckpt")


def test_default_sizes_on_one_2048_point_cloud():
    model = BiPartModel(BiPartConfig()).eval()
    points = unit_cloud(2048, seed=9)
    features = model.encode(points)
    assert features.shape == (1, 2048, 681)
    # the xyz copies sit after each stage's tokens, which are 96, 192 and 384 wide
    for offset in (96, 96 + 3 + 192, 96 + 3 + 192 + 3 + 384):
        assert torch.equal(features[0, :, offset : offset + 3], points[0])
    logits = model(points, encoder_features=features)
    assert logits.shape == (1, 2048, 16)
    assert torch.isfinite(logits).all()
