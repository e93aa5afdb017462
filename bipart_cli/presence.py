"""Which of the asked-for parts the target has at all.

Real objects of one kind differ in which parts they have: a faucet with or without a
separate spout, a cabinet of doors only or of drawers too, a cart with no wheels. The
adapted head still gives every part some points, and a part the target lacks then costs
its whole IoU (an absent part is right only when nothing is called so). The support says
how large a part is when a shape has it: a part the target shows far less of than the
smallest share it has in any support shape that has it is scaled down, the further below
the more (none of it when no point calls it most likely), and its points go to their next
most likely part. The scaling is smooth: a part just under the threshold keeps its points,
so it does not come and go with the adaptation's random draws.

The shares come from the support shapes' labels alone, never the target's own pseudo
labels: zero-shot (the target its own support) keeps every part.

Light module: numpy only at import; torch inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# a part is kept whole when the target shows at least this share of its smallest support
# share (chosen on the train splits: RESULTS section 29)
PART_PRESENCE = 0.5
# below it, its probabilities are scaled by (shown / threshold) ** this (RESULTS section 45)
PRESENCE_POWER = 4


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


def presence_factors(
    probs: torch.Tensor, smallest_shares: torch.Tensor, ratio: float
) -> torch.Tensor:
    """How much of each part the target keeps: (R,) in [0, 1].

    probs : (N, R) the target's part probabilities; smallest_shares : (R,) from
    :func:`support_part_shares`. A part that at least ``ratio`` x its smallest support share
    of the target's points call most likely keeps 1; below that, ``(shown / (ratio x
    smallest)) ** PRESENCE_POWER``: 0 for a part no point calls most likely, near 1 for one
    just under the threshold (a hard cut there made a part that sits on it come and go
    with the adaptation's draws). Never every part below 1; with ``ratio`` 0, none.
    """
    import torch

    counts = torch.bincount(probs.argmax(-1), minlength=probs.shape[1])[: probs.shape[1]]
    shown = counts.to(probs.dtype) / max(len(probs), 1)  # (R,)
    threshold = ratio * smallest_shares.to(probs.dtype)  # (R,), 0 where no support shape has it
    below = shown < threshold
    if bool(below.all()) or not bool(below.any()):
        return torch.ones_like(shown)
    fraction = shown / threshold.clamp_min(1e-12)
    return torch.where(below, fraction**PRESENCE_POWER, torch.ones_like(shown))


def weigh_parts_by_presence(
    probs: torch.Tensor, support_targets: torch.Tensor, ratio: float = PART_PRESENCE
) -> torch.Tensor:
    """probs (N, R) with each part scaled by :func:`presence_factors`, rows renormalised:
    a part the target lacks loses its points to their next most likely part.

    support_targets : (M, N', R) as in :func:`support_part_shares`.
    """
    if ratio <= 0 or len(probs) == 0:
        return probs
    factors = presence_factors(probs, support_part_shares(support_targets), ratio)
    if bool((factors == 1).all()):
        return probs
    kept = probs * factors[None]
    return kept / kept.sum(-1, keepdim=True).clamp_min(1e-12)
