"""The map on a real ICE workbook (skipped where the shared workbooks are absent)."""

from __future__ import annotations

import duckdb
import pytest
from fastapi.testclient import TestClient

from iceledger.sources.detention_stats import ingest_stats
from iceledger.warehouse import Warehouse
from iceledger.web.app import create_app


@pytest.fixture(scope="module")
def newest_workbook_warehouse(stats_workbooks, tmp_path_factory):
    newest = next((p for p in stats_workbooks if p.name.startswith("FY26_")), None)
    if newest is None:
        pytest.skip("the FY26 workbook is not among the shared workbooks")
    path = tmp_path_factory.mktemp("real-map") / "warehouse.duckdb"
    ingest_stats([newest], Warehouse(path))
    return path


def test_every_facility_is_placed_or_listed_and_offices_sum_their_facilities(
    newest_workbook_warehouse,
):
    data = TestClient(create_app(newest_workbook_warehouse)).get("/api/map").json()
    assert data["available"] and data["workbook"].startswith("FY26_")
    assert data["synthetic"] is False
    with duckdb.connect(str(newest_workbook_warehouse), read_only=True) as con:
        listed = con.execute(
            "SELECT count(*) FROM stats_facilities WHERE adp IS NOT NULL AND workbook = ?",
            [data["workbook"]],
        ).fetchone()[0]
        by_office = dict(
            con.execute(
                "SELECT aor, sum(adp) FROM stats_facilities "
                "WHERE adp IS NOT NULL AND workbook = ? GROUP BY aor",
                [data["workbook"]],
            ).fetchall()
        )
    # Nothing dropped: every listed facility is drawn or named as not drawn.
    assert len(data["facilities"]) + len(data["not_drawn"]) == listed
    assert len(data["facilities"]) > 150
    assert {f["placed_by"] for f in data["facilities"]} <= {"zip", "city", "state"}
    # Guam and Puerto Rico have no place on an albersUsa map.
    assert any("HAGATNA" in name for name in data["not_drawn"])
    for office in data["field_offices"]:
        assert office["adp"] == pytest.approx(by_office[office["aor_code"]])
