"""In-memory asset types shared by the whole pipeline.

Label convention inside the library: ``-1`` is unassigned and ``0..K-1`` index
``part_names``. Files written by bipart store ``label + 1`` (0 = unassigned).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

UNASSIGNED = -1


@dataclass
class Asset:
    """A loaded mesh or point cloud in its original coordinates.

    Attributes
    ----------
    vertices : (v, 3) float64
        World-space positions (GLB scene-graph transforms applied). For point
        clouds these are the points.
    faces : (f, 3) int64 or None
        Triangles; ``None`` for point clouds.
    vertex_colors : (v, 3) uint8 or None
    face_colors : (f, 3) uint8 or None
        Colours baked from textures, vertex or face colours.
    labels : (f,) int64 for meshes, (v,) int64 for point clouds, or None
        Existing part labels, ``-1`` unassigned, else an index into ``part_names``.
    part_names : list of str
        Names of the labeled parts; empty when the asset has no labels.
    labels_from_names : bool
        The labels come from node (or geometry) names alone, with no sidecar JSON naming
        the parts. Exporters name nodes too (``bedDouble_2a4d3a``, ``cover.001``), so such
        names are part labels only for a request that names them
        (:func:`~bipart_cli.io.labels.unlabeled_for`).
    center : (3,) float64 and scale : float
        Unit-sphere normalisation: ``normalized = (x - center) / scale``.
    source : Path or None
    sources : list of Path
        Every file loading read: ``source`` first, then the files beside it that its reader
        opened (a glTF's buffers and textures, an OBJ's materials, ``<stem>_labels.npy``,
        ``parts.json``) in name order; empty when built in memory.
    missing : list of Path
        The files loading looked for and did not find (a ``<stem>_labels.npy``, a sidecar
        JSON, a buffer name), in name order: one that appears there changes what loading
        reads (:func:`bipart_cli.io.sources.identity_if_unchanged`).
    sha256 : str
        The content identity of ``sources`` (:func:`bipart_cli.io.sources.content_identity`):
        the source file's own sha256 when it was read alone, else a sha256 over every
        file's bytes ("" when built in memory). The key of every cache of the asset.
    format : str
        Lower-case extension without the dot ("glb", "ply", "npz" ...).
    scene : Any
        The original ``trimesh.Scene`` (meshes only) so that outputs can keep
        UVs and materials; may be None.
    face_geometry : (f,) int64 or None
        For meshes built from a scene: which scene geometry instance each face came
        from, an index into ``geometry_nodes``. Faces of one instance are contiguous
        and in that geometry's own face order.
    geometry_nodes : list of str
        Scene node names of the geometry instances (meshes from a scene only).
    vertex_uv : (v, 2) float64 or None
        Texture coordinates (zeros where a vertex has no texture).
    face_texture : (f,) int64 or None
        Index into ``textures`` of each face's base-colour image, ``-1`` for none.
    textures : list of PIL.Image.Image
        Base-colour images used by ``face_texture``.
    animations, skins : int
        How many glTF animations and skins the file holds (trimesh reads neither; the
        labeled GLB, split into parts in world space, cannot carry them).
    """

    vertices: np.ndarray
    faces: np.ndarray | None = None
    vertex_colors: np.ndarray | None = None
    face_colors: np.ndarray | None = None
    labels: np.ndarray | None = None
    part_names: list[str] = field(default_factory=list)
    labels_from_names: bool = False
    center: np.ndarray = field(default_factory=lambda: np.zeros(3))
    scale: float = 1.0
    source: Path | None = None
    sources: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    sha256: str = ""
    format: str = ""
    scene: Any = None
    face_geometry: np.ndarray | None = None
    geometry_nodes: list[str] = field(default_factory=list)
    vertex_uv: np.ndarray | None = None
    face_texture: np.ndarray | None = None
    textures: list[Any] = field(default_factory=list)
    animations: int = 0
    skins: int = 0

    @property
    def is_mesh(self) -> bool:
        return self.faces is not None

    @property
    def has_labels(self) -> bool:
        return self.labels is not None and len(self.part_names) > 0

    @property
    def stem(self) -> str:
        # the full stem: chair.v1.glb and chair.v2.glb must not both write chair.parts.*
        return self.source.stem if self.source is not None else "asset"

    def normalize(self, xyz: np.ndarray) -> np.ndarray:
        """Original coordinates (n, 3) -> unit-sphere coordinates (n, 3)."""
        return (np.asarray(xyz, dtype=np.float64) - self.center) / self.scale

    def denormalize(self, xyz: np.ndarray) -> np.ndarray:
        """Unit-sphere coordinates (n, 3) -> original coordinates (n, 3)."""
        return np.asarray(xyz, dtype=np.float64) * self.scale + self.center


@dataclass
class PointSample:
    """Points sampled from an asset, in unit-sphere coordinates.

    Attributes
    ----------
    points : (n, 3) float32
    colors : (n, 3) uint8
    normals : (n, 3) float32 or None
    face_index : (n,) int64 or None
        Source face of each sample (meshes); None for point clouds.
    labels : (n,) int64 or None
        Ground-truth labels carried from the asset (``-1`` unassigned).
    """

    points: np.ndarray
    colors: np.ndarray
    normals: np.ndarray | None = None
    face_index: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    def subset(self, indices: np.ndarray) -> PointSample:
        """The samples at ``indices`` (k,) as a new PointSample."""

        def pick(a):
            return None if a is None else a[indices]

        return PointSample(
            points=self.points[indices],
            colors=self.colors[indices],
            normals=pick(self.normals),
            face_index=pick(self.face_index),
            labels=pick(self.labels),
        )
