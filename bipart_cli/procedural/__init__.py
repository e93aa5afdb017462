"""Procedural shapes with known named parts: test fixtures, demos, the training corpus.

Each category is a builder that draws proportions, part shapes and optional parts
(and, for creatures, a pose) from a seeded generator and returns low-poly trimesh
primitives, one per part instance (same seed, same shape). Shapes are Y-up (glTF's
convention), about one unit tall (or long), standing on y = 0.

- :mod:`.primitives`: boxes, rods, frustums, legs, capsules, ellipsoids, cones, tubes,
  and the :class:`Piece` they make;
- :mod:`.furniture`, :mod:`.appliances`, :mod:`.household`, :mod:`.vehicles`: the builders,
  by family;
- the posed creatures, in random poses: :mod:`.people` (humanoid, hand), :mod:`.animals`
  (quadruped, bird), :mod:`.sea_creatures` (fish, octopus), on :mod:`.skeleton` (joints,
  skinned segments, the fit to the generator's frame);
- :mod:`.registry`: the categories, their part names and builders, and the default
  categories (what ``bipart examples`` and the corpus writers make unless told);
- :mod:`.scenes`: a shape as a coloured ``trimesh.Scene``, one node per part instance;
- :mod:`.writers`: folders of shapes (``bipart examples``, corpora, support sets).
"""

from .primitives import Piece
from .registry import BUILDERS, CATEGORIES, DEFAULT_CATEGORIES
from .scenes import ColorMode, make_pieces, make_shape, node_names
from .writers import write_corpus, write_examples, write_support_sets

__all__ = [
    "BUILDERS",
    "CATEGORIES",
    "DEFAULT_CATEGORIES",
    "ColorMode",
    "Piece",
    "make_pieces",
    "make_shape",
    "node_names",
    "write_corpus",
    "write_examples",
    "write_support_sets",
]
