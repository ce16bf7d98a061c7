"""API fuzzing: schemathesis generates requests from the app's own OpenAPI schema.

Every operation, with valid and invalid parameters, must answer without a server error (5xx), with
a status code and body the schema documents. Run in-process against the ASGI app (no network).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig
from test_web_support import build_warehouse, registered_test_metrics

from iceledger.web.app import create_app


@pytest.fixture(scope="module")
def web_schema(tmp_path_factory):
    warehouse = build_warehouse(tmp_path_factory.mktemp("schema") / "warehouse.duckdb")
    with registered_test_metrics():
        # A generous download budget: the fuzzer is not a client to throttle.
        app = create_app(warehouse, downloads_per_minute=100_000, download_burst=100_000)
        config = SchemathesisConfig()
        # Valid requests and deliberately invalid ones (wrong types, unknown values, extra text).
        config.projects.default.generation.update(
            modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
        )
        yield schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


schema = schemathesis.pytest.from_fixture("web_schema")


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_on_any_request(case):
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
