"""Schemathesis over the service's own OpenAPI spec, against the real server: no 5xx, and every
answer (status, content type, body) as the spec says."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from tests.api.service_fixtures import prepare_database
from tests.api.test_service_processes import start_server


@pytest.fixture(scope="module")
def live(model_home, champion_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("schema-service")
    url = f"sqlite:///{folder}/xyd.db"
    keys, _, _, _ = prepare_database(url, model_home)
    server, base = start_server(url, model_home, folder, champion_store)
    yield base, keys
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
    base, keys = live
    role = next((r for prefix, r in ROLE_BY_PREFIX if case.path.startswith(prefix)), "bank")
    case.call_and_validate(base_url=base, headers={"Authorization": f"Bearer {keys[role]}"},
                           checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance])
