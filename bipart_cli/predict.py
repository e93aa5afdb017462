"""From features to labels: the support's head inputs (cached per process and on disk),
the head adapted on them, and the target's smoothed dense labels (Sec. 3.4).

``segment``, ``eval`` and training's validation all predict through
:func:`adapt_and_predict`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .adapt import AdaptSettings
from .store import array_key, arrays_sha256, code_identity

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch

    from .labeling.pseudo_labels import PseudoLabels
    from .support import SupportShape


def head_inputs(
    features: torch.Tensor,
    descriptors: torch.Tensor | None,
    positions: torch.Tensor | None = None,
) -> torch.Tensor:
    """What the adapted head reads: features (B, N, C) ++ standardised descriptors (B, N, D)
    ++ standardised positions (B, N, 3), each block at unit norm per point.

    The positions are the points themselves in the frame the support is matched to:
    standardised per axis over the shape, they say where a point lies in the object
    (a lid on top, a drawer low at the front) whatever the shape's proportions.
    """
    import torch

    from .model.bipart import unit_features

    blocks = [features]
    blocks += [] if descriptors is None else [unit_features(descriptors)]
    blocks += [] if positions is None else [unit_features(positions)]
    return torch.cat(blocks, dim=-1)  # (B, N, C + D + 3)


class FeatureCache:
    """A shape's network features and descriptors, and a support set's adapted head,
    computed once per model and reused.

    The head inputs of support shapes and the heads adapted on them alone are kept for
    the process, so every target of a batch reuses them. With a ``store`` folder
    (:class:`~bipart_cli.store.ArrayStore`) they are also kept on disk: the network
    features and descriptors of every shape, support or target, keyed by ``model_key``
    (by default the sha256 of the model's state) or the descriptor set and by the
    shape's points and cached encoder features, heads by :func:`support_head_key`, and
    a target's labels from such a head by that key and the target's points and head
    inputs. A later process then runs no network pass over a shape it has seen. With a
    store, network features are rounded to float16 whether they were just computed or
    read back, so a warm run labels exactly as the cold one did.
    """

    def __init__(
        self,
        model,
        device,
        settings: AdaptSettings | None = None,
        store: Path | None = None,
        model_key: str | None = None,
    ) -> None:
        from .store import ArrayStore

        self.model = model
        self.device = device
        self.settings = settings or AdaptSettings()
        self.store = None if store is None else ArrayStore(store)
        self._model_key = model_key
        self._features: dict[str, torch.Tensor] = {}
        self._heads: dict[str, dict[str, torch.Tensor]] = {}  # see adapted_head

    def features(self, shapes: list[SupportShape]) -> torch.Tensor:
        """(M, N, C') head inputs of support ``shapes``, computing only the missing ones."""
        import torch

        for shape in shapes:
            if shape.shape_id not in self._features:
                self._features[shape.shape_id] = self.head_inputs(
                    shape.points, shape.encoder_features, shape.descriptors
                )
        return torch.stack([self._features[s.shape_id] for s in shapes])

    def head_inputs(
        self,
        points: np.ndarray,
        encoder_features: np.ndarray | None = None,
        descriptors: np.ndarray | None = None,
    ) -> torch.Tensor:
        """(N, C') head inputs of one shape: points (N, 3), its cached encoder features
        (N, F) and descriptors (N, D) when it has them (and the points themselves with
        ``settings.position``)."""
        import torch

        features = self.network_features(points, encoder_features)[None]  # (1, N, C)
        described = self.descriptors(points, descriptors)
        if described is not None:
            described = torch.from_numpy(described).to(self.device)[None]  # (1, N, D)
        positions = None
        if self.settings.position:
            positions = torch.from_numpy(np.asarray(points, np.float32)).to(self.device)[None]
        return head_inputs(features, described, positions)[0]

    def network_features(
        self, points: np.ndarray, encoder_features: np.ndarray | None = None
    ) -> torch.Tensor:
        """(N, C) extractor features of points (N, 3), from its cached encoder features
        (N, F) when it has them (an index's; a shape turned to another pose has none).

        One shape at a time: 8 at once held ~0.75 GB of activations, and a support set that
        mixes shapes with and without cached features runs the encoder on the latter only.
        """
        import torch

        def extract() -> torch.Tensor:
            cloud = torch.from_numpy(np.asarray(points, np.float32)).to(self.device)[None]
            encoded = None
            if encoder_features is not None:
                encoded = torch.from_numpy(np.asarray(encoder_features, np.float32))
                encoded = encoded.to(self.device)[None]  # (1, N, F)
            with torch.no_grad():
                return self.model.extract(cloud, encoder_features=encoded)[0]  # (N, C)

        if self.store is None:
            return extract()
        if self._model_key is None:
            self._model_key = self.model.sha256()
        key = array_key(points, *([] if encoder_features is None else [encoder_features]))
        width = self.model.config.feature_dim
        stored = self.store.fetch(
            f"network/{self._model_key[:16]}",
            key,
            lambda: {"features": extract().to(torch.float16).cpu().numpy()},
            lambda arrays: _is_table(arrays.get("features"), len(points), width),
        )
        # float16 cold or warm: a warm run labels exactly as the cold one did
        return torch.from_numpy(stored["features"]).to(self.device).float()

    def descriptors(
        self, points: np.ndarray, cached: np.ndarray | None = None
    ) -> np.ndarray | None:
        """(N, D) float32 descriptors of points (N, 3) for ``settings.descriptors``: ``cached``
        when given, else from the store or computed; None without descriptors."""
        name = self.settings.descriptors
        if name == "none":
            return None
        if cached is not None:
            return np.asarray(cached, dtype=np.float32)
        from .descriptors import DESCRIPTOR_NAMES, point_descriptors

        def describe() -> dict[str, np.ndarray]:
            return {"descriptors": point_descriptors(points)}

        if self.store is None:
            return describe()["descriptors"]
        stored = self.store.fetch(
            f"descriptors/{name}",
            array_key(points),
            describe,
            lambda arrays: _is_table(arrays.get("descriptors"), len(points), len(DESCRIPTOR_NAMES)),
        )
        return stored["descriptors"].astype(np.float32, copy=False)

    def adapted_head(
        self,
        key: str | None,
        adapt: Callable[[], dict[str, torch.Tensor]],
        head_0: dict[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """``adapt()``, or the head it gave for the same ``key`` earlier: in this process,
        or in an earlier one when there is a store.

        A head adapted on support shapes alone does not depend on the target, so a
        batch of targets sharing one support set adapts once. ``key``
        (:func:`support_head_key`; None: never reused) must name everything the head
        depends on; head_0, the starting head, gives the names and shapes to expect.
        """
        if key is None:
            return adapt()
        if key not in self._heads:
            self._heads[key] = (
                adapt() if self.store is None else self._stored_head(key, adapt, head_0)
            )
        return self._heads[key]

    def dense_predictions(
        self,
        key: str,
        predict: Callable[[], tuple[np.ndarray, np.ndarray]],
        count: int,
        num_parts: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``predict()``: labels (count,) int64 in [0, num_parts) and their probabilities
        (count,) float32; or, with a store, what it gave for the same ``key`` in an
        earlier process (``key`` must name everything they depend on)."""
        if self.store is None:
            return predict()

        def compute() -> dict[str, np.ndarray]:
            labels, scores = predict()
            return {"labels": labels.astype(np.min_scalar_type(num_parts)), "scores": scores}

        def valid(arrays: dict[str, np.ndarray]) -> bool:
            labels, scores = arrays.get("labels"), arrays.get("scores")
            return (
                labels is not None
                and scores is not None
                and labels.shape == scores.shape == (count,)
                and labels.dtype.kind == "u"
                and bool((labels < num_parts).all())
                and scores.dtype == np.float32
                and bool(np.isfinite(scores).all())
            )

        stored = self.store.fetch("predictions", key, compute, valid)
        return stored["labels"].astype(np.int64), stored["scores"]

    def _stored_head(self, key: str, adapt: Callable, head_0: dict) -> dict[str, torch.Tensor]:
        import torch

        def valid(arrays: dict[str, np.ndarray]) -> bool:
            return arrays.keys() == head_0.keys() and all(
                arrays[name].shape == tuple(value.shape) and bool(np.isfinite(arrays[name]).all())
                for name, value in head_0.items()
            )

        stored = self.store.fetch(
            "heads",
            key,
            lambda: {name: value.detach().cpu().numpy() for name, value in adapt().items()},
            valid,
        )
        return {name: torch.from_numpy(value).to(self.device) for name, value in stored.items()}


def _is_table(array: np.ndarray | None, rows: int, columns: int) -> bool:
    """Whether a stored array is a finite (rows, columns) table."""
    return (
        array is not None
        and array.shape == (rows, columns)
        and array.dtype.kind == "f"
        and bool(np.isfinite(array).all())
    )


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
    ``support`` as retrieval ranked it: the head is adapted on the shapes in the order of
    their ids (one head per support set, whatever the ranking), the kNN mix and the refit
    read them as ranked.
    """
    import torch

    from .adapt import adapt_head, pack_labels, widen_head
    from .geometry import one_thread_on_cpu

    device = feature_cache.device
    target_features = feature_cache.head_inputs(
        target_points, target_encoder_features, target_descriptors
    )[None]  # (1, N, C')
    target = _Target(
        target_points,
        target_features,
        dense_points,
        num_parts,
        len(support),
        [shape.points for shape in support],
        [shape.as_given for shape in support],
    )
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

    def adapt(features: torch.Tensor, labels) -> dict[str, torch.Tensor]:
        with torch.no_grad(), one_thread_on_cpu(device):
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

    if target_labels is not None:  # the head depends on the target: nothing to reuse
        head = adapt(features, labels)
        return _dense_predictions(model, head, features, labels, target, settings, chunk, seed)
    # the adaptation draws its rows by position: on the shapes in the order of their ids,
    # the head is one per support set (retrieval ranks the same shapes otherwise for each
    # target), and targets sharing the set share it
    by_id = sorted(range(len(support)), key=lambda row: support[row].shape_id)
    key = support_head_key(features, labels, head_0, settings, seed, by_id)

    def adapt_by_id() -> dict[str, torch.Tensor]:
        rows = torch.tensor(by_id)
        return adapt(features[rows], labels.select(rows))

    def predict() -> tuple[np.ndarray, np.ndarray]:
        head = feature_cache.adapted_head(key, adapt_by_id, head_0)
        return _dense_predictions(model, head, features, labels, target, settings, chunk, seed)

    # what the head then makes of this target: also a function of the key, of the
    # target's points and head inputs, and of the support's points as posed and which of
    # them lie as given (the kNN shapes and the laid-on labels read those directly)
    features_seen = target_features[0].detach().cpu().numpy()
    as_given = "".join("1" if shape.as_given else "0" for shape in support)
    predictions_key = array_key(
        dense_points,
        target_points,
        features_seen,
        *target.support_points,
        f"{key} {features_seen.shape} {[len(p) for p in target.support_points]} {as_given} {by_id}",
    )
    return feature_cache.dense_predictions(predictions_key, predict, len(dense_points), num_parts)


class _Target(NamedTuple):
    """What is predicted: network points (N, 3), their head inputs (1, N, C'), the dense
    points (n, 3) to label, the number of parts R, how many support shapes the last rows
    of the packed labels are, their points (each (N, 3), as posed for the target) and
    whether each lies as its source gave it."""

    points: np.ndarray
    features: torch.Tensor
    dense_points: np.ndarray
    num_parts: int
    support_count: int
    support_points: list[np.ndarray]
    support_as_given: list[bool]


def _dense_predictions(
    model,
    head: dict[str, torch.Tensor],
    features: torch.Tensor,
    labels,
    target: _Target,
    settings: AdaptSettings,
    chunk: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The adapted ``head``'s labels (n,) int64 and probabilities (n,) float32 of the
    target's dense points: :func:`_network_point_probabilities`, without the parts the
    target lacks (:mod:`~bipart_cli.presence`), interpolated to the dense points."""
    import torch

    from .geometry import one_thread_on_cpu, three_nn_interpolate
    from .presence import weigh_parts_by_presence

    device = target.features.device
    points = torch.from_numpy(np.ascontiguousarray(target.points, dtype=np.float32)).to(device)
    with torch.no_grad(), one_thread_on_cpu(device):
        probs = _network_point_probabilities(model, head, features, labels, target, settings, seed)
        if target.support_count:  # how large a part is, from the support's labels alone
            support_targets = labels.targets[-target.support_count :, :, : target.num_parts]
            probs = weigh_parts_by_presence(probs, support_targets, settings.presence)
        dense = np.ascontiguousarray(target.dense_points, dtype=np.float32)
        dense = torch.from_numpy(dense).to(device)
        out_labels, out_scores = [], []
        for start in range(0, len(dense), chunk):
            block = dense[start : start + chunk][None]  # (1, c, 3)
            block_probs = three_nn_interpolate(block, points[None], probs[None])[0]  # (c, R)
            score, label = block_probs.max(-1)
            out_labels.append(label.cpu())
            out_scores.append(score.cpu())
    return torch.cat(out_labels).numpy().astype(np.int64), torch.cat(out_scores).numpy().astype(
        np.float32
    )


def _network_point_probabilities(
    model, head, features, labels, target: _Target, settings: AdaptSettings, seed: int
) -> torch.Tensor:
    """(N, R) probabilities of the target's network points (:mod:`~bipart_cli.refine`): the
    head's, mixed with the kNN transfer from the support shapes nearest the target,
    smoothed; then the same again with the head fitted on the target's confident labels
    beside the labeled points of ``features`` (M', N, C') and ``labels``."""
    from .adapt import fit_head, labeled_points, predict_probabilities
    from .refine import (
        SELF_TRAINING_BATCH,
        SELF_TRAINING_LR,
        Smoother,
        knn_probabilities,
        self_training_targets,
    )

    num_parts, target_features = target.num_parts, target.features
    transferred = registered = None
    if settings.knn_weight > 0 or settings.registered_weight > 0:
        rows = _knn_rows(target, len(features), settings.knn_shapes)
    if settings.knn_weight > 0:
        reference, weights, _ = labeled_points(
            features[rows], labels.select(rows), head, box_reduction="sum"
        )
        transferred = knn_probabilities(
            target_features[0], reference, weights[:, :num_parts], settings.knn_k
        )
    if settings.registered_weight > 0:
        registered = _registered_transfer(target, labels, rows, len(features))
    # the neighbours and their weights, once for the head's probabilities and the refit's
    smoother = None
    if settings.smooth > 0:
        smoother = Smoother(
            target.points,
            features=target_features[0],
            edge_scale=settings.edge_scale,
            device=target_features.device,
        )

    def probabilities(head) -> torch.Tensor:
        probs = predict_probabilities(model, target_features, head, num_parts)[0]  # (N, R)
        if transferred is not None:
            probs = (1 - settings.knn_weight) * probs + settings.knn_weight * transferred
        if registered is not None:
            weight = settings.registered_weight
            probs = (1 - weight) * probs + weight * registered
        return probs if smoother is None else smoother(probs, settings.smooth)

    probs = probabilities(head)
    if settings.self_training_steps <= 0:
        return probs
    import torch

    points, weights, mask = labeled_points(features, labels, head, box_reduction="sum")
    rows, own_weights, own_mask = self_training_targets(
        probs, weights.sum(), len(features), weights.shape[1]
    )
    refit = fit_head(
        torch.cat([points, target_features[0][rows]]),
        torch.cat([weights, own_weights]),
        torch.cat([mask, own_mask]),
        head,
        settings.self_training_steps,
        SELF_TRAINING_LR,
        optimizer="adam",
        batch_points=SELF_TRAINING_BATCH,
        seed=seed,
    )
    return probabilities(refit)


def _knn_rows(target: _Target, rows: int, count: int):
    """(k,) rows of the packed features the kNN transfer reads: the target's own labeled
    rows (VLM mode) and the ``count`` support shapes nearest it (all with 0)."""
    import torch

    from .refine import nearest_shapes

    first_support = rows - target.support_count
    if count <= 0 or count >= target.support_count:
        return torch.arange(rows)
    nearest = nearest_shapes(target.points, target.support_points, count) + first_support
    return torch.from_numpy(np.concatenate([np.arange(first_support), np.sort(nearest)]))


def _registered_transfer(
    target: _Target, labels, rows: torch.Tensor, packed: int
) -> torch.Tensor | None:
    """(N, R) label transfer from the support shapes among ``rows`` (:func:`_knn_rows` of the
    ``packed`` rows of labels) that lie as given, each laid onto the target per axis
    (:func:`~bipart_cli.registration.registered_transfer`); None without such a shape."""
    import torch

    from .registration import registered_transfer

    first_support = packed - target.support_count
    shapes = [int(row) - first_support for row in rows if row >= first_support]
    chosen = [shape for shape in shapes if target.support_as_given[shape]]
    if not chosen:
        return None
    rows_chosen = [first_support + shape for shape in chosen]
    targets = labels.targets[rows_chosen, :, : target.num_parts].detach().cpu().numpy()
    transferred = registered_transfer(
        target.points, [target.support_points[i] for i in chosen], list(targets)
    )
    if transferred is None:
        return None
    return torch.from_numpy(transferred).to(target.features)


def support_head_key(
    features: torch.Tensor,
    labels,
    head_0: dict[str, torch.Tensor],
    settings: AdaptSettings,
    seed: int,
    order: list[int],
) -> str:
    """sha256 hex of all a head adapted on the support alone depends on: the support's head
    inputs (M, N, C') and exact packed targets, their shapes taken in ``order`` (rows), φ_0,
    the adaptation settings, the seed, the device type (CUDA's float error differs from the
    CPU's) and bipart's code (a version that adapts or predicts otherwise never reads an
    older one's heads or labels). Rows are hashed where they lie, not copied."""
    import dataclasses

    import torch

    def host(tensor: torch.Tensor) -> np.ndarray:
        return tensor.detach().cpu().numpy()

    ordered = labels.select(torch.tensor(order))
    width = len(str(len(order)))  # names sort in ``order``
    arrays = {f"features.{rank:0{width}d}": host(features[row]) for rank, row in enumerate(order)}
    arrays |= {
        f"labels.{f.name}": host(getattr(ordered, f.name)) for f in dataclasses.fields(ordered)
    }
    arrays |= {f"head.{name}": host(tensor) for name, tensor in head_0.items()}
    rest = repr((dataclasses.astuple(settings), seed, features.device.type))
    return hashlib.sha256(f"{arrays_sha256(arrays)} {rest} {code_identity()}".encode()).hexdigest()
