"""Plots and tables every family logs to MLflow and shows as Dagster asset metadata.

matplotlib, MLflow and scikit-learn are imported by the functions that draw and log: the tables are
needed wherever the code location loads, the plots only where a model trains."""

from __future__ import annotations

import base64
import math
import tempfile
from pathlib import Path

import numpy as np

DPI = 80  # small enough to embed in the Dagster event log


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in CI
    import matplotlib.pyplot as plt

    return plt


def md_table(rows: list[dict], digits: int = 4) -> str:
    if not rows:
        return "_(none)_"
    cols = list(dict.fromkeys(k for r in rows for k in r))

    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.{digits}f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def log_figure(fig, name: str) -> dict:
    """Log ``fig`` as ``plots/<name>.png`` in the active MLflow run; return Dagster metadata for it."""
    import mlflow

    plt = _pyplot()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.png"
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        mlflow.log_artifact(str(path), artifact_path="plots")
        encoded = base64.b64encode(path.read_bytes()).decode()
    uri = mlflow.get_artifact_uri(f"plots/{name}.png")
    return {
        f"plot_{name}": dg_md(f"![{name}](data:image/png;base64,{encoded})"),
        f"plot_{name}_path": dg_path(uri.removeprefix("file://")),
    }


def dg_md(text: str):
    import dagster as dg

    return dg.MetadataValue.md(text)


def dg_path(path: str):
    import dagster as dg

    return dg.MetadataValue.path(path)


def roc_pr_figure(y: np.ndarray, scores: dict[str, np.ndarray], title: str):
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))
    for name, p in scores.items():
        fpr, tpr, _ = roc_curve(y, p)
        prec, rec, _ = precision_recall_curve(y, p)
        a.plot(fpr, tpr, label=name)
        b.plot(rec, prec, label=name)
    a.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    a.set(xlabel="false positive rate", ylabel="true positive rate", title=f"{title}: ROC")
    b.axhline(float(np.mean(y)), color="grey", lw=0.8, ls="--")
    b.set(xlabel="recall", ylabel="precision", title=f"{title}: precision-recall")
    a.legend(fontsize=8)
    b.legend(fontsize=8)
    return fig


def calibration_figure(y: np.ndarray, scores: dict[str, np.ndarray], title: str, bins: int = 10):
    from sklearn.calibration import calibration_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4))
    for name, p in scores.items():
        frac, mean = calibration_curve(y, p, n_bins=bins, strategy="quantile")
        ax.plot(mean, frac, marker="o", ms=3, label=name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="predicted probability", ylabel="observed frequency", title=f"{title}: calibration")
    ax.legend(fontsize=8)
    return fig


def importance_figure(names: list[str], values: np.ndarray, title: str, top: int = 15):
    plt = _pyplot()
    order = np.argsort(values)[::-1][:top][::-1]
    fig, ax = plt.subplots(figsize=(5, 0.3 * len(order) + 1))
    ax.barh([names[i] for i in order], values[order])
    ax.set(xlabel="mean |contribution|", title=f"{title}: feature importance")
    return fig


def forecast_figure(
    history, holdout, series_ids: list[str], title: str, names: dict[str, str] | None = None, history_days: int = 84
):
    """Per series: recent actuals, then the holdout's actuals against the forecast and its 80%/95% intervals."""
    plt = _pyplot()
    n = len(series_ids)
    cols = 2 if n > 1 else 1
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 2.6 * rows), squeeze=False)
    for ax, sid in zip(axes.ravel(), series_ids):
        h = history[history["series_id"] == sid]
        f = holdout[holdout["series_id"] == sid]
        start = f["date"].min() - np.timedelta64(history_days, "D")
        past = h[(h["date"] >= start) & (h["date"] < f["date"].min())]
        ax.plot(past["date"], past["y"], color="black", lw=0.8, label="actual")
        ax.plot(f["date"], f["y"], color="black", lw=0.8)
        ax.fill_between(f["date"], f["lo95"], f["hi95"], alpha=0.2, color="tab:blue", label="95%")
        ax.fill_between(f["date"], f["lo80"], f["hi80"], alpha=0.35, color="tab:blue", label="80%")
        ax.plot(f["date"], f["forecast"], color="tab:blue", lw=1.2, label="forecast")
        ax.set_title((names or {}).get(sid, sid), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def bar_figure(labels: list[str], values: dict[str, list[float]], title: str, ylabel: str):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(labels)), 3.5))
    width = 0.8 / max(len(values), 1)
    x = np.arange(len(labels))
    for i, (name, v) in enumerate(values.items()):
        ax.bar(x + i * width, v, width, label=name)
    ax.set_xticks(x + 0.4 - width / 2, labels, rotation=60, ha="right", fontsize=7)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=7)
    return fig
