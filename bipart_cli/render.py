"""Pure-PyTorch point-cloud rasteriser: multi-view images and index maps (CPU or CUDA).

Cameras follow PartSLIP: perspective, 60° field of view, looking at the origin from
distance 2.2, world ``+y`` up, positioned at ``distance * (cos e sin a, sin e, cos e cos a)``
for elevation ``e`` and azimuth ``a`` (pytorch3d's ``look_at_view_transform``
convention). The image has a top-left origin like detector boxes: ``x`` to the right,
``y`` down, and pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)`` in continuous pixel
coordinates.

Each point is splatted as a disc of ``point_radius`` pixels (constant in screen
space, like pytorch3d's point rasteriser) and a z-buffer keeps the nearest point per
pixel. The z-buffer is one ``scatter_reduce(amin)`` over int64 keys that pack the
depth (the bit pattern of a positive float32 orders like the float) above the point
index, so the nearest point wins and ties go to the lower index.

pytorch3d is not used: this renderer has no compiled parts and runs wherever torch
does, and it is fast enough (see ``benchmarks/speed/labeling_speed.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

# PartSLIP's 10 views, (elevation, azimuth) in degrees.
DEFAULT_VIEWS: tuple[tuple[float, float], ...] = (
    (10, 0),
    (10, 90),
    (10, 180),
    (10, 270),
    (40, 0),
    (40, 120),
    (40, 240),
    (-20, 60),
    (-20, 180),
    (-20, 300),
)

SHADINGS = ("auto", "lambert", "normal", "none")


@dataclass(frozen=True)
class RenderSettings:
    """How the views are rendered.

    image_size : int
        Square images of ``image_size`` pixels.
    distance, fov_deg : float
        Camera distance from the origin and vertical field of view.
    point_radius : float or None
        Splat radius in pixels; None picks ``max(1, 0.003 * image_size)`` (1.5 px at
        512, about PartSLIP's 0.005 NDC at 800 px scaled to the image).
    background : (3,) int
        RGB of empty pixels (white).
    shading : str
        ``auto``: Lambert lighting when the colours are (near) uniform, i.e. an
        untextured grey asset, else the colours as they are; ``lambert``: always light
        the colours; ``normal``: colour by the view-space normal; ``none``: flat colours.
    views : tuple of (elevation, azimuth) degrees
    """

    image_size: int = 512
    distance: float = 2.2
    fov_deg: float = 60.0
    point_radius: float | None = None
    background: tuple[int, int, int] = (255, 255, 255)
    shading: str = "auto"
    views: tuple[tuple[float, float], ...] = DEFAULT_VIEWS

    def __post_init__(self) -> None:
        if self.shading not in SHADINGS:
            raise ValueError(f"shading must be one of {SHADINGS}, got {self.shading!r}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {self.image_size}")

    @property
    def radius_px(self) -> float:
        if self.point_radius is not None:
            return float(self.point_radius)
        return max(1.0, 0.003 * self.image_size)

    @property
    def num_views(self) -> int:
        return len(self.views)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly settings (for provenance)."""
        out = asdict(self)
        out["views"] = [list(view) for view in self.views]
        out["background"] = list(self.background)
        out["point_radius"] = self.radius_px
        return out


@dataclass
class Rendering:
    """Rendered views of one point cloud.

    images : (V, H, W, 3) uint8
    index_maps : (V, H, W) int64
        The point seen at each pixel, -1 for background.
    pixel_xy : (V, n, 2) float32
        Continuous projected position of every point (x right, y down, top-left origin).
    depth : (V, n) float32
        Distance along the viewing axis; <= 0 behind the camera.
    visible : (V, n) bool
        The point is the one seen at one or more pixels (it wins the z-buffer there).
    settings : RenderSettings
    """

    images: np.ndarray
    index_maps: np.ndarray
    pixel_xy: np.ndarray
    depth: np.ndarray
    visible: np.ndarray
    settings: RenderSettings

    @property
    def num_views(self) -> int:
        return len(self.images)

    @property
    def num_points(self) -> int:
        return self.pixel_xy.shape[1]

    def in_image(self) -> np.ndarray:
        """(V, n) bool: the point projects inside the image, in front of the camera."""
        size = self.settings.image_size
        x, y = self.pixel_xy[..., 0], self.pixel_xy[..., 1]
        return (self.depth > 0) & (x >= 0) & (x < size) & (y >= 0) & (y < size)


def camera_frames(
    views: tuple[tuple[float, float], ...], distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres (V, 3) and world-to-camera rotations (V, 3, 3), rows right/up/forward."""
    centers, rotations = [], []
    for elevation, azimuth in views:
        e, a = math.radians(elevation), math.radians(azimuth)
        center = distance * np.array(
            [math.cos(e) * math.sin(a), math.sin(e), math.cos(e) * math.cos(a)]
        )
        forward = -center / np.linalg.norm(center)
        right = np.cross(forward, [0.0, 1.0, 0.0])
        if np.linalg.norm(right) < 1e-8:  # looking straight down or up
            right = np.array([1.0, 0.0, 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        centers.append(center)
        rotations.append(np.stack([right, up, forward]))
    return np.asarray(centers), np.asarray(rotations)


def project_points(
    points: torch.Tensor, settings: RenderSettings
) -> tuple[torch.Tensor, torch.Tensor]:
    """Perspective projection into every view.

    points : (n, 3) float32  ->  pixel_xy (V, n, 2) float32, depth (V, n) float32
    """
    import torch

    centers, rotations = camera_frames(settings.views, settings.distance)
    centers_t = torch.as_tensor(centers, dtype=torch.float32, device=points.device)  # (V, 3)
    rotations_t = torch.as_tensor(rotations, dtype=torch.float32, device=points.device)  # (V, 3, 3)
    camera = torch.einsum(
        "vij,vnj->vni", rotations_t, points[None] - centers_t[:, None]
    )  # (V, n, 3)
    depth = camera[..., 2]
    focal = (settings.image_size / 2) / math.tan(math.radians(settings.fov_deg) / 2)
    safe_depth = torch.where(depth > 1e-6, depth, torch.ones_like(depth))
    half = settings.image_size / 2
    x = half + focal * camera[..., 0] / safe_depth
    y = half - focal * camera[..., 1] / safe_depth
    return torch.stack([x, y], dim=-1), depth


def _splat_offsets(radius: float, device: torch.device) -> torch.Tensor:
    """Integer pixel offsets (k, 2) whose centre can be within ``radius`` of a point in pixel (0, 0)."""
    import torch

    reach = int(math.ceil(radius + 0.5))
    steps = torch.arange(-reach, reach + 1, device=device)
    grid = torch.stack(torch.meshgrid(steps, steps, indexing="xy"), dim=-1).reshape(-1, 2)
    # nearest distance from the pixel (0, 0) square to the offset pixel's centre, per axis
    gap = (grid.abs().float() - 0.5).clamp(min=0)
    return grid[(gap**2).sum(-1) <= radius * radius]


def zbuffer(
    pixel_xy: torch.Tensor, depth: torch.Tensor, image_size: int, radius: float
) -> torch.Tensor:
    """Nearest point per pixel over discs of ``radius`` px.

    pixel_xy : (V, n, 2), depth : (V, n)  ->  index_maps (V, H, W) int64, -1 = empty.
    A pixel belongs to a point's disc when the pixel centre lies within ``radius``
    of the projection; the pixel holding the projection always does.
    """
    import torch

    views, n = depth.shape
    size = image_size
    device = depth.device
    base = torch.floor(pixel_xy).long()  # (V, n, 2)
    offsets = _splat_offsets(radius, device)  # (k, 2)
    # Packed key: depth bits (monotone for positive float32) above the point index.
    depth_bits = depth.contiguous().view(torch.int32).long()  # (V, n)
    keys = (depth_bits << 32) | torch.arange(n, device=device)  # (V, n)
    empty = torch.iinfo(torch.int64).max
    flat = torch.full((views * size * size,), empty, dtype=torch.int64, device=device)
    view_offset = (torch.arange(views, device=device) * size * size)[:, None]  # (V, 1)
    in_front = depth > 1e-6
    for dx, dy in offsets.tolist():
        px = base[..., 0] + dx
        py = base[..., 1] + dy
        centre_dist2 = (px + 0.5 - pixel_xy[..., 0]) ** 2 + (py + 0.5 - pixel_xy[..., 1]) ** 2
        hit = in_front & (px >= 0) & (px < size) & (py >= 0) & (py < size)
        if (dx, dy) != (0, 0):  # the pixel holding the projection is always covered
            hit &= centre_dist2 <= radius * radius
        target = (view_offset + py * size + px)[hit]
        flat.scatter_reduce_(0, target, keys[hit], reduce="amin")
    index = torch.where(flat == empty, torch.full_like(flat, -1), flat & 0xFFFFFFFF)
    return index.view(views, size, size)


def is_uniform_color(colors: np.ndarray, tolerance: float = 6.0) -> bool:
    """Whether colours (n, 3) uint8 are all (nearly) one colour, i.e. an untextured asset."""
    if len(colors) == 0:
        return True
    return bool(np.asarray(colors, dtype=np.float32).std(axis=0).max() <= tolerance)


def estimate_normals(points: np.ndarray, k: int = 12) -> np.ndarray:
    """Unoriented PCA normals (n, 3) float32 of points (n, 3) from ``k`` neighbours."""
    from scipy.spatial import KDTree

    k = min(k, len(points))
    _, neighbors = KDTree(points).query(points, k=k)
    local = points[neighbors.reshape(len(points), -1)]  # (n, k, 3)
    local = local - local.mean(axis=1, keepdims=True)
    covariance = np.einsum("nki,nkj->nij", local, local)  # (n, 3, 3)
    _, vectors = np.linalg.eigh(covariance)
    return vectors[:, :, 0].astype(np.float32)  # smallest eigenvalue's vector


def shade_colors(
    colors: torch.Tensor, normals: torch.Tensor | None, rotations: torch.Tensor, shading: str
) -> torch.Tensor:
    """Per-view point colours (V, n, 3) float32 in [0, 255].

    colors : (n, 3) float32, normals : (n, 3) float32 or None, rotations : (V, 3, 3).
    Lighting is two-sided (``|n . l|``) so unoriented normals shade correctly:
    a head light plus a key light from the upper left, over 45% ambient.
    """
    import torch

    views = rotations.shape[0]
    if shading == "none" or normals is None:
        return colors[None].expand(views, -1, -1)
    camera_normals = torch.einsum("vij,nj->vni", rotations, normals)  # (V, n, 3)
    if shading == "normal":
        tint = (camera_normals * torch.sign(-camera_normals[..., 2:3] + 1e-9) + 1) * 0.5
        return tint * 255.0
    head = torch.tensor([0.0, 0.0, -1.0], device=colors.device)
    key = torch.tensor([-0.5, 0.7, -0.5], device=colors.device)
    key = key / key.norm()
    light = 0.45 + 0.45 * (camera_normals @ head).abs() + 0.3 * (camera_normals @ key).abs()
    return (colors[None] * light[..., None]).clamp(0, 255)


def render_views(
    points: np.ndarray,
    colors: np.ndarray,
    normals: np.ndarray | None = None,
    settings: RenderSettings | None = None,
    device: str | torch.device = "cpu",
) -> Rendering:
    """Render a unit-sphere point cloud from ``settings.views``.

    points : (n, 3) float32 in the unit sphere
    colors : (n, 3) uint8
    normals : (n, 3) float32 or None (estimated from the points when shading needs them)
    Returns a :class:`Rendering` (numpy arrays on the CPU).
    """
    import torch

    settings = settings or RenderSettings()
    points = np.ascontiguousarray(points, dtype=np.float32)
    colors = np.asarray(colors, dtype=np.uint8)
    shading = settings.shading
    if shading == "auto":
        shading = "lambert" if is_uniform_color(colors) else "none"
    if shading in ("lambert", "normal") and normals is None and len(points) >= 3:
        normals = estimate_normals(points)

    device = torch.device(device)
    points_t = torch.as_tensor(points, device=device)  # (n, 3)
    pixel_xy, depth = project_points(points_t, settings)  # (V, n, 2), (V, n)
    index_maps = zbuffer(pixel_xy, depth, settings.image_size, settings.radius_px)  # (V, H, W)

    _, rotations = camera_frames(settings.views, settings.distance)
    rotations_t = torch.as_tensor(rotations, dtype=torch.float32, device=device)
    normals_t = (
        None if normals is None else torch.as_tensor(np.asarray(normals, np.float32), device=device)
    )
    colors_t = torch.as_tensor(colors, device=device).float()
    view_colors = shade_colors(colors_t, normals_t, rotations_t, shading)  # (V, n, 3)
    images = _compose(index_maps, view_colors, settings.background)

    visible = _wins_a_pixel(index_maps, len(points))
    return Rendering(
        images=images.cpu().numpy(),
        index_maps=index_maps.cpu().numpy(),
        pixel_xy=pixel_xy.cpu().numpy(),
        depth=depth.cpu().numpy(),
        visible=visible.cpu().numpy(),
        settings=settings,
    )


def _compose(
    index_maps: torch.Tensor, view_colors: torch.Tensor, background: tuple[int, int, int]
) -> torch.Tensor:
    """Images (V, H, W, 3) uint8 from index maps (V, H, W) and colours (V, n, 3)."""
    import torch

    views, height, width = index_maps.shape
    safe = index_maps.clamp(min=0).reshape(views, -1)  # (V, HW)
    gathered = torch.gather(view_colors, 1, safe[..., None].expand(-1, -1, 3))  # (V, HW, 3)
    images = gathered.round().to(torch.uint8).reshape(views, height, width, 3)
    fill = torch.tensor(background, dtype=torch.uint8, device=images.device)
    return torch.where((index_maps < 0)[..., None], fill, images)


def _wins_a_pixel(index_maps: torch.Tensor, num_points: int) -> torch.Tensor:
    """(V, n) bool: the point is the one seen at one or more pixels (PartSLIP's visible set)."""
    import torch

    views = index_maps.shape[0]
    visible = torch.zeros(views, num_points + 1, dtype=torch.bool, device=index_maps.device)
    # background (-1) lands in the extra last column, which is dropped
    visible.scatter_(1, index_maps.reshape(views, -1) % (num_points + 1), True)
    return visible[:, :num_points]
