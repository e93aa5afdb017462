"""Which of the asked-for parts the target has at all.

Real objects of one kind differ in which parts they have: a faucet with or without a
separate spout, a cabinet of doors only or of drawers too, a cart with no wheels. The
adapted head still gives every part some points, and a part the target lacks then costs
its whole IoU (an absent part is right only when nothing is called so). The support says
how large a part is when a shape has it: a part the target shows far less of than the
smallest share it has in any support shape that has it is taken as absent, and its
points go to their next most likely part.

The shares come from the support shapes' labels alone, never the target's own pseudo
labels: zero-shot (the target its own support) keeps every part.

Light module: numpy only at import; torch inside the function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# a part is kept when the target shows at least this share of its smallest support share
# (chosen on the train splits: RESULTS section 29)
PART_PRESENCE = 0.5


def support_part_shares(support_targets: torch.Tensor) -> torch.Tensor:
    """The smallest share each part has in a support shape that has it.

    support_targets : (M, N, R) float, each support point's weight per part (Eq. 2's
    targets; a ground-truth label is a one-hot row)  ->  (R,) float, in (0, 1], or 0 for a
    part no support shape has (nothing says how large it is: it is never taken as absent,
    so a part only the target's own pseudo labels show is kept).
    """
    import torch

    mass = support_targets.sum(1)  # (M, R)
    shares = mass / mass.sum(-1, keepdim=True).clamp_min(1e-12)  # (M, R)
    shares = torch.where(shares > 0, shares, torch.full_like(shares, float("inf")))
    smallest = shares.min(0).values  # (R,)
    return torch.where(torch.isinf(smallest), torch.zeros_like(smallest), smallest)


def absent_parts(probs: torch.Tensor, smallest_shares: torch.Tensor, ratio: float) -> torch.Tensor:
    """The parts the target lacks: (R,) bool.

    probs : (N, R) the target's part probabilities; smallest_shares : (R,) from
    :func:`support_part_shares`. A part is absent when fewer than ``ratio`` x its smallest
    support share of the target's points call it most likely. Never every part; with
    ``ratio`` 0, none.
    """
    import torch

    counts = torch.bincount(probs.argmax(-1), minlength=probs.shape[1])[: probs.shape[1]]
    shown = counts.to(probs.dtype) / max(len(probs), 1)  # (R,)
    absent = shown < ratio * smallest_shares.to(probs.dtype)
    if bool(absent.all()):
        return torch.zeros_like(absent)
    return absent


def drop_absent_parts(
    probs: torch.Tensor, support_targets: torch.Tensor, ratio: float = PART_PRESENCE
) -> torch.Tensor:
    """probs (N, R) with the parts of :func:`absent_parts` at 0, rows renormalised.

    support_targets : (M, N', R) as in :func:`support_part_shares`.
    """
    if ratio <= 0 or len(probs) == 0:
        return probs
    absent = absent_parts(probs, support_part_shares(support_targets), ratio)
    if not bool(absent.any()):
        return probs
    kept = probs.masked_fill(absent[None], 0.0)
    return kept / kept.sum(-1, keepdim=True).clamp_min(1e-12)
