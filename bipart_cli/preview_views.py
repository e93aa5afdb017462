"""The ``--preview`` panels: a labeled point cloud seen from a few named views, each framed
to fill its panel, splatted with a z-buffer in numpy.

Not :mod:`bipart_cli.render` (the labeler's PartSLIP cameras, in torch): a stored run writes
its preview without importing torch, which alone took 3.8 s of the 7 s a preview cost.

The cameras use :func:`~bipart_cli.render.camera_frames` (world ``+y`` up; azimuth 0 looks
from ``+z``, glTF's front). Each view is a perspective projection from
:data:`CAMERA_DISTANCE`, then zoomed and centred so that the object's projection fills the
panel less a margin: a tall floor lamp is as tall as its panel, a sofa as wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PreviewView:
    """One panel's camera, in degrees: elevation (negative: from below) and azimuth (0: from
    ``+z``, glTF's front; 90: from ``+x``)."""

    elevation: float
    azimuth: float

    @property
    def caption(self) -> str:
        """What the panel's corner says: the camera's height and azimuth (not "front": an
        asset may face any way)."""
        if abs(self.elevation) <= 15:
            height = "eye level"
        else:
            height = "from above" if self.elevation > 0 else "from below"
        return f"{height}, azimuth {self.azimuth:g}\N{DEGREE SIGN}"


# Two views at eye level (the camera a little above the centre: a round table's pedestal
# shows under its top), one from above (tops and seats), one from below (legs, bases, the
# underside). No two are opposite at the same height, so a symmetric object's views differ.
PREVIEW_VIEWS: tuple[PreviewView, ...] = (
    PreviewView(8.0, 30.0),
    PreviewView(8.0, 105.0),
    PreviewView(40.0, 215.0),
    PreviewView(-35.0, 320.0),
)
CAMERA_DISTANCE = 3.5  # unit-sphere radii: mild perspective; the zoom frames the object
MARGIN = 0.06  # of the panel on each side
MAX_PREVIEW_POINTS = 60_000  # more add no pixels to a 384-pixel panel, only time
UNASSIGNED_RGB = np.array([160, 160, 160], np.uint8)
_EMPTY = np.iinfo(np.int64).max


@dataclass
class PreviewPanels:
    """Rendered panels.

    images : (V, size, size, 3) uint8
    views : the V views
    """

    images: np.ndarray
    views: tuple[PreviewView, ...]


def label_colors(labels: np.ndarray, num_parts: int) -> np.ndarray:
    """(n,) labels (``-1`` unassigned) -> (n, 3) uint8 part colours (grey when unassigned)."""
    from .parts import part_colors

    palette = np.vstack([part_colors(num_parts), UNASSIGNED_RGB[None]])
    return palette[np.where(labels >= 0, labels, num_parts)]


def render_panels(
    points: np.ndarray,
    labels: np.ndarray,
    num_parts: int,
    normals: np.ndarray | None = None,
    frame: np.ndarray | None = None,
    size: int = 384,
    views: tuple[PreviewView, ...] = PREVIEW_VIEWS,
) -> PreviewPanels:
    """The labeled cloud from every view, each framed to fill a ``size`` pixel panel.

    points : (n, 3) float32 in the unit sphere
    labels : (n,) int64, ``-1`` unassigned, else an index below ``num_parts``
    normals : (n, 3) float32 or None; when given, surfaces facing the camera are lit
        brighter than those seen edge-on, so the shape reads as well as the parts
    frame : (3, 3) rotation into bipart's Y-up frame (``points @ frame.T``), or None
    Lines between parts and along silhouettes are drawn darker. At most
    :data:`MAX_PREVIEW_POINTS` points are drawn (a fixed random subset).
    """
    from .render import camera_frames

    chosen = _preview_subset(len(points))
    points = np.asarray(points, dtype=np.float64)[chosen]
    labels = np.asarray(labels, dtype=np.int64)[chosen]
    normals = None if normals is None else np.asarray(normals, dtype=np.float64)[chosen]
    colors = label_colors(labels, num_parts).astype(np.float64)
    spacing = _point_spacing(points)
    centers, rotations = camera_frames(
        tuple((v.elevation, v.azimuth) for v in views), CAMERA_DISTANCE
    )
    frame = np.eye(3) if frame is None else np.asarray(frame, dtype=np.float64)
    images = np.full((len(views), size, size, 3), 255, np.uint8)
    for v, (center, rotation) in enumerate(zip(centers, rotations, strict=True)):
        if not len(points):
            continue
        to_camera = rotation @ frame
        camera = _rotate(points, to_camera) - rotation @ center  # (n, 3): right, up, forward
        pixel_xy, depth, scale = _framed_projection(camera, size)
        # each splat reaches its point's spacing as seen at its own depth
        radius = np.clip(spacing * scale / depth, 1.0, 12.0)
        index = _zbuffer(pixel_xy, depth, size, radius)
        light = None if normals is None else _light(_rotate(normals, to_camera), rotation)
        images[v] = _compose(index, colors, labels, light)
    return PreviewPanels(images=images, views=views)


