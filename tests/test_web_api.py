"""The JSON API and pages, in-process (FastAPI's TestClient), over the tiny hand-built warehouse."""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import date

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from conftest import HANG_GUARD_SECONDS
from test_web_support import (
    ARRESTS_BY_AOR,
    ARRESTS_BY_DAY,
    BY_GROUP,
    DAILY,
    NEEDS_MISSING_TABLE,
    TOTAL_ARRESTS,
    build_warehouse,
    free_port,
    registered_test_metrics,
)

from iceledger.errors import IceledgerError
from iceledger.serving import charts
from iceledger.web.app import create_app
from iceledger.web.guards import SECURITY_HEADERS, DownloadBudget
from iceledger.web.pages import PAGE_TITLES
from iceledger.web.state import Body, body_cache


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    path = build_warehouse(tmp_path_factory.mktemp("web") / "warehouse.duckdb")
    with registered_test_metrics():
        yield path


@pytest.fixture(scope="module")
def client(warehouse):
    return TestClient(create_app(warehouse))


@pytest.fixture(scope="module")
def public_client(warehouse):
    return TestClient(create_app(warehouse, public=True, k=10))


def test_metric_list_names_every_registered_metric_with_its_definition(client):
    body = client.get("/api/metrics").json()
    by_name = {m["name"]: m for m in body["metrics"]}
    assert {DAILY, BY_GROUP, NEEDS_MISSING_TABLE} <= set(by_name)
    daily = by_name[DAILY]
    assert daily["definition"].startswith("Non-duplicate rows")
    assert daily["unit"] == "arrests per day"
    assert daily["dimensions"] == ["aor", "criminality"]
    assert daily["available"] is True
    assert by_name[NEEDS_MISSING_TABLE]["available"] is False
    assert by_name[NEEDS_MISSING_TABLE]["missing_tables"] == ["foia_removals"]
    assert body["warehouse_synthetic"] is True


def test_rows_carry_definition_period_and_source_files(client):
    body = client.get(f"/api/metrics/{BY_GROUP}", params={"by": "aor"}).json()
    assert {r["aor"]: r["arrests"] for r in body["rows"]} == ARRESTS_BY_AOR
    assert sum(r["share"] for r in body["rows"]) == pytest.approx(1.0)
    assert body["unit"] == "arrests" and body["tables"] == ["webtest_arrests"]
    # The synthetic warehouse says so, first, in the caveats.
    assert body["synthetic"] is True and body["caveats"][0].startswith("SYNTHETIC DATA")
    assert [s["file_name"] for s in body["sources"]] == ["arrests-SYNTHETIC.xlsx"]
    assert body["sources"][0]["sha256"] == "a" * 64
    assert body["params"] == {"by": ["aor"], "from": None, "to": None, "filters": {}}
    assert body["row_count"] == 3


def test_daily_series_period_and_date_range(client):
    body = client.get(f"/api/metrics/{DAILY}").json()
    assert {r["date"]: r["arrests"] for r in body["rows"]} == {
        d.isoformat(): n for d, n in ARRESTS_BY_DAY.items()
    }
    assert body["period"]["data_from"] == "2025-01-02"
    assert body["period"]["data_to"] == "2025-01-06"
    narrowed = client.get(f"/api/metrics/{DAILY}", params={"from": "2025-01-03", "to": "2025-01-04"})
    assert [r["arrests"] for r in narrowed.json()["rows"]] == [35, 29]
    assert narrowed.json()["period"]["requested_from"] == "2025-01-03"


def test_whole_period_total(client):
    assert client.get(f"/api/metrics/{BY_GROUP}").json()["rows"] == [{"arrests": TOTAL_ARRESTS}]


def test_filters_take_only_values_present(client):
    atlanta = client.get(f"/api/metrics/{BY_GROUP}", params={"aor": "Atlanta"}).json()
    assert atlanta["rows"] == [{"arrests": ARRESTS_BY_AOR["Atlanta"]}]
    two = client.get(f"/api/metrics/{BY_GROUP}", params=[("aor", "Atlanta"), ("aor", "Houston")])
    assert two.json()["rows"] == [{"arrests": ARRESTS_BY_AOR["Atlanta"] + ARRESTS_BY_AOR["Houston"]}]
    allowed = client.get(f"/api/metrics/{DAILY}/filters").json()
    assert allowed["aor"] == ["Atlanta", "Houston", "New Orleans"]
    assert "Other Immigration Violator" in allowed["criminality"]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"aor": "Atlanta'; DROP TABLE webtest_arrests; --"}, 400, "is not a value present"),
        ({"by": "person_id"}, 400, "cannot be broken down by person_id"),
        ({"arrest_setting": "custodial"}, 400, "cannot be filtered by arrest_setting"),
        ({"from": "2025-02-01", "to": "2025-01-01"}, 400, "is after"),
        ({"from": "yesterday"}, 400, "from:"),
    ],
)
def test_bad_parameters_get_one_clear_line(client, query, status, message):
    response = client.get(f"/api/metrics/{BY_GROUP}", params=query)
    assert response.status_code == status
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail


