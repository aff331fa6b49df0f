"""The analysts' notebooks, executed end to end on a small city (papermill, with parameters), and
kept as the repository wants them: no outputs, a parameters cell, no logic of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill
import pytest

from tests.conftest import MODEL_SPLIT

pytestmark = pytest.mark.long(minutes=1.5)  # measured on 2 cores: its file goes to a worker first (tests/conftest.py)

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
NAMES = ("01_profiles.ipynb", "02_retrain.ipynb", "03_monitoring.ipynb")


@pytest.mark.parametrize("name", NAMES)
def test_a_committed_notebook_has_no_outputs_a_parameters_cell_and_no_logic(name):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs before committing"
    assert any("parameters" in c.metadata.get("tags", []) for c in code)
    for cell in code:
        assert not any(line.lstrip().startswith(("def ", "class ")) for line in cell.source.splitlines()), \
            "notebooks call package functions; new logic goes into the packages"


@pytest.fixture(scope="module")
def analyst(model_home, tmp_path_factory):
    """A copy of the model city's home and a private MLflow store."""
    folder = tmp_path_factory.mktemp("analyst")
    home = folder / "home"
    shutil.copytree(model_home, home, ignore=shutil.ignore_patterns("models", "pre-credit", "xyd.db*"))
    return home, f"sqlite:///{folder}/mlflow.db", folder


def _run(name: str, folder: Path, **parameters) -> nbformat.NotebookNode:
    out = folder / name
    papermill.execute_notebook(str(NOTEBOOKS / name), str(out), parameters=parameters, kernel_name="python3",
                               progress_bar=False, cwd=str(folder))
    return nbformat.read(out, as_version=4)


def _text(book) -> str:
    parts = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            data = output.get("data", {})
            parts.append(data.get("text/plain", "") + data.get("text/html", ""))
    return "\n".join(parts)


def _images(book) -> int:
    return sum("image/png" in o.get("data", {}) for c in book.cells for o in c.get("outputs", []))


def _warnings(book) -> list[str]:
    """Warnings and errors a notebook wrote to stderr (MLflow's INFO lines on creating a store are
    its own chatter, not a warning)."""
    return [output.get("text", "") for cell in book.cells for output in cell.get("outputs", [])
            if output.get("name") == "stderr" and any(word in output.get("text", "").lower()
                                                       for word in ("warn", "error", "traceback"))]


def test_the_notebooks_run_in_order_on_a_small_city(analyst):
    home, store, folder = analyst
    profiles = _run("01_profiles.ipynb", folder, xyd_home=str(home), as_of="2026-06-30")
    text = _text(profiles)
    assert "enterprises alive on 2026-06-30" in text and "matured loans" in text
    assert "西陵区 Xiling (420502)" in text and "个体工商户 individual business" in text  # by name, not by code
    assert " %" in text and "tax_filings" in text
    assert _images(profiles) >= 3  # coverage heat map, distributions, default rate by grade
    assert not _warnings(profiles)

    explored = _run("02_retrain.ipynb", folder, xyd_home=str(home), mlflow_tracking_uri=store, **MODEL_SPLIT)
    text = _text(explored)
    assert "challenger (explored)" in text and "GATE VERDICT: gate" in text and "nothing promoted" in text
    assert "AUC drop" not in text  # no champion yet: nothing to compare with
    assert not _warnings(explored)
    registry = tracking_versions(store)
    assert registry == []  # exploring registers nothing

    first = _run("02_retrain.ipynb", folder, xyd_home=str(home), mlflow_tracking_uri=store, register=True,
                 promote_now=True, force_reason="notebook test: first model", **MODEL_SPLIT)
    text = _text(first)
    assert "challenger v1" in text and "promoted" in text
    assert _images(first) >= 3  # curves, SHAP summary, dependence plots

    other = _run("02_retrain.ipynb", folder, xyd_home=str(home), mlflow_tracking_uri=store,
                 **{**MODEL_SPLIT, "warmup_months": 12})
    text = _text(other)
    assert "champion v1" in text and "challenger (explored)" in text and "GATE VERDICT: gate" in text
    assert "AUC drop against the champion, 95% paired interval (DeLong)" in text and "DeLong, paired" in text
    assert "approval-rate change" in text and "grade-mix shift" in text and "contribution changes" in text
    assert "西陵区 Xiling (420502)" in text and "rank champion v1" in text
    assert not _warnings(other)
    assert tracking_versions(store) == ["1"]  # the champion alone: the exploration registered nothing

    monitoring = _run("03_monitoring.ipynb", folder, xyd_home=str(home), mlflow_tracking_uri=store,
                      as_of="2026-06-30", database_url=f"sqlite:///{folder}/service.db")
    text = _text(monitoring)
    assert "MONITORING VERDICT: STABLE" in text
    assert "training applicants" in text and "recent applicants" in text and "living entities" in text
    assert "PSI" in text and "non-zero" in text and "西陵区 Xiling (420502)" in text
    assert "realised_rate" in text and "longest_gap_days" in text
    assert _images(monitoring) >= 3  # applicants' drift, population drift, realised against predicted
    assert not _warnings(monitoring)


def tracking_versions(store: str) -> list[str]:
    """The registered versions of the analyst's MLflow store."""
    from mlflow.tracking import MlflowClient

    from models.tracking import MODEL_NAME

    client = MlflowClient(store, store)
    return sorted(str(v.version) for v in client.search_model_versions(f"name='{MODEL_NAME}'"))
