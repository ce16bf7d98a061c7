"""Dashboard pages beyond the metric cards: the claims register on a real synthetic warehouse."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from iceledger.facts import load_claims
from iceledger.web.app import create_app


@pytest.fixture(scope="module")
def client(synthetic_warehouse):
    return TestClient(create_app(synthetic_warehouse, public=True))


def test_claims_page_lists_every_claim_with_who_when_source_readings_and_verdict(client):
    page = client.get("/pages/claims")
    assert page.status_code == 200
    html = page.text
    assert "No metric on this page is registered" not in html
    claims = load_claims()
    assert claims
    for claim in claims:
        assert f'id="claim-{claim.claim_id}"' in html
        assert claim.who in html and str(claim.date) in html
        if claim.metric:
            assert f'href="/api/metrics/{claim.metric}"' in html
    assert html.count("Verdict:") == len(claims)
    # Every definition is read for a checked claim, shares with their intervals.
    assert "convicted or pending charges" in html and "no conviction and no pending charge" in html


def test_public_claims_page_says_which_readings_are_withheld_and_why(client, synthetic_warehouse):
    """The SYNTHETIC demo's arrests are a few a day, so every claim period cutting a month has
    a day under k, and the metrics with no before/after sibling cannot be checked: each such
    claim's verdict says why, and no observed share goes out. The full server shows them."""
    page = client.get("/pages/claims").text
    sections = dict(re.findall(r'id="claim-([^"]+)"(.*?)</section>', page, re.S))
    withheld = {claim for claim, html in sections.items()
                if "Verdict:</strong> withheld in public mode" in html}
    assert {"wh-heinous-first", "dhs-400k-arrested-count"} <= withheld
    assert "the period cuts 2025-01 and a day or a part of that month counts fewer than 10" in (
        sections["wh-heinous-first"])
    assert "has no before/after metric" in sections["noem-2025-detainers-issued"]
    for claim in withheld:
        assert "% (" not in sections[claim]
    full = TestClient(create_app(synthetic_warehouse)).get("/pages/claims").text
    assert "withheld in public mode" not in full and "% (" in full


def _headline_items(html: str) -> list[str]:
    return re.findall(r'<li class="fact" id="fact-[a-z_]+">(.*?)</li>', html, re.S)


def test_home_opens_with_six_dated_cited_headline_facts(synthetic_warehouse):
    html = TestClient(create_app(synthetic_warehouse)).get("/").text
    items = _headline_items(html)
    assert len(items) >= 6
    for item in items:
        assert re.search(r"as of \d{4}-\d{2}-\d{2}", item), item
        assert "iceledger, " in item and "retrieved " in item and "SYNTHETIC" in item
        assert 'href="/' in item  # the definition link
    assert 'id="fact-arrests_vs_target"' in html and 'id="fact-cost_per_day"' in html


@pytest.fixture(scope="module")
def workbooks_warehouse(stats_workbooks, tmp_path_factory):
    from iceledger.sources.stats.ingest import ingest_stats
    from iceledger.warehouse import Warehouse

    path = tmp_path_factory.mktemp("workbooks") / "w.duckdb"
    assert not ingest_stats(stats_workbooks, Warehouse(path)).failed
    return path


def test_workbooks_alone_give_six_headline_facts(workbooks_warehouse):
    html = TestClient(create_app(workbooks_warehouse, public=True)).get("/").text
    items = _headline_items(html)
    assert len(items) >= 6
    for key in ("detained_now", "detained_criminality", "book_ins", "adp_vs_beds",
                "no_conviction", "cost_per_day"):
        assert f'id="fact-{key}"' in html, key
    assert all(".xlsx" in item and "as of 20" in item for item in items if "targets.csv" not in item)
    # Arrests are not in the workbooks: the fact says so and gives the target, not a number.
    assert "not measurable" in html


