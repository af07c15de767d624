"""K-means customer segments: choose k by silhouette, check stability, name the clusters from their
centroids, and keep segment ids stable across runs.

- The features (``features.transformed``) are standardized; k runs over ``K_RANGE`` and the one with
  the highest silhouette wins (scored on at most ``SILHOUETTE_SAMPLE`` buyers, so it stays fast).
- Stability: the chosen k is refitted on two bootstrap samples and both fits label every buyer; their
  adjusted Rand index is logged (1.0: the same partition).
- Ids: a first run numbers the segments 1..k by revenue share. Later runs match each new cluster to
  the previous run's centroid it is nearest to (Hungarian assignment on the distances, the previous
  centroids recomputed from the previous table's features and standardized like the new ones), so a
  segment keeps its id while its members drift; a cluster with no previous match takes a new id.
- Names come from the centroid's z-scores (the overall mean is 0 after standardizing): deterministic
  rules in ``segment_name``.
- Buyers who are all alike (fewer than two distinct feature rows) form one segment, with the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ml_assets.segments import features as F

K_RANGE = range(2, 7)
SILHOUETTE_SAMPLE = 5000
N_INIT = 10
Z_HIGH = 0.5  # a centroid this many standard deviations above the mean is "high" on that feature
ONE_TIME_MAX_ORDERS = 1.5  # a segment whose members average fewer orders than this buys once


@dataclass
class SegmentFit:
    """The outcome of one segmentation: per buyer ``segment_id`` and ``distance``; per segment its
    name and profile; the silhouette of every k tried and the stability of the chosen one."""

    segment_id: np.ndarray
    distance: np.ndarray
    names: dict[int, str]
    profiles: pd.DataFrame
    k: int
    silhouettes: dict[int, float] = field(default_factory=dict)
    stability_ari: float | None = None
    matched_to_previous: bool = False
    reason: str = ""  # why there is a single segment, when there is

    @property
    def silhouette(self) -> float | None:
        return self.silhouettes.get(self.k)


def choose_k(x: np.ndarray, seed: int) -> tuple[int, dict[int, float], dict[int, KMeans]]:
    """The k of ``K_RANGE`` with the best silhouette (ties: the smaller k), every k's silhouette and fit
    (k 1 and none when no k of the range can split the rows)."""
    distinct = len(np.unique(x, axis=0))
    silhouettes: dict[int, float] = {}
    fits: dict[int, KMeans] = {}
    sample = SILHOUETTE_SAMPLE if len(x) > SILHOUETTE_SAMPLE else None
    for k in K_RANGE:
        if k > distinct or k >= len(x):
            break
        fit = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(x)
        if len(np.unique(fit.labels_)) < 2:
            continue
        fits[k] = fit
        silhouettes[k] = float(silhouette_score(x, fit.labels_, sample_size=sample, random_state=seed))
    if not silhouettes:
        return 1, silhouettes, fits
    best = max(silhouettes, key=lambda k: (silhouettes[k], -k))
    return best, silhouettes, fits


def bootstrap_stability(x: np.ndarray, k: int, seed: int) -> float:
    """Adjusted Rand index between the labelings two fits on two bootstrap samples give every buyer."""
    rng = np.random.default_rng(seed)
    labelings = []
    for _ in range(2):
        rows = rng.integers(0, len(x), len(x))
        sample = x[rows]
        clusters = min(k, len(np.unique(sample, axis=0)))
        fit = KMeans(n_clusters=clusters, n_init=N_INIT, random_state=seed).fit(sample)
        labelings.append(fit.predict(x))
    return float(adjusted_rand_score(*labelings))


def segment_name(z: dict[str, float], mean_orders: float) -> str:
    """A business name from a centroid's z-scores (``z``) and its members' mean order count."""
    lapsed = z["recency_days"] >= Z_HIGH
    if mean_orders < ONE_TIME_MAX_ORDERS:
        frequency = "one-time"
    elif z["orders"] >= Z_HIGH:
        frequency = "frequent"
    elif z["orders"] <= -Z_HIGH:
        frequency = "occasional"
    else:
        frequency = "repeat"
    if z["avg_order_value_usd"] >= Z_HIGH:
        spend = "big spenders" if lapsed else "high spenders"
    elif z["avg_order_value_usd"] <= -Z_HIGH:
        spend = "bargain buyers"
    else:
        spend = "mid-range buyers"
    words = ["lapsed" if lapsed else "", frequency, spend]
    name = " ".join(w for w in words if w)
    if z["return_rate"] >= 2 * Z_HIGH:
        name += " who return often"
    return name


def _qualifier(z: dict[str, float]) -> str:
    """What else sets a segment apart, for two segments the rules above would name alike."""
    if z["tenure_days"] >= Z_HIGH:
        return "long-standing"
    if z["tenure_days"] <= -Z_HIGH:
        return "new"
    if z["recency_days"] <= -Z_HIGH:
        return "recent"
    return ""


def name_segments(z_by_id: dict[int, dict[str, float]], mean_orders: dict[int, float]) -> dict[int, str]:
    """Unique names: a clash gets a qualifier (tenure, recency) and, failing that, its segment id."""
    base = {sid: segment_name(z, mean_orders[sid]) for sid, z in z_by_id.items()}
    counts = Counter(base.values())
    names = {}
    for sid, name in base.items():
        q = _qualifier(z_by_id[sid]) if counts[name] > 1 else ""
        names[sid] = f"{q} {name}" if q else name
    counts = Counter(names.values())
    return {sid: f"{n} (segment {sid})" if counts[n] > 1 else n for sid, n in names.items()}


def previous_centroids(previous: pd.DataFrame | None) -> dict[int, np.ndarray]:
    """Per segment id, the mean transformed features of the previous run's table (None: no previous run)."""
    if previous is None or previous.empty or not set(F.CLUSTER_FEATURES) <= set(previous.columns):
        return {}
    x = F.transformed(previous)
    ids = previous["segment_id"].to_numpy()
    return {int(s): x[ids == s].mean(axis=0) for s in np.unique(ids)}


