"""Detectors run offline on tiny randomly initialised models, through the users' code path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from _detectors import (  # noqa: E402
    BERT_VOCAB,
    build_tiny_grounding_dino,
    build_tiny_owlv2,
    install_in_fake_hub_cache,
)

from bipart_cli.errors import ModelUnavailableError  # noqa: E402
from bipart_cli.labeling.detectors import (  # noqa: E402
    GROUNDING_DINO_TINY,
    GROUNDING_DINO_TINY_REVISION,
    GroundingDinoDetector,
    Owlv2Detector,
    load_detector,
    part_prompt,
    part_scores_from_token_logits,
    token_spans,
)

PARTS = ["back", "seat", "legs", "arm"]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("detectors")
    return {
        "grounding-dino": build_tiny_grounding_dino(root / "gdino"),
        "mm-grounding-dino": build_tiny_grounding_dino(root / "mmgdino", mm=True),
        "owlv2": build_tiny_owlv2(root / "owlv2"),
    }


def _images(views: int = 3, size: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (views, size, size, 3), dtype=np.uint8)


def test_prompt_is_bare_names():
    assert part_prompt(["Back", "seat", "leg", "arm"]) == "back. seat. leg. arm."


def test_token_spans_split_at_delimiters_with_subwords():
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(BERT_VOCAB)})
    ids = tokenizer(part_prompt(PARTS)).input_ids  # "legs" is two tokens: leg ##s
    spans = token_spans(ids, {BERT_VOCAB.index(".")}, set(tokenizer.all_special_ids))
    words = [[tokenizer.convert_ids_to_tokens(ids[p]) for p in span] for span in spans]
    assert words == [["back"], ["seat"], ["leg", "##s"], ["arm"]]


def test_part_scores_are_max_sigmoid_over_each_span():
    logits = torch.randn(2, 5, 9)
    spans = [[1], [3, 4], [6, 7, 8]]
    scores = part_scores_from_token_logits(logits, spans)
    for b in range(2):
        for q in range(5):
            for r, span in enumerate(spans):
                expected = max(1 / (1 + np.exp(-float(logits[b, q, t]))) for t in span)
                assert scores[b, q, r].item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("backend", ["grounding-dino", "mm-grounding-dino", "owlv2"])
def test_tiny_detector_from_folder(tiny_models, backend):
    detector = load_detector(tiny_models[backend], threshold=0.0, offline=True, batch_size=2)
    expected_class = Owlv2Detector if backend == "owlv2" else GroundingDinoDetector
    assert isinstance(detector, expected_class)
    images = _images()
    detections = detector.detect(images, PARTS)
    assert len(detections) == len(images)
    assert sum(len(d.scores) for d in detections) > 0
    for found in detections:
        assert found.boxes.shape == (len(found.scores), 4)
        assert (found.boxes[:, [0, 1]] >= 0).all() and (found.boxes[:, [2, 3]] <= 64).all()
        assert (found.boxes[:, 2] > found.boxes[:, 0]).all()
        assert ((found.part_index >= 0) & (found.part_index < len(PARTS))).all()
    nothing = load_detector(tiny_models[backend], threshold=1.0, offline=True).detect(images, PARTS)
    assert all(len(d.scores) == 0 for d in nothing)


def test_threshold_keeps_exactly_the_boxes_above_it(tiny_models):
    images = _images(2)
    all_boxes = load_detector(tiny_models["grounding-dino"], threshold=0.0).detect(images, PARTS)
    cut = float(np.median(np.concatenate([d.scores for d in all_boxes])))
    kept = load_detector(tiny_models["grounding-dino"], threshold=cut).detect(images, PARTS)
    for every, some in zip(all_boxes, kept, strict=True):
        np.testing.assert_array_equal(every.scores[every.scores > cut], some.scores)


def test_default_id_resolves_from_fake_hub_cache_offline(tiny_models, tmp_path, monkeypatch):
    snapshot = install_in_fake_hub_cache(
        tiny_models["grounding-dino"],
        tmp_path / "hf",
        GROUNDING_DINO_TINY,
        GROUNDING_DINO_TINY_REVISION,
    )
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    detector = load_detector(threshold=0.0)
    assert detector.path.resolve() == snapshot.resolve()
    assert detector.provenance["revision"] == GROUNDING_DINO_TINY_REVISION
    assert len(detector.detect(_images(1), PARTS)) == 1


def test_missing_detector_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as caught:
        load_detector()
    message = str(caught.value)
    assert "\n" not in message
    assert GROUNDING_DINO_TINY in message and "--detector DIR" in message
    with pytest.raises(ModelUnavailableError, match="no such folder"):
        load_detector("./no/such/model")
