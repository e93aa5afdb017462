"""BiPartModel: ``Ŷ = f(S, π, θ, φ)`` (Eq. 1).

- π, the Point-M2AE encoder, is frozen: eval mode, no gradients, run under
  ``torch.no_grad``. Its weights come from the official checkpoint
  (``encoder_init = "point-m2ae-official"``) or, where that cannot be had, from a
  seeded random initialisation (``"random-seeded"``); ``encoder_is_pretrained``
  and the saved config say which.
- θ, the Point Transformer extractor, is trained in the outer loop.
- φ, the head, is adapted per category in the inner loop through the functional
  :meth:`BiPartModel.head_logits`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, ModelUnavailableError
from .config import ENCODER_OFFICIAL, ENCODER_PRETRAINED, BiPartConfig
from .encoder import PointM2AEEncoder
from .extractor import FeatureExtractor
from .head import SegmentationHead, head_forward

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_TYPE = "bipart"
ENCODER_PREFIX = "encoder."
SEEDED_ENCODER_KEY = "seeded_encoder_sha256"


def _state_sha256(module: nn.Module) -> str:
    from .checkpoint import state_sha256

    return state_sha256(module.state_dict())


def _seeded_encoder(config: BiPartConfig) -> PointM2AEEncoder:
    """The encoder initialised from ``config.encoder_seed`` without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.encoder_seed)
        return PointM2AEEncoder(config)