def assign_ids(
    centroids: np.ndarray, revenue: np.ndarray, previous: dict[int, np.ndarray], scaler: StandardScaler
) -> dict[int, int]:
    """cluster index -> segment id. With ``previous`` centroids (transformed space), the Hungarian
    assignment on standardized distances; the rest, by revenue, take ids after the largest one used."""
    order = sorted(range(len(centroids)), key=lambda c: (-revenue[c], c))
    mapping: dict[int, int] = {}
    if previous:
        old_ids = sorted(previous)
        old = scaler.transform(np.vstack([previous[i] for i in old_ids]))
        cost = np.linalg.norm(centroids[:, None, :] - old[None, :, :], axis=2)
        rows, cols = linear_sum_assignment(cost)
        mapping = {int(r): old_ids[c] for r, c in zip(rows, cols, strict=True)}
    next_id = max([*previous, 0]) + 1
    for c in order:
        if c not in mapping:
            mapping[c] = next_id
            next_id += 1
    return mapping


def profiles(frame: pd.DataFrame, segment_id: np.ndarray, names: dict[int, str]) -> pd.DataFrame:
    """Per segment: its name, size, share of buyers, revenue and share of revenue, and mean features."""
    total_revenue = float(frame["revenue_usd"].sum()) or 1.0
    rows = []
    for sid in sorted(names):
        members = frame[segment_id == sid]
        rows.append(
            {
                "segment_id": sid,
                "segment_name": names[sid],
                "customers": len(members),
                "customer_share": len(members) / len(frame),
                "revenue_usd": float(members["revenue_usd"].sum()),
                "revenue_share": float(members["revenue_usd"].sum()) / total_revenue,
                **{f"mean_{c}": float(members[c].mean()) for c in F.PROFILE_FEATURES},
            }
        )
    return pd.DataFrame(rows)


