"""What every classifier family's training returns per candidate model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


@dataclass
class Candidate:
    """A fitted candidate, its holdout metrics and its holdout scores (for the curves and the gate)."""

    pipeline: Pipeline
    metrics: dict[str, float]
    holdout_scores: np.ndarray
