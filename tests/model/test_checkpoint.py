"""Official-format Point-M2AE checkpoints: prefix mapping, strict checks, conversion."""

from __future__ import annotations

import pytest
import torch
from _tiny import small_config

from bipart_cli.errors import CheckpointError
from bipart_cli.model import BiPartModel
from bipart_cli.model.checkpoint import convert_point_m2ae_checkpoint, load_point_m2ae_checkpoint


def points() -> torch.Tensor:
    cloud = torch.randn(1, 256, 3, generator=torch.Generator().manual_seed(0))
    return cloud / cloud.norm(dim=-1).max()


def official_state(source: BiPartModel) -> dict[str, torch.Tensor]:
    """What the official pre-training script saves: DataParallel names plus the decoder."""
    state = {f"module.h_encoder.{k}": v.clone() for k, v in source.encoder.state_dict().items()}
    state["module.h_decoder.decoder_blocks.0.blocks.0.norm1.weight"] = torch.ones(12)
    state["module.mask_token"] = torch.zeros(1, 1, 48)
    state["module.rec_head.weight"] = torch.zeros(3, 48)
    return state


def save_official(path, state) -> None:
    torch.save({"base_model": state}, path)


def test_official_layout_loads_and_reproduces_the_features(tmp_path):
    source = BiPartModel(small_config(encoder_seed=1))
    save_official(tmp_path / "pre-train.pth", official_state(source))
    target = BiPartModel(small_config(encoder_seed=2))
    assert not torch.equal(target.encode(points()), source.encode(points()))
    target.load_encoder_checkpoint(tmp_path / "pre-train.pth")
    assert torch.equal(target.encode(points()), source.encode(points()))
    assert target.encoder_is_pretrained and target.config.encoder_init == "point-m2ae-official"
    assert not any(p.requires_grad for p in target.encoder.parameters())


def test_without_data_parallel_prefix(tmp_path):
    source = BiPartModel(small_config(encoder_seed=1))
    state = {k.removeprefix("module."): v for k, v in official_state(source).items()}
    save_official(tmp_path / "plain.pth", state)
    loaded = load_point_m2ae_checkpoint(tmp_path / "plain.pth", config=small_config())
    assert set(loaded) == set(source.encoder.state_dict())


def test_missing_key_fails_naming_it(tmp_path):
    state = official_state(BiPartModel(small_config()))
    del state["module.h_encoder.encoder_blocks.1.blocks.1.attn.qkv.weight"]
    save_official(tmp_path / "missing.pth", state)
    model = BiPartModel(small_config())
    with pytest.raises(CheckpointError, match=r"missing encoder key h_encoder\.encoder_blocks\.1"):
        model.load_encoder_checkpoint(tmp_path / "missing.pth")
    assert not model.encoder_is_pretrained


def test_wrong_shape_fails_naming_it(tmp_path):
    state = official_state(BiPartModel(small_config()))
    state["module.h_encoder.encoder_pos_embeds.2.0.weight"] = torch.zeros(7, 3)
    save_official(tmp_path / "shape.pth", state)
    with pytest.raises(
        CheckpointError, match=r"encoder_pos_embeds\.2\.0\.weight has shape \(7, 3\)"
    ):
        load_point_m2ae_checkpoint(tmp_path / "shape.pth", config=small_config())


def test_a_checkpoint_for_another_size_fails(tmp_path):
    save_official(tmp_path / "small.pth", official_state(BiPartModel(small_config())))
    with pytest.raises(CheckpointError, match="has shape"):
        load_point_m2ae_checkpoint(
            tmp_path / "small.pth", config=small_config(encoder_dims=[12, 24, 60])
        )


def test_no_encoder_keys_fails(tmp_path):
    save_official(tmp_path / "other.pth", {"module.cls_head.weight": torch.zeros(2, 2)})
    with pytest.raises(CheckpointError, match="no 'h_encoder"):
        load_point_m2ae_checkpoint(tmp_path / "other.pth", config=small_config())


def test_conversion_to_safetensors_round_trips(tmp_path):
    source = BiPartModel(small_config(encoder_seed=1))
    save_official(tmp_path / "pre-train.pth", official_state(source))
    out = convert_point_m2ae_checkpoint(
        tmp_path / "pre-train.pth", tmp_path / "encoder.safetensors", config=small_config()
    )
    assert out.read_bytes()[:8] != b"PK\x03\x04"  # not a zip/pickle
    target = BiPartModel(small_config(encoder_seed=3))
    target.load_encoder_checkpoint(out)
    assert torch.equal(target.encode(points()), source.encode(points()))


def test_a_plain_pickle_is_one_error_without_torch_warnings(tmp_path, recwarn):
    """Issue 31 item 12: torch warned "The weights_only Unpickler might not support all
    instructions" (two more lines on stderr) before the clean one-line error."""
    import pickle

    from bipart_cli.errors import CheckpointError
    from bipart_cli.runtime import user_message

    path = tmp_path / "plain.pth"
    path.write_bytes(pickle.dumps({"base_model": {"h_encoder.x": 1}}, protocol=4))
    with pytest.raises(CheckpointError) as caught:
        load_point_m2ae_checkpoint(path)
    assert "pickled Python objects" in user_message(caught.value)
    assert [str(w.message) for w in recwarn] == []


def test_an_empty_checkpoint_says_why(tmp_path):
    from bipart_cli.errors import CheckpointError

    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth: \w+"):
        load_point_m2ae_checkpoint(tmp_path / "empty.pth")
