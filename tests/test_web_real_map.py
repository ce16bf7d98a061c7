"""The map: on a real ICE workbook (skipped where the shared workbooks are absent), and on a
hand-built SYNTHETIC facilities sheet holding every case the map cannot draw as it is."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from iceledger.sources.stats.ingest import ingest_stats
from iceledger.warehouse import RowAccounting, SourceLoad, Warehouse
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
    client = TestClient(create_app(newest_workbook_warehouse))
    data = client.get("/api/map").json()
    assert data["available"] and data["workbook"].startswith("FY26_")
    assert data["synthetic"] is False
    with duckdb.connect(str(newest_workbook_warehouse), read_only=True) as con:
        listed = con.execute(
            "SELECT count(*) FROM stats_facilities WHERE workbook = ?", [data["workbook"]]
        ).fetchone()[0]
        by_office = dict(
            con.execute(
                "SELECT aor, sum(adp) FROM stats_facilities WHERE workbook = ? GROUP BY aor",
                [data["workbook"]],
            ).fetchall()
        )
    # Nothing dropped: every listed facility is drawn or named as not drawn, with a reason.
    assert len(data["facilities"]) + len(data["not_drawn"]) == listed
    assert len(data["facilities"]) > 150
    assert {f["placed_by"] for f in data["facilities"]} <= {"zip", "city", "state"}
    # Guam and Puerto Rico have no place on an albersUsa map.
    assert any("HAGATNA" in name for name in data["not_drawn"])
    assert all(f["reason"] for f in data["facilities_not_drawn"])
    # Every office ICE names is drawn, and its figure is the metric's.
    offices = {o["aor_code"]: o for o in data["field_offices"]}
    assert set(offices) == set(by_office) and data["field_offices_not_drawn"] == []
    metric = client.get("/api/metrics/field_office_population").json()["rows"]
    for row in metric:
        assert offices[row["aor"]]["adp"] == row["adp"] == pytest.approx(by_office[row["aor"]])
        assert offices[row["aor"]]["facilities"] == row["facilities"]


# (name, city, state, zip, aor, adp) on the facilities sheet of one SYNTHETIC workbook.
EDGE_FACILITIES = [
    ("SYNTHETIC STEWART", "LUMPKIN", "GA", "31815", "ATL", 1500.0),
    ("SYNTHETIC NO FIGURE JAIL", "OCILLA", "GA", "31774", "ATL", None),
    ("SYNTHETIC NOWHERE CENTER", "NOWHERE", "ZZ", "", "HOU", 20.0),
    ("SYNTHETIC UNKNOWN OFFICE JAIL", "CONROE", "TX", "77301", "XXX", 30.0),
    ("SYNTHETIC NO OFFICE ANNEX", "CONROE", "TX", "77301", None, 40.0),
    ("SYNTHETIC EMPTY OFFICE JAIL", "MIAMI", "FL", "33101", "MIA", None),
]


@pytest.fixture(scope="module")
def edge_client(tmp_path_factory):
    path = tmp_path_factory.mktemp("edge-map") / "warehouse.duckdb"
    workbook = "FY25_detentionStats_SYNTHETIC_03012025.xlsx"
    columns = ("name", "city", "state", "zip", "aor", "adp")
    facilities = pa.Table.from_pylist(
        [
            dict(zip(columns, row))
            | {"workbook": workbook, "fiscal_year": 2025, "type_detailed": "IGSA", "alos": 12.0,
               "sheet": "Facilities FY25", "cell_range": f"A{10 + i}:AA{10 + i}"}
            for i, row in enumerate(EDGE_FACILITIES)
        ],
        schema=pa.schema([(c, pa.float64() if c == "adp" else pa.string()) for c in columns]
                         + [("workbook", pa.string()), ("fiscal_year", pa.int32()),
                            ("type_detailed", pa.string()), ("alos", pa.float64()),
                            ("sheet", pa.string()), ("cell_range", pa.string())]),
    )
    workbooks = pa.Table.from_pylist([{"workbook": workbook, "fiscal_year": 2025,
                                       "file_date": date(2025, 3, 1),
                                       "as_of_date": date(2025, 2, 24)}])
    Warehouse(path).load(
        SourceLoad(
            path=Path(workbook),
            sha256="e" * 64,
            kind="stats",
            tables={"stats_facilities": facilities, "stats_workbooks": workbooks},
            accounting=RowAccounting(rows_read=len(EDGE_FACILITIES),
                                     rows_loaded=len(EDGE_FACILITIES)),
            synthetic=True,
        )
    )
    return TestClient(create_app(path))


def test_facilities_without_a_figure_are_drawn_small_and_listed(edge_client):
    data = edge_client.get("/api/map").json()
    drawn = {f["name"]: f for f in data["facilities"]}
    assert data["facilities_without_adp"] == [
        "SYNTHETIC NO FIGURE JAIL", "SYNTHETIC EMPTY OFFICE JAIL"
    ]
    for name in data["facilities_without_adp"]:
        assert drawn[name]["adp"] is None and "no population figure" in drawn[name]["note"]
    spec = edge_client.get("/api/map/chart").json()["spec"]
    facility_layer = spec["layer"][1]
    assert facility_layer["transform"] == [
        {"calculate": "datum.adp == null ? 0 : datum.adp", "as": "marker_adp"},
        {"calculate": "'/facilities/' + datum.name", "as": "page"},
    ]
    # Each marker opens its facility's (or field office's) page.
    assert facility_layer["encoding"]["href"] == {"field": "page"}
    assert spec["layer"][2]["transform"][1]["calculate"] == "'/field-offices/' + datum.aor_code"
    assert len(facility_layer["data"]["values"]) == len(drawn)


def test_what_cannot_be_placed_is_listed_with_the_reason(edge_client):
    data = edge_client.get("/api/map").json()
    assert [(f["name"], f["reason"]) for f in data["facilities_not_drawn"]] == [
        ("SYNTHETIC NOWHERE CENTER",
         "no ZIP code, city or state of its address is in the gazetteer"),
    ]
    assert data["not_drawn"] == ["SYNTHETIC NOWHERE CENTER"]
    drawn = {o["aor_code"]: o for o in data["field_offices"]}
    # Sums are the metric's: the unplaceable facility still counts for its office.
    assert drawn["ATL"]["adp"] == 1500.0 and drawn["ATL"]["facilities_without_adp"] == 1
    assert "leaves out 1 of its 2 facilities" in drawn["ATL"]["note"]
    assert drawn["HOU"]["adp"] == 20.0
    assert drawn["MIA"]["adp"] is None and drawn["MIA"]["facilities"] == 1
    not_drawn = {o["aor"]: o for o in data["field_offices_not_drawn"]}
    assert not_drawn["XXX"]["adp"] == 30.0 and "names no field office" in not_drawn["XXX"]["reason"]
    assert not_drawn[None]["adp"] == 40.0 and "no field office" in not_drawn[None]["reason"]
    placed = sum(o["facilities"] for o in data["field_offices"])
    listed = sum(o["facilities"] for o in data["field_offices_not_drawn"])
    assert placed + listed == len(EDGE_FACILITIES)
