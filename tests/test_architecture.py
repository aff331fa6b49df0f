"""The architecture the design draws, held by import-linter's contracts (``[tool.importlinter]``
in pyproject.toml): features → models → api with nothing importing upward, api's capabilities in
layers, ``api.db`` knowing no capability of the service, the command line never importing a route,
the domain knowing no HTTP, and no import circle between the modules of one package."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def test_every_architecture_contract_is_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"  # import-linter's command, in the test extra
    run = subprocess.run([str(lint_imports), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in run.stdout


def test_the_db_contract_forbids_every_module_of_the_service_outside_db():
    """A module added to api/ is a capability until listed otherwise: the contract must name it."""
    import api

    outside_db = {f"api.{module.name}" for module in pkgutil.iter_modules(api.__path__)} - {"api.db"}
    assert set(_contracts()["db-knows-no-capability"]["forbidden_modules"]) == outside_db


def test_every_capability_of_the_service_has_its_place_in_the_layers():
    """A package added to api/ (the enterprise's pages, the bank loop, the province's report) is
    placed in the capabilities' layers, so that what it may import is decided, not drifted into."""
    import api

    packages = {f"api.{module.name}" for module in pkgutil.iter_modules(api.__path__) if module.ispkg}
    layered = {name.strip() for layer in _contracts()["capabilities-layered"]["layers"]
               for name in layer.replace(":", "|").split("|")}
    assert packages - {"api.db"} <= layered


def test_every_route_module_is_kept_from_the_command_line_and_the_domain():
    import api

    routes = {module.name for module in pkgutil.walk_packages(api.__path__, "api.")
              if module.name.rsplit(".", 1)[-1] == "routes"}
    assert "api.precredit.routes" in routes and "api.trust.routes" in routes
    assert routes <= set(_contracts()["cli-not-routes"]["forbidden_modules"])
    assert routes <= set(_contracts()["domain-speaks-no-http"]["forbidden_modules"])


def test_every_kind_of_domain_refusal_is_answered_with_its_own_status():
    from api.common import refusals
    from api.common.errors import HTTP_STATUS, http_status

    kinds = [k for k in vars(refusals).values() if isinstance(k, type) and issubclass(k, refusals.Refusal)
             and k is not refusals.Refusal]
    assert set(kinds) == set(HTTP_STATUS) and len(set(HTTP_STATUS.values())) == len(kinds)
    assert {kind.__name__: http_status(kind("CODE", "words", "说明")) for kind in kinds} == {
        "Invalid": 422, "Forbidden": 403, "NotFound": 404, "Conflict": 409, "Unavailable": 503}


def test_every_template_and_data_file_the_code_reads_ships_in_the_package():
    """An install that is not editable carries only what [tool.setuptools.package-data] names: every
    page template, data file and migration must be named there, or a page renders nowhere but here."""
    import fnmatch

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["package-data"]
    shipped = [f"{package}/{pattern}" for package, patterns in declared.items() for pattern in patterns]
    needed = [path.relative_to(ROOT).as_posix() for package in ("features", "models", "api")
              for path in (ROOT / package).rglob("*")
              if path.is_file() and path.suffix in (".html", ".toml", ".csv", ".mako")
              or (path.parent.name == "versions" and path.suffix == ".py")]
    assert needed and [p for p in needed if not any(fnmatch.fnmatch(p, s) for s in shipped)] == []
