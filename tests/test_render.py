"""The point rasteriser against naive per-point references."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bipart_cli.render import (  # noqa: E402
    DEFAULT_VIEWS,
    RenderSettings,
    project_points,
    render_views,
)


def _cloud(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True).max()
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return points.astype(np.float32), colors


def _naive_project(point, elevation, azimuth, settings):
    """Look-at camera written out per point with plain floats."""
    e, a = math.radians(elevation), math.radians(azimuth)
    d = settings.distance
    eye = (d * math.cos(e) * math.sin(a), d * math.sin(e), d * math.cos(e) * math.cos(a))
    forward = [-c / d for c in eye]
    right = (
        forward[1] * 0 - forward[2] * 1,
        forward[2] * 0 - forward[0] * 0,
        forward[0] * 1 - forward[1] * 0,
    )
    norm = math.sqrt(sum(c * c for c in right))
    right = [c / norm for c in right]
    up = (
        right[1] * forward[2] - right[2] * forward[1],
        right[2] * forward[0] - right[0] * forward[2],
        right[0] * forward[1] - right[1] * forward[0],
    )
    rel = [point[i] - eye[i] for i in range(3)]
    x = sum(rel[i] * right[i] for i in range(3))
    y = sum(rel[i] * up[i] for i in range(3))
    z = sum(rel[i] * forward[i] for i in range(3))
    focal = settings.image_size / 2 / math.tan(math.radians(settings.fov_deg) / 2)
    return settings.image_size / 2 + focal * x / z, settings.image_size / 2 - focal * y / z, z


def test_default_views_are_partslip_views():
    assert len(DEFAULT_VIEWS) == 10
    assert DEFAULT_VIEWS[0] == (10, 0) and DEFAULT_VIEWS[-1] == (-20, 300)
    settings = RenderSettings()
    assert (settings.image_size, settings.distance, settings.fov_deg) == (512, 2.2, 60.0)
    assert settings.background == (255, 255, 255)


def test_projection_matches_naive_reference():
    points, _ = _cloud(40)
    settings = RenderSettings(image_size=96)
    pixel_xy, depth = project_points(torch.as_tensor(points), settings)
    for v, (elevation, azimuth) in enumerate(settings.views):
        for n, point in enumerate(points.tolist()):
            x, y, z = _naive_project(point, elevation, azimuth, settings)
            assert pixel_xy[v, n, 0].item() == pytest.approx(x, abs=1e-3)
            assert pixel_xy[v, n, 1].item() == pytest.approx(y, abs=1e-3)
            assert depth[v, n].item() == pytest.approx(z, abs=1e-5)


def test_camera_orientation_top_left_origin():
    # view (10, 0) looks along -z with +y up and +x to the right
    settings = RenderSettings(image_size=64, views=((0, 0),))
    points = torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])
    pixel_xy, _ = project_points(points, settings)
    assert pixel_xy[0, 0, 0] > 32 and pixel_xy[0, 0, 1] == pytest.approx(32)
    assert pixel_xy[0, 1, 1] < 32 and pixel_xy[0, 1, 0] == pytest.approx(32)


def test_zbuffer_matches_naive_loop():
    points, colors = _cloud(50, seed=1)
    settings = RenderSettings(image_size=32, point_radius=1.6, shading="none")
    rendering = render_views(points, colors, settings=settings)
    radius, size = settings.radius_px, settings.image_size
    for v in range(settings.num_views):
        best = {}
        for n in range(len(points)):
            x, y = rendering.pixel_xy[v, n]
            depth = rendering.depth[v, n]
            bx, by = math.floor(x), math.floor(y)
            for py in range(size):
                for px in range(size):
                    own = (px, py) == (bx, by)
                    near = (px + 0.5 - x) ** 2 + (py + 0.5 - y) ** 2 <= radius**2
                    if depth > 0 and (own or near):
                        key = (float(depth), n)
                        if (py, px) not in best or key < best[(py, px)]:
                            best[(py, px)] = key
        expected = np.full((size, size), -1)
        for (py, px), (_, n) in best.items():
            expected[py, px] = n
        np.testing.assert_array_equal(rendering.index_maps[v], expected)
        winners = set(expected[expected >= 0].tolist())
        np.testing.assert_array_equal(np.flatnonzero(rendering.visible[v]), sorted(winners))


def test_hidden_point_is_never_visible():
    rng = np.random.default_rng(2)
    settings = RenderSettings(image_size=48, point_radius=2.0)
    front = rng.uniform(-0.3, 0.3, (30, 3)).astype(np.float32)
    for v, (elevation, azimuth) in enumerate(settings.views):
        e, a = math.radians(elevation), math.radians(azimuth)
        eye = settings.distance * np.array(
            [math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)]
        )
        # a point on the ray from the camera through front[0], farther away
        behind = eye + (front[0] - eye) * 1.3
        points = np.concatenate([front, behind[None].astype(np.float32)])
        colors = np.full((len(points), 3), 100, np.uint8)
        rendering = render_views(
            points,
            colors,
            settings=RenderSettings(**{**settings.__dict__, "views": ((elevation, azimuth),)}),
        )
        hidden = len(points) - 1
        assert not rendering.visible[0, hidden], f"view {v}"
        assert not (rendering.index_maps[0] == hidden).any()
        x, y = np.floor(rendering.pixel_xy[0, 0]).astype(int)
        shown = rendering.index_maps[0, y, x]
        assert shown >= 0 and rendering.depth[0, shown] <= rendering.depth[0, 0]


def test_index_maps_consistent_with_images():
    points, colors = _cloud(300, seed=3)
    settings = RenderSettings(image_size=40, shading="none", background=(255, 255, 255))
    rendering = render_views(points, colors, settings=settings)
    index = rendering.index_maps
    assert rendering.images.shape == (10, 40, 40, 3) and rendering.images.dtype == np.uint8
    assert index.shape == (10, 40, 40) and index.dtype == np.int64
    np.testing.assert_array_equal(rendering.images[index >= 0], colors[index[index >= 0]])
    assert (rendering.images[index < 0] == 255).all()


def test_grey_assets_are_shaded():
    points, _ = _cloud(2000, seed=4)
    grey = np.full((len(points), 3), 128, np.uint8)
    flat = render_views(points, grey, settings=RenderSettings(image_size=48, shading="none"))
    lit = render_views(points, grey, settings=RenderSettings(image_size=48))  # auto -> lambert
    on_object = lit.index_maps >= 0
    assert len(np.unique(flat.images[on_object][:, 0])) == 1
    assert lit.images[on_object][:, 0].std() > 5
    np.testing.assert_array_equal(lit.index_maps, flat.index_maps)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_matches_cpu():
    points, colors = _cloud(500, seed=5)
    settings = RenderSettings(image_size=64)
    cpu = render_views(points, colors, settings=settings)
    gpu = render_views(points, colors, settings=settings, device="cuda")
    assert (cpu.index_maps == gpu.index_maps).mean() > 0.99
