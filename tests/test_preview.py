"""Issue #14, defect 6: the ``--preview`` PNG honours ``--up``, hides the far side, has a
title; issue 31: its legend in any language; issue 32 item 6: views at eye level and from
below, framed to fill their panels, a legend with point counts, and no torch."""

from __future__ import annotations

import numpy as np
from PIL import Image

from bipart_cli.io.asset import PointSample
from bipart_cli.orientation import Z_UP_TO_Y_UP
from bipart_cli.parts import part_colors
from bipart_cli.preview import (
    legend_entries,
    legend_text,
    missing_characters,
    preview_font,
    write_preview,
)

SIZE, TOP = 384, 24  # tile size and title band of the sheet


def _tiles(path) -> list[np.ndarray]:
    sheet = np.asarray(Image.open(path).convert("RGB"))
    return [sheet[TOP : TOP + SIZE, k * SIZE : (k + 1) * SIZE] for k in range(4)]


def _sphere(rng, n: int, radius: float) -> np.ndarray:
    points = rng.normal(size=(n, 3))
    return (radius * points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_hidden_inner_part_never_shows(tmp_path):
    """A small sphere (part 1) inside a big one (part 0) is hidden from every view: with
    pinholes between the splats, or without a z-buffer, its colour would show through."""
    rng = np.random.default_rng(0)
    outer, inner = _sphere(rng, 20_000, 0.9), _sphere(rng, 5_000, 0.4)
    points = np.concatenate([outer, inner])
    labels = np.repeat([0, 1], [len(outer), len(inner)])
    dense = PointSample(points=points, colors=np.full((len(points), 3), 128, np.uint8))
    path = write_preview(dense, labels, ["shell", "core"], tmp_path / "p.png")
    core = part_colors(2)[1].astype(np.int16)
    for tile in _tiles(path):
        near_core = np.abs(tile.astype(np.int16) - core).max(-1) <= 40
        # the core's disc is ~9000 px; with 1.15 px splats ~4800 of them showed through
        assert near_core.sum() < 150
        # and the shell is closed: no background inside its silhouette's inner part
        yy, xx = np.mgrid[:SIZE, :SIZE]
        centre = np.hypot(yy - SIZE / 2, xx - SIZE / 2) < 100
        assert (tile[centre] == 255).all(-1).mean() < 0.005


def test_preview_is_drawn_in_the_up_frame(tmp_path):
    """A Z-up export previewed with up=z looks like the Y-up original with up=y."""
    from bipart_cli.io import load_asset, sample_dense
    from bipart_cli.procedural import make_shape

    path = tmp_path / "chair.glb"
    path.write_bytes(make_shape("chair", 3).export(file_type="glb"))
    asset = load_asset(path)
    dense = sample_dense(asset, n_points=20_000, seed=0)
    labels = np.maximum(dense.labels, 0)
    names = list(asset.part_names)
    y_up = write_preview(dense, labels, names, tmp_path / "y.png", up="y", title="chair, up y")
    z_points = (dense.points @ Z_UP_TO_Y_UP).astype(np.float32)  # inverse rotation: Z-up
    z_normals = None if dense.normals is None else (dense.normals @ Z_UP_TO_Y_UP)
    z_dense = PointSample(points=z_points, colors=dense.colors, normals=z_normals)
    z_up = write_preview(z_dense, labels, names, tmp_path / "z.png", up="z")
    wrong = write_preview(z_dense, labels, names, tmp_path / "wrong.png", up="y")
    for a, b, c in zip(_tiles(y_up), _tiles(z_up), _tiles(wrong), strict=True):
        same = np.abs(a.astype(np.int16) - b).max(-1) > 30
        other = np.abs(a.astype(np.int16) - c).max(-1) > 30
        assert same.mean() < 0.01 and other.mean() > 0.05


def test_preview_has_a_title(tmp_path):
    rng = np.random.default_rng(1)
    points = _sphere(rng, 2000, 0.8)
    dense = PointSample(points=points, colors=np.full((2000, 3), 128, np.uint8))
    labels = np.zeros(2000, np.int64)
    titled = write_preview(dense, labels, ["a"], tmp_path / "t.png", title="ball.glb, up z")
    plain = write_preview(dense, labels, ["a"], tmp_path / "p.png")
    band = lambda p: np.asarray(Image.open(p).convert("L"))[:TOP]  # noqa: E731
    assert (band(titled) < 128).sum() > 20 and (band(plain) < 128).sum() == 0


def test_missing_characters_against_real_fonts():
    """Pillow's own font (Aileron, or its Latin-1 bitmap font) draws ASCII alone: the
    check finds the glyphs it lacks by what it draws, not by a list."""
    from PIL import ImageFont

    default = ImageFont.load_default()
    assert missing_characters(default, "back seat") == set()
    assert missing_characters(default, "靠背 seat") == {"靠", "背"}
    assert missing_characters(default, "a\nb\x1b") == {"\n", "\x1b"}  # never drawn
    if hasattr(ImageFont, "load_default_imagefont"):  # Pillow >= 10.1
        assert missing_characters(ImageFont.load_default_imagefont(), "a靠") == {"靠"}


def test_legend_in_any_language_draws_or_escapes_every_name(tmp_path):
    """Issue 31: the legend draws French, German, Chinese and Japanese names with a font
    that has their glyphs, and escapes (never boxes) what no font here can draw."""
    from PIL import ImageFont

    names = ["dossier", "siège", "Rückenlehne", "靠背", "背もたれ"]
    font = preview_font(names)
    for name in names:
        label = legend_text(name, font)
        assert label.isprintable()
        assert not missing_characters(font, label), name
        assert label == name or "\\u" in label or "\\x" in label, label
    try:
        ImageFont.truetype("DejaVuSans.ttf", 11)
    except OSError:
        pass
    else:  # a font with the accents is found: they are drawn, not escaped
        assert legend_text("siège", font) == "siège"
        assert legend_text("Rückenlehne", font) == "Rückenlehne"
    assert legend_text("chaise\n.glb", font) == "chaise\\x0a.glb"

    rng = np.random.default_rng(2)
    dense = PointSample(points=_sphere(rng, 2000, 0.8), colors=np.full((2000, 3), 128, np.uint8))
    labels = rng.integers(0, len(names), 2000)
    path = write_preview(dense, labels, names, tmp_path / "p.png", title="chaise\n.glb, up y")
    sheet = np.asarray(Image.open(path).convert("L"))
    assert (sheet[TOP + SIZE :] < 128).sum() > 100  # the legend is drawn


def _parts_cloud(
    meshes: list, n_per_part: int = 6000, seed: int = 0
) -> tuple[PointSample, np.ndarray]:
    """Surface samples of ``meshes`` (part k = meshes[k]) in the unit sphere, with their normals
    and labels (n,)."""
    import trimesh

    points, normals, labels = [], [], []
    for k, mesh in enumerate(meshes):
        xyz, faces = trimesh.sample.sample_surface(mesh, n_per_part, seed=seed + k)
        points.append(xyz)
        normals.append(mesh.face_normals[faces])
        labels.append(np.full(n_per_part, k))
    xyz = np.concatenate(points)
    xyz -= (xyz.min(0) + xyz.max(0)) / 2
    xyz /= np.linalg.norm(xyz, axis=1).max()
    dense = PointSample(
        points=xyz.astype(np.float32),
        colors=np.full((len(xyz), 3), 128, np.uint8),
        normals=np.concatenate(normals).astype(np.float32),
    )
    return dense, np.concatenate(labels)


def _cylinder(radius: float, bottom: float, top: float):
    import trimesh

    mesh = trimesh.creation.cylinder(radius=radius, height=top - bottom, sections=48)
    mesh.apply_transform(trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]))
    mesh.apply_translation([0, (top + bottom) / 2, 0])  # the axis along +y
    return mesh