def test_unknown_and_unavailable_metrics(client):
    missing = client.get("/api/metrics/no_such_metric")
    assert missing.status_code == 404 and "no metric named 'no_such_metric'" in missing.json()["detail"]
    unavailable = client.get(f"/api/metrics/{NEEDS_MISSING_TABLE}")
    assert unavailable.status_code == 409
    assert "foia_removals" in unavailable.json()["detail"]


def test_row_cap_answers_413(warehouse):
    capped = TestClient(create_app(warehouse, max_rows=3))
    response = capped.get(f"/api/metrics/{DAILY}")
    assert response.status_code == 413
    assert "5 rows, more than this server's cap of 3" in response.json()["detail"]
    assert capped.get(f"/api/metrics/{BY_GROUP}", params={"by": "aor"}).status_code == 200


def test_downloads_match_the_json_rows(client):
    query = {"by": "aor", "criminality": "Convicted Criminal"}
    rows = client.get(f"/api/metrics/{BY_GROUP}", params=query).json()["rows"]
    csv_response = client.get(f"/api/metrics/{BY_GROUP}.csv", params=query)
    assert csv_response.headers["content-type"].startswith("text/csv")
    assert 'filename="webtest_arrests_by_group.csv"' in csv_response.headers["content-disposition"]
    assert pa_csv.read_csv(io.BytesIO(csv_response.content)).to_pylist() == rows
    parquet = pq.read_table(io.BytesIO(client.get(f"/api/metrics/{BY_GROUP}.parquet", params=query).content))
    assert parquet.to_pylist() == rows
    meta = json.loads(parquet.schema.metadata[b"iceledger"])
    assert meta["definition"].startswith("Non-duplicate rows") and meta["sources"][0]["sha256"] == "a" * 64


def test_bodies_are_gzipped_for_clients_that_ask(client):
    url = f"/api/metrics/{DAILY}"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    packed = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.json() == plain.json()


def test_download_budget_answers_429_with_retry_after(warehouse):
    limited = TestClient(create_app(warehouse, downloads_per_minute=1, download_burst=2))
    url = f"/api/metrics/{BY_GROUP}.csv"
    assert [limited.get(url).status_code for _ in range(2)] == [200, 200]
    refused = limited.get(url)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    # The JSON API is not a download and stays available.
    assert limited.get(f"/api/metrics/{BY_GROUP}").status_code == 200


def test_body_cache_keeps_to_its_byte_budget():
    cache = body_cache(max_bytes=250)
    for key in "abc":
        cache.put((key,), Body.of(bytes(100), compress=False))
    assert cache.bytes == 200 and cache.get(("a",)) is None
    assert cache.get(("b",)) is not None and cache.get(("c",)) is not None
    # A body over the whole budget is not kept, and does not push out what is.
    cache.put(("huge",), Body.of(bytes(1000), compress=False))
    assert cache.bytes == 200 and cache.get(("huge",)) is None


def test_token_bucket_refills_over_time():
    now = [0.0]
    budget = DownloadBudget(per_minute=6, burst=1, clock=lambda: now[0])
    assert budget.take("a") == 0
    assert budget.take("a") == pytest.approx(10.0)
    assert budget.take("b") == 0  # per client
    now[0] = 10.0
    assert budget.take("a") == 0


def test_chart_spec_draws_the_rows(client):
    body = client.get(f"/api/metrics/{DAILY}/chart", params={"by": "aor"}).json()
    spec = body["spec"]
    assert spec["data"]["name"] == "rows"
    # Atlanta on the 2nd, 3rd and 6th, Houston on the 3rd and 4th, New Orleans on the 5th.
    assert len(spec["data"]["values"]) == 6
    line = spec["layer"][0]["encoding"]
    assert line["x"]["field"] == "date" and line["y"]["field"] == "arrests"
    assert line["color"]["field"] == "aor"
    assert body["meta"]["row_count"] == 6 and "rows" not in body["meta"]
    bars = client.get(f"/api/metrics/{BY_GROUP}/chart", params={"by": "criminality"}).json()["spec"]
    assert bars["mark"]["type"] == "bar" and bars["encoding"]["y"]["field"] == "criminality"


