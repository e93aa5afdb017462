"""Does the support fit the target? The limits of bipart_cli/fit.py, chosen on the train splits.

Each train shape of PSB (every ``--every``-th), human_seg (every ``--human-every``-th) and
pm (every ``--pm-every``-th) is segmented twice with ``segment``'s code path and defaults,
few-shot (M=8 ground-truth support shapes, ``labeler none``):

- **own**: support from the other train shapes of its category (the fit should be good);
- **other**: support from another category, with that category's part names (the fit
  should be poor): a PSB category 5 places on in alphabetical order, PSB's Chair for
  human_seg, a pm category 3 places on.

No test split is opened. For each run it records the support's fit
(:func:`bipart_cli.fit.measure_fit`: the mean Chamfer distance of the 3 nearest posed support
shapes, and the share of labels a nearest-point transfer from them gives), the mIoU (own
support only), and each point's label probability and whether its label is right: the
point's true part has the predicted name (with another category's names a point is right
only where the names coincide, such as a leg).

Prints three tables: the measures per kind of support; how often each pair of limits warns
(the chosen one, ``fit.DISTANCE_LIMIT`` and ``fit.AGREEMENT_LIMIT``, marked); and the point
scores, as the head gives them and as ``segment`` reports them (times the probability that
the support is of the target's kind, ``fit.FIT_LOGIT``, whose weights it fits here too).

    BIPART_FEATURE_CACHE_MB=30000 python benchmarks/quality/support_fit.py [--every 4]
        [--human-every 64] [--pm-every 3] [--weights bipart-default]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: benchmarks, bipart_cli

import argparse
import time
from dataclasses import dataclass

import numpy as np

from benchmarks.common.paper_runs import bench_run, index, print_table
from bipart_cli import fit

# (distance limit, agreement limit) pairs shown; the chosen one is fit's
GRID = [(d, a) for d in (0.35, 0.40, 0.45) for a in (0.0, 0.60, 0.65, 0.70)]
GOOD_MIOU = 0.6  # an own-support run at or above this is a good result


@dataclass
class Run:
    """One target segmented from one support."""

    dataset: str
    category: str
    shape_id: str
    own: bool
    distance: float
    agreement: float
    miou: float  # NaN for another category's support
    labels: np.ndarray  # (n,) the predicted parts
    scores: np.ndarray  # (n,) the head's label probabilities
    right: np.ndarray  # (n,) bool, the label names the point's true part

    def warned(self, distance_limit: float, agreement_limit: float) -> bool:
        return self.distance > distance_limit or self.agreement < agreement_limit


def other_category(dataset: str, category: str, categories: dict[str, list[str]]) -> tuple:
    """(support dataset, category) of the ``other`` support of a target."""
    if dataset == "human":
        return "psb", "Chair"
    names = categories[dataset]
    step = 5 if dataset == "psb" else 3
    return dataset, names[(names.index(category) + step) % len(names)]


def collect(args: argparse.Namespace) -> list[Run]:
    from bipart_cli.evaluate import category_part_names, part_ious, remap_labels
    from bipart_cli.index import ShapeIndex, encoder_identity
    from bipart_cli.segmentation import Segmenter, SegmentOptions

    every = {"psb": args.every, "human": args.human_every, "pm": args.pm_every}
    paths = {d: index(f"{d}-train") for d in every}
    indexes = {d: ShapeIndex.open(path) for d, path in paths.items()}
    parts = {d: category_part_names(ix.entries) for d, ix in indexes.items()}
    categories = {d: sorted(p) for d, p in parts.items()}
    segmenters = {}
    for dataset, path in paths.items():
        options = SegmentOptions(
            index=str(path), weights=args.weights, labeler="none", write=False, device=args.device
        )
        segmenters[dataset] = Segmenter(None, options)
        segmenters[dataset].load_network()
    encoder = encoder_identity(segmenters["psb"].model)
    runs = []
    for dataset, ix in indexes.items():
        rows = [i for i, e in enumerate(ix.entries) if e.has_ground_truth][:: every[dataset]]
        for row in rows:
            record = ix.record(row)
            truth = np.array(
                [record.part_names[k].lower() if k >= 0 else "" for k in record.gt_labels]
            )
            for own in (True, False):
                source, category = (
                    (dataset, record.category)
                    if own
                    else other_category(dataset, record.category, categories)
                )
                names = parts[source][category]
                segmenter = segmenters[source]
                labels, scores, _ = segmenter.segment_points(
                    names,
                    record.points,
                    record.points,
                    None,
                    exclude_sha256=record.sha256,
                    category=category,
                    target_encoder_features=ix.encoder_features(row, expected=encoder),
                    target_descriptors=record.descriptors,
                )
                measured = segmenter.support_fit
                named = np.array([names[k].lower() if k >= 0 else "\0" for k in labels])
                miou = float("nan")
                if own:
                    gt = remap_labels(record.gt_labels, record.part_names, names)
                    miou = float(part_ious(labels, gt, len(names)).mean())
                runs.append(
                    Run(
                        dataset,
                        record.category,
                        record.id,
                        own,
                        measured.distance,
                        measured.agreement,
                        miou,
                        labels,
                        np.asarray(scores, np.float64),
                        named == truth,
                    )
                )
                print(
                    f"{record.id} from {category}: distance {measured.distance:.3f}, "
                    f"agreement {measured.agreement:.3f}, mIoU {miou:.3f}",
                    file=sys.stderr,
                    flush=True,
                )
    return runs


def fit_logistic(features: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Weights (F + 1,) of P(target) = sigmoid(features @ w[:F] + w[F]), by maximum likelihood."""
    from scipy.optimize import minimize

    design = np.c_[features, np.ones(len(features))]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ w
        probability = 1 / (1 + np.exp(-z))
        return float(np.mean(np.logaddexp(0, z) - targets * z)), design.T @ (
            probability - targets
        ) / len(targets)

    return minimize(loss, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B").x


def calibration_error(probability: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over points: |mean score - share right| per score decile."""
    which = np.minimum((probability * bins).astype(int), bins - 1)
    return float(
        sum(
            (which == b).mean() * abs(probability[which == b].mean() - right[which == b].mean())
            for b in range(bins)
            if (which == b).any()
        )
    )


def q(values: list[float]) -> str:
    """5th, 50th and 95th percentiles."""
    return " / ".join(f"{v:.2f}" for v in np.percentile(values, [5, 50, 95]))


def measure_table(runs: list[Run]) -> None:
    rows = []
    chosen = (fit.DISTANCE_LIMIT, fit.AGREEMENT_LIMIT)
    for label, group in (
        ("own category", [r for r in runs if r.own]),
        ("other category", [r for r in runs if not r.own]),
    ):
        warned = [r.warned(*chosen) for r in group]
        rows.append(
            [
                label,
                str(len(group)),
                q([r.distance for r in group]),
                q([r.agreement for r in group]),
                f"{100 * np.mean(warned):.0f}",
            ]
        )
    own = [r for r in runs if r.own]
    for label, keep in (("own, warned", True), ("own, not warned", False)):
        group = [r for r in own if r.warned(*chosen) == keep]
        miou = f"{100 * np.mean([r.miou for r in group]):.1f}" if group else "-"
        rows.append([label, str(len(group)), "", "", f"mIoU {miou}"])
    print_table(
        ["Support fit on the train splits: own-category support against another category's"],
        ["support", "runs", "distance p5 / p50 / p95", "agreement p5 / p50 / p95", "warned %"],
        rows,
        [f"warned: distance > {chosen[0]} or agreement < {chosen[1]} (bipart_cli/fit.py)"],
    )


def limits_table(runs: list[Run]) -> None:
    own = [r for r in runs if r.own]
    good = [r for r in own if r.miou >= GOOD_MIOU]
    bad = [r for r in own if r.miou < GOOD_MIOU]
    other = [r for r in runs if not r.own]
    rows = []
    for limits in GRID:
        mark = " (chosen)" if limits == (fit.DISTANCE_LIMIT, fit.AGREEMENT_LIMIT) else ""
        rows.append(
            [
                f"{limits[0]:.2f}, {limits[1]:.2f}{mark}",
                f"{100 * np.mean([r.warned(*limits) for r in good]):.0f}",
                f"{100 * np.mean([r.warned(*limits) for r in bad]):.0f}" if bad else "-",
                f"{100 * np.mean([r.warned(*limits) for r in other]):.0f}",
            ]
        )
    print_table(
        ["How often each pair of limits warns (%)"],
        [
            "distance, agreement limits",
            f"own, mIoU >= {GOOD_MIOU} ({len(good)})",
            f"own, mIoU < {GOOD_MIOU} ({len(bad)})",
            f"other category ({len(other)})",
        ],
        rows,
        ["a warning on a good own-category run is a false one; on the others it is deserved"],
    )


def scores_table(runs: list[Run]) -> None:
    features = np.array([[r.distance, r.agreement] for r in runs])
    weights = fit_logistic(features, np.array([r.own for r in runs], dtype=np.float64))
    rows = []
    for label, group in (
        ("own category", [r for r in runs if r.own]),
        ("other category", [r for r in runs if not r.own]),
    ):
        right = np.concatenate([r.right for r in group]).astype(np.float64)
        for name, scores in (
            ("head probability", [r.scores for r in group]),
            (
                "segment's score",
                [r.scores * fit.fit_probability(r.distance, r.agreement) for r in group],
            ),
        ):
            flat = np.concatenate(scores)
            rows.append(
                [
                    f"{label}: {name}",
                    f"{flat.mean():.2f}",
                    f"{right.mean():.2f}",
                    f"{calibration_error(flat, right):.3f}",
                    f"{_part_error(group, scores):.3f}",
                ]
            )
    print_table(
        ["Point scores against the share of right labels"],
        ["support: score", "mean score", "share right", "ECE", "part |score - right|"],
        rows,
        [
            "segment's score: the head's probability times P(the support is of the target's kind) "
            f"= sigmoid{tuple(fit.FIT_LOGIT)} . (distance, agreement, 1) (bipart_cli/fit.py)",
            "refitted here on these runs: "
            + ", ".join(f"{w:.2f}" for w in weights)
            + "; part |score - right|: the mean over predicted parts of |mean score - share right|",
        ],
    )


def _part_error(group: list[Run], scores: list[np.ndarray]) -> float:
    """The mean over each run's predicted parts of |mean score - share right|."""
    errors = []
    for run, score in zip(group, scores, strict=True):
        for part in np.unique(run.labels[run.labels >= 0]):
            mask = run.labels == part
            errors.append(abs(score[mask].mean() - run.right[mask].mean()))
    return float(np.mean(errors))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=4, help="PSB: every n-th train shape")
    parser.add_argument("--human-every", type=int, default=64, help="human_seg: every n-th")
    parser.add_argument("--pm-every", type=int, default=3, help="pm: every n-th train shape")
    parser.add_argument("--weights", default="bipart-default")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    with bench_run():
        started = time.perf_counter()
        runs = collect(args)
        print(f"{len(runs)} runs in {time.perf_counter() - started:.0f} s\n")
        measure_table(runs)
        limits_table(runs)
        scores_table(runs)


if __name__ == "__main__":
    main()
