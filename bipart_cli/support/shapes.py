"""What a support set holds: shapes with labels in the target's part names."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..orientation import POSE_MARGIN

if TYPE_CHECKING:
    from ..labeling.pseudo_labels import PseudoLabels


def remap_pseudo_labels(pseudo_labels: PseudoLabels, part_names: list[str]) -> PseudoLabels:
    """Re-index boxes to ``part_names`` by (case-insensitive) name; boxes of other parts are dropped."""
    lookup = {name.lower(): i for i, name in enumerate(part_names)}
    source = [lookup.get(name.lower(), -1) for name in pseudo_labels.part_names]
    new_part = np.array([source[p] for p in pseudo_labels.part_index], dtype=np.int64)
    keep = new_part >= 0
    return pseudo_labels.select_boxes(keep, part_index=new_part[keep], part_names=part_names)


@dataclass
class SupportShape:
    """One support shape, ready for the inner loop.

    points : (N, 3) float32; pseudo_labels over those N points, re-indexed to the
    target's part names; encoder_features : (N, F) as cached (an index's are float16) or None;
    descriptors : (N, D) geometric descriptors or None when not cached; as_given : whether
    the shape lies as its source gave it (neither turned to a target's pose nor laid on its
    principal axes).
    """

    shape_id: str
    points: np.ndarray
    pseudo_labels: PseudoLabels
    encoder_features: np.ndarray | None = None
    descriptors: np.ndarray | None = None
    as_given: bool = True

    def principal_aligned(self) -> SupportShape:
        """This shape turned onto its principal axes (``--up pca``)."""
        from ..orientation import apply_rotation, pca_rotation

        points = apply_rotation(self.points, pca_rotation(self.points.astype(np.float64)))
        # descriptors are rotation-invariant: they stay; the encoder features do not
        return SupportShape(
            f"{self.shape_id}#pca", points, self.pseudo_labels, None, self.descriptors, False
        )

    def posed_like(self, target_points: np.ndarray, margin: float = POSE_MARGIN) -> SupportShape:
        """This shape turned to lie as ``target_points`` (n, 3) do, or itself if it already does.

        A rotation must beat the shape as given by ``margin`` of its Chamfer distance
        (:func:`~bipart_cli.orientation.matching_rotation`).

        PSB and users' folders mix up axes and shapes lying on their side; the head
        reads positions, so a support shape in another pose teaches the wrong places.
        """
        from ..orientation import matching_rotation

        return self.turned(matching_rotation(target_points, self.points, margin))

    def turned(self, rotation: np.ndarray) -> SupportShape:
        """This shape turned by ``rotation`` (3, 3) about its centroid, or itself for the identity.

        The descriptors do not change with rotation and stay; the cached encoder
        features do, and are dropped.
        """
        if np.array_equal(rotation, np.eye(3)):
            return self
        centre = self.points.mean(0)
        points = ((self.points - centre) @ rotation.T + centre).astype(np.float32)
        # the id keys the in-process feature cache, so it names the rotation
        digest = hashlib.sha256(np.round(rotation, 6).tobytes()).hexdigest()[:12]
        return SupportShape(
            f"{self.shape_id}#turned-{digest}",
            points,
            self.pseudo_labels,
            None,
            self.descriptors,
            as_given=False,
        )


def unprovided_parts(
    part_names: list[str], support: list[SupportShape], target_labels: PseudoLabels | None
) -> list[str]:
    """The requested parts that no support shape and no target box labels (in ``part_names`` order)."""
    provided: set[int] = set()
    for labels in [s.pseudo_labels for s in support] + (
        [] if target_labels is None else [target_labels]
    ):
        has_points = labels.masks.any(axis=1) if labels.num_boxes else np.zeros(0, bool)
        provided.update(int(p) for p in labels.part_index[has_points])
    return [name for i, name in enumerate(part_names) if i not in provided]


def unfound_parts_warning(
    part_names: list[str], support: list[SupportShape], labels: np.ndarray
) -> str | None:
    """One warning line naming the parts that every support shape has and no point of the
    target was given, or None.

    labels : (n,) int, the target's labels (indexes into ``part_names``, -1 none). A part
    the target lacks is dropped on purpose (:mod:`~bipart_cli.presence`); when every support
    shape has it, the user learns that the target either lacks it or holds it otherwise
    than the support does (a folded blade, a drawer where the support has doors). Needs two
    support shapes or more: one is no evidence of "every".
    """
    if len(support) < 2:
        return None
    labels = np.asarray(labels)
    counts = np.bincount(labels[labels >= 0], minlength=len(part_names))
    lacked = {name for shape in support for name in unprovided_parts(part_names, [shape], None)}
    unfound = [name for i, name in enumerate(part_names) if counts[i] == 0 and name not in lacked]
    if not unfound:
        return None
    them = "it" if len(unfound) == 1 else "them"
    return (
        f"every one of the {len(support)} support shapes has {_quoted(unfound)}, but no point "
        f"of this shape was called so: it lacks {them} or holds {them} otherwise (folded, "
        f"hidden, of another form); support shapes like this one would label {them}"
    )


def _quoted(names: list[str]) -> str:
    """``the part 'arm'`` or ``the parts 'arm', 'cushion'``."""
    listed = ", ".join(repr(name) for name in names)
    return f"the part {listed}" if len(names) == 1 else f"the parts {listed}"


def support_gap_warning(
    part_names: list[str],
    support: list[SupportShape],
    target_labels: PseudoLabels | None,
    zero_shot: bool = False,
) -> str | None:
    """One warning line naming the requested parts that no support shape labels (and
    whether the target's detector boxes make up for them), or None when none is missing.

    ``zero_shot``: the support set is the target's own boxes, so only they count.
    """
    boxed = (
        set()
        if target_labels is None
        else set(part_names) - set(unprovided_parts(part_names, [], target_labels))
    )
    if zero_shot:
        missing = [name for name in part_names if name not in boxed]
        return f"no detector box finds {_quoted(missing)}: nothing labels it" if missing else None
    lacking = unprovided_parts(part_names, support, None)
    if not lacking:
        return None
    shapes = f"none of the {len(support)} support shapes has" if support else "no support shape has"
    line = f"{shapes} {_quoted(lacking)}"
    taught = [name for name in lacking if name in boxed]
    untaught = [name for name in lacking if name not in boxed]
    if taught:
        line += f"; only the detector's boxes teach {_quoted(taught)}"
    if untaught:
        them = "it" if len(untaught) == 1 else "them"
        untaught_text = them if untaught == lacking else _quoted(untaught)
        line += (
            f"; nothing teaches {untaught_text}: add labeled shapes that have {them} to the support"
        )
    return line
