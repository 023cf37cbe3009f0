"""schemathesis drives every HTTP endpoint of the OpenAPI schema with generated requests, valid and
not: none answers a server error (5xx), except a documented 503 (the dog model still loading, a
full queue), which says why."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import shutdown_lifespans

from app.main import create_app
from app.settings import Settings

EXAMPLES = 5  # per endpoint: the whole file runs in about half a minute
# Tiny CNN jobs: a generated valid job trains a moment, not minutes. The app's lifespan starts
# with the first request schemathesis sends it.
APP = create_app(Settings(use_xla=False, cnn_max_epochs=1, cnn_max_image_size=16))
schema = schemathesis.openapi.from_dict(APP.openapi())


@pytest.fixture(scope="module", autouse=True)
def _stop_the_app():
    yield
    shutdown_lifespans()  # its pools and job workers stop with this module, not at exit


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_endpoint_answers_a_server_error(case) -> None:
    response = case.call(app=APP)
    documented = str(response.status_code) in case.operation.definition.raw.get("responses", {})
    if response.status_code == 503 and documented:
        assert response.json()["detail"], "a 503 says why"
        return
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
    )