def _rotate(points: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """points (n, 3) -> ``points @ rotation.T`` (n, 3), as three scaled columns: numpy's
    matmul of an (n, 3) by a (3, 3) took 5 to 10 times longer."""
    return (
        points[:, 0, None] * rotation[:, 0]
        + points[:, 1, None] * rotation[:, 1]
        + points[:, 2, None] * rotation[:, 2]
    )


def _light(camera_normals: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Brightness (n,) of surfaces with unoriented camera-space normals (n, 3): a head light
    (faces seen edge-on darker, so creases show) and one from straight above or below (so
    a seat seen at eye level is not dark). ``rotation`` (3, 3): the view's world-to-camera."""
    facing = np.abs(camera_normals[:, 2])
    level = np.abs(camera_normals @ rotation[:, 1])  # the normal's world-up component
    return 0.58 + 0.27 * facing + 0.17 * level


def _preview_subset(n: int) -> np.ndarray:
    """Indices (m,) of the points drawn: all, or a fixed random :data:`MAX_PREVIEW_POINTS`."""
    if n <= MAX_PREVIEW_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_PREVIEW_POINTS, replace=False))


def _point_spacing(points: np.ndarray) -> float:
    """The median distance from a point to its 6th nearest neighbour: a splat that reaches
    it leaves ~6 points within reach of each pixel, so no holes for the far side to show
    through (the z-buffer keeps the nearest)."""
    from scipy.spatial import cKDTree

    if len(points) < 8:
        return 0.05
    rng = np.random.default_rng(0)
    probes = points[rng.choice(len(points), min(len(points), 2000), replace=False)]
    distances, _ = cKDTree(points).query(probes, k=7)  # self + 6 neighbours
    return float(np.median(distances[:, -1]))


def _framed_projection(camera: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Perspective projection of camera-space points (n, 3), zoomed to fill the panel.

    Returns pixel_xy (n, 2) (x right, y down, top-left origin), depth (n,) and the zoom:
    pixels per unit of ``x / depth``.
    """
    depth = camera[:, 2]
    flat = camera[:, :2] / depth[:, None]  # (n, 2)
    low, high = flat.min(axis=0), flat.max(axis=0)
    scale = (1 - 2 * MARGIN) * size / max(float((high - low).max()), 1e-9)
    middle = (low + high) / 2
    pixel_xy = np.empty_like(flat)
    pixel_xy[:, 0] = size / 2 + scale * (flat[:, 0] - middle[0])
    pixel_xy[:, 1] = size / 2 - scale * (flat[:, 1] - middle[1])
    return pixel_xy, depth, scale


def _splat_offsets(radius: float) -> np.ndarray:
    """Integer pixel offsets (k, 2) whose centre can be within ``radius`` of a point in pixel (0, 0)."""
    reach = int(np.ceil(radius + 0.5))
    steps = np.arange(-reach, reach + 1)
    grid = np.stack(np.meshgrid(steps, steps, indexing="xy"), axis=-1).reshape(-1, 2)
    gap = np.clip(np.abs(grid) - 0.5, 0, None)  # from the (0, 0) square to the centre, per axis
    return grid[(gap**2).sum(-1) <= radius * radius]


def _zbuffer(pixel_xy: np.ndarray, depth: np.ndarray, size: int, radius: np.ndarray) -> np.ndarray:
    """The nearest point per pixel over discs of ``radius`` (n,) pixels: (size, size) int64,
    -1 where empty. Keys pack the depth's float32 bits (ordered as the positive floats are)
    above the point index, so one ``minimum.at`` keeps the nearest, ties to the lower index."""
    n = len(depth)
    keys = (depth.astype(np.float32).view(np.int32).astype(np.int64) << 32) | np.arange(n)
    flat = np.full(size * size, _EMPTY, np.int64)
    base = np.floor(pixel_xy).astype(np.int64)
    for dx, dy in _splat_offsets(float(radius.max())).tolist():
        x, y = base[:, 0] + dx, base[:, 1] + dy
        hit = (x >= 0) & (x < size) & (y >= 0) & (y < size)
        if (dx, dy) != (0, 0):  # the pixel holding the projection is always covered
            reach2 = (x + 0.5 - pixel_xy[:, 0]) ** 2 + (y + 0.5 - pixel_xy[:, 1]) ** 2
            hit &= reach2 <= radius * radius
        np.minimum.at(flat, (y * size + x)[hit], keys[hit])
    index = np.where(flat == _EMPTY, -1, flat & 0xFFFFFFFF)
    return index.reshape(size, size)


def _compose(
    index: np.ndarray, colors: np.ndarray, labels: np.ndarray, light: np.ndarray | None
) -> np.ndarray:
    """A panel (size, size, 3) uint8 from its index map (size, size): the seen points'
    colours (n, 3) float, lit by ``light`` (n,) when given, on white, with the pixels where
    the part changes (or the object ends) darkened into lines."""
    seen = index >= 0
    safe = np.maximum(index, 0)
    rgb = colors[safe] * (1.0 if light is None else light[safe][..., None])
    part = np.pad(np.where(seen, labels[safe], -2), 1, constant_values=-2)  # -2: background
    middle = part[1:-1, 1:-1]
    edge = (
        (middle != part[:-2, 1:-1])
        | (middle != part[2:, 1:-1])
        | (middle != part[1:-1, :-2])
        | (middle != part[1:-1, 2:])
    )  # a 4-neighbour of another part, or of the background
    rgb = np.where((edge & seen)[..., None], rgb * 0.55, rgb)
    image = np.where(seen[..., None], np.clip(np.round(rgb), 0, 255), 255)
    return image.astype(np.uint8)
