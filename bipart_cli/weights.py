"""Known checkpoints and how ``--weights`` is resolved.

``weights/registry.json`` lists the checkpoints the tool knows (id, Hub repo,
revision, sha256 of ``model.safetensors``, local folder). ``--weights`` takes a
registry id, a Hub id, a local folder, or ``random`` (an untrained, seeded
model, only ever chosen explicitly and marked as such in every output).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ModelUnavailableError, UsageError

if TYPE_CHECKING:
    from .model import BiPartModel


def _registry_path() -> Path:
    """``weights/registry.json``: package data in a wheel (``bipart_cli/_weights``), else the
    source tree's top-level ``weights/`` (a checkout or an editable install)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_weights", here.parent / "weights"):
        if (candidate / "registry.json").is_file():
            return candidate / "registry.json"
    return here.parent / "weights" / "registry.json"


REGISTRY_PATH = _registry_path()
RANDOM_WEIGHTS = "random"


@dataclass
class WeightsInfo:
    """Where a model came from, recorded in every output."""

    weights_id: str
    revision: str | None
    sha256: str | None
    trained: bool
    encoder_pretrained: bool
    encoder_init: str | None = None
    encoder_name: str | None = None  # e.g. "bipart-pretrain:RUN@STEPS"; None for the seeded one
    encoder_sha256: str | None = None
    config_json_sha256: str | None = None  # of the config.json read beside model.safetensors

    @classmethod
    def of(
        cls,
        model,
        weights_id: str,
        revision: str | None,
        sha256: str | None,
        trained: bool,
        config_json_sha256: str | None = None,
    ):
        """The record for ``model``, with the encoder it stands on."""
        config = model.config
        return cls(
            weights_id,
            revision,
            sha256,
            trained=trained,
            encoder_pretrained=model.encoder_is_pretrained,
            encoder_init=config.encoder_init,
            encoder_name=config.encoder_name,
            encoder_sha256=config.encoder_sha256 or model.loaded_encoder_sha256,
            config_json_sha256=config_json_sha256,
        )

    @property
    def files_key(self) -> str | None:
        """sha256 over both files the model was read from (``model.safetensors`` and
        ``config.json``: ``extractor_k`` or ``local_radius`` change the features as much as
        the weights do); None when they are not known (``random``: hash the model)."""
        if self.sha256 is None or self.config_json_sha256 is None:
            return None
        described = f"model.safetensors {self.sha256}\0config.json {self.config_json_sha256}"
        return hashlib.sha256(described.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_registry(path: Path = REGISTRY_PATH) -> dict[str, Any]:
    if not path.exists():
        return {"schema_version": 1, "default": None, "checkpoints": []}
    return json.loads(path.read_text())


def _registry_entry(spec: str, registry: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in registry["checkpoints"] if c["id"] == spec), None)


def _local_folder(entry: dict[str, Any]) -> Path | None:
    """A registered checkpoint's folder beside the registry, if it has one and it is there."""
    folder = REGISTRY_PATH.parent / entry["folder"] if entry.get("folder") else None
    return folder if folder is not None and folder.is_dir() else None


def resolve_weights(
    spec: str | None, revision: str | None = None, seed: int = 0, device="cpu"
) -> tuple[BiPartModel, WeightsInfo]:
    """Load the model named by ``--weights``.

    ``None`` means the registry's default; with no trained default yet this is a
    clear error asking for ``--weights random`` or a checkpoint.
    """
    from .model import BiPartConfig, BiPartModel

    registry = load_registry()
    if spec is None:
        spec = registry.get("default")
        if spec is None:
            raise UsageError(
                "no trained default weights are registered yet: pass --weights random (untrained, for testing) or --weights ID|DIR"
            )
    if spec == RANDOM_WEIGHTS:
        import torch

        torch.manual_seed(seed)
        model = BiPartModel(BiPartConfig())
        info = WeightsInfo.of(model, RANDOM_WEIGHTS, None, None, trained=False)
        return model.to(device).eval(), info

    entry = _registry_entry(spec, registry)
    if entry is not None:
        return _load_registered(entry, revision, device)
    from .hub import resolve_pretrained

    folder = resolve_pretrained(
        spec, revision=revision, allow_patterns=["config.json", "model.safetensors"]
    )
    sha = _verified_sha256(folder, _config_sha256(folder), spec)
    model = BiPartModel.from_pretrained(folder)
    _check_finite(model, spec)
    info = WeightsInfo.of(
        model, spec, revision, sha, trained=True, config_json_sha256=_config_json_sha256(folder)
    )
    return model.to(device).eval(), info


