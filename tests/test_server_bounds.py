"""The server bounds its work: an over-cap breakdown is refused before it is computed, a
reordered `by` is the same request, the result cache is bounded in bytes, identical requests in
flight are computed once, rows a plan shares with a request are queried once, memos of different
keys are built side by side, and the default views are computed when the server starts."""

from __future__ import annotations

import threading

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from iceledger import metrics  # noqa: F401 - registers every metric
from iceledger.serving.service import MetricRequest, ResultCache, TooManyRows, WarehouseService
from iceledger.web.app import create_app


class Counting(WarehouseService):
    """A service that counts the metric queries it runs."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.runs: list[tuple[str, tuple[str, ...]]] = []

    def _query(self, name, params):
        self.runs.append((name, params.by))
        return super()._query(name, params)


def test_an_over_cap_breakdown_is_refused_before_it_is_computed(synthetic_warehouse):
    service = Counting(synthetic_warehouse, max_rows=1_500)
    with pytest.raises(TooManyRows, match="could return up to"):
        service.compute(service.request("arrests_per_day", by=["aor"]))
    # Only the view without the breakdown ran (it sizes the estimate), never the breakdown.
    assert service.runs == [("arrests_per_day", ())]
    # A result over the cap is refused and not kept.
    small = Counting(synthetic_warehouse, max_rows=10)
    for _ in range(2):
        with pytest.raises(TooManyRows, match="returns"):
            small.compute(small.request("arrests_per_day"))
    assert small.runs == [("arrests_per_day", ())] * 2
    assert MetricRequest("arrests_per_day") not in small._results


def test_a_reordered_by_is_computed_once(synthetic_warehouse):
    service = Counting(synthetic_warehouse)
    first = service.compute(service.request("arrest_criminality", by=["aor", "arrest_setting"]))
    again = service.compute(service.request("arrest_criminality", by=["arrest_setting", "aor"]))
    assert again is first
    assert service.runs.count(("arrest_criminality", ("aor", "arrest_setting"))) == 1


def test_rows_a_plan_shares_with_its_request_are_queried_once(synthetic_warehouse):
    # Sizing a breakdown by fiscal year reads the metric by fiscal year (the years are no
    # column of its tables); computing it reads the same rows again.
    service = Counting(synthetic_warehouse, public=True)
    service.compute(service.request("repeat_arrests_period", by=["fiscal_year"]))
    assert service.runs.count(("repeat_arrests_period", ("fiscal_year",))) == 1


def test_memos_of_different_keys_are_built_side_by_side(synthetic_warehouse):
    service = WarehouseService(synthetic_warehouse)
    first_started, second_started = threading.Event(), threading.Event()
    built = []

    def first():
        first_started.set()
        # Under one lock for every memo the second build could not start: this wait would fail.
        built.append(second_started.wait(timeout=10))
        return "first"

    def second():
        second_started.set()
        return "second"

    thread = threading.Thread(target=lambda: built.append(service.memo("one", first)))
    thread.start()
    assert first_started.wait(timeout=10)
    assert service.memo("two", second) == "second"
    thread.join()
    assert built == [True, "first"]
    assert service.memo("one", lambda: "built again") == "first"


def _result(rows: int):
    table = pa.table({"n": pa.array(range(rows), pa.int64())})
    return type("Result", (), {"table": table})()


def test_the_result_cache_is_bounded_in_bytes():
    cache = ResultCache(max_bytes=8 * 1_000)
    for key in range(10):
        cache.get(key, lambda: _result(300))  # 2,400 bytes each
    assert cache.bytes <= cache.max_bytes
    assert 9 in cache and 0 not in cache
    cache.get("huge", lambda: _result(10_000))
    assert "huge" not in cache


def test_identical_requests_in_flight_are_computed_once():
    cache = ResultCache(max_bytes=2**20)
    started, release = threading.Event(), threading.Event()
    computed = []

    def compute():
        computed.append(1)
        started.set()
        release.wait()
        return _result(3)

    answers = []
    first = threading.Thread(target=lambda: answers.append(cache.get("k", compute)))
    first.start()
    started.wait()
    second = threading.Thread(target=lambda: answers.append(cache.get("k", compute)))
    second.start()
    release.set()
    first.join()
    second.join()
    assert computed == [1]
    assert answers[0] is answers[1]


def test_a_failure_reaches_every_waiter_and_is_not_kept():
    cache = ResultCache(max_bytes=2**20)

    def broken():
        raise ValueError("no")

    for _ in range(2):
        with pytest.raises(ValueError):
            cache.get("k", broken)
    assert "k" not in cache


def test_the_server_computes_default_views_when_it_starts(synthetic_warehouse):
    app = create_app(synthetic_warehouse)
    service = app.state.dashboard.service
    with TestClient(app):
        warmed = [m.name for m in service.metrics()
                  if service.servable(m) and MetricRequest(m.name) in service._results]
    assert "arrests_per_day" in warmed and len(warmed) >= 15
    cold = create_app(synthetic_warehouse, warm=False)
    with TestClient(cold):
        pass
    assert MetricRequest("arrests_per_day") not in cold.state.dashboard.service._results


def test_the_body_cache_key_ignores_order():
    from iceledger.web.params import QueryArgs

    one = QueryArgs(["aor", "criminality"], None, None, {"aor": ["B", "A"]})
    two = QueryArgs(["criminality", "aor", "aor"], None, None, {"aor": ["A", "B", "A"]})
    assert one.key() == two.key()


def test_head_is_answered_and_slashes_are_not_redirected(synthetic_warehouse):
    client = TestClient(create_app(synthetic_warehouse, warm=False))
    for path in ("/api/metrics", "/", "/static/dashboard.css"):
        head, get = client.head(path), client.get(path)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
    # No redirect names the host a request's Host header claims.
    answer = client.get("/static", headers={"Host": "evil.example"}, follow_redirects=False)
    assert answer.status_code == 404 and "location" not in answer.headers


@pytest.mark.parametrize("query", [{"aor": "x" * 60_000}, {"by": "z" * 60_000}])
def test_an_error_does_not_echo_a_huge_request(synthetic_warehouse, query):
    client = TestClient(create_app(synthetic_warehouse, warm=False))
    answer = client.get("/api/metrics/arrests_per_day", params=query)
    assert answer.status_code == 400
    assert len(answer.json()["detail"]) < 1_100 and "characters)" in answer.json()["detail"]
    missing = client.get("/api/metrics/" + "y" * 60_000)
    assert missing.status_code == 404 and len(missing.content) < 1_200


def test_metrics_list_takes_a_warehouse(synthetic_warehouse):
    from typer.testing import CliRunner

    from iceledger.cli import app

    result = CliRunner().invoke(app, ["metrics", "list", "--warehouse", str(synthetic_warehouse)],
                                env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert "on this warehouse" in result.output and "available" in result.output
    assert "needs" in result.output


def test_the_schema_names_the_allow_lists(synthetic_warehouse):
    app = create_app(synthetic_warehouse, warm=False)
    service = app.state.dashboard.service
    parameters = {
        p["name"]: p["schema"]
        for p in TestClient(app).get("/openapi.json").json()["paths"]["/api/metrics/{name}"][
            "get"]["parameters"]
    }
    assert "aor" in parameters["by"]["items"]["enum"]
    offices = set(service.allowed_values("arrests_per_day", "aor"))
    assert offices <= set(parameters["aor"]["items"]["enum"])
    assert parameters["arrest_setting"]["items"]["enum"] == ["at-large", "custodial", "other"]
