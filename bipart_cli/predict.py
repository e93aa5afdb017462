"""From features to labels: the support's head inputs (cached per process and on disk),
the head adapted on them, and the target's smoothed dense labels (Sec. 3.4).

``segment``, ``eval`` and training's validation all predict through
:func:`adapt_and_predict`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .adapt import AdaptSettings
from .runtime import log

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from .labeling.pseudo_labels import PseudoLabels
    from .support import SupportShape


def shape_descriptors(points: np.ndarray, cached: np.ndarray | None, settings) -> np.ndarray | None:
    """(N, D) float32 descriptors of ``points`` (N, 3) for ``settings.descriptors``, or None."""
    if settings.descriptors == "none":
        return None
    if cached is not None:
        return np.asarray(cached, dtype=np.float32)
    from .descriptors import point_descriptors

    return point_descriptors(points)


def head_inputs(features: torch.Tensor, descriptors: torch.Tensor | None) -> torch.Tensor:
    """What the adapted head reads: features (B, N, C) ++ standardised descriptors (B, N, D)."""
    import torch

    from .model.bipart import unit_features

    if descriptors is None:
        return features
    return torch.cat([features, unit_features(descriptors)], dim=-1)  # (B, N, C + D)


class FeatureCache:
    """Head inputs per support shape, computed once per model and reused by every target.

    With a ``store`` folder the network's features of each support shape are also
    kept on disk (float16 safetensors, keyed by ``model_key``, by default the sha256 of
    the model's state, and by the shape's points and cached encoder features), so a
    later process runs no network pass over them. With a store, features are rounded
    to float16 whether they were just computed or read back, so a warm run labels
    exactly as the cold one did. An unreadable file is recomputed and replaced. The
    store is kept under ``$BIPART_FEATURE_CACHE_MB`` (default 2048 MB, 0.5 MB a shape):
    the least recently used files go first (:func:`trim_store`).
    """

    def __init__(
        self,
        model,
        device,
        settings: AdaptSettings | None = None,
        store: Path | None = None,
        model_key: str | None = None,
    ) -> None:
        self.model = model
        self.device = device
        self.settings = settings or AdaptSettings()
        self.store = store
        self._model_key = model_key
        self._features: dict[str, torch.Tensor] = {}
        self._heads: dict[tuple, dict[str, torch.Tensor]] = {}  # see adapted_head
        self._stored = 0  # files written by this process: the store is trimmed every so many

    def features(self, shapes: list[SupportShape]) -> torch.Tensor:
        """(M, N, C') head inputs of ``shapes``, computing only the missing ones."""
        import torch

        missing = [s for s in shapes if s.shape_id not in self._features]
        if missing:
            extracted = self._network_features(missing)  # (m, N, C)
            descriptors = None
            if self.settings.descriptors != "none":
                described = [
                    shape_descriptors(s.points, s.descriptors, self.settings) for s in missing
                ]
                descriptors = torch.from_numpy(np.stack(described)).to(self.device)
            extracted = head_inputs(extracted, descriptors)  # (m, N, C')
            for shape, feats in zip(missing, extracted, strict=True):
                self._features[shape.shape_id] = feats
        return torch.stack([self._features[s.shape_id] for s in shapes])

    def adapted_head(self, key: tuple | None, adapt: Callable[[], dict]) -> dict:
        """``adapt()``, or the head it gave for the same ``key`` earlier in this process.

        A head adapted on support shapes alone does not depend on the target, so a
        batch of targets sharing one support set adapts once. ``key`` (None: never
        reused) must name everything the head depends on.
        """
        if key is None:
            return adapt()
        if key not in self._heads:
            self._heads[key] = adapt()
        return self._heads[key]

    def _network_features(self, shapes: list[SupportShape]) -> torch.Tensor:
        """(m, N, C) extractor features, from the store where it has them."""
        import torch

        paths = [self._stored_path(s) for s in shapes]
        found = [_read_features(path) for path in paths]
        todo = [i for i, feats in enumerate(found) if feats is None]
        for i in todo:
            feats = self._extract(shapes[i])  # (N, C)
            if self.store is not None:  # as the store will give them back
                feats = feats.to(torch.float16)
            found[i] = feats
            if paths[i] is not None:
                _write_features(paths[i], feats)
                if self._stored % TRIM_EVERY == 0:
                    trim_store(self.store, feature_cache_bytes())
                self._stored += 1
        return torch.stack([f.to(self.device) for f in found]).float()  # (m, N, C)

    def _extract(self, shape: SupportShape) -> torch.Tensor:
        """(N, C) extractor features of one shape, from its cached encoder features when it
        has them (an index's; a shape turned to the target's pose has none).

        One shape at a time: 8 at once held ~0.75 GB of activations, and a support set that
        mixes shapes with and without cached features runs the encoder on the latter only.
        """
        import torch

        points = torch.from_numpy(np.asarray(shape.points, np.float32)).to(self.device)[None]
        encoded = None
        if shape.encoder_features is not None:
            encoded = torch.from_numpy(np.asarray(shape.encoder_features, np.float32))
            encoded = encoded.to(self.device)[None]  # (1, N, F)
        with torch.no_grad():
            return self.model.extract(points, encoder_features=encoded)[0]

    def _stored_path(self, shape: SupportShape) -> Path | None:
        if self.store is None:
            return None
        if self._model_key is None:
            self._model_key = self.model.sha256()
        digest = hashlib.sha256(np.ascontiguousarray(shape.points, dtype=np.float32).tobytes())
        if shape.encoder_features is not None:  # cached (float16) encoder features feed it
            digest.update(np.ascontiguousarray(shape.encoder_features).tobytes())
        return self.store / self._model_key[:16] / f"{digest.hexdigest()[:32]}.safetensors"


FEATURE_CACHE_ENV = "BIPART_FEATURE_CACHE_MB"
TRIM_EVERY = 64  # stored files between two looks at the store's size


def feature_cache_bytes() -> int:
    """The store's size limit: ``$BIPART_FEATURE_CACHE_MB`` (default 2048) in bytes."""
    import os

    try:
        megabytes = float(os.environ.get(FEATURE_CACHE_ENV, "2048"))
    except ValueError:
        megabytes = 2048.0
    return int(max(megabytes, 0.0) * 2**20)


def trim_store(folder: Path, max_bytes: int) -> None:
    """Delete the least recently used ``*.safetensors`` under ``folder`` (by modification
    time, which a read renews) until they take at most 3/4 of ``max_bytes``; nothing when
    they already fit. A file that vanishes or cannot be removed is skipped."""
    import os

    files = []
    for path in folder.rglob("*.safetensors"):
        try:
            info = path.stat()
        except OSError:
            continue
        files.append((info.st_mtime_ns, info.st_size, path))
    total = sum(size for _, size, _ in files)
    if total <= max_bytes:
        return
    for _, size, path in sorted(files, key=lambda item: item[0]):
        if total <= max_bytes * 3 // 4:
            break
        try:
            os.unlink(path)
            total -= size
        except OSError:
            continue


def _read_features(path: Path | None) -> torch.Tensor | None:
    if path is None or not path.is_file():
        return None
    import contextlib
    import os

    from safetensors.torch import load_file

    try:
        features = load_file(str(path))["features"]
    except Exception as exc:  # noqa: BLE001 - a damaged cache entry is recomputed, never fatal
        log.debug("recomputing the cached features in %s: %s", path, exc)
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # used now: the last to go when the store is trimmed
    return features


def _write_features(path: Path, features: torch.Tensor) -> None:
    from safetensors.torch import save_file

    from .io.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            save_file({"features": features.cpu().contiguous()}, str(tmp))
    except OSError as exc:  # a read-only or full cache only costs speed
        log.debug("cannot cache features in %s: %s", path, exc)


def adapt_and_predict(
    model,
    target_points: np.ndarray,
    dense_points: np.ndarray,
    target_labels: PseudoLabels | None,
    support: list[SupportShape],
    num_parts: int,
    settings: AdaptSettings,
    feature_cache: FeatureCache,
    chunk: int = 32768,
    target_encoder_features: np.ndarray | None = None,
    target_descriptors: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Adapt the head on (target +) support, then label every dense point.

    target_points : (N, 3) network points; dense_points : (n, 3) all points to label;
    target_encoder_features : (N, F) frozen-encoder features of the target when an index
    cached them (the encoder pass is then skipped); target_descriptors : (N, D) likewise.
    The head predicts the N network points; their probabilities are smoothed over
    the points' neighbours (``settings.smooth`` rounds) and interpolated to the
    dense points. Returns dense labels (n,) int64 and their probabilities (n,) float32.
    """
    import torch

    from .adapt import (
        adapt_head,
        labeled_points,
        pack_labels,
        predict_probabilities,
        widen_head,
    )
    from .geometry import three_nn_interpolate

    device = feature_cache.device
    points = torch.from_numpy(np.ascontiguousarray(target_points, dtype=np.float32)).to(device)[
        None
    ]  # (1, N, 3)
    encoded = None
    if target_encoder_features is not None:
        encoded = torch.from_numpy(np.asarray(target_encoder_features, np.float32)).to(device)[None]
    descriptors = shape_descriptors(target_points, target_descriptors, settings)
    if descriptors is not None:
        descriptors = torch.from_numpy(descriptors).to(device)[None]  # (1, N, D)
    with torch.no_grad():
        target_features = model.extract(points, encoder_features=encoded)  # (1, N, C)
        target_features = head_inputs(target_features, descriptors)  # (1, N, C')
    feature_blocks, label_list = [], []
    if target_labels is not None:
        feature_blocks.append(target_features)
        label_list.append(target_labels)
    if support:
        feature_blocks.append(feature_cache.features(support))  # (M, N, C')
        label_list.extend(s.pseudo_labels for s in support)
    features = torch.cat(feature_blocks)  # (M', N, C')
    labels = pack_labels(label_list, num_parts, device=device, normalise=settings.normalise)
    head_0 = model.head_params()
    head_0 = widen_head(head_0, features.shape[-1] - head_0["fc1.weight"].shape[1])

    def adapt() -> dict[str, torch.Tensor]:
        with torch.no_grad():
            return adapt_head(
                features,
                labels,
                head_0,
                steps=settings.steps,
                lr=settings.lr,
                box_reduction=settings.shape_reduction,
                optimizer=settings.optimizer,
                batch_points=settings.batch_points,
                seed=seed,
            )

    support_only = target_labels is None
    key = support_head_key(support, labels, settings, seed) if support_only else None
    head = feature_cache.adapted_head(key, adapt)
    with torch.no_grad():
        probs = predict_probabilities(model, target_features, head, num_parts)[0]  # (N, R)
        if settings.knn_weight > 0:
            reference, weights, _ = labeled_points(features, labels, head, box_reduction="sum")
            transferred = knn_probabilities(
                target_features[0], reference, weights[:, :num_parts], settings.knn_k
            )
            probs = (1 - settings.knn_weight) * probs + settings.knn_weight * transferred
        probs = smooth_probabilities(target_points, probs, settings.smooth)
        dense = torch.from_numpy(np.ascontiguousarray(dense_points, dtype=np.float32)).to(device)
        out_labels, out_scores = [], []
        for start in range(0, len(dense), chunk):
            block = dense[start : start + chunk][None]  # (1, c, 3)
            block_probs = three_nn_interpolate(block, points, probs[None])[0]  # (c, R)
            score, label = block_probs.max(-1)
            out_labels.append(label.cpu())
            out_scores.append(score.cpu())
    return torch.cat(out_labels).numpy().astype(np.int64), torch.cat(out_scores).numpy().astype(
        np.float32
    )


def support_head_key(
    support: list[SupportShape], labels, settings: AdaptSettings, seed: int
) -> tuple:
    """What a head adapted on ``support`` alone depends on: the shapes (their features are
    cached by id), the exact packed targets, the adaptation settings and the seed."""
    import dataclasses

    digest = hashlib.sha256()
    for field in dataclasses.fields(labels):
        tensor = getattr(labels, field.name).detach().cpu().contiguous()
        digest.update(f"{field.name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    ids = tuple(s.shape_id for s in support)
    return (ids, digest.hexdigest(), dataclasses.astuple(settings), seed)


def knn_probabilities(
    target_features: torch.Tensor,
    reference: torch.Tensor,
    weights: torch.Tensor,
    k: int,
    chunk: int = 1024,
) -> torch.Tensor:
    """Label transfer in the head's input space: each target point takes the mean label
    distribution of its ``k`` nearest labeled support points.

    target_features : (N, C); reference : (P, C) the labeled support points' head inputs
    and weights : (P, R) their Eq. 2 targets (:func:`adapt.labeled_points`)  ->  (N, R),
    rows summing to 1. A point's distribution is its targets normalised.
    """
    import torch

    distributions = weights / weights.sum(-1, keepdim=True)  # (P, R)
    k = min(k, len(reference))
    out = []
    for start in range(0, len(target_features), chunk):
        block = target_features[start : start + chunk]  # (c, C)
        # the matrix-product distance is fine here: neighbours in a learned feature space
        # have no exact ties worth keeping, and it is what makes (c, P) cheap
        nearest = torch.cdist(block, reference).topk(k, largest=False).indices  # (c, k)
        out.append(distributions[nearest].mean(1))  # (c, R)
    return torch.cat(out)


def smooth_probabilities(
    points: np.ndarray, probs: torch.Tensor, rounds: int, k: int = 10
) -> torch.Tensor:
    """``rounds`` of ``p <- (p + mean of the k nearest neighbours' p) / 2``.

    points : (N, 3); probs : (N, R)  ->  (N, R), rows still summing to 1. A point's
    label then agrees with its surroundings: stray points inside a part take its label.
    """
    if rounds <= 0:
        return probs
    import torch
    from scipy.spatial import KDTree

    k = min(k, len(points))
    _, neighbours = KDTree(np.asarray(points, dtype=np.float64)).query(points, k=k, workers=-1)
    neighbours = torch.from_numpy(neighbours.reshape(len(points), k)).to(probs.device)
    for _ in range(rounds):
        probs = 0.5 * probs + 0.5 * probs[neighbours].mean(1)  # (N, R)
    return probs
