"""Fast adaptation: packing, the head-only inner loop, and prediction on dense points."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny import NUM_POINTS, half_space_labels, random_labels, tiny_config, unit_cloud

from bipart_cli.adapt import (
    AdaptSettings,
    adapt_head,
    fit_head,
    inner_loop,
    labeled_points,
    pack_labels,
    support_loss,
    widen_head,
)
from bipart_cli.model import BiPartModel
from bipart_cli.model.loss import distillation_loss
from bipart_cli.predict import FeatureCache, adapt_and_predict, head_inputs
from bipart_cli.refine import knn_probabilities, smooth_probabilities
from bipart_cli.support import SupportShape


def half_space_support(rng: np.random.Generator, count: int = 3) -> list[SupportShape]:
    """``count`` random clouds ``s0, s1, ...``, each labeled ``x > 0`` (``half_space_labels``)."""
    shapes = []
    for i in range(count):
        points = unit_cloud(rng)
        shapes.append(SupportShape(f"s{i}", points, half_space_labels(points)[1]))
    return shapes


def counted(patch: pytest.MonkeyPatch, module, name: str) -> list[int]:
    """Patch ``module.name`` to note each call (then run as before); returns the notes."""
    calls: list[int] = []
    original = getattr(module, name)
    patch.setattr(module, name, lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BiPartModel(tiny_config()).eval()


def test_packed_loss_equals_the_sum_of_per_shape_losses(model):
    rng = np.random.default_rng(0)
    labels = [random_labels(rng, parts=r, boxes=b) for r, b in ((3, 1), (2, 4), (3, 7))]
    features = torch.randn(3, NUM_POINTS, model.config.feature_dim)
    packed = pack_labels(labels, [3, 2, 3])
    together = support_loss(model, model.head_params(), features, packed)
    apart = sum(
        support_loss(
            model, model.head_params(), features[i : i + 1], pack_labels([labels[i]], [3, 2, 3][i])
        )
        for i in range(3)
    )
    torch.testing.assert_close(together, apart)


def test_inner_loop_equals_a_literal_sgd_loop(model):
    rng = np.random.default_rng(1)
    packed = pack_labels([random_labels(rng) for _ in range(2)], 3)
    features = torch.randn(2, NUM_POINTS, model.config.feature_dim)
    fast = inner_loop(model, features, packed, steps=4, lr=0.2)
    head = {k: v.detach().clone().requires_grad_(True) for k, v in model.head_params().items()}
    for _ in range(4):
        logits = model.head_logits(features, head)
        loss = distillation_loss(
            logits,
            packed.num_parts,
            packed.masks,
            packed.box_part,
            packed.box_score,
            packed.box_valid,
            box_reduction="mean",
        ).sum()
        grads = torch.autograd.grad(loss, list(head.values()))
        head = {
            k: (v - 0.2 * g).detach().requires_grad_(True)
            for (k, v), g in zip(head.items(), grads, strict=True)
        }
    for name in head:
        torch.testing.assert_close(fast[name], head[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("box_reduction", ["mean", "sum"])
def test_closed_form_adaptation_equals_the_autograd_inner_loop(model, box_reduction):
    rng = np.random.default_rng(4)
    # different part counts per shape, a shape with one box, and points no box covers
    labels = [random_labels(rng, parts=r, boxes=b) for r, b in ((3, 1), (2, 4), (4, 7))]
    packed = pack_labels(labels, [3, 2, 4])
    assert not packed.targets.sum(-1).gt(0).all()
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(3, NUM_POINTS, model.config.feature_dim, generator=generator)
    with torch.no_grad():
        reference = inner_loop(model, features, packed, 6, 0.3, box_reduction=box_reduction)
        fast = adapt_head(features, packed, model.head_params(), 6, 0.3, box_reduction)
    assert set(fast) == set(reference)
    for name in reference:
        torch.testing.assert_close(fast[name], reference[name], rtol=1e-5, atol=1e-6)


def test_inner_loop_lowers_the_support_loss_and_leaves_the_model_alone(model):
    rng = np.random.default_rng(2)
    packed = pack_labels([random_labels(rng) for _ in range(3)], 3)
    features = torch.randn(3, NUM_POINTS, model.config.feature_dim)
    before = {k: v.detach().clone() for k, v in model.head_params().items()}
    with torch.no_grad():
        adapted = inner_loop(model, features, packed, steps=30, lr=0.3)
    start = support_loss(model, model.head_params(), features, packed)
    end = support_loss(model, adapted, features, packed)
    assert end < 0.8 * start
    for name, value in model.head_params().items():
        assert torch.equal(value, before[name])


def test_adaptation_learns_a_half_space_split_on_unseen_points(model):
    rng = np.random.default_rng(3)
    support = []
    for i in range(4):
        points = unit_cloud(rng)
        _, labels = half_space_labels(points)
        support.append(SupportShape(f"s{i}", points, labels))
    target = unit_cloud(rng)
    dense = unit_cloud(rng, 2000)
    truth, _ = half_space_labels(dense)
    cache = FeatureCache(model, torch.device("cpu"))
    predicted, scores = adapt_and_predict(
        model, target, dense, None, support, 2, AdaptSettings(), cache
    )
    assert predicted.shape == (2000,) and scores.shape == (2000,)
    assert np.all((scores >= 0.5) & (scores <= 1.0))
    assert (predicted == truth).mean() > 0.7  # chance is 0.5; an untrained model at the paper K, lr


def test_a_support_only_head_is_adapted_once_per_support_set(model):
    """Few-shot targets sharing a support set share its adapted head; the labels are the
    ones a fresh process gives, and another support set, seed or target labels adapt anew."""
    rng = np.random.default_rng(7)
    support = half_space_support(rng)
    targets = [unit_cloud(rng) for _ in range(2)]
    settings = AdaptSettings(steps=5, descriptors="none", smooth=0)
    shared = FeatureCache(model, torch.device("cpu"), settings)
    for target in targets:
        fresh = FeatureCache(model, torch.device("cpu"), settings)
        alone = adapt_and_predict(model, target, target, None, support, 2, settings, fresh)
        reused = adapt_and_predict(model, target, target, None, support, 2, settings, shared)
        np.testing.assert_array_equal(reused[0], alone[0])
        np.testing.assert_array_equal(reused[1], alone[1])
    assert len(shared._heads) == 1
    adapt_and_predict(model, targets[0], targets[0], None, support[:2], 2, settings, shared)
    adapt_and_predict(model, targets[0], targets[0], None, support, 2, settings, shared, seed=1)
    own = half_space_labels(targets[0])[1]
    adapt_and_predict(model, targets[0], targets[0], own, support, 2, settings, shared)
    assert len(shared._heads) == 3  # the target's own labels are never keyed


def test_targets_sharing_a_support_set_in_any_order_share_its_head(model):
    """Retrieval ranks the same support shapes in another order for each target: the head
    adapted on them is the same (adapted on them in the order of their ids) and adapted
    once."""
    rng = np.random.default_rng(9)
    support = half_space_support(rng, count=4)
    target = unit_cloud(rng)
    settings = AdaptSettings(steps=5, descriptors="none", smooth=0, self_training_steps=0)
    cache = FeatureCache(model, torch.device("cpu"), settings)
    ranked = adapt_and_predict(model, target, target, None, support, 2, settings, cache)
    reversed_order = adapt_and_predict(
        model, target, target, None, support[::-1], 2, settings, cache
    )
    assert len(cache._heads) == 1
    (shared,) = cache._heads.values()
    by_id = sorted(support, key=lambda shape: shape.shape_id)
    features = cache.features(by_id)
    labels = pack_labels([s.pseudo_labels for s in by_id], 2, normalise=settings.normalise)
    head_0 = model.head_params()
    head_0 = widen_head(head_0, features.shape[-1] - head_0["fc1.weight"].shape[1])
    expected = adapt_head(
        features,
        labels,
        head_0,
        steps=5,
        lr=settings.lr,
        box_reduction=settings.shape_reduction,
        optimizer=settings.optimizer,
        batch_points=settings.batch_points,
        seed=0,
    )
    for name, value in expected.items():
        torch.testing.assert_close(shared[name], value)
    # without the refit, which reads the support as ranked, the labels are the head's
    np.testing.assert_array_equal(reversed_order[0], ranked[0])


def test_the_support_head_key_follows_every_input_and_not_the_ranking(model):
    """The key of a support-only head changes with one feature, one label bit, one weight of
    φ_0, a setting or the seed, and not with the order the rows come in when ``order``
    names the same shapes in the same order."""
    import dataclasses

    from bipart_cli.predict import support_head_key

    rng = np.random.default_rng(10)
    support = half_space_support(rng, count=3)
    settings = AdaptSettings(descriptors="none")
    features = FeatureCache(model, torch.device("cpu"), settings).features(support)
    labels = pack_labels([s.pseudo_labels for s in support], 2)
    head_0 = model.head_params()
    key = support_head_key(features, labels, head_0, settings, 0, [0, 1, 2])
    reversed_rows = torch.tensor([2, 1, 0])
    same = support_head_key(
        features[reversed_rows], labels.select(reversed_rows), head_0, settings, 0, [2, 1, 0]
    )
    assert same == key
    assert support_head_key(features, labels, head_0, settings, 0, [2, 1, 0]) != key
    edited = features.clone()
    edited[1, 7, 3] += 1e-3
    assert support_head_key(edited, labels, head_0, settings, 0, [0, 1, 2]) != key
    masks = labels.masks.clone()
    masks[2, 0, 5] = ~masks[2, 0, 5]
    relabeled = dataclasses.replace(labels, masks=masks)
    assert support_head_key(features, relabeled, head_0, settings, 0, [0, 1, 2]) != key
    nudged = {name: tensor.clone() for name, tensor in head_0.items()}
    nudged["fc1.bias"][0] += 1e-3
    assert support_head_key(features, labels, nudged, settings, 0, [0, 1, 2]) != key
    other = dataclasses.replace(settings, steps=settings.steps + 1)
    assert support_head_key(features, labels, head_0, other, 0, [0, 1, 2]) != key
    assert support_head_key(features, labels, head_0, settings, 1, [0, 1, 2]) != key


def test_a_support_only_head_is_kept_for_a_later_process(model, tmp_path):
    """With a store, a support-only head is adapted once across processes: a second cache
    on the store labels exactly as the first without adapting; other support labels or
    another seed adapt anew."""
    from bipart_cli import adapt as adapt_module

    rng = np.random.default_rng(8)
    support = half_space_support(rng)
    target = unit_cloud(rng)
    settings = AdaptSettings(steps=5, descriptors="none", smooth=0)
    store = tmp_path / "features"

    def run(shapes, seed=0):
        cache = FeatureCache(model, torch.device("cpu"), settings, store=store)
        return adapt_and_predict(model, target, target, None, shapes, 2, settings, cache, seed=seed)

    cold = run(support)
    assert len(list((store / "heads").glob("*.safetensors"))) == 1
    calls = []
    original = adapt_module.adapt_head
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            adapt_module, "adapt_head", lambda *a, **k: calls.append(1) or original(*a, **k)
        )
        warm = run(support)
        assert calls == []
        np.testing.assert_array_equal(warm[0], cold[0])
        np.testing.assert_array_equal(warm[1], cold[1])
        flipped = half_space_labels(-support[2].points)[1]  # the same shape, other labels
        relabeled = support[:2] + [SupportShape("s2", support[2].points, flipped)]
        run(relabeled)
        run(support, seed=1)
    assert len(calls) == 2


def test_a_target_s_predictions_are_kept_and_follow_what_they_depend_on(model, tmp_path):
    """With a store, what a support-only head makes of a target is kept: a later process
    gives the same labels and probabilities without predicting; other dense points, a moved
    target or other support labels predict anew, and a stored entry that does not fit
    (a label past the parts) is predicted again."""
    from safetensors import safe_open

    from bipart_cli import adapt as adapt_module
    from bipart_cli.store import ArrayStore

    rng = np.random.default_rng(9)
    support = half_space_support(rng)
    target = unit_cloud(rng)
    dense = np.concatenate([target, unit_cloud(rng)])
    # one head prediction per target (no refit on the target's labels): the calls count targets
    settings = AdaptSettings(steps=5, descriptors="none", smooth=1, self_training_steps=0)
    store = tmp_path / "features"

    def run(points=target, dense_points=dense, shapes=support):
        cache = FeatureCache(model, torch.device("cpu"), settings, store=store)
        return adapt_and_predict(model, points, dense_points, None, shapes, 2, settings, cache)

    cold = run()
    with pytest.MonkeyPatch.context() as patch:
        calls = counted(patch, adapt_module, "predict_probabilities")
        warm = run()
        assert calls == []
        np.testing.assert_array_equal(warm[0], cold[0])
        np.testing.assert_array_equal(warm[1], cold[1])
        run(dense_points=dense[: len(target)])
        run(points=target + 0.01)
        flipped = half_space_labels(-support[2].points)[1]
        run(shapes=support[:2] + [SupportShape("s2", support[2].points, flipped)])
        assert len(calls) == 3
        for entry in (store / "predictions").glob("*.safetensors"):
            with safe_open(str(entry), framework="np") as handle:
                key, scores = handle.metadata()["key"], handle.get_tensor("scores")
                labels = handle.get_tensor("labels")
            if np.array_equal(scores, cold[1]):  # the first run's entry
                break
        ArrayStore(store).write("predictions", key, {"labels": labels + 2, "scores": scores})
        again = run()
        assert len(calls) == 4
    np.testing.assert_array_equal(again[0], cold[0])
    np.testing.assert_array_equal(again[1], cold[1])


def test_support_features_are_computed_once(model):
    rng = np.random.default_rng(4)
    shapes = [SupportShape(f"s{i}", unit_cloud(rng), random_labels(rng)) for i in range(3)]
    cache = FeatureCache(model, torch.device("cpu"))
    first = cache.features(shapes[:2])
    calls = []
    original = model.extract
    model.extract = lambda *a, **k: calls.append(a[0].shape[0]) or original(*a, **k)
    try:
        again = cache.features(shapes)
    finally:
        model.extract = original
    assert calls == [1]  # only the third shape was new
    torch.testing.assert_close(again[:2], first)


def test_cached_target_encoder_features_give_the_same_prediction(model):
    rng = np.random.default_rng(5)
    support = [SupportShape(f"s{i}", unit_cloud(rng), random_labels(rng)) for i in range(3)]
    target = unit_cloud(rng)
    cache = FeatureCache(model, torch.device("cpu"))
    encoded = model.encode(torch.from_numpy(target)[None])[0].numpy()
    plain = adapt_and_predict(model, target, target, None, support, 3, AdaptSettings(), cache)
    calls = []
    original = model.encode
    model.encode = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        cached = adapt_and_predict(
            model,
            target,
            target,
            None,
            support,
            3,
            AdaptSettings(),
            cache,
            target_encoder_features=encoded.astype(np.float16),  # as an index stores them
        )
    finally:
        model.encode = original
    assert calls == []  # the encoder did not run
    assert (cached[0] == plain[0]).mean() > 0.99


def test_adam_adaptation_equals_torch_adam_on_the_weighted_mean_loss(model):
    rng = np.random.default_rng(6)
    labels = [random_labels(rng, parts=r, boxes=b) for r, b in ((3, 2), (2, 4))]
    packed = pack_labels(labels, [3, 2])
    features = torch.randn(2, NUM_POINTS, model.config.feature_dim, generator=torch.Generator())
    params = {k: v.detach().clone().requires_grad_() for k, v in model.head_params().items()}
    optimizer = torch.optim.Adam(params.values(), lr=0.01)
    # the weighted mean's denominator: Eq. 2's weights, each shape's over its box count
    mass = (packed.targets.sum((1, 2)) / packed.box_valid.sum(-1)).sum()
    for _ in range(7):
        optimizer.zero_grad()
        (support_loss(model, params, features, packed) / mass).backward()
        optimizer.step()
    with torch.no_grad():
        fast = adapt_head(features, packed, model.head_params(), 7, 0.01, optimizer="adam")
    for name in params:
        torch.testing.assert_close(fast[name], params[name].detach(), rtol=1e-4, atol=1e-5)


def test_point_normalised_adam_is_cross_entropy_over_the_labeled_points(model):
    """``normalise="point"`` with exact labels: Adam on the plain per-point cross-entropy."""
    rng = np.random.default_rng(11)
    labels = [half_space_labels(unit_cloud(rng))[1] for _ in range(2)]
    packed = pack_labels(labels, 2, normalise="point")
    features = torch.randn(2, NUM_POINTS, model.config.feature_dim, generator=torch.Generator())
    truth = torch.from_numpy(np.stack([lab.masks[1] for lab in labels]).astype(np.int64))
    params = {k: v.detach().clone().requires_grad_() for k, v in model.head_params().items()}
    optimizer = torch.optim.Adam(params.values(), lr=0.01)
    for _ in range(5):
        optimizer.zero_grad()
        logits = model.head_logits(features, params)[..., :2]  # (2, N, 2)
        torch.nn.functional.cross_entropy(logits.reshape(-1, 2), truth.reshape(-1)).backward()
        optimizer.step()
    with torch.no_grad():
        fast = adapt_head(
            features, packed, model.head_params(), 5, 0.01, box_reduction="sum", optimizer="adam"
        )
    for name in params:
        torch.testing.assert_close(fast[name], params[name].detach(), rtol=1e-4, atol=1e-5)


def test_minibatch_adam_is_seeded_and_learns(model):
    rng = np.random.default_rng(7)
    points = [unit_cloud(rng) for _ in range(3)]
    packed = pack_labels([half_space_labels(p)[1] for p in points], 2)
    xyz = torch.from_numpy(np.stack(points)).float()  # the split is learnable from xyz alone
    features = torch.cat([xyz.new_zeros(3, NUM_POINTS, model.config.feature_dim), xyz], -1)
    head = widen_head(model.head_params(), 3)
    runs = [
        adapt_head(features, packed, head, 60, 0.02, optimizer="adam", batch_points=64, seed=s)
        for s in (0, 0, 1)
    ]
    torch.testing.assert_close(runs[0]["fc1.weight"], runs[1]["fc1.weight"], rtol=0, atol=0)
    assert not torch.equal(runs[0]["fc1.weight"], runs[2]["fc1.weight"])
    start = support_loss(model, head, features, packed)
    assert support_loss(model, runs[0], features, packed) < 0.5 * start


def test_minibatch_adam_draws_each_steps_rows_from_the_seeded_generator(model):
    """fit_head's mini-batches against torch.optim.Adam with the rows drawn step by step:
    every step's batch is the next ``batch`` draws of the seeded CPU generator."""
    rng = np.random.default_rng(12)
    points = torch.from_numpy(rng.normal(size=(300, 6))).float()
    targets = torch.from_numpy(rng.dirichlet(np.ones(3), size=300)).float()
    mask = torch.zeros(300, 3)
    head = {
        "fc1.weight": torch.randn(8, 6) * 0.3,
        "fc1.bias": torch.zeros(8),
        "fc2.weight": torch.randn(3, 8) * 0.3,
        "fc2.bias": torch.zeros(3),
    }
    params = {k: v.clone().requires_grad_() for k, v in head.items()}
    optimizer = torch.optim.Adam(params.values(), lr=0.05)
    generator = torch.Generator().manual_seed(4)
    for _ in range(6):
        rows = torch.randint(300, (64,), generator=generator)
        hidden = torch.relu(points[rows] @ params["fc1.weight"].t() + params["fc1.bias"])
        logits = hidden @ params["fc2.weight"].t() + params["fc2.bias"]
        loss = -(targets[rows] * logits.log_softmax(-1)).sum() / targets[rows].sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    fast = fit_head(points, targets, mask, head, 6, 0.05, optimizer="adam", batch_points=64, seed=4)
    for name in params:
        torch.testing.assert_close(fast[name], params[name].detach(), rtol=1e-4, atol=1e-6)


