"""Tiny randomly initialised detectors (Grounding DINO, MM-Grounding-DINO, OWLv2) saved offline,
and a fake Hub cache to install them in; shared by the detector and ``bipart label`` tests.
Needs torch and transformers (the tests that call these skip without them)."""

from __future__ import annotations

import shutil
from pathlib import Path

BERT_VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    ".",
    "back",
    "seat",
    "leg",
    "arm",
    "##s",
]


def _swin_and_bert(vocab_size: int):
    from transformers import BertConfig, SwinConfig

    backbone = SwinConfig(
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=2,
        image_size=64,
        out_features=["stage2", "stage3", "stage4"],
    )
    text = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=64,
    )
    return backbone, text


def build_tiny_grounding_dino(folder: Path, mm: bool = False) -> Path:
    """A random Grounding DINO (or MM-Grounding-DINO) with a local BERT tokenizer, saved."""
    import torch
    from transformers import (
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoProcessor,
        MMGroundingDinoConfig,
        MMGroundingDinoForObjectDetection,
    )
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
        GroundingDinoImageProcessorPil,
    )

    torch.manual_seed(0)
    backbone, text = _swin_and_bert(len(BERT_VOCAB))
    config_class = MMGroundingDinoConfig if mm else GroundingDinoConfig
    model_class = MMGroundingDinoForObjectDetection if mm else GroundingDinoForObjectDetection
    config = config_class(
        backbone_config=backbone,
        text_config=text,
        d_model=32,
        encoder_layers=1,
        decoder_layers=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=12,
        num_feature_levels=3,
        max_text_len=32,
        encoder_n_points=1,
        decoder_n_points=1,
    )
    tokenizer = BertTokenizerFast(vocab={token: i for i, token in enumerate(BERT_VOCAB)})
    image_processor = GroundingDinoImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 64})
    model_class(config).save_pretrained(folder)
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        folder
    )
    return folder


def build_tiny_owlv2(folder: Path) -> Path:
    """A random OWLv2 with a local character-level CLIP tokenizer, saved."""
    import torch
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2Processor
    from transformers.models.owlv2.image_processing_pil_owlv2 import Owlv2ImageProcessorPil

    torch.manual_seed(0)
    vocab = {"!": 0}  # OWL treats a query whose first token id is 0 as padding
    for char in "abcdefghijklmnopqrstuvwxyz":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    config = Owlv2Config(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"],
            "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    Owlv2ForObjectDetection(config).save_pretrained(folder)
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessorPil(size={"height": 32, "width": 32}),
        tokenizer=CLIPTokenizer(vocab=vocab, merges=[]),
    )
    processor.save_pretrained(folder)
    return folder


def install_in_fake_hub_cache(model_dir: Path, hf_home: Path, repo_id: str, revision: str) -> Path:
    """Copy a saved model into the Hub cache layout under ``hf_home``."""
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    shutil.copytree(model_dir, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot
