"""Pseudo labels ``C = {(M^d, Y^d)}``: rendering, detectors, back-projection, labelers.

Importing this package does not import torch or transformers.
"""

from __future__ import annotations

from .api import LABELERS, LabelResult, label_asset, make_labeler
from .pseudo_labels import PseudoLabels

__all__ = ["LABELERS", "LabelResult", "PseudoLabels", "label_asset", "make_labeler"]