def test_monthly_rows_reach_the_end_of_their_last_month(workbooks_warehouse):
    from iceledger.report.build import _period_text
    from iceledger.serving.service import WarehouseService

    # ICE's latest release (FY2026, data to 2026-01-25) prints months to January 2026.
    body = TestClient(create_app(workbooks_warehouse)).get("/api/metrics/published_adp").json()
    period = body["period"]
    assert (period["data_from"], period["data_to"], period["grain"]) == (
        "2018-10-01", "2026-01-31", "month")
    service = WarehouseService(workbooks_warehouse)
    result = service.compute(service.request("published_adp"))
    assert _period_text(result) == "2018-10 to 2026-01 (months)"
    daily = service.compute(service.request("detained_criminality"))
    assert _period_text(daily) == "2019-09-30 to 2026-01-25"
    # Yearly and quarterly tables are keyed by their first month: they reach its year's or
    # quarter's end.
    yearly = service.compute(service.request("published_special_populations"))
    assert (yearly.period()["data_to"], yearly.period()["grain"]) == ("2025-09-30", "fiscal_year")
    assert _period_text(yearly) == "FY2018 to FY2025 (fiscal years)"
    quarterly = service.compute(service.request("published_vulnerable_segregation"))
    assert _period_text(quarterly) == "2021-10 to 2025-12 (quarters)"


def test_figures_from_releases_that_failed_their_checks_say_so_beside_them(workbooks_warehouse):
    # The FY2022 year-end and FY2025 releases print family-facility ADPs whose facility types do
    # not add to the total (docs/stats-checks.md); the monthly series reads its latest values
    # from them, and a reader of the figures, not only of the provenance list, is told.
    client = TestClient(create_app(workbooks_warehouse, public=True))
    body = client.get("/api/metrics/published_family_detention").json()
    flagged = [r for r in body["rows"] if r["failed_checks"]]
    [caveat] = [c for c in body["caveats"] if "checks failed" in c]
    assert caveat.startswith(f"{len(flagged)} of {body['row_count']} rows are figures from a "
                             "release whose checks failed")
    assert "facility types add to total" in caveat and "FY25_detentionStats09242025" in caveat
    clean = client.get("/api/metrics/published_adp").json()
    assert not any(r["failed_checks"] for r in clean["rows"])
    assert not any("checks failed" in c for c in clean["caveats"])


def test_facility_and_field_office_pages_draw_every_release(workbooks_warehouse):
    import json

    client = TestClient(create_app(workbooks_warehouse, public=True))
    office = client.get("/field-offices/ATL")
    assert office.status_code == 200
    spec = json.loads(re.search(r'<script type="application/json" class="chart-spec"'
                                r' data-target="chart-history">(.*?)</script>',
                                office.text, re.S).group(1))
    assert spec["usermeta"]["measure"] == "adp"
    releases = {r["workbook"] for r in spec["data"]["values"]}
    assert len(releases) >= 10  # one point per workbook that lists facilities
    linked = re.findall(r'href="/facilities/([^"]+)"', office.text)
    assert linked
    facility = client.get(f"/facilities/{linked[0]}")
    assert facility.status_code == 200 and 'href="/field-offices/ATL"' in facility.text
    assert client.get("/facilities/NO SUCH PLACE").status_code == 404
    assert client.get("/field-offices/ZZZ").status_code == 404
    # An office's name, as the FOIA records and their rankings give it, leads to its code's page.
    named = client.get("/field-offices/Atlanta", follow_redirects=False)
    assert named.status_code == 307 and named.headers["location"] == "/field-offices/ATL"


def test_an_office_page_stands_without_workbooks_and_leads_to_its_foia_figures(client):
    page = client.get("/field-offices/ATL")
    assert page.status_code == 200
    assert "No published statistics for this office" in page.text
    assert 'href="/pages/volume?aor=Atlanta"' in page.text
    assert client.get("/field-offices/ZZZ").status_code == 404


def test_facility_history_sums_the_facilities_of_each_release(workbooks_warehouse):
    import ibis

    from iceledger.metrics.registry import compute

    backend = ibis.duckdb.connect(str(workbooks_warehouse), read_only=True)
    newest = compute("facility_population", backend).to_pylist()
    history = compute("facility_population_history", backend).to_pylist()
    last = max(history, key=lambda r: r["date"])
    assert last["workbook"] == newest[0]["workbook"]
    assert last["facilities"] == len(newest)
    assert last["adp"] == pytest.approx(sum(f["adp"] or 0 for f in newest))
    # The published series: the newest month's total is the latest release's printed figure.
    adp = compute("published_adp", backend).to_pylist()
    assert adp[-1]["workbook"] == last["workbook"] and adp[-1]["n_releases"] >= 1
    backend.disconnect()
