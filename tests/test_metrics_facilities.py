"""facility_population and field_office_population on hand-built facilities sheets (SYNTHETIC).

Four workbook versions: OLD and NEW dated by their file names, ARCHIVED dated only by its
web-archive capture (and printing a 'data as of' date later than NEW's, which must not make it
the newest), and LATEST_NO_SHEET, the newest of all, which lists no facilities. NEW is read:

| facility | aor  | adp   |
|----------|------|-------|
| A        | ATL  | 100.0 |
| B        | ATL  |   4.5 |
| C        | ATL  | none  |
| D        | HOU  | 900.0 |
| F        | HOU  | none  |
| G        | MIA  | none  |
| E        | none |  12.0 |

So by office: ATL 104.5 over 3 facilities (1 without a figure), HOU 900.0 over 2 (1 without),
MIA no figure over 1 (1 without), no office 12.0 over 1; national 1016.5 over 7.
"""

from __future__ import annotations

from datetime import date

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iceledger.metrics import MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.warehouse import Warehouse

OLD = "FY25_detentionStats_SYNTHETIC_01062025.xlsx"
ARCHIVED = "20250120000000-FY25_detentionStats_SYNTHETIC.xlsx"
NEW = "FY25_detentionStats_SYNTHETIC_02032025.xlsx"
LATEST_NO_SHEET = "FY25_detentionStats_SYNTHETIC_03032025.xlsx"

WORKBOOK_SCHEMA = pa.schema([("workbook", pa.string()), ("sha256", pa.string()),
                             ("fiscal_year", pa.int32()), ("file_date", pa.date32()),
                             ("archive_date", pa.date32()), ("as_of_date", pa.date32())])
WORKBOOKS = pa.Table.from_pylist(
    [
        {"workbook": OLD, "sha256": "1" * 64, "fiscal_year": 2025, "file_date": date(2025, 1, 6),
         "archive_date": None, "as_of_date": date(2024, 12, 30)},
        {"workbook": ARCHIVED, "sha256": "2" * 64, "fiscal_year": 2025, "file_date": None,
         "archive_date": date(2025, 1, 20), "as_of_date": date(2025, 3, 1)},
        {"workbook": NEW, "sha256": "3" * 64, "fiscal_year": 2025, "file_date": date(2025, 2, 3),
         "archive_date": None, "as_of_date": date(2025, 1, 27)},
        {"workbook": LATEST_NO_SHEET, "sha256": "4" * 64, "fiscal_year": 2025,
         "file_date": date(2025, 3, 3), "archive_date": None, "as_of_date": date(2025, 2, 24)},
    ],
    schema=WORKBOOK_SCHEMA,
)
FACILITY_SCHEMA = pa.schema([("workbook", pa.string()), ("sha256", pa.string()),
                             ("fiscal_year", pa.int32()), ("name", pa.string()),
                             ("type_detailed", pa.string()), ("city", pa.string()),
                             ("state", pa.string()), ("zip", pa.string()), ("aor", pa.string()),
                             ("adp", pa.float64()), ("alos", pa.float64()),
                             ("sheet", pa.string()), ("cell_range", pa.string())])
SHA = {OLD: "1" * 64, ARCHIVED: "2" * 64, NEW: "3" * 64}
# (workbook, name, aor, adp, alos); the place columns are the name's.
SHEETS = [
    (OLD, "A", "ATL", 80.0, 18.0),
    (OLD, "D", "HOU", 700.0, 30.0),
    (ARCHIVED, "A", "ATL", 5000.0, 1.0),
    (NEW, "A", "ATL", 100.0, 20.0),
    (NEW, "B", "ATL", 4.5, 3.0),
    (NEW, "C", "ATL", None, None),
    (NEW, "D", "HOU", 900.0, 31.5),
    (NEW, "F", "HOU", None, 7.0),
    (NEW, "G", "MIA", None, None),
    (NEW, "E", None, 12.0, 2.0),
]


def facility_table(rows) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {"workbook": workbook, "sha256": SHA.get(workbook, "0" * 64), "fiscal_year": 2025,
             "name": f"SYNTHETIC FACILITY {name}", "type_detailed": "IGSA",
             "city": f"CITY {name}", "state": "GA", "zip": "31815", "aor": aor, "adp": adp,
             "alos": alos, "sheet": "Facilities FY25", "cell_range": f"A{10 + row}:AA{10 + row}"}
            for row, (workbook, name, aor, adp, alos) in enumerate(rows)
        ],
        schema=FACILITY_SCHEMA,
    )


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    warehouse = Warehouse(tmp_path_factory.mktemp("facilities") / "w.duckdb")
    warehouse.replace_table("stats_workbooks", WORKBOOKS)
    warehouse.replace_table("stats_facilities", facility_table(SHEETS))
    return duckdb_backend(warehouse.path)


