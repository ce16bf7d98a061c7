"""FOIA figures beside ICE's published ones: adp_monthly, book_outs_by_reason and the three
reconciliations, on a hand-built release and two hand-built workbooks."""

from __future__ import annotations

from datetime import date, datetime

import ibis
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from iceledger import cli
from iceledger.cli import app
from iceledger.metrics import compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.reconciliation import bands_for, compared, reconcile
from iceledger.warehouse import Warehouse

# Held at the end of the day: P1 from 1 Jan to the release end (31 Mar); P2 (in 10 Jan at noon,
# out 5 Feb at 10:00) 10-31 Jan and 1-4 Feb (22 + 4); P3 booked in and out on 20 Feb (never);
# P4 (out at 00:00 on 3 Mar) 1 and 2 Mar.
# Midnight bed-days: January 31 + 22 = 53, February 28 + 4 = 32, March 31 + 2 = 33.
STAYS = pa.Table.from_pylist(
    [
        {"stay_id": "P1", "stay_book_in": datetime(2025, 1, 1), "stay_book_out": None,
         "stay_release_reason": None},
        {"stay_id": "P2", "stay_book_in": datetime(2025, 1, 10, 12),
         "stay_book_out": datetime(2025, 2, 5, 10), "stay_release_reason": "Bonded Out"},
        {"stay_id": "P3", "stay_book_in": datetime(2025, 2, 20, 8),
         "stay_book_out": datetime(2025, 2, 20, 20), "stay_release_reason": "Removed"},
        {"stay_id": "P4", "stay_book_in": datetime(2025, 3, 1),
         "stay_book_out": datetime(2025, 3, 3), "stay_release_reason": "Paroled"},
    ],
    schema=pa.schema([("stay_id", pa.string()), ("stay_book_in", pa.timestamp("us")),
                      ("stay_book_out", pa.timestamp("us")), ("stay_release_reason", pa.string())]),
).append_column("release", pa.array(["R"] * 4)).append_column(
    # As foia_stays stores it for closed stays: book-out less book-in, in days.
    "length_days", pa.array([None, 25 + 22 / 24, 0.5, 2.0])
).append_column(
    "criminality", pa.array(["Convicted Criminal"] * 4)
).append_column("aor", pa.array(["Atlanta"] * 4)).append_column(
    "citizenship_country", pa.array(["MEXICO"] * 4)
)
RELEASES = pa.table(
    {"release": ["R"], "coverage_start": [date(2025, 1, 1)], "coverage_end": [date(2025, 3, 31)]}
)
WORKBOOKS = pa.table(
    {
        "workbook": ["W1.xlsx", "W2.xlsx"],
        "sha256": ["a1", "b2"],
        "file_date": [date(2025, 2, 15), date(2025, 3, 20)],
        "as_of_date": [date(2025, 2, 10), date(2025, 3, 15)],
    }
)


def monthly(value: str, rows: list[tuple], **dims: list[str]) -> pa.Table:
    """rows: (workbook, month, *dimension values, value)."""
    names = list(dims)
    columns = {"workbook": [r[0] for r in rows], "month": [r[1] for r in rows]}
    for i, name in enumerate(names):
        columns[name] = [r[2 + i] for r in rows]
    columns[value] = [float(r[-1]) for r in rows]
    columns["sheet"] = ["Detention"] * len(rows)
    columns["cell_range"] = [f"B{i}" for i in range(len(rows))]
    return pa.table(columns)