def weights_identity(spec: str | None, revision: str | None = None, seed: int = 0) -> str | None:
    """What fixes the weights ``--weights`` names, found without loading them (no torch):
    the sha256 of a local folder's ``model.safetensors`` and ``config.json`` (a registry
    id's or a given folder's), or ``random`` and its seed. None when only a download could
    tell (a Hub id) or the files are missing (loading then reports it)."""
    from .io import sha256_file

    registry = load_registry()
    spec = spec if spec is not None else registry.get("default")
    if spec is None:
        return None
    if spec == RANDOM_WEIGHTS:
        return f"{RANDOM_WEIGHTS} seed {seed}"
    entry = _registry_entry(spec, registry)
    if entry is not None:
        folder = _local_folder(entry)
        revision = revision or entry.get("revision")
    else:
        folder = Path(spec).expanduser()
    files = [folder / "model.safetensors", folder / "config.json"] if folder is not None else []
    if not files or not all(path.is_file() for path in files):
        return None
    return " ".join([spec, str(revision), *(sha256_file(path) for path in files)])


def _config_json_sha256(folder: Path) -> str | None:
    """sha256 of ``folder/config.json`` (None when missing: loading reported that)."""
    from .io import sha256_file

    path = folder / "config.json"
    return sha256_file(path) if path.is_file() else None


def _config_sha256(folder: Path) -> str | None:
    """The ``sha256`` of ``model.safetensors`` a folder's ``config.json`` records, if any."""
    try:
        value = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError, AttributeError):
        return None  # from_pretrained reports a missing or broken config
    return value if isinstance(value, str) else None


def _verified_sha256(folder: Path, expected: str | None, what: str) -> str | None:
    """sha256 of ``folder/model.safetensors`` (None when missing), checked against ``expected``."""
    from .io import sha256_file

    path = folder / "model.safetensors"
    if not path.is_file():
        return None
    sha = sha256_file(path)
    if expected and sha != expected.lower():
        raise ModelUnavailableError(
            f"weights {what}: model.safetensors sha256 {sha[:12]}… does not match the "
            f"{expected[:12]}… its config.json records (a damaged or altered file)"
        )
    return sha


def _check_finite(model: BiPartModel, what: str) -> None:
    """Refuse weights holding NaN or inf, with one line naming the first such tensor."""
    import torch

    from .geometry import one_thread_on_cpu

    # ~290 small reductions: on two threads the first ones of a process took 0.2-0.5 s on
    # 2 loaded cores, on one 0.01 s
    with one_thread_on_cpu(next(model.parameters()).device):
        for name, tensor in model.state_dict().items():
            # a NaN or inf makes the sum non-finite; an overflowing sum alone is looked at
            # closely (one reduction per tensor: the element-wise test of 13M values took
            # ~0.1 s a load)
            if not tensor.is_floating_point() or torch.isfinite(tensor.sum()):
                continue
            if not torch.isfinite(tensor).all():
                raise ModelUnavailableError(f"weights {what}: {name} holds NaN or inf values")


def _load_registered(
    entry: dict[str, Any], revision: str | None, device
) -> tuple[BiPartModel, WeightsInfo]:
    from .io import sha256_file
    from .model import BiPartModel

    local = _local_folder(entry)
    source = str(local) if local is not None else entry.get("repo_id")
    if source is None:
        raise ModelUnavailableError(
            f"checkpoint {entry['id']!r} has neither a local folder nor a Hub repo"
        )
    revision = revision or entry.get("revision")
    model = BiPartModel.from_pretrained(source, revision=revision)
    _check_finite(model, entry["id"])
    sha = None
    if local is not None:
        sha = sha256_file(local / "model.safetensors")
        if entry.get("sha256") and sha != entry["sha256"]:
            raise ModelUnavailableError(
                f"checkpoint {entry['id']!r}: model.safetensors sha256 {sha[:12]}… does not match the registry"
            )
    config_sha = None if local is None else _config_json_sha256(local)
    info = WeightsInfo.of(
        model, entry["id"], revision, sha, trained=True, config_json_sha256=config_sha
    )
    return model.to(device).eval(), info
