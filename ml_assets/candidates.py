"""What every classifier family's training returns per candidate model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.pipeline import Pipeline


@dataclass
class Candidate:
    """A fitted candidate, its holdout metrics and its holdout scores (for the curves and the gate)."""

    pipeline: Pipeline
    metrics: dict[str, float]
    holdout_scores: np.ndarray
