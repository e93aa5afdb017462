"""One shape -> one :class:`ShapeRecord`: sampling, pseudo labels, descriptors, BPS and the
cached frozen-encoder features (with the identity of the encoder that made them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidInputError
from .format import (
    BasisInfo,
    ShapeRecord,
)
from .walk import file_seed

if TYPE_CHECKING:
    from ..io import Asset

N_NETWORK_POINTS = 2048


N_DENSE_KEPT = 8192


class LazyEncoder:
    """The device (``auto|cpu|cuda[:N]`` or a ``torch.device``) and the model whose
    ``encode`` fills the feature cache, both made when a shape first needs them: a build
    whose every shape is unchanged imports no torch. ``load(device)`` makes the model (None:
    the cache is off)."""

    def __init__(self, load: Callable[[Any], Any] | None, device: Any) -> None:
        self._load = load
        self._device = device

    @cached_property
    def device(self) -> Any:
        if not isinstance(self._device, str):
            return self._device
        from ..runtime import resolve_device

        return resolve_device(self._device)

    @cached_property
    def model(self) -> Any:
        return None if self._load is None else self._load(self.device)


@dataclass
class ShapeContext:
    """What every shape of a build shares (labeler and encoder are loaded once)."""

    folder: Path
    settings: dict[str, Any]
    basis: BasisInfo
    labeler: Any
    encoding: LazyEncoder
    encoder: dict[str, Any] | None
    # node names are part labels without a request (a --support folder's build)
    names_as_parts: bool = False

    @property
    def encoder_model(self) -> Any:
        return self.encoding.model

    @property
    def device(self) -> Any:
        return self.encoding.device


def make_record(
    asset: Asset,
    shape_id: str,
    category: str,
    part_names: list[str] | None,
    context: ShapeContext,
) -> ShapeRecord:
    """Label, sample and describe one loaded asset; the record's ``sha256`` is the asset's
    content identity (every file it was read from)."""
    from ..descriptors import point_descriptors
    from ..io.sample import sample_network_indices
    from ..labeling.api import label_asset
    from ..signatures import bps_features

    settings = context.settings
    seed = file_seed(settings["seed"], shape_id)
    if part_names is None:
        if not asset.has_labels:
            raise InvalidInputError(
                f"{shape_id}: no part names: pass --parts, add a parts.json, or use labeled assets"
            )
        part_names = list(asset.part_names)
    # the build's one labeler: a detector loads once, not per shape
    labeled = label_asset(
        asset,
        part_names,
        context.labeler,
        n_dense=settings["n_dense"],
        seed=seed,
        device=str(context.device),
    )
    dense, pseudo = labeled.dense, labeled.pseudo_labels
    gt_dense = dense.labels  # (n,) or None
    network = sample_network_indices(dense.points, settings["n_points"], seed=seed)  # (2048,)
    kept = _dense_subset(len(dense.points), settings["n_dense_kept"], seed)
    points = dense.points[network].astype(np.float32)
    record = ShapeRecord(
        id=shape_id,
        category=category,
        part_names=part_names,
        source=shape_id,
        sha256=asset.sha256,
        points=points,
        dense_points=dense.points[kept],
        dense_colors=dense.colors[kept],
        bps=bps_features(points, context.basis.points),
        pseudo_labels=pseudo.subset(network),
        gt_labels=None if gt_dense is None else gt_dense[network],
        dense_gt_labels=None if gt_dense is None else gt_dense[kept],
    )
    record.reads = asset_reads(asset)
    record.descriptors = point_descriptors(points)
    if context.encoder is not None:
        record.features = encode_points(context.encoder_model, points, context.device)
    return record


def asset_reads(asset: Asset) -> dict[str, list[str]] | None:
    """:attr:`ShapeRecord.reads` of a loaded asset (None when it was built in memory)."""
    from ..io.sources import read_names

    return read_names(asset.sources, asset.missing) if asset.sources else None


def _dense_subset(n: int, keep: int, seed: int) -> np.ndarray:
    """Sorted seeded choice of ``min(n, keep)`` of ``n`` indices."""
    if n <= keep:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, keep, replace=False))


def encode_points(model: Any, points: np.ndarray, device: Any) -> np.ndarray:
    """Frozen-encoder features of one shape: points (N, 3) -> (N, F) float16 (batch of 1)."""
    import torch

    with torch.no_grad():
        batch = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))[None]
        features = model.encode(batch.to(device))[0]  # (N, F)
    return features.to(torch.float16).cpu().numpy()


def encoder_identity(model: Any, weights_sha256: str | None = None) -> dict[str, Any]:
    """What the cached features depend on: the encoder's init, a sha256 of its weights and
    its sizes from the config (``local_radius``, ``group_k`` ...).

    Two models whose encoders have equal weights get equal identities; compare it
    with ``ShapeIndex.encoder`` to know whether the cache is stale. ``weights_sha256``:
    the encoder's sha256 when the caller knows it (checked at load), else it is computed.
    """
    config = model.config
    identity = {
        "init": config.encoder_init,
        "weights_sha256": weights_sha256 or model.encoder_sha256(),
        # sizes no weight's shape shows (group_k, local_radius) change the features too
        "sizes": config.encoder_sizes(),
    }
    if not config.encoder_is_pretrained:
        identity["seed"] = config.encoder_seed
    return identity


def default_basis() -> BasisInfo:
    """The fixed BPS basis every index is built on (from :mod:`bipart_cli.signatures`)."""
    from ..signatures import BPSBasis

    basis = BPSBasis.generate()
    return BasisInfo(
        points=np.asarray(basis.points, dtype=np.float32),
        seed=int(basis.seed),
        radius=float(basis.radius),
    )


def default_encoder_identity(encoding: LazyEncoder) -> dict[str, Any]:
    """:func:`encoder_identity` of the default config's encoder (``bipart index`` without
    ``--weights``): :func:`stored_encoder_identity`, the seeded init depending on bipart's
    code and the libraries' versions alone."""
    return stored_encoder_identity(encoding, "default-config encoder")


