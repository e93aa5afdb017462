"""Distillation loss of BiPart, Eq. 2, as written in the paper.

For one shape with pseudo labels ``C = {(M^d, Y^d)}``::

    L = - Σ_d 1/|M^d| Σ_n Σ_r M^d_n H^d_n Z^d_{n,r} log Ŷ_{n,r}

with ``H^d_n = max_r Y^d_{n,r}`` (the box score) and ``Z^d`` the one-hot of the
box's part. ``Ŷ`` is the softmax over the asset's first ``R`` head logits only.

PartDistill's released code (``model/loss.py``) normalises differently: it sums
the score-weighted cross-entropy over boxes, divides *per point* by the number of
boxes covering that point and averages over all points. Here the normalisation
is *per box* (``1/|M^d|``), exactly as in Eq. 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ..labeling.pseudo_labels import PseudoLabels


def masked_log_softmax(logits: torch.Tensor, num_parts: torch.Tensor) -> torch.Tensor:
    """log-softmax over the first ``num_parts[b]`` logits; the rest are ``-inf``.

    logits : (B, N, R_max); num_parts : (B,) long  ->  (B, N, R_max)
    """
    r_max = logits.shape[-1]
    beyond = torch.arange(r_max, device=logits.device) >= num_parts.unsqueeze(-1)  # (B, R_max)
    return logits.masked_fill(beyond.unsqueeze(1), float("-inf")).log_softmax(dim=-1)


def distillation_loss(
    logits: torch.Tensor,
    num_parts: torch.Tensor,
    masks: torch.Tensor,
    box_part: torch.Tensor,
    box_score: torch.Tensor,
    box_valid: torch.Tensor,
    box_reduction: str = "sum",
) -> torch.Tensor:
    """Eq. 2 for a batch of shapes with padded boxes.

    Parameters
    ----------
    logits : (B, N, R_max) float
    num_parts : (B,) long, R of each shape (``1 <= R <= R_max``)
    masks : (B, D, N) bool, ``M^d`` (padding boxes may hold anything)
    box_part : (B, D) long, the part of box d (``< num_parts`` for valid boxes)
    box_score : (B, D) float, ``H^d``
    box_valid : (B, D) bool, False for padding
    box_reduction : "sum" (Eq. 2 as written) or "mean"
        ``"mean"`` divides each shape's Eq. 2 by its number of boxes. Eq. 2 grows
        with the box count, which is ~10x larger for a detector-labeled shape
        (a box per view and part) than for a ``given`` one (a box per part), so a
        fixed inner learning rate cannot suit both; the adaptation and training
        pipelines default to "mean" for that reason (see ``AdaptSettings``).

    Returns
    -------
    loss : (B,) per shape. Empty boxes (``|M^d| = 0``) add 0; a shape with no
    boxes has loss 0.
    """
    if bool(((box_part >= num_parts.unsqueeze(-1)) & box_valid).any()):
        raise ValueError("a box names a part index >= the shape's number of parts")
    log_probs = masked_log_softmax(logits, num_parts)  # (B, N, R_max)
    num_points = logits.shape[1]
    part_index = box_part.clamp(min=0).unsqueeze(-1).expand(-1, -1, num_points)  # (B, D, N)
    at_part = log_probs.transpose(1, 2).gather(1, part_index)  # (B, D, N): log Ŷ_{n, part(d)}
    inside = masks & box_valid.unsqueeze(-1)  # (B, D, N)
    summed = torch.where(inside, at_part, at_part.new_zeros(())).sum(-1)  # (B, D)
    box_size = inside.sum(-1).clamp(min=1).to(logits.dtype)  # (B, D); empty boxes sum to 0
    weight = box_score.to(logits.dtype) * box_valid.to(logits.dtype)  # (B, D)
    loss = -(weight * summed / box_size).sum(-1)  # (B,)
    if box_reduction == "mean":
        return loss / box_valid.sum(-1).clamp(min=1).to(loss.dtype)
    if box_reduction != "sum":
        raise ValueError(f"box_reduction must be 'sum' or 'mean', not {box_reduction!r}")
    return loss


def point_targets(
    masks: torch.Tensor,
    box_part: torch.Tensor,
    box_score: torch.Tensor,
    box_valid: torch.Tensor,
    num_columns: int,
    normalise: str = "box",
) -> torch.Tensor:
    """Eq. 2 folded over its boxes into one weight per point and part.

    ``normalise="box"`` (Eq. 2): ``A_{n,r} = Σ_{d: part(d) = r} H^d M^d_n / |M^d|``,
    so that Eq. 2 (sum form) is ``-Σ_n Σ_r A_{n,r} log Ŷ_{n,r}``: every box weighs
    the same, so a small part's points weigh more than a large part's.
    ``normalise="point"`` (PartDistill's released code): ``A_{n,r} = Σ_{d: part(d) = r}
    H^d M^d_n / (N Σ_d M^d_n)``: every covered point weighs the same (its boxes share
    it), averaged over the shape's N points. The labels never change during
    adaptation, so A is computed once and each inner step costs O(N R), not O(D N).

    masks : (B, D, N) bool; box_part, box_score, box_valid : (B, D)
    -> (B, N, num_columns) float32, ``num_columns`` > every valid box's part.
    """
    inside = (masks & box_valid.unsqueeze(-1)).float()  # (B, D, N)
    part = torch.nn.functional.one_hot(box_part.clamp(min=0), num_columns).float()  # (B, D, R)
    weight = box_score.float() * box_valid.float()  # (B, D)
    if normalise == "box":
        box_size = inside.sum(-1).clamp(min=1)  # (B, D); empty boxes add 0
        return torch.einsum("bdn,bd,bdr->bnr", inside, weight / box_size, part)
    if normalise != "point":
        raise ValueError(f"normalise must be 'box' or 'point', not {normalise!r}")
    covering = inside.sum(1).clamp(min=1) * inside.shape[-1]  # (B, N): boxes over p, times N
    return torch.einsum("bdn,bd,bdr->bnr", inside / covering[:, None], weight, part)


def distillation_loss_from_targets(
    logits: torch.Tensor,
    num_parts: torch.Tensor,
    targets: torch.Tensor,
    box_count: torch.Tensor,
    box_reduction: str = "sum",
) -> torch.Tensor:
    """:func:`distillation_loss` from :func:`point_targets`: the same numbers, faster.

    logits : (B, N, R_max); num_parts : (B,) long; targets : (B, N, R) with R <= R_max;
    box_count : (B,) valid boxes per shape (for ``"mean"``)  ->  (B,)
    """
    log_probs = masked_log_softmax(logits, num_parts)[..., : targets.shape[-1]]  # (B, N, R)
    log_probs = log_probs.masked_fill(targets == 0, 0.0)  # 0 · log 0 is 0, not nan
    loss = -(targets.to(logits.dtype) * log_probs).sum((1, 2))  # (B,)
    if box_reduction == "mean":
        return loss / box_count.clamp(min=1).to(loss.dtype)
    if box_reduction != "sum":
        raise ValueError(f"box_reduction must be 'sum' or 'mean', not {box_reduction!r}")
    return loss


def pack_pseudo_labels(
    pseudo_labels: list[PseudoLabels], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad pseudo labels of several shapes (all over the same N points) to one box count.

    Returns ``masks`` (B, D, N) bool, ``box_part`` (B, D) long, ``box_score`` (B, D)
    float32 and ``box_valid`` (B, D) bool, with ``D = max(1, max boxes)``.
    """
    count = len(pseudo_labels)
    num_points = pseudo_labels[0].num_points if count else 0
    if any(labels.num_points != num_points for labels in pseudo_labels):
        raise ValueError("all pseudo labels must cover the same points")
    max_boxes = max([labels.num_boxes for labels in pseudo_labels] + [1])
    masks = np.zeros((count, max_boxes, num_points), dtype=bool)
    box_part = np.zeros((count, max_boxes), dtype=np.int64)
    box_score = np.zeros((count, max_boxes), dtype=np.float32)
    box_valid = np.zeros((count, max_boxes), dtype=bool)
    for row, labels in enumerate(pseudo_labels):
        boxes = labels.num_boxes
        masks[row, :boxes] = labels.masks
        box_part[row, :boxes] = labels.part_index
        box_score[row, :boxes] = labels.scores
        box_valid[row, :boxes] = True
    return tuple(  # type: ignore[return-value]
        torch.from_numpy(array).to(device) for array in (masks, box_part, box_score, box_valid)
    )
