"""Issue #14, defect 9: CloudCompare .xyz, honest ``info``, clear messages for unlabeled
support folders and ground-truth-free simulated labels, one meaning of ``points``."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from bipart_cli.errors import UsageError
from bipart_cli.io import describe_asset, load_asset
from bipart_cli.procedural import make_shape


def _cloud(n: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)), rng.integers(0, 256, (n, 3))


def test_cloudcompare_seven_column_xyz_with_header(tmp_path):
    xyz, rgb = _cloud()
    scalar = np.linspace(-3, 900, len(xyz))[:, None]
    rows = np.hstack([xyz, rgb, scalar])
    lines = ["//X Y Z R G B Scalar_field"] + [" ".join(f"{v:.6f}" for v in row) for row in rows]
    (tmp_path / "scan.xyz").write_text("\n".join(lines) + "\n")
    asset = load_asset(tmp_path / "scan.xyz")
    np.testing.assert_allclose(asset.vertices, xyz, atol=1e-6)
    np.testing.assert_array_equal(asset.vertex_colors, rgb.astype(np.uint8))


def test_seven_column_xyz_without_header(tmp_path):
    xyz, rgb = _cloud()
    rows = np.hstack([xyz, rgb, np.full((len(xyz), 1), -1.5)])
    np.savetxt(tmp_path / "scan.xyz", rows, fmt="%.6f")
    asset = load_asset(tmp_path / "scan.xyz")
    np.testing.assert_allclose(asset.vertices, xyz, atol=1e-6)
    np.testing.assert_array_equal(asset.vertex_colors, rgb.astype(np.uint8))


def test_xyz_with_normals_has_no_colours(tmp_path):
    xyz, _ = _cloud()
    normals = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    np.savetxt(tmp_path / "n.xyz", np.hstack([xyz, normals]), fmt="%.6f")
    assert describe_asset(load_asset(tmp_path / "n.xyz"))["colors"] == "none"


def test_numeric_node_names_are_not_parts(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(trimesh.creation.box(), node_name="2", geom_name="2")
    scene.add_geometry(trimesh.creation.icosphere(), node_name="4", geom_name="4")
    scene.export(tmp_path / "numbered.glb")
    facts = describe_asset(load_asset(tmp_path / "numbered.glb"))
    assert facts["labeled"] is False and facts["parts"] == []


def test_info_claims_no_colours_for_stl(run_bipart, tmp_path):
    trimesh.creation.box().export(tmp_path / "box.stl")
    result = run_bipart("info", "box.stl", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"colors": "none"' in result.stdout


def test_unlabeled_support_folder_says_so(tmp_path, monkeypatch):
    from bipart_cli.support import SupportBank

    folder = tmp_path / "support"
    folder.mkdir()
    trimesh.creation.box().export(folder / "a.stl")
    trimesh.creation.icosphere().export(folder / "b.obj")
    with pytest.raises(UsageError, match="has no labeled shapes") as caught:
        SupportBank.from_folder(folder, tmp_path / "cache")
    assert "--parts" not in str(caught.value)


def test_simulated_labels_need_ground_truth_parts(run_bipart, tmp_path):
    (tmp_path / "chair.glb").write_bytes(make_shape("chair", 1).export(file_type="glb"))
    result = run_bipart(
        "label",
        "chair.glb",
        "--parts",
        "wing,tail",
        "--labeler",
        "simulated",
        "--points",
        "2048",
        cwd=tmp_path,
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert "wing, tail" in lines[0] and "back" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chair.glb"]


def test_api_points_means_the_cli_points(tmp_path):
    """``points`` in the API is the CLI's ``--points``: the dense count (``n_dense``)."""
    from bipart_cli import segment
    from bipart_cli.procedural import write_examples

    write_examples(tmp_path, categories=(), n_chairs=2)
    target = tmp_path / "chairs" / "chair_0.glb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BIPART_CACHE", str(tmp_path / "cache"))
        (result,) = segment(
            str(target),
            "back,seat,leg,arm",
            support_dir=tmp_path / "chairs",
            labeler="none",
            weights="random",
            points=3000,
            write=False,
        )
    assert result.ok, result.error
    assert result.dense_labels.shape == (3000,)
    with pytest.raises(UsageError):
        segment(str(target), "back", labeler="none", points=3000, n_dense=4000)
