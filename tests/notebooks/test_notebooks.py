"""The analysts' notebooks, executed end to end on a small city (papermill, with parameters), and
kept as the repository wants them: no outputs, a parameters cell, no logic of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import papermill
import pytest

from tests.conftest import MODEL_SPLIT

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


def test_the_notebooks_run_in_order_on_a_small_city(analyst):
    home, store, folder = analyst
    profiles = _run("01_profiles.ipynb", folder, xyd_home=str(home), as_of="2026-06-30")
    text = _text(profiles)
    assert "enterprises alive on 2026-06-30" in text and "matured loans" in text
    assert "has_tax_filings" in text or "tax_filings" in text
    assert _images(profiles) >= 3  # coverage heat map, distributions, default rate by grade

    retrain = _run("02_retrain.ipynb", folder, xyd_home=str(home), mlflow_tracking_uri=store,
                   force_reason="notebook test: first model", **MODEL_SPLIT)
    text = _text(retrain)
    assert "challenger 1" in text and "promoted" in text and "AUC drop" not in text  # no champion yet
    assert _images(retrain) >= 3  # curves, SHAP summary, dependence plots

    again = _run("02_retrain.ipynb", folder, xyd_home=str(home), mlflow_tracking_uri=store,
                 force_reason="", **MODEL_SPLIT)
    text = _text(again)
    assert "champion v1" in text and "challenger v2" in text and "AUC drop against the champion" in text

    monitoring = _run("03_monitoring.ipynb", folder, xyd_home=str(home), mlflow_tracking_uri=store,
                      as_of="2026-06-30", database_url=f"sqlite:///{folder}/service.db")
    text = _text(monitoring)
    assert "PSI" in text or "psi" in text
    assert "score" in text and "district_code" in text and "code" in text
    assert _images(monitoring) >= 1
