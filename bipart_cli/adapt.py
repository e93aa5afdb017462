"""Fast adaptation: the inner loop of BiPart (Sec. 3.3, Eq. 3), head only.

The encoder and extractor features of the support shapes are computed once
and reused by every inner step; only the small head is differentiated. The
same :func:`inner_loop` serves inference (no outer graph) and bi-level
training (``create_graph=True`` keeps second-order terms for the outer loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .io.regions import REGION_AGREEMENT
from .orientation import ALIGNED_POSE_MARGIN, POSE_MARGIN
from .presence import PART_PRESENCE
from .refine import EDGE_SCALE, KNN_SHAPES, MAX_EDGE_SCALE, SELF_TRAINING_STEPS
from .registration import REGISTERED_WEIGHT
from .runtime import check_choice, check_count, check_fraction, check_rate

if TYPE_CHECKING:
    import torch

    from .labeling.pseudo_labels import PseudoLabels
    from .model import BiPartModel


@dataclass
class AdaptSettings:
    """Inner-loop settings at inference.

    The defaults were chosen on the train splits of ``../shared/data``, never the
    test splits (``benchmarks/quality/adapt_options.py``, RESULTS section 9): the head reads
    the network features plus the geometric descriptors (``descriptors="geo-v1"``),
    is fitted by Adam for 100 steps of 512 support points drawn per step at lr 0.02
    on a loss that weighs every labeled point the same (``normalise="point"``),
    its probabilities are mixed half and half with kNN label transfer from the
    support points' 4 nearest in the head's input space (``knn_weight``,
    ``knn_k``), and the result is smoothed over 4 rounds of neighbour averaging
    (also the rounds over face adjacency for a mesh's face labels, RESULTS 15).
    Against the paper's inner loop this took the mean of 15 validation categories
    from the nearest-neighbour floor's 54.4 to 71.4 (69.4 with Eq. 2's per-box
    weights, 68.3 without smoothing either); the kNN mix took it from 72.1 to
    73.2 (RESULTS section 14). With ``match_pose`` the support is retrieved at the
    target's best quarter turn and each shape turned to lie as the target does
    (:meth:`SupportShape.posed_like`, a turn must gain ``pose_margin`` of the Chamfer
    distance): 73.2 -> 75.3 -> 75.9 (sections 17 and 19). When most of the support already
    fits the target as given (an aligned collection), a turn must gain
    ``aligned_pose_margin`` instead (:func:`~bipart_cli.orientation.matching_rotations`).
    With ``position`` the head also reads where each point lies in the shape
    (:func:`~bipart_cli.predict.head_inputs`;
    validation pm 65.8 -> 67.2, PSB and human_seg 75.9 -> 76.3). On a mesh, the labels then
    follow the asset's own pieces (:mod:`~bipart_cli.io.regions`) where at least
    ``region_agreement`` of a piece's points agree (1: off; RESULTS section 28). A part
    the target shows less than ``presence`` x its smallest share in a support shape that
    has it is scaled down, to nothing when none of its points is left
    (:mod:`~bipart_cli.presence`; 0: off; validation pm 67.2 -> 71.3, RESULTS section 29;
    smooth, not a cut, since section 45). The kNN mix reads the ``knn_shapes`` support shapes
    nearest the target, the smoothing weighs neighbours by how alike the head's inputs are
    (``edge_scale``), and the head is fitted ``self_training_steps`` more with the target's
    confident labels (:mod:`~bipart_cli.refine`; validation PSB and human_seg 77.7 -> 78.8,
    pm 71.3 -> 72.8, RESULTS section 31). The support shapes among those that lie as
    given are laid onto the target per axis and their labels mixed in at
    ``registered_weight`` (:mod:`~bipart_cli.registration`; validation pm 73.5 -> 75.2,
    PSB and human_seg 78.8 -> 79.0).
    The paper's inference (Sec. 4.1) is :data:`PAPER_INNER_LOOP`.

    ``box_reduction="mean"`` averages Eq. 2 over each shape's boxes instead of
    summing (``"sum"``, Eq. 2 as written): detector labels bring ~10x more boxes
    per shape than ``given`` labels, and with a sum the same lr 0.3 diverges on
    one and stalls on the other (measured: chance-level accuracy either way on a
    separable toy split, 87-94% with the mean).
    """

    steps: int = 100
    lr: float = 0.02
    support_size: int = 8
    strategy: str = "part-perfect"
    box_reduction: str = "mean"
    optimizer: str = "adam"
    batch_points: int = 512
    descriptors: str = "geo-v1"
    smooth: int = 4
    normalise: str = "point"
    knn_weight: float = 0.5
    knn_k: int = 4
    match_pose: bool = True
    pose_margin: float = POSE_MARGIN
    aligned_pose_margin: float = ALIGNED_POSE_MARGIN
    position: bool = True
    region_agreement: float = REGION_AGREEMENT
    presence: float = PART_PRESENCE
    knn_shapes: int = KNN_SHAPES
    edge_scale: float = EDGE_SCALE
    self_training_steps: int = SELF_TRAINING_STEPS
    registered_weight: float = REGISTERED_WEIGHT

    def __post_init__(self) -> None:
        check_box_reduction(self.box_reduction)
        check_choice("--optimizer", self.optimizer, OPTIMIZERS)
        check_choice("--descriptors", self.descriptors, DESCRIPTOR_CHOICES)
        check_choice("--normalise", self.normalise, NORMALISATIONS)
        check_fraction("--knn-weight", self.knn_weight)
        check_count("--knn-k", self.knn_k, 1, MAX_KNN_K)
        check_fraction("pose_margin", self.pose_margin)
        check_fraction("aligned_pose_margin", self.aligned_pose_margin)
        check_fraction("--region-agreement", self.region_agreement)
        check_fraction("--presence", self.presence)
        check_count("knn_shapes", self.knn_shapes, 0, MAX_KNN_K)
        if self.edge_scale != 0:  # 0: neighbours weigh the same
            check_rate("edge_scale", self.edge_scale, MAX_EDGE_SCALE)
        check_count("self_training_steps", self.self_training_steps, 0, MAX_SELF_TRAINING_STEPS)
        check_fraction("registered_weight", self.registered_weight)

    @property
    def shape_reduction(self) -> str:
        """``box_reduction`` as the loss applies it: with ``normalise="point"`` every
        support point weighs the same, so no shape is rescaled by its box count."""
        return self.box_reduction if self.normalise == "box" else "sum"


OPTIMIZERS = ("adam", "sgd")
MAX_KNN_K = 1024
MAX_SELF_TRAINING_STEPS = 10_000
NORMALISATIONS = ("point", "box")
DESCRIPTOR_CHOICES = ("geo-v1", "none")
# the paper's inference (Sec. 4.1): K=10 plain SGD steps at lr 0.3 on all support points,
# no descriptors, no smoothing; bi-level training meta-learns for this inner loop
PAPER_INNER_LOOP = {
    "optimizer": "sgd",
    "steps": 10,
    "lr": 0.3,
    "batch_points": 0,
    "descriptors": "none",
    "smooth": 0,
    "normalise": "box",
    "knn_weight": 0.0,
    "match_pose": False,
    "position": False,
    "presence": 0.0,
    "self_training_steps": 0,
    "registered_weight": 0.0,
}


BOX_REDUCTIONS = ("mean", "sum")


def check_box_reduction(value: str) -> str:
    """``--box-reduction`` must be ``mean`` or ``sum`` (a usage error otherwise)."""
    if value not in BOX_REDUCTIONS:
        from .errors import UsageError

        raise UsageError(f"--box-reduction must be mean or sum, not {value!r}")
    return value


@dataclass
class PackedLabels:
    """Pseudo labels of several shapes padded to the same box count.

    masks : (B, D, N) bool; box_part : (B, D) long; box_score : (B, D) float;
    box_valid : (B, D) bool; num_parts : (B,) long;
    targets : (B, N, R) float, the boxes folded per point and part
    (:func:`~bipart_cli.model.loss.point_targets`), which the loss reads.
    """

    masks: torch.Tensor
    box_part: torch.Tensor
    box_score: torch.Tensor
    box_valid: torch.Tensor
    num_parts: torch.Tensor
    targets: torch.Tensor

    def _map(self, fn) -> PackedLabels:
        return PackedLabels(
            *(
                fn(t)
                for t in (
                    self.masks,
                    self.box_part,
                    self.box_score,
                    self.box_valid,
                    self.num_parts,
                    self.targets,
                )
            )
        )

    def to(self, device) -> PackedLabels:
        return self._map(lambda t: t.to(device))

    def select(self, rows) -> PackedLabels:
        """The shapes at ``rows`` (k,) long."""
        return self._map(lambda t: t[rows])


def pack_labels(
    pseudo_labels: list[PseudoLabels],
    num_parts: int | list[int],
    device="cpu",
    normalise: str = "box",
) -> PackedLabels:
    """Pad a list of PseudoLabels (all over the same N points) into tensors.

    ``num_parts`` is R for every shape (an int) or one R per shape; ``normalise``
    spreads each box's weight over its points (``"box"``, Eq. 2) or each point's
    weight over its boxes (``"point"``), see :func:`~bipart_cli.model.loss.point_targets`.
    """
    import torch

    from .model.loss import pack_pseudo_labels, point_targets

    masks, box_part, box_score, box_valid = pack_pseudo_labels(pseudo_labels, device=device)
    parts = [num_parts] * len(pseudo_labels) if isinstance(num_parts, int) else list(num_parts)
    targets = point_targets(
        masks, box_part, box_score, box_valid, max(parts, default=1), normalise=normalise
    )
    return PackedLabels(
        masks,
        box_part,
        box_score,
        box_valid,
        torch.tensor(parts, dtype=torch.long, device=device),
        targets,
    )


def shape_losses(
    model: BiPartModel,
    head_params: dict[str, torch.Tensor],
    features: torch.Tensor,
    labels: PackedLabels,
    box_reduction: str = "mean",
) -> torch.Tensor:
    """Eq. 2 per shape under the head ``head_params``: features (M, N, C) -> (M,)."""
    from .model.loss import distillation_loss_from_targets

    logits = model.head_logits(features, head_params)  # (M, N, R_max)
    return distillation_loss_from_targets(
        logits,
        labels.num_parts,
        labels.targets,
        labels.box_valid.sum(-1),
        box_reduction=box_reduction,
    )


def support_loss(
    model: BiPartModel,
    head_params: dict[str, torch.Tensor],
    features: torch.Tensor,
    labels: PackedLabels,
    box_reduction: str = "mean",
) -> torch.Tensor:
    """``L_inner = Σ_j L(f(S_j), C_j)`` (Eq. 3) for features (M, N, C) -> scalar."""
    return shape_losses(model, head_params, features, labels, box_reduction).sum()


def inner_loop(
    model: BiPartModel,
    features: torch.Tensor,
    labels: PackedLabels,
    steps: int,
    lr: float,
    head_params: dict[str, torch.Tensor] | None = None,
    create_graph: bool = False,
    box_reduction: str = "mean",
) -> dict[str, torch.Tensor]:
    """K steps of SGD on the head only: ``φ_k = φ_{k-1} - α ∇_φ L_inner``.

    Parameters
    ----------
    features : (M, N, C) extractor features of the support set, computed once.
    labels : the support set's packed pseudo labels.
    head_params : φ_0; defaults to the model's current head.
    create_graph : keep the graph through the updates (second-order MAML).
        Without it each step's gradient is detached (first-order MAML: the
        outer gradient still reaches φ_0 through ``φ_K = φ_0 - α Σ g_k``). At
        inference, call under ``torch.no_grad()``: ``torch.func.grad`` still
        differentiates inside and no outer graph is kept.

    Returns
    -------
    φ_K as a dict of tensors.
    """
    import torch

    params = dict(model.head_params()) if head_params is None else dict(head_params)
    grad_of_loss = torch.func.grad(
        lambda p: support_loss(model, p, features, labels, box_reduction)
    )
    for _ in range(steps):
        grads = grad_of_loss(params)
        if not create_graph:
            grads = {name: g.detach() for name, g in grads.items()}
        params = {name: params[name] - lr * grads[name] for name in params}
    return params


def adapt_head(
    features: torch.Tensor,
    labels: PackedLabels,
    head_params: dict[str, torch.Tensor],
    steps: int,
    lr: float,
    box_reduction: str = "mean",
    optimizer: str = "sgd",
    batch_points: int = 0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """:func:`inner_loop` for inference, with the head's gradient in closed form.

    The same K steps on Eq. 3, without autograd: for the 2-layer MLP head and the
    soft-target cross-entropy of Eq. 2 the gradient is two matrix products per
    layer. Points that no box covers carry no loss and are dropped first. No
    graph is kept, so this cannot serve bi-level training.

    ``optimizer="sgd"`` with ``batch_points=0`` is :func:`inner_loop` exactly (the
    paper's inner step). ``"adam"`` takes Adam steps (β 0.9, 0.999) on the loss of
    ``batch_points`` support points drawn per step (seeded; 0 = all), divided by
    their total target weight: a weighted mean, so the step does not depend on the
    scale of Eq. 2's weights.

    features : (M, N, C) support features; head_params : φ_0 (``fc1``/``fc2``
    weights and biases)  ->  φ_K as a dict of new tensors.
    """

    points, targets, logit_mask = labeled_points(features, labels, head_params, box_reduction)
    return fit_head(
        points, targets, logit_mask, head_params, steps, lr, optimizer, batch_points, seed
    )


def fit_head(
    points: torch.Tensor,
    targets: torch.Tensor,
    logit_mask: torch.Tensor,
    head_params: dict[str, torch.Tensor],
    steps: int,
    lr: float,
    optimizer: str = "sgd",
    batch_points: int = 0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """The steps of :func:`adapt_head` on labeled points, as :func:`labeled_points` gives them.

    points (P, C); targets (P, R_max) weights per part; logit_mask (P, R_max), 0 or -inf;
    head_params: the starting head  ->  the fitted head as a dict of new tensors.
    """
    import torch

    check_choice("--optimizer", optimizer, OPTIMIZERS)
    params = {name: value.detach().clone() for name, value in head_params.items()}
    generator = torch.Generator(device="cpu").manual_seed(seed)
    batch = len(points) if batch_points <= 0 else min(batch_points, len(points))
    moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in params.items()}
    if batch < len(points):  # every step's rows in one draw, one copy to the device
        drawn = torch.randint(len(points), (steps, batch), generator=generator)
        drawn = drawn.to(points.device)
    for step in range(1, steps + 1):
        batch_targets = targets
        if batch < len(points):
            rows = drawn[step - 1]
            batch_targets = targets[rows]
            grads = head_gradients(params, points[rows], batch_targets, logit_mask[rows])
        else:
            grads = head_gradients(params, points, targets, logit_mask)
        if optimizer == "adam":
            # Adam's eps makes it scale-aware: its loss is the batch's weighted mean, whose
            # scale does not depend on how Eq. 2 was normalised (1/|M^d| or 1/N are tiny)
            mass = batch_targets.sum().clamp_min(1e-12)
        for name, grad in grads.items():
            if optimizer == "sgd":  # the full-support gradient, estimated from the batch
                params[name] = params[name] - lr * grad * (len(points) / batch)
            else:  # torch.optim.Adam's update on the batch's weighted-mean loss
                first, second = moments[name]
                grad = grad / mass
                first.mul_(0.9).add_(grad, alpha=0.1)
                second.mul_(0.999).addcmul_(grad, grad, value=0.001)
                denominator = (second.sqrt() / (1 - 0.999**step) ** 0.5).add_(1e-8)
                params[name] = params[name] - (lr / (1 - 0.9**step)) * first / denominator
    return params


def head_gradients(
    params: dict[str, torch.Tensor],
    points: torch.Tensor,
    targets: torch.Tensor,
    logit_mask: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Gradient of ``-Σ_p Σ_r T_pr log softmax(head(x_p))_r`` with respect to the head.

    params : ``fc1``/``fc2`` weights and biases; points (P, C); targets (P, R_max)
    Eq. 2 weights; logit_mask (P, R_max), 0 or -inf  ->  gradients named as ``params``.
    """
    import torch

    w1, b1, w2, b2 = (params[k] for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"))
    hidden = torch.addmm(b1, points, w1.t()).clamp_min_(0)  # (P, H)
    logits = torch.addmm(b2, hidden, w2.t()).add_(logit_mask)  # (P, R)
    # dL/dlogits of -Σ_r T_r log softmax_r = (Σ_r T_r) softmax - T
    d_logits = logits.softmax(-1).mul_(targets.sum(-1, keepdim=True)).sub_(targets)  # (P, R)
    # ReLU's derivative as sign(hidden) in {0, 1}: a bool mask is ~5x slower on CPU
    d_hidden = (d_logits @ w2).mul_(hidden.sign())  # (P, H)
    return {
        "fc1.weight": d_hidden.t() @ points,
        "fc1.bias": d_hidden.sum(0),
        "fc2.weight": d_logits.t() @ hidden,
        "fc2.bias": d_logits.sum(0),
    }


def widen_head(head_params: dict[str, torch.Tensor], extra_inputs: int) -> dict[str, torch.Tensor]:
    """φ with ``extra_inputs`` more input channels whose first-layer weights are 0.

    The widened head computes exactly what φ does until adaptation moves the new
    weights: the trained head is the starting point, the descriptors join it.
    """
    import torch

    if extra_inputs <= 0:
        return dict(head_params)
    w1 = head_params["fc1.weight"].detach()
    zeros = w1.new_zeros(w1.shape[0], extra_inputs)
    return {**head_params, "fc1.weight": torch.cat([w1, zeros], dim=1)}


def labeled_points(
    features: torch.Tensor,
    labels: PackedLabels,
    head_params: dict[str, torch.Tensor],
    box_reduction: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The points that carry loss, flattened over shapes.

    Returns features (P, C), Eq. 2 weights T (P, R_max) with the box reduction
    folded in, and a logit mask (P, R_max): 0 where ``r < num_parts`` of the
    point's shape, ``-inf`` beyond.
    """
    import torch

    check_box_reduction(box_reduction)
    r_max = head_params["fc2.bias"].shape[0]
    targets = labels.targets.to(features.dtype)  # (M, N, R)
    if box_reduction == "mean":
        boxes = labels.box_valid.sum(-1).clamp(min=1).to(features.dtype)  # (M,)
        targets = targets / boxes[:, None, None]
    targets = torch.nn.functional.pad(targets, (0, r_max - targets.shape[-1]))  # (M, N, R_max)
    beyond = torch.arange(r_max, device=features.device) >= labels.num_parts[:, None]  # (M, R_max)
    mask = torch.zeros(beyond.shape, dtype=features.dtype, device=features.device)
    mask = mask.masked_fill(beyond, float("-inf"))[:, None, :]  # (M, 1, R_max)
    mask = mask.expand(-1, features.shape[1], -1)  # (M, N, R_max)
    carries_loss = targets.sum(-1) > 0  # (M, N)
    return features[carries_loss], targets[carries_loss], mask[carries_loss]


def predict_probabilities(
    model: BiPartModel, features: torch.Tensor, head_params: dict[str, torch.Tensor], num_parts: int
) -> torch.Tensor:
    """Softmax over the first ``num_parts`` head outputs: features (B, N, C) -> (B, N, R)."""
    logits = model.head_logits(features, head_params)[..., :num_parts]  # (B, N, R)
    return logits.softmax(-1)
