"""The official Point-M2AE pre-training checkpoint -> our encoder.

``pre-train.pth`` is ``{'base_model': state_dict}`` with the encoder under
``h_encoder.`` (optionally behind a DataParallel ``module.`` prefix) next to
decoder and mask-token weights, which are ignored. Our encoder mirrors the
official names, so the mapping is a prefix strip. Every encoder key and shape
must match; anything else is a :class:`~bipart_cli.errors.CheckpointError`.

The ``.pth`` is read once with ``torch.load(..., weights_only=True)`` (no
pickle code execution) and can be converted to safetensors for later loads.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError, ModelUnavailableError
from .config import BiPartConfig
from .encoder import PointM2AEEncoder

ENCODER_PREFIX = "h_encoder."
DATA_PARALLEL_PREFIX = "module."


def _read_raw(path: Path) -> dict[str, torch.Tensor]:
    """The checkpoint's state dict, from ``.pth`` (``base_model``) or ``.safetensors``."""
    if not path.is_file():
        raise ModelUnavailableError(f"Point-M2AE checkpoint not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        with warnings.catch_warnings():
            # a plain pickle makes torch warn that its "weights_only Unpickler might not
            # support" the protocol: two lines of noise around the one-line error below
            warnings.filterwarnings(
                "ignore", message=".*weights_only Unpickler", category=UserWarning
            )
            payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch and safetensors raise several types on bad files
        reason = str(exc).strip() or f"{type(exc).__name__} (empty or truncated?)"
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}") from exc
    if isinstance(payload, dict) and "base_model" in payload:
        payload = payload["base_model"]
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a state dict under 'base_model'")
    return payload


def encoder_state_from_official(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip ``module.``, keep only ``h_encoder.*`` keys, without that prefix."""
    encoder_state = {}
    for key, value in state.items():
        if key.startswith(DATA_PARALLEL_PREFIX):
            key = key[len(DATA_PARALLEL_PREFIX) :]
        if key.startswith(ENCODER_PREFIX):
            encoder_state[key[len(ENCODER_PREFIX) :]] = value
    return encoder_state


def check_encoder_state(
    state: dict[str, torch.Tensor], encoder: PointM2AEEncoder, source: str = "checkpoint"
) -> None:
    """Raise :class:`CheckpointError` naming the first missing, unexpected or mis-shaped key."""
    expected = encoder.state_dict()
    if not state:
        raise CheckpointError(f"{source}: no 'h_encoder.*' keys found; not a Point-M2AE checkpoint")
    for key, tensor in expected.items():
        if key not in state:
            raise CheckpointError(f"{source}: missing encoder key h_encoder.{key}")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{source}: h_encoder.{key} has shape {tuple(state[key].shape)}, "
                f"the encoder expects {tuple(tensor.shape)}"
            )
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise CheckpointError(f"{source}: unexpected encoder key h_encoder.{unexpected[0]}")


def load_point_m2ae_checkpoint(
    path: str | Path, encoder: PointM2AEEncoder | None = None, config: BiPartConfig | None = None
) -> dict[str, torch.Tensor]:
    """Read and validate an official (``.pth``) or converted (``.safetensors``) checkpoint.

    The result is our encoder's state dict (keys without ``h_encoder.``). When
    ``encoder`` is given the weights are also loaded into it; otherwise they are
    checked against an encoder built from ``config`` (default sizes).
    """
    path = Path(path)
    raw = _read_raw(path)
    state = raw if _is_converted(path, raw) else encoder_state_from_official(raw)
    reference = encoder if encoder is not None else PointM2AEEncoder(config or BiPartConfig())
    check_encoder_state(state, reference, source=str(path))
    state = {
        key: value.to(torch.float32) if value.is_floating_point() else value
        for key, value in state.items()
    }
    if encoder is not None:
        encoder.load_state_dict(state, strict=True)
    return state


def _is_converted(path: Path, state: dict[str, torch.Tensor]) -> bool:
    """Converted safetensors files hold our names already (no ``h_encoder.`` prefix)."""
    return path.suffix == ".safetensors" and not any(ENCODER_PREFIX in key for key in state)


def convert_point_m2ae_checkpoint(
    pth: str | Path, out_safetensors: str | Path, config: BiPartConfig | None = None
) -> Path:
    """Validate the official ``.pth`` once and write the encoder weights as safetensors."""
    from safetensors.torch import save_file

    from ..io.atomic import atomic_path

    state = load_point_m2ae_checkpoint(pth, config=config)
    out = Path(out_safetensors)
    tensors = {key: value.contiguous() for key, value in state.items()}
    with atomic_path(out) as tmp:
        save_file(tensors, str(tmp), metadata={"source": "point-m2ae-official", "format": "pt"})
    return out


# --- encoder folders (``bipart pretrain``'s RUN_DIR/encoder) -------------------------

ENCODER_FOLDER_TYPE = "point-m2ae-encoder"
ENCODER_WEIGHTS_NAME = "model.safetensors"
ENCODER_CONFIG_NAME = "config.json"


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict: sorted names, shapes, dtypes and bytes (its identity)."""
    import hashlib

    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def save_encoder_folder(
    encoder: PointM2AEEncoder,
    config: BiPartConfig,
    folder: str | Path,
    name: str,
    provenance: dict | None = None,
) -> Path:
    """Write ``model.safetensors`` (official ``h_encoder.*`` keys) and ``config.json``.

    The config holds the encoder's sizes, its ``name``, the ``encoder_sha256`` of its
    state dict (what a BiPart model built on it records) and ``provenance`` (how it
    was made). Either file is staged and renamed, so a kill leaves no half file.
    """
    import json

    from safetensors.torch import save_file

    from ..io.atomic import atomic_path, atomic_write_text, sort_safetensors_header

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in encoder.state_dict().items()}
    tensors = {f"{ENCODER_PREFIX}{key}": value.clone() for key, value in state.items()}
    with atomic_path(folder / ENCODER_WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "source": "bipart-pretrain"})
        sort_safetensors_header(tmp)
    record = {
        "model_type": ENCODER_FOLDER_TYPE,
        "name": name,
        "encoder_sha256": state_sha256(state),
        **config.encoder_sizes(),
        "provenance": provenance or {},
    }
    atomic_write_text(folder / ENCODER_CONFIG_NAME, json.dumps(record, indent=2) + "\n")
    return folder


def read_encoder_folder(folder: str | Path) -> dict:
    """An encoder folder's ``config.json``, checked: its ``model_type``, name, sha256 and sizes.

    Returns the record; ``record["sizes"]`` are the :class:`BiPartConfig` encoder fields.
    """
    import json

    from .config import ENCODER_SIZE_FIELDS

    folder = Path(folder)
    path = folder / ENCODER_CONFIG_NAME
    if not path.is_file():
        raise ModelUnavailableError(f"--encoder {folder}: no {ENCODER_CONFIG_NAME} in it")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(record, dict) or record.get("model_type") != ENCODER_FOLDER_TYPE:
            raise ValueError(f"model_type is not {ENCODER_FOLDER_TYPE!r}")
        sizes = {name: record[name] for name in ENCODER_SIZE_FIELDS}
        name, digest = record.get("name"), record.get("encoder_sha256")
        BiPartConfig(**sizes, encoder_name=name, encoder_sha256=digest)  # a model config's checks
    except KeyError as exc:
        raise CheckpointError(f"{path}: missing {exc.args[0]!r}") from exc
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    return {"name": name, "encoder_sha256": digest, "sizes": sizes, "path": folder}
