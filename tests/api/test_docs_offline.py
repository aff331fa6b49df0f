"""The interactive documentation works on a network that reaches no other host: Swagger UI at
/docs and ReDoc at /redoc load their scripts and styles from the service itself (api.routes.docs),
rendered by Debian's chromium with every other host unresolvable."""

from __future__ import annotations

import httpx
import pytest

from api.main import create_app
from api.settings import Settings
from tests.api.service_fixtures import Browser, free_port, started_server


@pytest.fixture
def served(tmp_path, monkeypatch):
    """The real service (no model: the documentation needs none) on a loopback port; its base URL."""
    import uvicorn

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    app = create_app(Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path}/xyd.db",
                              model_check_seconds=0, access_log="off"))
    port = free_port()
    server, thread = started_server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_swagger_ui_and_redoc_render_offline_from_the_services_own_assets(served, tmp_path):
    for page in ("/docs", "/redoc"):
        answer = httpx.get(served + page)
        assert answer.status_code == 200 and "cdn." not in answer.text and "fonts.googleapis" not in answer.text
        policy = answer.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self' 'unsafe-inline'" in policy
    assert httpx.get(served + "/docs-assets/swagger-ui-bundle.js").status_code == 200
    loaded = ("return performance.getEntriesByType('resource').map(e => e.name)"
              ".concat([location.href])")
    with Browser(tmp_path, offline=True) as browser:
        browser.open(served + "/docs")
        [title] = browser.wait_for(".swagger-ui .info .title")
        assert "pre-credit service" in title
        operations = browser.wait_for(".opblock-summary-path")
        assert "/v1/pre-credit" in operations and "/v1/decisions/{request_id}/report" in operations
        assert all(url.startswith(served) for url in browser.run(loaded)), browser.run(loaded)
        browser.open(served + "/redoc")
        assert any("pre-credit service" in heading for heading in browser.wait_for("h1"))
        assert browser.wait_for("[data-section-id]")  # the operations, laid out from the OpenAPI document
        # ReDoc's own "API docs by Redocly" logo names a CDN image: the page's policy blocks it, and
        # nothing else the page asks for comes from anywhere but the service
        elsewhere = [url for url in browser.run(loaded) if not url.startswith(served)]
        assert set(elsewhere) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}, elsewhere