ADP = monthly(
    "adp",
    [
        ("W1.xlsx", date(2025, 1, 1), "Total", "Total", 1.5),
        ("W2.xlsx", date(2025, 1, 1), "Total", "Total", 1.6),  # revised: the latest counts
        ("W2.xlsx", date(2025, 1, 1), "ICE", "Total", 9.0),
        ("W2.xlsx", date(2025, 2, 1), "Total", "Total", 1.0),
    ],
    agency=[], criminality=[],
)
BOOK_INS = monthly("book_ins", [("W2.xlsx", date(2025, 1, 1), "Total", 62)], agency=[])
BOOK_OUTS = monthly(
    "book_outs",
    [
        ("W2.xlsx", date(2025, 1, 1), "Bonded Out", "Total", 1),
        ("W2.xlsx", date(2025, 1, 1), "Paroled", "Total", 0),
        ("W2.xlsx", date(2025, 1, 1), "Total", "Total", 5),
        ("W2.xlsx", date(2025, 2, 1), "Bonded Out", "Total", 4),
        ("W2.xlsx", date(2025, 2, 1), "Bonded Out", "Convicted Criminal", 3),
    ],
    release_reason=[], criminality=[],
)
ALOS = monthly(
    "alos_days",
    [
        ("W1.xlsx", date(2025, 2, 1), "Total", "Total", 14.0),
        ("W2.xlsx", date(2025, 2, 1), "Total", "Total", 13.0),  # revised: the latest counts
        ("W2.xlsx", date(2025, 2, 1), "ICE", "Total", 99.0),
    ],
    agency=[], criminality=[],
)
DETAINED_NOW = pa.table(
    {
        "workbook": ["W1.xlsx", "W1.xlsx", "W2.xlsx"],
        "criminality": ["Total", "Convicted Criminal", "Total"],
        "agency": ["Total", "Total", "Total"],
        "detained": [3.0, 2.0, 1.0],
    }
)


@pytest.fixture(scope="module")
def warehouse_path(tmp_path_factory):
    warehouse = Warehouse(tmp_path_factory.mktemp("reconcile") / "w.duckdb")
    for name, table in {
        "foia_stays": STAYS, "foia_releases": RELEASES, "stats_workbooks": WORKBOOKS,
        "stats_adp": ADP, "stats_book_ins": BOOK_INS, "stats_book_outs": BOOK_OUTS,
        "stats_detained_now": DETAINED_NOW, "stats_alos": ALOS,
    }.items():
        warehouse.replace_table(name, table)
    return warehouse.path


@pytest.fixture(scope="module")
def backend(warehouse_path):
    return duckdb_backend(warehouse_path)


def test_adp_monthly_beside_latest_published(backend):
    result = compute("adp_monthly", backend).to_pylist()
    assert [(r["month"], r["days"], r["published_adp"], r["published_workbook"]) for r in result] == [
        (date(2025, 1, 1), 31, 1.6, "W2.xlsx"),
        (date(2025, 2, 1), 28, 1.0, "W2.xlsx"),
        (date(2025, 3, 1), 31, None, None),
    ]
    assert [r["foia_adp"] for r in result] == pytest.approx([53 / 31, 32 / 28, 33 / 31])


def test_alos_beside_latest_published(backend):
    result = compute("alos_monthly", backend).to_pylist()
    # February: P2 (25 days 22 hours) and P3 (12 hours) booked out; March: P4 (2 days).
    assert [(r["month"], r["book_outs"], r["published_alos_days"], r["published_workbook"])
            for r in result] == [
        (date(2025, 2, 1), 2, 13.0, "W2.xlsx"),
        (date(2025, 3, 1), 1, None, None),
    ]
    assert [r["alos_days"] for r in result] == pytest.approx([(25 + 22 / 24 + 0.5) / 2, 2.0])


def test_book_outs_by_reason_side_by_side(backend):
    result = compute("book_outs_by_reason", backend).to_pylist()
    assert [
        (r["month"], r["release_reason"], r["foia_book_outs"], r["published_book_outs"])
        for r in result
    ] == [
        (date(2025, 1, 1), "Bonded Out", 0, 1.0),
        (date(2025, 1, 1), "Paroled", 0, 0.0),
        (date(2025, 2, 1), "Bonded Out", 1, 4.0),  # ICE's Total row is not a reason
        (date(2025, 2, 1), "Removed", 1, None),  # ICE publishes releases only
        (date(2025, 3, 1), "Paroled", 1, None),
    ]


def test_reconcile_adp_flags_beyond_tolerance(backend):
    jan, feb = compute("reconcile_adp", backend).to_pylist()
    assert jan["difference"] == pytest.approx(53 / 31 - 1.6)
    assert jan["difference_pct"] == pytest.approx((53 / 31 - 1.6) / 1.6 * 100)  # +6.9%
    # FOIA-built ADP was measured 0.1-6.6% below ICE's: above it is outside the usual gap.
    assert (jan["tolerance_low_pct"], jan["tolerance_high_pct"]) == (-6.6, 0.0)
    assert jan["flagged"] is True and "0.1-6.6% below" in jan["tolerance_basis"]
    assert feb["difference_pct"] == pytest.approx((32 / 28 - 1) * 100)  # +14.3%
    assert feb["flagged"] is True