def weights_encoder_identity(encoding: LazyEncoder, weights: str, seed: int) -> dict[str, Any]:
    """:func:`encoder_identity` of the encoder of ``--weights``: :func:`stored_encoder_identity`
    under what fixes those weights without loading them (the sha256 of a local folder's files,
    or ``random`` and its seed); loaded when only a download could tell (a Hub id)."""
    from ..weights import weights_identity

    files = weights_identity(weights, seed=seed)
    if files is None:
        return encoder_identity(encoding.model)
    return stored_encoder_identity(encoding, f"encoder of {files}")


def stored_encoder_identity(encoding: LazyEncoder, made_from: str) -> dict[str, Any]:
    """:func:`encoder_identity` of ``encoding``'s model, read from bipart's store when this
    code and these libraries made it before from the same ``made_from`` (what fixes the
    weights): an unchanged folder is checked without loading a model (or torch)."""
    import hashlib
    import json

    import numpy as np

    from ..store import ArrayStore, cache_root, code_identity

    key = hashlib.sha256(f"{made_from} {code_identity()}".encode()).hexdigest()

    def compute() -> dict[str, np.ndarray]:
        text = json.dumps(encoder_identity(encoding.model), sort_keys=True)
        return {"identity": np.frombuffer(text.encode(), dtype=np.uint8).copy()}

    def valid(arrays: dict[str, np.ndarray]) -> bool:
        identity = arrays.get("identity")
        return identity is not None and identity.dtype == np.uint8 and identity.ndim == 1

    stored = ArrayStore(cache_root() / "features").fetch("encoder-identity", key, compute, valid)
    return json.loads(stored["identity"].tobytes().decode())


def load_encoder(weights: str | None, seed: int, device: Any) -> Any:
    """The model whose ``encode`` fills the feature cache: ``weights`` or the default config."""
    if weights is not None:
        from ..weights import resolve_weights

        model, _ = resolve_weights(weights, seed=seed, device=device)
        return model.eval()
    from ..model import BiPartConfig, BiPartModel

    return BiPartModel(BiPartConfig()).to(device).eval()
