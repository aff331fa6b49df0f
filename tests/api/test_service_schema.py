"""Schemathesis over the service's own OpenAPI spec, against the real server: no 5xx, and every
answer (status, content type, body) as the spec says; and the spec as a bank's integrator takes
it: valid, with its security scheme and operation names, and a client generated from it that makes
one authorised decision."""

from __future__ import annotations

import base64
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.service_fixtures import prepare_database
from tests.api.test_service_processes import start_server


@pytest.fixture(scope="module")
def live(model_home, champion_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("schema-service")
    url = f"sqlite:///{folder}/xyd.db"
    keys, _, codes, authorizations = prepare_database(url, model_home)
    # the fuzzer sends wrong keys by the dozen from one address; the limit itself is tested in test_trust
    server, base = start_server(url, model_home, folder, champion_store, XYD_AUTH_FAILURES_ALLOWED="100000")
    yield base, keys, codes, authorizations
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def api_schema(live):
    return schemathesis.openapi.from_url(f"{live[0]}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")

ROLE_BY_PREFIX = (("/v1/authorizations", "operator"), ("/admin", "operator"), ("/v1/decisions", "regulator"))


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_answers_match_the_spec(case, live):
    base, keys = live[:2]
    role = next((r for prefix, r in ROLE_BY_PREFIX if case.path.startswith(prefix)), "bank")
    case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {keys[role]}"},
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])


def test_a_bank_generates_a_client_from_the_spec_and_decides_with_it(live, tmp_path):
    import importlib
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    import httpx
    from openapi_spec_validator import validate

    base, keys, codes, authorizations = live
    spec = httpx.get(f"{base}/openapi.json").json()
    validate(spec)
    assert spec["components"]["securitySchemes"]["apiKey"] == {
        "type": "http", "scheme": "bearer", "description": spec["components"]["securitySchemes"]["apiKey"]["description"]}
    operations = [op for methods in spec["paths"].values() for op in methods.values()]
    assert len({op["operationId"] for op in operations}) == len(operations)
    assert all(op["summary"] and op["summary"] != op["operationId"].replace("_", " ").title() for op in operations)
    decide = spec["paths"]["/v1/pre-credit"]["post"]
    assert decide["operationId"] == "pre_credit" and decide["security"] == [{"apiKey": []}]

    (tmp_path / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    tools = str(Path(sys.executable).parent)  # the generator formats with ruff, installed beside it
    env = {**os.environ, "PATH": tools + os.pathsep + os.environ.get("PATH", "")}
    # as an integrator would: the generator's default settings, a project pip installs
    done = subprocess.run([os.path.join(tools, "openapi-python-client"), "generate", "--path", str(tmp_path / "spec.json"),
                           "--fail-on-warning"], capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [project] = [p for p in tmp_path.iterdir() if p.is_dir() and (p / "pyproject.toml").exists()]
    # its build backend (poetry-core) is pinned in the test extra: installed here without the network
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-deps", "--no-index",
                                "--quiet", "--target", str(tmp_path / "site"), str(project)],
                               capture_output=True, text=True, timeout=300, env=env)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    package = project.name.replace("-", "_")
    sys.path.insert(0, str(tmp_path / "site"))
    try:
        client_module = importlib.import_module(package)
        operation = importlib.import_module(f"{package}.api.pre_credit.pre_credit")
        models = importlib.import_module(f"{package}.models")
        assert Path(client_module.__file__).is_relative_to(tmp_path / "site")  # the installed copy
        client = client_module.AuthenticatedClient(base_url=base, token=keys["bank"])
        answer = operation.sync_detailed(client=client, body=models.PreCreditRequest(
            uscc=codes[0], authorization_id=authorizations["valid"]))
        assert answer.status_code == 200, answer.content[:500]
        decision = answer.parsed
        assert isinstance(decision, models.PreCreditPublic) and decision.uscc == codes[0]
        assert decision.grade in "ABCDE" and 0 < decision.pd < 1
        refused = operation.sync_detailed(client=client_module.AuthenticatedClient(base_url=base, token="wrong"),
                                          body=models.PreCreditRequest(uscc=codes[0],
                                                                       authorization_id=authorizations["valid"]))
        assert refused.status_code == 401 and isinstance(refused.parsed, models.ErrorBody)
    finally:
        sys.path.remove(str(tmp_path / "site"))
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]


def _has_example(media: dict, schemas: dict) -> bool:
    if "example" in media or "examples" in media:
        return True
    schema = media.get("schema", {})
    if "$ref" in schema:
        schema = schemas[schema["$ref"].split("/")[-1]]
    return "examples" in schema or "example" in schema


