"""What an index holds, as JSON facts and as lines for ``bipart info INDEX``: read from its
manifest alone (no shard is opened)."""

from __future__ import annotations

from typing import Any

from .reader import ShapeIndex


def describe_index(index: ShapeIndex) -> dict[str, Any]:
    """A JSON-ready summary: sizes, how it was built, and per category its shapes, how many
    carry ground truth and how many shapes name each part."""
    manifest = index.manifest
    settings = index.settings
    categories: dict[str, dict[str, Any]] = {}
    for entry in index.entries:
        facts = categories.setdefault(
            entry.category, {"shapes": 0, "ground_truth": 0, "part_shapes": {}}
        )
        facts["shapes"] += 1
        facts["ground_truth"] += int(entry.has_ground_truth)
        for name in entry.part_names:
            facts["part_shapes"][name] = facts["part_shapes"].get(name, 0) + 1
    stored = sum(
        shard.get("bytes", 0) + (shard.get("features") or {}).get("bytes", 0)
        for shard in manifest["shards"]
    )
    encoder = index.encoder
    return {
        "path": str(index.path),
        "kind": "index",
        "format_version": manifest.get("version"),
        "created_by": manifest.get("created_by"),
        "shapes": len(index.entries),
        "shards": len(manifest["shards"]),
        "shard_bytes": stored,
        "source_root": manifest.get("source_root"),
        "partial": manifest.get("partial"),
        "labeler": settings.get("labeler"),
        "network_points": settings.get("n_points"),
        "dense_points": settings.get("n_dense"),
        "seed": settings.get("seed"),
        "descriptors": manifest.get("descriptors"),
        "encoder_features": None if encoder is None else encoder.get("init"),
        "categories": dict(sorted(categories.items())),
    }


def format_index_summary(facts: dict[str, Any]) -> list[str]:
    """Human-readable lines for a :func:`describe_index` dict."""
    from ..runtime import printable

    partial = facts["partial"]
    part = "" if not partial else f", part {partial['shards']} of {partial['of']} (merge the rest)"
    features = facts["encoder_features"]
    lines = [
        f"{'path':>14}: {printable(facts['path'])}",
        f"{'kind':>14}: bipart shape index, format {facts['format_version']} "
        f"({printable(facts['created_by'])}){part}",
        f"{'shapes':>14}: {facts['shapes']} in {facts['shards']} shards "
        f"({facts['shard_bytes'] / 2**20:.1f} MB)",
        f"{'built from':>14}: {printable(facts['source_root'])}",
        f"{'labeler':>14}: {facts['labeler']}",
        f"{'points':>14}: {facts['network_points']} network"
        + ("" if facts["dense_points"] is None else f", {facts['dense_points']} dense")
        + f", seed {facts['seed']}",
        f"{'descriptors':>14}: {facts['descriptors']}",
        f"{'features':>14}: "
        + ("none cached" if features is None else f"encoder features cached ({features})"),
        f"{'categories':>14}: {len(facts['categories'])}",
    ]
    for category, counts in facts["categories"].items():
        parts = ", ".join(f"{printable(n)} {k}" for n, k in counts["part_shapes"].items())
        truth = (
            ""
            if counts["ground_truth"] == counts["shapes"]
            else (f", {counts['ground_truth']} with ground truth")
        )
        lines.append(
            f"{'':>16}{printable(category)}: {counts['shapes']} shapes{truth}; "
            f"shapes naming each part: {parts}"
        )
    return lines
