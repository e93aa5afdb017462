"""Configuration of :class:`~bipart_cli.model.bipart.BiPartModel`.

Plain dataclass, no torch import: the CLI may read a ``config.json`` cheaply.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

ENCODER_RANDOM = "random-seeded"
ENCODER_OFFICIAL = "point-m2ae-official"
ENCODER_PRETRAINED = "bipart-pretrain"
ENCODER_INITS = (ENCODER_RANDOM, ENCODER_OFFICIAL, ENCODER_PRETRAINED)
# the encoder's sizes: what an encoder folder (bipart pretrain) records and a model must share
ENCODER_SIZE_FIELDS = (
    "group_sizes",
    "group_k",
    "encoder_dims",
    "encoder_depths",
    "encoder_heads",
    "mlp_ratio",
    "local_radius",
)

# (field, kind, low, high): kind "int", "float", "ints", "floats", "bool"; sizes are
# bounded so a config.json cannot make bipart allocate without end
_RANGES = (
    ("group_sizes", "ints", 1, 1_000_000),
    ("group_k", "ints", 1, 1024),
    ("encoder_dims", "ints", 1, 8192),
    ("encoder_depths", "ints", 0, 64),
    ("encoder_heads", "int", 1, 1024),
    ("mlp_ratio", "float", 1e-3, 64.0),
    ("local_radius", "floats", -1e6, 1e6),
    ("encoder_seed", "int", 0, 2**63 - 1),
    ("extractor_dim", "int", 1, 8192),
    ("extractor_k", "int", 1, 1024),
    ("extractor_blocks", "int", 0, 64),
    ("share_planes", "int", 1, 8192),
    ("use_extractor", "bool", None, None),
    ("head_hidden", "int", 1, 8192),
    ("r_max", "int", 1, 4096),
    ("num_points", "int", 1, 1_000_000),
)


def _check_types_and_ranges(config: BiPartConfig) -> None:
    """One-line ``ValueError`` for a field of the wrong type or out of its range."""
    import math

    for name, kind, low, high in _RANGES:
        value = getattr(config, name)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"config.{name} must be true or false, not {value!r}")
            continue
        items = value if kind in ("ints", "floats") else [value]
        if kind in ("ints", "floats") and not isinstance(value, list | tuple):
            raise ValueError(f"config.{name} must be a list, not {value!r}")
        for item in items:
            ok = isinstance(item, int) if kind.startswith("int") else isinstance(item, int | float)
            if (
                not ok
                or isinstance(item, bool)
                or (kind.startswith("float") and not math.isfinite(item))
            ):
                what = "an integer" if kind.startswith("int") else "a finite number"
                raise ValueError(f"config.{name} must be {what}, not {item!r}")
            if not low <= item <= high:
                raise ValueError(f"config.{name} is {item!r}, outside {low}..{high}")


def _check_encoder_record(config: BiPartConfig) -> None:
    import re

    name, digest = config.encoder_name, config.encoder_sha256
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        raise ValueError("config.encoder_name must be a string of 1 to 200 characters")
    if digest is not None and (
        not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest)
    ):
        raise ValueError("config.encoder_sha256 must be 64 lowercase hex digits")


@dataclass
class BiPartConfig:
    """Sizes of the three modules of Eq. 1 (encoder π, extractor θ, head φ).

    Encoder (Point-M2AE, frozen)
        ``group_sizes`` centres per stage, ``group_k`` kNN size per stage, ``encoder_dims``,
        ``encoder_depths``, ``encoder_heads``, ``mlp_ratio`` and the local-attention
        ``local_radius`` per stage (``<= 0`` disables the mask).
        ``encoder_init`` says where the encoder weights come from: ``"random-seeded"``
        (seeded random init, ``encoder_seed``), ``"point-m2ae-official"`` (converted
        pre-training checkpoint) or ``"bipart-pretrain"`` (``bipart pretrain``).
        A loaded encoder also records ``encoder_name`` and ``encoder_sha256`` (over its
        state dict), which loading the model verifies.
    Extractor (2 Point Transformer blocks)
        ``extractor_dim`` width, ``extractor_k`` neighbours, ``extractor_blocks``,
        ``share_planes`` channel groups sharing one attention weight.
        ``use_extractor=False`` is the ``--no-extractor`` ablation: encoder features go
        straight into the head.
    Head (2-layer MLP)
        ``head_hidden`` width, ``r_max`` logits (>= the largest part count).
    """

    group_sizes: list[int] = field(default_factory=lambda: [512, 256, 64])
    group_k: list[int] = field(default_factory=lambda: [16, 8, 8])
    encoder_dims: list[int] = field(default_factory=lambda: [96, 192, 384])
    encoder_depths: list[int] = field(default_factory=lambda: [5, 5, 5])
    encoder_heads: int = 6
    mlp_ratio: float = 4.0
    local_radius: list[float] = field(default_factory=lambda: [0.32, 0.64, 1.28])
    encoder_init: str = ENCODER_RANDOM
    encoder_seed: int = 0
    encoder_name: str | None = None
    encoder_sha256: str | None = None
    extractor_dim: int = 128
    extractor_k: int = 16
    extractor_blocks: int = 2
    share_planes: int = 8
    use_extractor: bool = True
    head_hidden: int = 128
    r_max: int = 16
    num_points: int = 2048

    def __post_init__(self) -> None:
        _check_types_and_ranges(self)
        stages = len(self.group_sizes)
        for name in ("group_k", "encoder_dims", "encoder_depths", "local_radius"):
            if len(getattr(self, name)) != stages:
                raise ValueError(f"config.{name} needs {stages} entries, one per encoder stage")
        if self.encoder_init not in ENCODER_INITS:
            raise ValueError(f"config.encoder_init must be one of {ENCODER_INITS}")
        _check_encoder_record(self)
        if any(d % self.encoder_heads for d in self.encoder_dims):
            raise ValueError("config.encoder_dims must be divisible by encoder_heads")
        if self.extractor_dim % self.share_planes:
            raise ValueError("config.extractor_dim must be divisible by share_planes")
        if self.r_max < 1:
            raise ValueError("config.r_max must be >= 1")

    @property
    def encoder_feature_dim(self) -> int:
        """Per-point encoder channels: each stage's tokens plus xyz (681 at default sizes)."""
        return sum(dim + 3 for dim in self.encoder_dims)

    @property
    def feature_dim(self) -> int:
        """Channels the head reads: the extractor width, or the encoder's without extractor."""
        return self.extractor_dim if self.use_extractor else self.encoder_feature_dim

    @property
    def encoder_is_pretrained(self) -> bool:
        return self.encoder_init != ENCODER_RANDOM

    def encoder_sizes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ENCODER_SIZE_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BiPartConfig:
        """Build from a dict; unknown keys are an error so that typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**data)