def test_reconcile_population_on_as_of_dates(backend):
    result = compute("reconcile_detained_population", backend).to_pylist()
    assert [
        (r["date"], r["workbook"], r["published_detained"], r["foia_population_midnight"],
         r["difference"], r["flagged"])
        for r in result
    ] == [
        (date(2025, 2, 10), "W1.xlsx", 3.0, 1, -2.0, True),
        (date(2025, 3, 15), "W2.xlsx", 1.0, 1, 0.0, False),
    ]


def test_reconcile_book_ins_per_day(backend):
    (jan,) = compute("reconcile_book_ins", backend).to_pylist()
    assert jan["month"] == date(2025, 1, 1)
    assert jan["foia_book_ins_per_day"] == pytest.approx(2 / 31)  # P1 and P2
    assert jan["published_book_ins_per_day"] == pytest.approx(2.0)
    assert jan["flagged"] is True


def test_tolerance_is_a_parameter(backend):
    results = dict((m.name, t) for m, t in reconcile(backend, tolerance_pct=20.0))
    assert results["reconcile_adp"].column("flagged").to_pylist() == [False, False]
    assert results["reconcile_adp"].column("tolerance_low_pct").to_pylist() == [-20.0, -20.0]
    assert results["reconcile_adp"].column("tolerance_high_pct").to_pylist() == [20.0, 20.0]
    assert results["reconcile_adp"].column("tolerance_basis")[0].as_py().startswith("flat")


@pytest.mark.parametrize(
    ("month", "foia", "flagged", "basis"),
    [
        # Nov 2018 - May 2019: FOIA-built book-ins ran 14-30% below ICE's.
        (date(2018, 12, 1), 80.0, False, "14-30% below"),
        (date(2018, 12, 1), 95.0, True, "14-30% below"),
        (date(2018, 12, 1), 100.0, True, "14-30% below"),
        # No gap measured between June 2019 and FY2022: not judged either way.
        (date(2020, 6, 1), 50.0, None, "no gap measured"),
        # From FY2022, within 1%.
        (date(2022, 3, 1), 99.5, False, "within 1%"),
        (date(2022, 3, 1), 97.0, True, "within 1%"),
        (date(2022, 3, 1), 102.0, True, "within 1%"),
    ],
)
def test_book_in_tolerance_depends_on_the_era(month, foia, flagged, basis):
    rows = ibis.memtable({"month": [month], "foia": [foia], "published": [100.0]})
    (row,) = compared(rows, "foia", "published", "month",
                      bands_for("book_ins", None)).to_pyarrow().to_pylist()
    assert row["difference_pct"] == pytest.approx(foia - 100.0)
    assert row["flagged"] is flagged and basis in row["tolerance_basis"]


def test_reconcile_command_prints_tables_and_definitions(warehouse_path, monkeypatch):
    # Rich sizes tables to the terminal; a fixed width keeps the test independent of the runner.
    for console in (cli.console, cli.err_console):
        monkeypatch.setattr(console, "width", 250)
    run = CliRunner().invoke(
        app, ["reconcile", "--tolerance", "20", "--warehouse", str(warehouse_path)]
    )
    assert run.exit_code == 0, run.output
    assert "reconcile_adp" in run.output and "2025-02" in run.output
    assert "tolerance 20%" in run.output
    measured = CliRunner().invoke(app, ["reconcile", "--warehouse", str(warehouse_path)])
    assert measured.exit_code == 0, measured.output
    assert "measured gap per era" in measured.output
    assert "stats_adp" in run.output  # the source tables are named


def test_reconcile_command_without_warehouse_is_one_line(tmp_path):
    run = CliRunner().invoke(app, ["reconcile", "--warehouse", str(tmp_path / "none.duckdb")])
    assert run.exit_code == 1
    assert "no warehouse here yet" in run.output and "Traceback" not in run.output