def fit_segments(frame: pd.DataFrame, seed: int = 7, previous: pd.DataFrame | None = None) -> SegmentFit:
    """Segment the buyers of ``frame`` (``features.buyer_features``); ``previous`` is the previous
    run's published table, whose segments the new ones are matched to.

    One thread: the data is small, and K-means' OpenMP threads spin waiting for each other on a busy
    machine (3,000 buyers: 0.15 s per k on one thread, 13-22 s on two with the cores shared)."""
    with threadpool_limits(limits=1):
        return _fit_segments(frame, seed, previous)


def _fit_segments(frame: pd.DataFrame, seed: int, previous: pd.DataFrame | None) -> SegmentFit:
    raw = F.transformed(frame)
    scaler = StandardScaler().fit(raw)
    x = scaler.transform(raw)
    if len(np.unique(x, axis=0)) < 2:
        return _one_segment(frame, previous, f"all {len(frame)} buyers have the same features: one segment")
    k, silhouettes, fits = choose_k(x, seed)
    if not silhouettes:
        return _one_segment(frame, previous, f"{len(frame)} buyers are too few to split: one segment")
    fit = fits[k]
    labels = fit.labels_
    revenue = np.array([frame["revenue_usd"].to_numpy()[labels == c].sum() for c in range(k)])
    prev = previous_centroids(previous)
    mapping = assign_ids(fit.cluster_centers_, revenue, prev, scaler)
    ids = np.array([mapping[c] for c in labels])
    distance = np.linalg.norm(x - fit.cluster_centers_[labels], axis=1)
    z_by_id = {mapping[c]: dict(zip(F.CLUSTER_FEATURES, fit.cluster_centers_[c], strict=True)) for c in range(k)}
    orders = frame["orders"].to_numpy()
    mean_orders = {mapping[c]: float(orders[labels == c].mean()) for c in range(k)}
    names = name_segments(z_by_id, mean_orders)
    return SegmentFit(
        segment_id=ids,
        distance=distance,
        names=names,
        profiles=profiles(frame, ids, names),
        k=k,
        silhouettes=silhouettes,
        stability_ari=bootstrap_stability(x, k, seed),
        matched_to_previous=bool(prev),
    )


def _one_segment(frame: pd.DataFrame, previous: pd.DataFrame | None, reason: str) -> SegmentFit:
    sid = min(previous_centroids(previous), default=1)
    ids = np.full(len(frame), sid)
    names = {sid: "all buyers"}
    return SegmentFit(ids, np.zeros(len(frame)), names, profiles(frame, ids, names), 1, reason=reason)


def figure(frame: pd.DataFrame, fit: SegmentFit):
    """The silhouette of every k tried, and the buyers on orders x average order value by segment."""
    from ml_assets import reporting

    plt = reporting._pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    if fit.silhouettes:
        ks = sorted(fit.silhouettes)
        left.plot(ks, [fit.silhouettes[k] for k in ks], marker="o")
        left.axvline(fit.k, color="grey", linestyle="--")
        left.set_xticks(ks)
    left.set_title(f"silhouette by k (chosen k={fit.k})")
    left.set_xlabel("k")
    left.set_ylabel("silhouette")
    rng = np.random.default_rng(0)
    shown = rng.permutation(len(frame))[:5000]
    for sid, name in sorted(fit.names.items()):
        members = shown[fit.segment_id[shown] == sid]
        right.scatter(
            frame["orders"].to_numpy()[members] + rng.uniform(-0.2, 0.2, len(members)),
            frame["avg_order_value_usd"].to_numpy()[members],
            s=6,
            alpha=0.5,
            label=f"{sid}: {name}",
        )
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("orders")
    right.set_ylabel("average order value (USD)")
    right.set_title("buyers by segment")
    right.legend(fontsize=7, markerscale=2)
    return fig