def test_widened_head_computes_the_same_logits(model):
    features = torch.randn(2, 50, model.config.feature_dim)
    extra = torch.randn(2, 50, 7)
    widened = widen_head(model.head_params(), 7)
    assert widened["fc1.weight"].shape[1] == model.config.feature_dim + 7
    torch.testing.assert_close(
        model.head_logits(torch.cat([features, extra], -1), widened),
        model.head_logits(features, model.head_params()),
    )


def test_smoothing_against_a_loop():
    rng = np.random.default_rng(8)
    points = rng.normal(size=(40, 3))
    probs = torch.from_numpy(rng.dirichlet(np.ones(3), size=40))
    fast = smooth_probabilities(points, probs, rounds=2, k=4)
    expected = probs.numpy().copy()
    for _ in range(2):
        previous = expected.copy()
        for i in range(40):
            nearest = np.argsort(((points - points[i]) ** 2).sum(1))[:4]
            expected[i] = 0.5 * previous[i] + 0.5 * previous[nearest].mean(0)
    np.testing.assert_allclose(fast.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(fast.sum(1).numpy(), 1.0, rtol=1e-12)


def test_knn_transfer_against_a_loop(model):
    rng = np.random.default_rng(10)
    labels = pack_labels([random_labels(rng, parts=3, boxes=4) for _ in range(2)], 3)
    features = torch.randn(2, NUM_POINTS, 5, dtype=torch.float64)
    target = torch.randn(30, 5, dtype=torch.float64)
    # as adapt_and_predict calls it: the labeled support points, flattened
    reference, weights, _ = labeled_points(features, labels, model.head_params(), "sum")
    fast = knn_probabilities(target, reference, weights[:, :3], k=6, chunk=7)

    covered = labels.targets.sum(-1) > 0  # (M, N)
    reference = features[covered].numpy()
    weights = labels.targets[covered].double().numpy()
    distributions = weights / weights.sum(1, keepdims=True)
    for i, point in enumerate(target.numpy()):
        nearest = np.argsort(((reference - point) ** 2).sum(1))[:6]
        np.testing.assert_allclose(fast[i].numpy(), distributions[nearest].mean(0), rtol=1e-9)
    np.testing.assert_allclose(fast.sum(1).numpy(), 1.0, rtol=1e-9)


def test_knn_transfer_does_not_depend_on_the_block_of_target_points():
    """Issue 33: the blocks' size is a speed setting only. On float32 head inputs as the
    segmenter blends them, every block size picks the same neighbours as one block of all
    target points, so the transfer is the same to the bit."""
    generator = torch.Generator().manual_seed(11)
    reference = torch.randn(700, 40, generator=generator)
    target = torch.randn(300, 40, generator=generator)
    weights = torch.rand(700, 4, generator=generator)
    whole = knn_probabilities(target, reference, weights, k=4, chunk=len(target))
    for chunk in (1, 64, 128, 512):
        assert torch.equal(knn_probabilities(target, reference, weights, k=4, chunk=chunk), whole)
    assert torch.equal(knn_probabilities(target, reference, weights, k=4), whole)


@pytest.mark.parametrize("field, value", [("knn_weight", 1.5), ("knn_weight", -0.1), ("knn_k", 0)])
def test_knn_settings_out_of_range_are_usage_errors(field, value):
    from bipart_cli.errors import UsageError

    with pytest.raises(UsageError, match=field.replace("_", "-")):
        AdaptSettings(**{field: value})


def test_descriptors_join_the_head_and_cached_ones_are_used(model):
    rng = np.random.default_rng(9)
    support = half_space_support(rng)
    target = unit_cloud(rng)
    settings = AdaptSettings(
        optimizer="adam", steps=30, lr=0.01, descriptors="geo-v1", smooth=1, position=False
    )
    fresh = adapt_and_predict(
        model, target, target, None, support, 2, settings, FeatureCache(model, "cpu", settings)
    )
    from bipart_cli.descriptors import point_descriptors

    cached_support = [
        SupportShape(s.shape_id, s.points, s.pseudo_labels, None, point_descriptors(s.points))
        for s in support
    ]
    cache = FeatureCache(model, "cpu", settings)
    cached = adapt_and_predict(
        model,
        target,
        target,
        None,
        cached_support,
        2,
        settings,
        cache,
        target_descriptors=point_descriptors(target),
    )
    np.testing.assert_array_equal(cached[0], fresh[0])
    assert cache.features(cached_support).shape[-1] == model.config.feature_dim + len(
        point_descriptors(target)[0]
    )


def test_positions_join_the_head_standardised_per_axis(model):
    """With ``position`` the head's last 3 inputs are the points standardised per axis over
    the shape, scaled to unit norm per point (a slow literal reference)."""
    import torch

    from bipart_cli.predict import head_inputs

    rng = np.random.default_rng(4)
    points = (unit_cloud(rng) * np.array([3.0, 1.0, 0.2])).astype(np.float32)  # anisotropic
    cache = FeatureCache(model, "cpu", AdaptSettings(descriptors="none", position=True))
    inputs = cache.head_inputs(points).numpy()
    width = model.config.feature_dim
    assert inputs.shape == (len(points), width + 3)
    expected = np.empty((len(points), 3))
    for axis in range(3):
        column = points[:, axis].astype(np.float64)
        expected[:, axis] = (column - column.mean()) / (column.std() + 1e-5) / np.sqrt(3)
    np.testing.assert_allclose(inputs[:, width:], expected, atol=1e-5)
    off = FeatureCache(model, "cpu", AdaptSettings(descriptors="none", position=False))
    np.testing.assert_array_equal(off.head_inputs(points).numpy(), inputs[:, :width])
    features = torch.zeros(1, 5, 2)
    assert head_inputs(features, None, None).shape == (1, 5, 2)


def test_feature_store_serves_a_later_process_and_follows_the_model(model, tmp_path):
    """Support features kept on disk: equal to fresh ones (float16), no network pass when
    read back, recomputed for another model or a damaged file."""
    rng = np.random.default_rng(12)
    support = half_space_support(rng, 2)
    settings = AdaptSettings(descriptors="none", position=False)  # the network's features alone
    store = tmp_path / "features"
    cold = FeatureCache(model, "cpu", settings, store=store).features(support)
    with torch.no_grad():
        fresh = model.extract(torch.from_numpy(np.stack([s.points for s in support])))
    torch.testing.assert_close(cold, fresh.half().float())  # the store's precision, cold or warm
    files = sorted(store.rglob("*.safetensors"))
    assert len(files) == 2

    calls = []
    original = model.extract
    model.extract = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        warm = FeatureCache(model, "cpu", settings, store=store).features(support)
    finally:
        model.extract = original
    assert calls == []  # read back, no network pass
    torch.testing.assert_close(warm, cold, rtol=0, atol=0)

    files[0].write_bytes(b"not a safetensors file")
    repaired = FeatureCache(model, "cpu", settings, store=store).features(support)
    torch.testing.assert_close(repaired, cold, rtol=0, atol=0)

    torch.manual_seed(1)
    other = BiPartModel(tiny_config()).eval()
    theirs = FeatureCache(other, "cpu", settings, store=store).features(support)
    with torch.no_grad():
        expected = other.extract(torch.from_numpy(np.stack([s.points for s in support])))
    torch.testing.assert_close(theirs, expected.half().float())
    assert not torch.allclose(theirs, cold, atol=1e-2)
    assert len(list(store.rglob("*.safetensors"))) == 4  # a folder per model


def test_a_target_s_head_inputs_are_kept_and_equal_fresh_ones(model, tmp_path):
    """Any shape's network features and descriptors (a target's too) are kept: read back
    equal to fresh ones (descriptors bit for bit, features at float16), with no network
    pass; other points, a damaged file or a misshapen one are computed again."""
    from bipart_cli import descriptors as descriptor_module
    from bipart_cli.descriptors import point_descriptors

    rng = np.random.default_rng(31)
    target = unit_cloud(rng)
    store = tmp_path / "features"
    cold = FeatureCache(model, "cpu", AdaptSettings(), store=store).head_inputs(target)
    with torch.no_grad():
        network = model.extract(torch.from_numpy(target)[None]).half().float()
    described = torch.from_numpy(point_descriptors(target))[None]
    positions = torch.from_numpy(target)[None]
    expected = head_inputs(network, described, positions)[0]
    torch.testing.assert_close(cold, expected, rtol=0, atol=0)

    def computed(*args, **kwargs):
        raise AssertionError("computed again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(model), "extract", computed)
        patch.setattr(descriptor_module, "point_descriptors", computed)
        warm = FeatureCache(model, "cpu", AdaptSettings(), store=store).head_inputs(target)
        with pytest.raises(AssertionError, match="computed again"):  # other points: no entry
            FeatureCache(model, "cpu", AdaptSettings(), store=store).head_inputs(target * 1.01)
    torch.testing.assert_close(warm, cold, rtol=0, atol=0)

    (descriptor_file,) = (store / "descriptors").rglob("*.safetensors")
    network_file = next(f for f in (store / "network").rglob("*.safetensors"))
    descriptor_file.write_bytes(b"damaged")
    from safetensors.numpy import load_file, save_file

    features = load_file(str(network_file))["features"]
    save_file({"features": features[:10]}, str(network_file))  # another shape's rows
    again = FeatureCache(model, "cpu", AdaptSettings(), store=store).head_inputs(target)
    torch.testing.assert_close(again, cold, rtol=0, atol=0)
    assert load_file(str(network_file))["features"].shape == features.shape  # replaced


def test_support_features_from_encoder_features_go_shape_by_shape_with_the_same_bits(model):
    """With the encoder's features cached (a --support folder, an index) the extractor runs
    one shape at a time, which bounds its activations; the features are those of one batch."""
    rng = np.random.default_rng(21)
    clouds = np.stack([unit_cloud(rng) for _ in range(3)])  # (3, N, 3)
    with torch.no_grad():
        encoded = model.encode(torch.from_numpy(clouds)).half()  # as an index stores them
    support = [
        SupportShape(f"e{i}", clouds[i], half_space_labels(clouds[i])[1], encoded[i].numpy())
        for i in range(3)
    ]
    batch_sizes = []
    original = model.extract
    model.extract = lambda points, **k: batch_sizes.append(len(points)) or original(points, **k)
    try:
        network_alone = AdaptSettings(descriptors="none", position=False)
        features = FeatureCache(model, "cpu", network_alone).features(support)
    finally:
        model.extract = original
    assert batch_sizes == [1, 1, 1]
    with torch.no_grad():
        batched = model.extract(torch.from_numpy(clouds), encoder_features=encoded.float())
    assert torch.equal(features, batched)


def test_a_stored_head_or_prediction_follows_bipart_s_code(model, tmp_path):
    """Heads and labels kept in the store are keyed by bipart's source (``code_identity``):
    another version of the code adapts and predicts anew instead of reading an older one's."""
    from bipart_cli import adapt as adapt_module
    from bipart_cli import predict as predict_module

    rng = np.random.default_rng(10)
    support = half_space_support(rng)
    target = unit_cloud(rng)
    # one head prediction per target (no refit on the target's labels): the calls count targets
    settings = AdaptSettings(steps=5, descriptors="none", smooth=1, self_training_steps=0)

    def run():
        cache = FeatureCache(model, torch.device("cpu"), settings, store=tmp_path / "features")
        return adapt_and_predict(model, target, target, None, support, 2, settings, cache)

    run()
    with pytest.MonkeyPatch.context() as patch:
        calls = counted(patch, adapt_module, "predict_probabilities")
        run()
        assert calls == []  # the same code: read back
        patch.setattr(predict_module, "code_identity", lambda: "another version of bipart")
        run()
        assert calls == [1]  # another code: predicted anew