def test_every_body_in_the_spec_has_an_example_shaped_as_the_service_answers(live):
    import httpx

    from api import examples
    from api.access.schemas import ReloadPublic
    from api.common.errors import ErrorBody
    from api.precredit import schemas
    from api.routes.schemas import ModelCard
    from api.trust.schemas import KeyringPublic, Receipt

    base, keys, codes, authorizations = live
    spec = httpx.get(f"{base}/openapi.json").json()
    components = spec["components"]["schemas"]
    missing = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and not _has_example(body, components):
                missing.append(f"{method} {path} request")
            for status, response in operation["responses"].items():
                media = response.get("content", {}).get("application/json")
                if media is not None and not _has_example(media, components):
                    missing.append(f"{method} {path} {status}")
    assert not missing
    for model, example in ((schemas.PreCreditRequest, examples.PRE_CREDIT_REQUEST), (schemas.PreCreditPublic, examples.PRE_CREDIT),
                           (schemas.PreCreditBatchRequest, examples.PRE_CREDIT_BATCH_REQUEST),
                           (schemas.PreCreditBatchPublic, examples.PRE_CREDIT_BATCH), (schemas.DecisionsPublic, examples.DECISIONS),
                           (schemas.AdvicePublic, examples.ADVICE), (schemas.ReviewCreate, examples.REVIEW_REQUEST),
                           (schemas.ReviewPublic, examples.REVIEW), (schemas.AuthorizationCreate, examples.AUTHORIZATION_REQUEST),
                           (schemas.AuthorizationPublic, examples.AUTHORIZATION),
                           (schemas.AuthorizationsPublic, examples.AUTHORIZATIONS), (ModelCard, examples.MODEL_CARD),
                           (ReloadPublic, examples.RELOAD), (Receipt, examples.RECEIPT),
                           (KeyringPublic, examples.KEYRING), (ErrorBody, examples.ERROR)):
        assert model.model_validate(example).model_dump(mode="json").keys() == example.keys(), model.__name__
    answer = httpx.post(f"{base}/v1/pre-credit", json={"uscc": codes[0], "authorization_id": authorizations["valid"]},
                        headers={"Authorization": f"Bearer {keys['bank']}"}).json()
    assert answer.keys() == examples.PRE_CREDIT.keys() and answer["receipt"].keys() == examples.RECEIPT.keys()
    # the documented receipt verifies with the documented keyring, as a bank's would
    from api.trust.signing import PublicKey, verify_receipt
    documented = {k["key_id"]: PublicKey(k["key_id"], base64.b64decode(k["public_key"]), k["created_at"])
                  for k in examples.KEYRING["keys"]}
    assert verify_receipt(examples.RECEIPT, documented, examples.PRE_CREDIT)["seq"] == examples.RECEIPT["seq"]
    published = httpx.get(f"{base}/v1/audit/keys").json()
    assert published.keys() == examples.KEYRING.keys() and published["current"] == answer["receipt"]["key_id"]
    assert answer["reasons"].keys() == examples.PRE_CREDIT["reasons"].keys()
    assert answer["reasons"]["adverse"][0].keys() == examples.PRE_CREDIT["reasons"]["adverse"][0].keys()
    card = httpx.get(f"{base}/v1/models/current", headers={"Authorization": f"Bearer {keys['bank']}"}).json()
    assert card.keys() == examples.MODEL_CARD.keys() and card["windows"].keys() == examples.MODEL_CARD["windows"].keys()
    advice = httpx.get(f"{base}/v1/decisions/{answer['request_id']}/advice",
                       headers={"Authorization": f"Bearer {keys['bank']}"}).json()
    assert advice.keys() == examples.ADVICE.keys()
    assert httpx.get(f"{base}/healthz").json().keys() == examples.HEALTH.keys()
    features = httpx.get(f"{base}/v1/features", headers={"Authorization": f"Bearer {keys['bank']}"}).json()
    assert features.keys() == examples.FEATURES.keys()


def test_the_document_names_the_project_in_ascii_and_gives_each_error_status_its_own_example(live, tmp_path):
    """A generator run with its default settings makes a project pip accepts (the title is its name),
    and an integrator reading any operation sees, for each error status, an error the service gives
    with that status, never one example for all."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    import httpx

    from api.common.errors import ErrorBody

    base = live[0]
    spec = httpx.get(f"{base}/openapi.json").json()
    assert spec["info"]["title"].isascii() and "信易贷" in spec["info"]["description"]
    by_status: dict[str, set[str]] = {}
    for methods in spec["paths"].values():
        for operation in methods.values():
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    example = answer["content"]["application/json"]["example"]
                    if "code" in example:  # the one error body (readiness answers its own shape)
                        ErrorBody.model_validate(example)
                        by_status.setdefault(status, set()).add(example["code"])
    assert {"401", "403", "404", "422", "429", "503"} <= set(by_status)
    assert all(len(codes) == 1 for codes in by_status.values()), by_status  # one example per status…
    assert len({next(iter(codes)) for codes in by_status.values()}) == len(by_status)  # …each its own
    (tmp_path / "spec.json").write_text(json.dumps(spec, ensure_ascii=False), "utf-8")
    tools = str(Path(sys.executable).parent)
    done = subprocess.run([os.path.join(tools, "openapi-python-client"), "generate", "--path", str(tmp_path / "spec.json")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "PATH": tools + os.pathsep + os.environ.get("PATH", "")})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    [project] = [p for p in tmp_path.iterdir() if p.is_dir() and (p / "pyproject.toml").exists()]
    name = re.search(r'^name = "([^"]+)"', (project / "pyproject.toml").read_text("utf-8"), re.M).group(1)
    # PEP 508's project name, which pip requires
    assert re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name), name
    assert name == "xinyidai-pre-credit-service-client" and project.name == name