class BiPartModel(nn.Module):
    """Frozen encoder + extractor + head. Points are unit-sphere normalised, (B, N, 3)."""

    def __init__(self, config: BiPartConfig | None = None) -> None:
        super().__init__()
        # a copy: loading official encoder weights updates encoder_init on this model only
        self.config = dataclasses.replace(config) if config is not None else BiPartConfig()
        self.encoder = _seeded_encoder(self.config)
        self.encoder.requires_grad_(False)
        self.encoder.eval()
        self.extractor = (
            FeatureExtractor(
                self.config.encoder_feature_dim + 3,  # encoder features ++ xyz
                self.config.extractor_dim,
                k=self.config.extractor_k,
                num_blocks=self.config.extractor_blocks,
                share_planes=self.config.share_planes,
            )
            if self.config.use_extractor
            else None
        )
        self.head = SegmentationHead(
            self.config.feature_dim, self.config.head_hidden, self.config.r_max
        )
        # the encoder's sha256 as checked when weights were loaded (None before): what the
        # encoder was then, so a caller that changes nothing need not hash 50 MB again
        self.loaded_encoder_sha256: str | None = None

    # --- the three modules -------------------------------------------------

    @property
    def encoder_is_pretrained(self) -> bool:
        """False when the encoder is the seeded random initialisation."""
        return self.config.encoder_is_pretrained

    def train(self, mode: bool = True) -> BiPartModel:
        super().train(mode)
        self.encoder.eval()  # frozen: BatchNorm always on running statistics
        return self

    def encode(self, points: torch.Tensor) -> torch.Tensor:
        """Frozen per-point encoder features: points (B, N, 3) -> (B, N, 681)."""
        _check_points(points, self.config.group_sizes[0])
        self.encoder.eval()
        with torch.no_grad():
            return self.encoder.point_features(points)

    def extract(
        self, points: torch.Tensor, encoder_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Features the head reads: (B, N, 3) -> (B, N, C).

        ``encoder_features`` (B, N, 681) may be passed when cached. Without the
        extractor (``use_extractor=False``) these are the encoder features.
        """
        if encoder_features is None:
            encoder_features = self.encode(points)  # (B, N, 681)
        if self.extractor is None:
            return unit_features(encoder_features)
        return unit_features(self.extractor(points, encoder_features))  # (B, N, C)

    def head_params(self) -> dict[str, torch.Tensor]:
        """φ as a name -> parameter dict (the live parameters, so gradients reach them)."""
        return dict(self.head.named_parameters())

    def head_logits(
        self, features: torch.Tensor, head_params: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The head with explicit parameters: features (B, N, C) -> logits (B, N, R_max)."""
        return head_forward(features, head_params)

    def forward(
        self, points: torch.Tensor, encoder_features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """points (B, N, 3) -> logits (B, N, R_max); use the first R for an asset with R parts."""
        return self.head(self.extract(points, encoder_features))

    # --- weights -------------------------------------------------------------

    def load_encoder_checkpoint(self, path: str | Path) -> None:
        """Load pre-trained encoder weights and record which (name and sha256 in the config).

        ``path`` is a ``bipart pretrain`` encoder folder (``config.json`` plus
        ``model.safetensors``, whose sizes must be this model's) or the official
        Point-M2AE weights (``.pth`` or converted ``.safetensors``).
        """
        from .checkpoint import load_point_m2ae_checkpoint, read_encoder_folder

        path = Path(path)
        if path.is_dir():
            record = read_encoder_folder(path)
            if record["sizes"] != self.config.encoder_sizes():
                raise CheckpointError(
                    f"--encoder {path}: its sizes differ from this model's encoder "
                    f"({_first_difference(record['sizes'], self.config.encoder_sizes())})"
                )
            load_point_m2ae_checkpoint(path / WEIGHTS_NAME, encoder=self.encoder)
            init, name, recorded = (
                ENCODER_PRETRAINED,
                record["name"] or path.name,
                record["encoder_sha256"],
            )
        else:
            load_point_m2ae_checkpoint(path, encoder=self.encoder)
            init, name, recorded = ENCODER_OFFICIAL, path.name, None
        digest = self.encoder_sha256()
        if recorded is not None and recorded != digest:
            raise CheckpointError(
                f"--encoder {path}: the weights' sha256 {digest[:12]}… is not the "
                f"{recorded[:12]}… its config.json records (a damaged or swapped file)"
            )
        self.encoder.requires_grad_(False)
        self.config.encoder_init, self.config.encoder_name = init, name
        self.config.encoder_sha256 = self.loaded_encoder_sha256 = digest

    def summary(self) -> dict[str, Any]:
        """What outputs record about the model."""
        return {
            "encoder_init": self.config.encoder_init,
            "encoder_name": self.config.encoder_name,
            "encoder_sha256": self.config.encoder_sha256,
            "encoder_pretrained": self.encoder_is_pretrained,
            "encoder_seed": None if self.encoder_is_pretrained else self.config.encoder_seed,
            "use_extractor": self.config.use_extractor,
            "r_max": self.config.r_max,
        }

    def sha256(self) -> str:
        """sha256 over the whole model's state dict and its config: what its features
        depend on (``extractor_k`` or ``local_radius`` change them with the same weights)."""
        import hashlib
        import json

        config = json.dumps(self.config.to_dict(), sort_keys=True, default=str)
        return hashlib.sha256(f"{_state_sha256(self)}\0{config}".encode()).hexdigest()

    def encoder_sha256(self) -> str:
        """sha256 over the encoder's state dict (names, shapes, dtypes, bytes): its identity."""
        return _state_sha256(self.encoder)

    def encoder_is_seeded_init(self) -> bool:
        """True when the encoder is exactly the seeded random init of its config."""
        if self.encoder_is_pretrained:
            return False
        return _state_sha256(_seeded_encoder(self.config)) == self.encoder_sha256()

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors``.

        An encoder that is exactly its seeded random init is not stored: it is
        re-derived from ``encoder_seed`` on load and checked against the sha256
        kept in the file's metadata (12.7M parameters, 50 MB, that carry no
        training). Any other encoder (official weights, a changed one) is stored.
        ``dtype=torch.float16`` halves the file; floating tensors are cast back to
        float32 on load.
        """
        from safetensors.torch import save_file

        from ..io.atomic import atomic_path, atomic_write_text, sort_safetensors_header

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        seeded = self.encoder_is_seeded_init()
        tensors = {}
        for name, value in self.state_dict().items():
            if seeded and name.startswith(ENCODER_PREFIX):
                continue
            value = value.detach().to("cpu")
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            tensors[name] = value.contiguous().clone()
        metadata = {"format": "pt", "model_type": MODEL_TYPE, **_string_summary(self.summary())}
        if seeded:
            metadata[SEEDED_ENCODER_KEY] = self.encoder_sha256()
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
            sort_safetensors_header(tmp)  # equal weights, equal bytes
        config = {"model_type": MODEL_TYPE, **self.config.to_dict()}
        atomic_write_text(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
        return directory

    def load_weights(self, path: str | Path) -> BiPartModel:
        """Load a ``model.safetensors`` written by :meth:`save_pretrained` into this model.

        When the config names its encoder's sha256, the loaded encoder must have it.
        """
        state, seeded_sha256 = _read_weights(Path(path), self)
        self.load_state_dict(state, strict=True)
        recorded = self.config.encoder_sha256
        if recorded is not None and self.encoder_sha256() != recorded:
            raise CheckpointError(
                f"{path}: the encoder weights are not the encoder its config names "
                f"({self.config.encoder_name}, sha256 {recorded[:12]}…)"
            )
        self.loaded_encoder_sha256 = recorded or seeded_sha256
        return self

    @classmethod
    def from_pretrained(cls, repo_or_dir: str | Path, revision: str | None = None) -> BiPartModel:
        """Load from a local folder, else from a Hugging Face Hub repo (``revision`` optional)."""
        folder = _resolve_folder(repo_or_dir, revision)
        config = _read_config(folder / CONFIG_NAME)
        # before a byte is allocated: a 432-byte config.json asked for 3.5 GB of model
        check_weights_file(folder / WEIGHTS_NAME, config)
        with torch.random.fork_rng(devices=[]):  # building must not disturb the caller's RNG
            model = cls(config)
        return model.load_weights(folder / WEIGHTS_NAME).eval()


def unit_features(features: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Standardise each channel over a shape's points, scaled so a point's feature has norm ~1.

    features (B, N, C) -> (B, N, C). Without it, the random or trained features
    carry a large per-shape constant and a small per-point signal, and the
    paper's inner step (lr 0.3) either stalls or diverges; with it, the head sees
    the within-shape variation that separates parts at a fixed, known scale.
    """
    mean = features.mean(dim=1, keepdim=True)
    std = features.std(dim=1, keepdim=True, unbiased=False)
    return (features - mean) / (std + eps) / features.shape[-1] ** 0.5


def _first_difference(found: dict[str, Any], expected: dict[str, Any]) -> str:
    name = next(key for key in expected if found.get(key) != expected[key])
    return f"{name} is {found.get(name)}, the model has {expected[name]}"


def _check_points(points: torch.Tensor, min_points: int) -> None:
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must be (B, N, 3), got {tuple(points.shape)}")
    if points.shape[1] < min_points:
        raise ValueError(f"the encoder needs at least {min_points} points, got {points.shape[1]}")


def _string_summary(summary: dict[str, Any]) -> dict[str, str]:
    return {key: json.dumps(value) for key, value in summary.items()}


def _resolve_folder(repo_or_dir: str | Path, revision: str | None) -> Path:
    """A local folder as is; a Hub id or ``hf://`` URI is fetched into the Hub cache."""
    from ..hub import resolve_pretrained

    return resolve_pretrained(
        repo_or_dir, revision=revision, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME]
    )


