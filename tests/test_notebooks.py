"""Every notebook in notebooks/ runs top to bottom against the demo lakehouse."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat
import pytest

from orchestration.settings import PROJECT_ROOT

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))


def test_the_analyst_and_model_review_notebooks_exist():
    assert [p.name for p in NOTEBOOKS] == ["analyst_exploration.ipynb", "model_review.ipynb"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(demo_lakehouse, monkeypatch, path: Path):
    settings, _, _ = demo_lakehouse
    monkeypatch.setenv("SHOPLAKE_HOME", str(settings.home))  # the kernel inherits it
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert [o for o in outputs if "image/png" in o.get("data", {})]  # the plots rendered
    if path.name == "model_review.ipynb":
        text = "\n".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
        assert "shoplake_churn@champion = v" in text
