"""Days outside 1900-2100 are refused before anything computes: a 400 in the API, one line in the
CLI (a day after 9999-12-31 does not exist, and `to=0` is not a day)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from iceledger import metrics  # noqa: F401 - registers every metric
from iceledger.cli import app
from iceledger.metrics.registry import REGISTRY
from iceledger.web.app import create_app

OUT_OF_RANGE = {"to": "9999-12-31", "from": "0001-01-01"}
NOT_DAYS = ("0", "20250101", "1e9", "2025-1-1")


@pytest.fixture(scope="module")
def client(synthetic_warehouse):
    return TestClient(create_app(synthetic_warehouse))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_metric_refuses_days_outside_the_range(client, name):
    for bound, day in OUT_OF_RANGE.items():
        answer = client.get(f"/api/metrics/{name}", params={bound: day})
        assert answer.status_code in (400, 409), (name, bound, answer.text)
        if answer.status_code == 400:
            assert f"--{bound} {day} is outside" in answer.json()["detail"]


def test_the_last_and_first_days_of_the_range_compute(client):
    answer = client.get("/api/metrics/arrests_per_day", params={"from": "1900-01-01",
                                                                 "to": "2100-12-31"})
    assert answer.status_code == 200


@pytest.mark.parametrize("text", NOT_DAYS)
def test_a_day_is_written_yyyy_mm_dd(client, text):
    answer = client.get("/api/metrics/arrests_per_day", params={"to": text})
    assert answer.status_code == 400
    assert "YYYY-MM-DD" in answer.json()["detail"]


@pytest.mark.parametrize("args", [["--to", "9999-12-31"], ["--from", "0001-01-01"], ["--to", "0"]])
def test_the_cli_says_one_line(synthetic_warehouse, args):
    result = CliRunner().invoke(
        app, ["metric", "arrests_per_day", "--warehouse", str(synthetic_warehouse), *args])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