def _read_config(path: Path) -> BiPartConfig:
    if not path.is_file():
        raise ModelUnavailableError(f"no {CONFIG_NAME} in {path.parent}")
    try:
        data = json.loads(path.read_text())
        model_type = data.pop("model_type", MODEL_TYPE)
        data.pop("sha256", None)  # of model.safetensors: verified by weights.resolve_weights
        if model_type != MODEL_TYPE:
            raise ValueError(f"model_type is {model_type!r}, not {MODEL_TYPE!r}")
        return BiPartConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def _check_seeded_encoder(path: Path, model: BiPartModel, saved_sha256: str) -> None:
    """The file left out its seeded encoder; the one rebuilt here must be the same."""
    if model.encoder_is_pretrained:
        raise CheckpointError(
            f"{path}: holds no encoder weights but the config names official ones"
        )
    rebuilt = model.encoder_sha256()
    if rebuilt != saved_sha256:
        raise CheckpointError(
            f"{path}: the encoder is re-derived from encoder_seed {model.config.encoder_seed}, and on "
            f"this torch version it differs from the one trained with (sha256 {rebuilt[:12]}… "
            f"vs {saved_sha256[:12]}…); use the torch version named in the model card"
        )


MAX_PARAMETERS = 100_000_000  # 400 MB of float32; the default model has 12.9M