def _seen(tile: np.ndarray, color: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of ``tile`` in the hue of ``color`` (shading and the darker part
    lines scale a colour, so its direction in RGB stays)."""
    rgb = tile.astype(np.float64) + 1e-9
    direction = rgb / np.linalg.norm(rgb, axis=-1, keepdims=True)
    target = color / np.linalg.norm(color)
    return (direction @ target > 0.995) & (rgb.sum(-1) < 740)  # not the white background


def test_views_look_from_eye_level_and_from_below():
    """Issue #32 item 6: besides a view from above, two at eye level and one from below, and no
    two views opposite at the same height (a symmetric object's would look the same)."""
    from bipart_cli.preview_views import PREVIEW_VIEWS

    elevations = [view.elevation for view in PREVIEW_VIEWS]
    assert sum(abs(e) <= 15 for e in elevations) >= 2
    assert any(e <= -20 for e in elevations) and any(e >= 25 for e in elevations)
    for a in PREVIEW_VIEWS:
        for b in PREVIEW_VIEWS:
            if a is not b and a.elevation == b.elevation:
                assert abs((a.azimuth - b.azimuth) % 360 - 180) > 30, (a, b)


def test_a_round_table_s_pedestal_shows(tmp_path):
    """Issue #32 item 6: a round table's pedestal, hidden under its top when every view looked
    from above, shows in the eye-level and below views."""
    top = _cylinder(1.0, 0.72, 0.78)
    pedestal = _cylinder(0.06, 0.05, 0.72)
    base = _cylinder(0.35, 0.0, 0.05)
    dense, labels = _parts_cloud([top, pedestal, base])
    path = write_preview(dense, labels, ["top", "pedestal", "base"], tmp_path / "t.png")
    pedestal_color = part_colors(3)[1].astype(np.float64)
    shown = [int(_seen(tile, pedestal_color).sum()) for tile in _tiles(path)]
    assert sum(count > 800 for count in shown) >= 3, shown


def test_a_floor_lamp_fills_its_panels(tmp_path):
    """Issue #32 item 6: a tall, thin floor lamp is as tall as its panels, not a small figure
    in the middle of the unit sphere's frame."""
    pole = _cylinder(0.02, 0.03, 1.5)
    shade = _cylinder(0.18, 1.3, 1.65)
    foot = _cylinder(0.15, 0.0, 0.03)
    dense, labels = _parts_cloud([pole, shade, foot])
    path = write_preview(dense, labels, ["pole", "shade", "foot"], tmp_path / "lamp.png")
    for tile in _tiles(path):
        rows = np.flatnonzero((tile < 250).any(-1).any(-1)[20:]) + 20  # below the caption
        assert rows.max() - rows.min() > 0.85 * SIZE, (rows.min(), rows.max())


def test_legend_lists_each_part_s_point_count(tmp_path):
    """Issue #32 item 6: the legend gives every part's point count (a part with none too),
    and the unassigned points when there are."""
    labels = np.array([0, 0, 2, -1, 0, 2, -1])
    assert legend_entries(labels, ["back", "seat", "leg"]) == [
        ("back", 3),
        ("seat", 0),
        ("leg", 2),
        ("unassigned", 2),
    ]
    assert legend_entries(np.array([1, 1]), ["a", "b"]) == [("a", 0), ("b", 2)]


def test_the_preview_needs_no_torch(tmp_path):
    """Issue #32 item 6: a stored run reads its labels back without torch; its preview must
    not import it either (torch's import alone was 3.8 s of the preview's 7 s)."""
    import subprocess
    import sys

    script = (
        "import sys, numpy as np\n"
        "from bipart_cli.io.asset import PointSample\n"
        "from bipart_cli.preview import write_preview\n"
        "rng = np.random.default_rng(0)\n"
        "points = rng.normal(size=(3000, 3)).astype(np.float32)\n"
        "points /= np.linalg.norm(points, axis=1, keepdims=True)\n"
        "dense = PointSample(points=points, colors=np.full((3000, 3), 128, np.uint8))\n"
        "write_preview(dense, (points[:, 1] > 0).astype(int), ['a', 'b'], "
        f"__import__('pathlib').Path({str(tmp_path / 'p.png')!r}), up='pca')\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "p.png").is_file()