def by_name(table: pa.Table) -> dict[str, dict]:
    return {row["name"].removeprefix("SYNTHETIC FACILITY "): row for row in table.to_pylist()}


def test_every_facility_of_the_newest_published_workbook_is_listed(backend):
    rows = by_name(compute("facility_population", backend))
    assert set(rows) == {"A", "B", "C", "D", "E", "F", "G"}
    assert {row["workbook"] for row in rows.values()} == {NEW}
    assert (rows["A"]["adp"], rows["A"]["alos"]) == (100.0, 20.0)
    # No figure is listed as no figure, not as zero and not left out.
    assert rows["C"]["adp"] is None and rows["G"]["adp"] is None
    assert rows["E"]["aor"] is None and rows["E"]["adp"] == 12.0
    a = rows["A"]
    assert (a["publication_date"], a["as_of_date"], a["fiscal_year"]) == (
        date(2025, 2, 3), date(2025, 1, 27), 2025)
    assert (a["type_detailed"], a["city"], a["state"], a["zip"]) == (
        "IGSA", "CITY A", "GA", "31815")
    assert a["sheet"] == "Facilities FY25" and a["cell_range"] == "A13:AA13"


def test_field_offices_sum_their_facilities_and_count_those_without_a_figure(backend):
    offices = {row["aor"]: row for row in compute("field_office_population", backend).to_pylist()}
    counts = {aor: (o["adp"], o["facilities"], o["facilities_without_adp"])
              for aor, o in offices.items()}
    assert counts == {
        "ATL": (104.5, 3, 1),
        "HOU": (900.0, 2, 1),
        "MIA": (None, 1, 1),
        None: (12.0, 1, 0),
    }
    assert sum(o["facilities"] for o in offices.values()) == 7
    assert {o["workbook"] for o in offices.values()} == {NEW}


@pytest.mark.parametrize(
    ("end", "workbook", "a_adp"),
    [
        # The archived copy is dated by its capture (20 Jan), not by the 1 Mar it prints.
        (date(2025, 1, 31), ARCHIVED, 5000.0),
        (date(2025, 1, 10), OLD, 80.0),
        (date(2025, 2, 3), NEW, 100.0),
    ],
)
def test_to_reads_the_newest_workbook_published_by_then(backend, end, workbook, a_adp):
    rows = by_name(compute("facility_population", backend, MetricParams(end=end)))
    assert {row["workbook"] for row in rows.values()} == {workbook}
    assert rows["A"]["adp"] == a_adp


def test_no_workbook_in_the_period_gives_no_rows(backend):
    # Only LATEST_NO_SHEET is published on or after 1 March, and it lists no facilities.
    params = MetricParams(start=date(2025, 3, 1))
    assert compute("facility_population", backend, params).num_rows == 0
    assert compute("field_office_population", backend, params).num_rows == 0


def test_the_newest_workbook_without_a_facilities_sheet_is_passed_over(backend):
    rows = compute("facility_population", backend, MetricParams(start=date(2025, 2, 1)))
    assert set(rows.column("workbook").to_pylist()) == {NEW}


facility_rows = st.lists(
    st.tuples(
        st.sampled_from(("ATL", "HOU", "MIA", None)),
        st.one_of(st.none(), st.floats(0, 5000, allow_nan=False).map(lambda x: round(x, 3))),
    ),
    min_size=1,  # a workbook with no facility rows lists no facilities
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=facility_rows)
def test_offices_account_for_every_facility_and_every_known_figure(rows):
    con = ibis.duckdb.connect()
    con.create_table("stats_workbooks", WORKBOOKS)
    sheet = facility_table(
        [(NEW, f"F{i}", aor, adp, None) for i, (aor, adp) in enumerate(rows)]
        + [(OLD, "A", "ATL", 80.0, None)]
    )
    con.create_table("stats_facilities", sheet)
    facilities = compute("facility_population", con)
    offices = compute("field_office_population", con).to_pylist()
    assert facilities.num_rows == len(rows)
    assert sum(o["facilities"] for o in offices) == len(rows)
    assert sum(o["facilities_without_adp"] for o in offices) == sum(a is None for _, a in rows)
    for aor in {a for a, _ in rows}:
        known = [adp for a, adp in rows if a == aor and adp is not None]
        office = next(o for o in offices if o["aor"] == aor)
        assert office["adp"] == (pytest.approx(sum(known)) if known else None)