def test_chart_draws_the_column_asked_for(client):
    url = f"/api/metrics/{BY_GROUP}/chart"
    default = client.get(url, params={"by": "aor"}).json()
    assert default["spec"]["encoding"]["x"]["field"] == "arrests"  # the count column
    assert default["meta"]["value_columns"] == ["arrests", "share"]
    share = client.get(url, params={"by": "aor", "value": "share"}).json()
    assert share["spec"]["encoding"]["x"]["field"] == "share"
    refused = client.get(url, params={"by": "aor", "value": "aor"})
    assert refused.status_code == 400
    assert "allowed: arrests, share" in refused.json()["detail"]


def test_generic_chart_conventions_band_and_lines_per_target():
    # Metrics with no declared view (tests/test_charts.py covers declared ones).
    table = pa.table(
        {
            "date": [date(2025, 6, 1), date(2025, 6, 2)],
            "no_conviction_share": [0.4, 0.5],
            "no_conviction_ci_low": [0.35, 0.45],
            "no_conviction_ci_high": [0.45, 0.55],
        }
    )
    rows = table.to_pylist()
    # Two targets in force on one day are two lines, not a zigzag.
    two_targets = pa.table({"date": [date(2025, 1, 30)] * 2, "target": ["a", "b"], "arrests": [5, 5]})
    spec = charts.metric_chart("arrests", two_targets, two_targets.to_pylist(), "date", ())
    assert spec["layer"][0]["encoding"]["color"]["field"] == "target"
    shares = charts.metric_chart("share", table, rows, "date", (), value="no_conviction_share")
    # A share gets its interval band.
    assert [layer["mark"]["type"] for layer in shares["layer"]] == ["area", "line"]
    assert shares["layer"][0]["encoding"]["y"]["field"] == "no_conviction_ci_low"


def test_public_mode_hides_small_cells_and_their_complements(public_client, client):
    two = public_client.get(f"/api/metrics/{BY_GROUP}",
                            params=[("by", "aor"), ("by", "criminality")])
    assert two.status_code == 400 and "at most 1 dimension" in two.json()["detail"]
    query = [("by", "citizenship_country")]  # Guatemala: 7 arrests
    public = public_client.get(f"/api/metrics/{BY_GROUP}", params=query).json()
    private = client.get(f"/api/metrics/{BY_GROUP}", params=query).json()
    assert public["suppression"]["k"] == 10 and public["suppression"]["small_cells"] == 1
    for shown, true in zip(public["rows"], private["rows"]):
        if 0 < true["arrests"] < 10:
            assert shown["suppressed"] == "<10" and shown["arrests"] is None
        if shown["arrests"] is not None:
            assert shown["arrests"] >= 10 and shown["arrests"] == true["arrests"]
        else:
            assert shown["share"] is None
    # The grand total is published (by=()), so a hidden cell never stands alone.
    assert len([r for r in public["rows"] if r["suppressed"]]) != 1
    csv_rows = pa_csv.read_csv(
        io.BytesIO(public_client.get(f"/api/metrics/{BY_GROUP}.csv", params=query).content),
        convert_options=pa_csv.ConvertOptions(strings_can_be_null=True),
    ).to_pylist()
    assert [r["suppressed"] for r in csv_rows] == [r["suppressed"] for r in public["rows"]]


def test_no_endpoint_serves_warehouse_rows(client):
    paths = set(client.get("/openapi.json").json()["paths"])
    assert paths == {
        "/api/metrics",
        "/api/sources",
        "/api/metrics/{name}",
        "/api/metrics/{name}.csv",
        "/api/metrics/{name}.parquet",
        "/api/metrics/{name}/filters",
        "/api/metrics/{name}/chart",
        "/api/map",
        "/api/map/chart",
        "/api/simulate",  # model projections, fitted on aggregate counts
    }
    # A table name is not a metric.
    assert client.get("/api/metrics/webtest_arrests").status_code == 404


def test_security_headers_on_pages_api_and_static(client):
    for url in ("/", "/pages/volume", f"/api/metrics/{DAILY}", "/static/dashboard.js", "/nope"):
        response = client.get(url)
        for name, value in SECURITY_HEADERS.items():
            assert response.headers[name] == value, (url, name)
        assert "server" not in response.headers
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "unsafe-eval" not in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp


def test_pages_render_each_question_with_its_metrics(client):
    for page in (*PAGE_TITLES, "map"):
        url = "/map" if page == "map" else f"/pages/{page}"
        html = client.get(url).text
        assert "SYNTHETIC DATA" in html, url
        # No inline script and no CDN: every script is served from /static.
        assert re.findall(r"<script[^>]*>", html) == [
            '<script src="/static/vega-bundle.js">',
            '<script src="/static/dashboard.js">',
        ]
        # Links to a claim's source may leave the site; nothing the page loads does.
        loaded = re.sub(r'<a href="https?://[^"]*"', "<a", html).replace("http://www.w3.org", "")
        assert "http://" not in loaded and "https://" not in loaded
    volume = client.get("/pages/volume").text
    assert f'data-metric="{DAILY}"' in volume and "Arrests per day (test metric)" in volume
    assert '<option value="Atlanta">Atlanta</option>' in volume
    outcomes = client.get("/pages/outcomes").text
    assert "Not available on this warehouse: it has no foia_removals" in outcomes
    assert client.get("/pages/nothing").status_code == 404


def test_index_lists_sources_with_hashes(client):
    html = client.get("/").text
    assert "arrests-SYNTHETIC.xlsx" in html and "a" * 12 in html


def test_vega_bundle_is_served_locally(client):
    response = client.get("/static/vega-bundle.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert "window.vegaEmbed" in response.text


def test_map_places_facilities_and_sums_field_offices(client):
    data = client.get("/api/map").json()
    assert data["available"] and data["workbook"].endswith("0201.xlsx")
    facilities = {f["name"]: f for f in data["facilities"]}
    stewart = facilities["STEWART DETENTION CENTER"]
    assert stewart["adp"] == 1500.0 and stewart["placed_by"] == "zip"
    assert stewart["lat"] == pytest.approx(32.04, abs=0.01) and stewart["lon"] == pytest.approx(-84.80, abs=0.01)
    assert facilities["IRWIN COUNTY SYNTHETIC JAIL"]["placed_by"] == "city"
    assert facilities["SYNTHETIC COUNTY ANNEX"]["placed_by"] == "state"
    # Puerto Rico has no place on an albersUsa map; it is listed, not silently dropped.
    assert data["not_drawn"] == ["SYNTHETIC ISLAND FACILITY"]
    offices = {o["aor_code"]: o["adp"] for o in data["field_offices"]}
    assert offices == {"ATL": 1504.0, "HOU": 935.0, "MIA": 50.0}
    spec = client.get("/api/map/chart").json()["spec"]
    assert spec["layer"][0]["data"]["url"] == "/static/states-10m.json"
    assert spec["projection"]["type"] == "albersUsa"


def test_public_map_hides_small_facilities_and_keeps_office_totals_safe(public_client):
    data = public_client.get("/api/map").json()
    atlanta = [f for f in data["facilities"] if f["aor_code"] == "ATL"]
    assert {f["suppressed"] for f in atlanta} == {"<10", "complementary"}
    assert all(f["adp"] is None for f in atlanta)
    houston = [f for f in data["facilities"] if f["aor_code"] == "HOU"]
    assert all(f["adp"] is not None for f in houston)


def test_states_topojson_is_vendored_with_licence(client):
    atlas = client.get("/static/states-10m.json")
    assert hashlib.sha256(atlas.content).hexdigest() == (
        "d76b391ccfa8bff601d51e3e3da5d43a89fa46cd5caca72ce731b383be5596d0"
    )
    assert "ISC" in client.get("/static/us-atlas-NOTE.md").text
    assert "Michael Bostock" in client.get("/static/us-atlas-LICENSE.txt").text


def test_warehouse_is_opened_read_only(warehouse):
    before = hashlib.sha256(warehouse.read_bytes()).hexdigest()
    app_client = TestClient(create_app(warehouse))
    app_client.get(f"/api/metrics/{DAILY}")
    app_client.get("/api/map")
    assert hashlib.sha256(warehouse.read_bytes()).hexdigest() == before
    service = app_client.app.state.dashboard.service
    with pytest.raises(Exception, match="read-only"):
        service.backend().raw_sql("CREATE TABLE sneaky AS SELECT 1")


def test_missing_warehouse_is_one_clear_line(tmp_path):
    with pytest.raises(IceledgerError, match=r"nowhere\.duckdb: no warehouse here"):
        create_app(tmp_path / "nowhere.duckdb")


def test_serve_command_reports_a_missing_warehouse_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from iceledger.cli import app as cli

    result = CliRunner().invoke(cli, ["serve", "--warehouse", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1
    assert "no warehouse here" in result.output and "Traceback" not in result.output


def test_serve_command_starts_on_loopback(warehouse):
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "iceledger", "serve", "--port", str(port), "--warehouse", str(warehouse)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + HANG_GUARD_SECONDS
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/sources", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert "server" not in response.headers
        assert response.json()[0]["file_name"] == "arrests-SYNTHETIC.xlsx"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=HANG_GUARD_SECONDS)
    assert f"iceledger dashboard on http://127.0.0.1:{port}/" in output