def model_shapes(config: BiPartConfig, where: object = "the config") -> dict[str, tuple[int, ...]]:
    """The state dict's tensor shapes of a model of ``config``, built on the meta device
    (no memory, no RNG); a :class:`CheckpointError` past :data:`MAX_PARAMETERS`."""
    with torch.device("meta"):
        shapes = {name: tuple(t.shape) for name, t in BiPartModel(config).state_dict().items()}
    count = sum(int(torch.Size(shape).numel()) for shape in shapes.values())
    if count > MAX_PARAMETERS:
        raise CheckpointError(
            f"{where} describes a model of {count:,} parameters, past bipart's limit of "
            f"{MAX_PARAMETERS:,}"
        )
    return shapes


def check_weights_file(path: Path, config: BiPartConfig) -> None:
    """Check ``model.safetensors``'s header against ``config`` without loading a tensor.

    Every tensor must be one the config's model has, with its shape, and every one it has
    must be there (the seeded encoder, re-derived on load, excepted); the encoder fields the
    file recorded when it was written (``encoder_init``, ``encoder_name``,
    ``encoder_sha256``) must be the config's, so an edited config.json cannot make outputs
    name another encoder. One :class:`CheckpointError` line otherwise.
    """
    from safetensors import safe_open

    shapes = model_shapes(config, path.parent / CONFIG_NAME)
    if not path.is_file():
        raise ModelUnavailableError(f"no {WEIGHTS_NAME} in {path.parent}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            found = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    seeded = SEEDED_ENCODER_KEY in metadata
    for name, shape in shapes.items():
        if name not in found and not (seeded and name.startswith(ENCODER_PREFIX)):
            raise CheckpointError(f"{path}: missing key {name}")
        if name in found and found[name] != shape:
            raise CheckpointError(
                f"{path}: {name} has shape {found[name]}, the config expects {shape}"
            )
    unexpected = sorted(set(found) - set(shapes))
    if unexpected:
        raise CheckpointError(f"{path}: unexpected key {unexpected[0]}")
    _check_recorded_encoder(path, metadata, config)


def _check_recorded_encoder(path: Path, metadata: dict[str, str], config: BiPartConfig) -> None:
    """The encoder fields ``metadata`` recorded (JSON strings) are ``config``'s; a file
    holding the seeded encoder names none."""
    recorded = {}
    for key in ("encoder_init", "encoder_name", "encoder_sha256"):
        if key in metadata:
            try:
                recorded[key] = json.loads(metadata[key])
            except ValueError:
                recorded[key] = metadata[key]
    if SEEDED_ENCODER_KEY in metadata:  # older files recorded no name: the seeded one has none
        recorded.setdefault("encoder_name", None)
    for key, value in recorded.items():
        if getattr(config, key) != value:
            raise CheckpointError(
                f"{path.parent / CONFIG_NAME}: {key} is {getattr(config, key)!r}, but "
                f"{path.name} was written with {value!r} (an edited config.json)"
            )


def _read_weights(path: Path, model: BiPartModel) -> tuple[dict[str, torch.Tensor], str | None]:
    """The saved state dict, cast to the model's dtypes, with every key and shape checked,
    and the sha256 of the seeded encoder it left out (checked against the model's), if so."""
    from safetensors import safe_open

    if not path.is_file():
        raise ModelUnavailableError(f"no {WEIGHTS_NAME} in {path.parent}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"cannot read {path}: {exc}") from exc
    expected = model.state_dict()
    seeded_sha256 = metadata.get(SEEDED_ENCODER_KEY)
    if seeded_sha256 is not None:
        _check_seeded_encoder(path, model, seeded_sha256)
        tensors.update({k: v for k, v in expected.items() if k.startswith(ENCODER_PREFIX)})
    for name, reference in expected.items():
        if name not in tensors:
            raise CheckpointError(f"{path}: missing key {name}")
        if tensors[name].shape != reference.shape:
            raise CheckpointError(
                f"{path}: {name} has shape {tuple(tensors[name].shape)}, "
                f"the config expects {tuple(reference.shape)}"
            )
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise CheckpointError(f"{path}: unexpected key {unexpected[0]}")
    state = {name: tensors[name].to(reference.dtype) for name, reference in expected.items()}
    return state, seeded_sha256
