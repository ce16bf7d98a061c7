"""ICE's published human-cost counts on hand-built workbook tables, answers worked by hand.

The tables are SYNTHETIC, in the parser's shape, from three releases of FY2024:
    W1  published 2024-01-10, data as of 2024-01-05
    W2  published 2024-03-10, data as of 2024-03-05
    W3  published 2024-05-10, data as of 2024-05-05: reprints W1's book-ins by facility type for
        2024-01-02 with the Adult and FRC rows swapped (as ICE's release of 2021-10-28 did)

Family facilities: W1 prints FRC October 100 (of 1,000); W2 relabels it FSC and revises it to
110, and adds November 120 (of 1,200) and ALOS 12.5 days in October (all facilities 30).
Family units: book-ins 20 of 500 (W1, 2024-01-02); removals after an FRC detention 8 of 400 (W1,
2024-01-02), with a FAMU identifier 100 of 1,000 (W2, 2024-03-01); ATD FAMU 300 + ECMS-FAMU 20 of
1,000 (W2, 2024-03-02).
Transgender: W1 (2024-01-01) book-ins 61, only an AOR total of 44 held; W2 (2024-03-01) book-ins
79, held 42 (its AOR total 41 is not used), 16 with and 26 without a final order.
Segregation: FY2023 Q4 Disciplinary 10 (W1) revised to 11 (W2), averages 5.5 and 6.5 days;
FY2024 Q1 Disciplinary 7 (W2); a Total row in each.
Semiannual: U.S. citizens' arrests FY2023 13 in W1 and W2; FY2024 3 in W1, 0 in W2 (ICE's
placeholder); removals FY2023 0 in both (a real zero).
"""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from iceledger.metrics import MetricParams, compute
from iceledger.metrics.backends import duckdb_backend
from iceledger.serving.service import NotServable, WarehouseService
from iceledger.tables import (
    FAIL,
    STALE_REPOST_CHECK,
    STATS_ADP_BY_FACILITY_TYPE,
    STATS_ALOS_BY_FACILITY_TYPE,
    STATS_ATD_STATUS,
    STATS_BOOK_INS_BY_FACILITY_TYPE,
    STATS_RELEASE_CHECKS,
    STATS_REMOVALS,
    STATS_SEGREGATION_VULNERABLE,
    STATS_SEMIANNUAL,
    STATS_TRANSGENDER,
    STATS_WORKBOOKS,
)
from iceledger.warehouse import Warehouse

WORKBOOKS = {"W1": (date(2024, 1, 10), date(2024, 1, 5)),
             "W2": (date(2024, 3, 10), date(2024, 3, 5)),
             "W3": (date(2024, 5, 10), date(2024, 5, 5))}
OCT, NOV = date(2023, 10, 1), date(2023, 11, 1)


def _rows(table_rows: list[dict], value: str, **types: pa.DataType) -> pa.Table:
    """Rows with the provenance columns every workbook table has."""
    schema = pa.schema([("workbook", pa.string()), ("sha256", pa.string()),
                        ("fiscal_year", pa.int32()), ("snapshot_date", pa.date32()),
                        ("as_of_source", pa.string()), *types.items(), (value, pa.float64()),
                        ("sheet", pa.string()), ("cell_range", pa.string())])
    full = [{"sha256": r["workbook"].lower() * 32, "fiscal_year": 2024, "snapshot_date": None,
             "as_of_source": "iids", "sheet": "Detention FY24", "cell_range": "A1:E9", **r}
            for r in table_rows]
    return pa.Table.from_pylist(full, schema=schema)


def stats_tables() -> dict[str, pa.Table]:
    workbooks = pa.table({
        "workbook": list(WORKBOOKS), "sha256": [w.lower() * 32 for w in WORKBOOKS],
        "fiscal_year": pa.array([2024] * 3, pa.int32()),
        "file_date": pa.array([d for d, _ in WORKBOOKS.values()], pa.date32()),
        "archive_date": pa.array([None] * 3, pa.date32()),
        "as_of_date": pa.array([a for _, a in WORKBOOKS.values()], pa.date32()),
    })
    adp = [("W1", "FRC", OCT, 100), ("W1", "Adult", OCT, 900), ("W1", "Total", OCT, 1000),
           ("W2", "FSC", OCT, 110), ("W2", "Adult", OCT, 890), ("W2", "Total", OCT, 1000),
           ("W2", "FSC", NOV, 120), ("W2", "Adult", NOV, 1080), ("W2", "Total", NOV, 1200)]
    alos = [("W2", "FSC", OCT, 12.5), ("W2", "Total", OCT, 30.0), ("W2", "Total", NOV, 31.0)]
    jan2, mar1, mar2 = date(2024, 1, 2), date(2024, 3, 1), date(2024, 3, 2)
    book_ins = [("W1", jan2, kind, crim, n) for kind, crim, n in (
        ("Total", "Total", 500), ("FRC", "Total", 20), ("FRC", "Convicted Criminal", 5),
        ("Adult", "Total", 480))] + [("W3", jan2, kind, "Total", n) for kind, n in (
            ("Total", 500), ("FRC", 480), ("Adult", 20))]
    removals = [("W1", jan2, "Total", 400), ("W1", jan2, "Removals with an FRC Detention", 8),
                ("W2", mar1, "Total", 1000), ("W2", mar1, "Removals with a FAMU Identifier", 100)]
    atd = [("W2", mar2, s, n) for s, n in (("FAMU", 300), ("ECMS-FAMU", 20), ("Single Adult", 600),
                                           ("ECMS-Single Adult", 80), ("Total", 1000))]
    transgender = [
        ("W1", "Total Book-Ins for FY24", 61), ("W1", "Book-In Location/Area of Responsibility "
                                                      "Total", 44),
        ("W1", "Miami Area of Responsibility", 3),
        ("W2", "Total Book-Ins for FY24", 79), ("W2", "Currently Detained Total", 42),
        ("W2", "Currently Detained Location/Area of Responsibility Total", 41),
        ("W2", "Current in ICE Custody with Final Order", 16),
        ("W2", "Current in ICE Custody without Final Order", 26),
    ]
    as_of = {"W1": date(2024, 1, 1), "W2": date(2024, 3, 1)}
    segregation = [("W1", 2023, 4, "Disciplinary", 10, 5.0, 6.0),
                   ("W1", 2023, 4, "Total", 12, 5, 6),
                   ("W2", 2023, 4, "Disciplinary", 11, 5.5, 6.5),
                   ("W2", 2023, 4, "Total", 13, 5, 6),
                   ("W2", 2024, 1, "Disciplinary", 7, 3.0, 4.0),
                   ("W2", 2024, 1, "Total", 7, 3, 4)]
    semiannual = [(wb, "United States Citizens", action, fy, n) for wb, action, fy, n in (
        ("W1", "Arrests", 2023, 13), ("W1", "Arrests", 2024, 3), ("W1", "Removals", 2023, 0),
        ("W2", "Arrests", 2023, 13), ("W2", "Arrests", 2024, 0), ("W2", "Removals", 2023, 0))]
    return {
        STATS_WORKBOOKS: workbooks,
        STATS_ADP_BY_FACILITY_TYPE: _rows(
            [{"workbook": w, "facility_type": t, "month": m, "adp": float(v)}
             for w, t, m, v in adp],
            "adp", facility_type=pa.string(), month=pa.date32()),
        STATS_ALOS_BY_FACILITY_TYPE: _rows(
            [{"workbook": w, "facility_type": t, "month": m, "alos_days": v}
             for w, t, m, v in alos], "alos_days", facility_type=pa.string(), month=pa.date32()),
        STATS_BOOK_INS_BY_FACILITY_TYPE: _rows(
            [{"workbook": w, "snapshot_date": d, "facility_type": t, "criminality": c,
              "book_ins": float(n)} for w, d, t, c, n in book_ins],
            "book_ins", facility_type=pa.string(), criminality=pa.string()),
        STATS_REMOVALS: _rows(
            [{"workbook": w, "snapshot_date": d, "category": c, "removals": float(n)}
             for w, d, c, n in removals], "removals", category=pa.string()),
        STATS_ATD_STATUS: _rows(
            [{"workbook": w, "snapshot_date": d, "status": s, "participants": float(n),
              "sheet": "ATD FY24 YTD"} for w, d, s, n in atd], "participants", status=pa.string()),
        STATS_TRANSGENDER: _rows(
            [{"workbook": w, "snapshot_date": as_of[w], "as_of": as_of[w], "category": c,
              "people": float(n), "sheet": "Trans. Detainee Pop."} for w, c, n in transgender],
            "people", as_of=pa.date32(), category=pa.string()),
        STATS_SEGREGATION_VULNERABLE: _rows(
            [{"workbook": w, "data_fiscal_year": fy, "quarter": q, "placement_reason": r,
              "placements": float(n), "avg_consecutive_days": float(a),
              "avg_cumulative_days": float(b), "sheet": "Vulnerable & Special Population"}
             for w, fy, q, r, n, a, b in segregation],
            "placements", data_fiscal_year=pa.int32(), quarter=pa.int32(),
            placement_reason=pa.string(), avg_consecutive_days=pa.float64(),
            avg_cumulative_days=pa.float64()),
        STATS_SEMIANNUAL: _rows(
            [{"workbook": w, "population": p, "action": a, "data_fiscal_year": fy,
              "people": float(n), "sheet": "Semiannual"} for w, p, a, fy, n in semiannual],
            "people", population=pa.string(), action=pa.string(), data_fiscal_year=pa.int32()),
    }


def _warehouse(path, tables: dict[str, pa.Table]) -> Warehouse:
    warehouse = Warehouse(path)
    for name, table in tables.items():
        warehouse.replace_table(name, table)
    return warehouse


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Warehouse:
    return _warehouse(tmp_path_factory.mktemp("published-human-cost") / "w.duckdb",
                      stats_tables())


@pytest.fixture(scope="module")
def backend(warehouse):
    return duckdb_backend(warehouse.path)


def test_families_in_family_facilities_take_the_latest_value_under_either_name(backend):
    rows = compute("published_family_detention", backend).to_pylist()
    assert [(r["month"], r["family_adp"], r["all_adp"], r["family_adp_share"],
             r["family_alos_days"], r["all_alos_days"]) for r in rows] == [
        (OCT, 110.0, 1000.0, 0.11, 12.5, 30.0), (NOV, 120.0, 1200.0, 0.1, None, 31.0)]
    october = rows[0]
    # FRC in W1 and FSC in W2 are one series: a revision, not two families of figures.
    assert (october["workbook"], october["n_releases"], october["n_revisions"],
            october["change_since_first"]) == ("W2", 2, 1, 10.0)


def test_family_units_per_release_with_the_first_printing_of_a_snapshot(backend):
    rows = {(r["population"], r["date"]): r
            for r in compute("published_family_units", backend).to_pylist()}
    book_ins = rows[("book-ins into family facilities (FSC/FRC)", date(2024, 1, 2))]
    # W3's reprint swaps the rows (480 of 500): the first printing stands, the reprint is counted.
    assert (book_ins["count"], book_ins["of_all"], book_ins["share"], book_ins["workbook"],
            book_ins["n_printings"], book_ins["reprints_differing"]) == (20, 500, 0.04, "W1", 2, 1)
    assert {k: (r["count"], r["of_all"], r["share"]) for k, r in rows.items()} == {
        ("book-ins into family facilities (FSC/FRC)", date(2024, 1, 2)): (20, 500, 0.04),
        ("removals after a family-facility detention (FRC/FSC)", date(2024, 1, 2)): (8, 400, 0.02),
        ("removals with a family-unit (FAMU) identifier", date(2024, 3, 1)): (100, 1000, 0.1),
        ("alternatives to detention: family units (FAMU)", date(2024, 3, 2)): (320, 1000, 0.32),
    }
    famu = compute("published_family_units", backend, MetricParams(
        filters={"population": ("removals with a family-unit (FAMU) identifier",)}))
    assert famu.column("count").to_pylist() == [100]


def test_a_stale_re_post_is_never_a_printing(tmp_path):
    stale = pa.Table.from_pylist([{"workbook": "W3", "check": STALE_REPOST_CHECK,
                                   "table": STATS_WORKBOOKS, "status": FAIL, "detail": "",
                                   "compared_with": "W2", "fiscal_year": 2024}])
    backend = duckdb_backend(_warehouse(tmp_path / "w.duckdb",
                                        {**stats_tables(), STATS_RELEASE_CHECKS: stale}).path)
    book_ins = [r for r in compute("published_family_units", backend).to_pylist()
                if r["population"].startswith("book-ins")]
    assert [(r["count"], r["n_printings"], r["reprints_differing"]) for r in book_ins] == [
        (20, 1, 0)]


def test_transgender_detainees_per_snapshot(backend):
    rows = compute("published_transgender_detainees", backend).to_pylist()
    assert [(r["date"], r["fiscal_year"], r["book_ins_fytd"], r["detained"],
             r["detained_with_final_order"], r["detained_without_final_order"], r["workbook"])
            for r in rows] == [
        (date(2024, 1, 1), 2024, 61, 44, None, None, "W1"),
        (date(2024, 3, 1), 2024, 79, 42, 16, 26, "W2"),
    ]
    later = compute("published_transgender_detainees", backend,
                    MetricParams(start=date(2024, 2, 1)))
    assert later.column("detained").to_pylist() == [42]


def test_vulnerable_segregation_per_quarter_latest_with_its_own_averages(backend):
    rows = {(r["month"], r["placement_reason"]): r
            for r in compute("published_vulnerable_segregation", backend).to_pylist()}
    assert sorted(rows) == [(date(2023, 7, 1), "Disciplinary"), (date(2023, 7, 1), "Total"),
                            (date(2023, 10, 1), "Disciplinary"), (date(2023, 10, 1), "Total")]
    q4 = rows[(date(2023, 7, 1), "Disciplinary")]
    assert (q4["data_fiscal_year"], q4["quarter"], q4["placements"], q4["avg_consecutive_days"],
            q4["avg_cumulative_days"], q4["workbook"], q4["n_releases"], q4["n_revisions"],
            q4["change_since_first"]) == (2023, 4, 11, 5.5, 6.5, "W2", 2, 1, 1.0)
    totals = compute("published_vulnerable_segregation", backend,
                     MetricParams(filters={"placement_reason": ("Total",)}))
    assert totals.column("placements").to_pylist() == [13, 7]


def test_special_populations_skip_the_placeholder_zero_but_keep_a_real_one(backend):
    rows = {(r["action"], r["data_fiscal_year"]): r
            for r in compute("published_special_populations", backend).to_pylist()}
    found = {k: (r["month"], r["people"], r["workbook"], r["n_releases"])
             for k, r in rows.items()}
    assert found == {
        ("Arrests", 2023): (date(2022, 10, 1), 13, "W2", 2),
        ("Arrests", 2024): (date(2023, 10, 1), 3, "W1", 1),
        ("Removals", 2023): (date(2022, 10, 1), 0, "W2", 2),
    }
    assert rows[("Arrests", 2024)]["series"] == "United States Citizens: Arrests"
    # No refresh date among these releases' rows: the release's data-as-of date orders them,
    # and every row says that is all it is.
    assert {(r["workbook"], r["as_of_date"]) for r in rows.values()} == {
        ("W2", date(2024, 3, 5)), ("W1", date(2024, 1, 5))}
    assert {r["dated_by"] for r in rows.values()} == {
        "no refresh date printed (or none that fits its year): as_of_date is the release's "
        "data-as-of date, not the day the figures run to"}


@pytest.mark.parametrize(("name", "table"), [
    ("published_transgender_detainees", STATS_TRANSGENDER),
    ("published_vulnerable_segregation", STATS_SEGREGATION_VULNERABLE),
    ("published_family_units", STATS_ATD_STATUS),
])
def test_a_workbook_table_no_release_printed_is_named_not_zero(tmp_path, name, table):
    tables = {k: v for k, v in stats_tables().items() if k != table}
    service = WarehouseService(_warehouse(tmp_path / "w.duckdb", tables).path)
    with pytest.raises(NotServable, match=f"reads {table}, which this warehouse does not have"):
        service.request(name)


# --- the 34 real workbooks -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_backend(stats_workbooks, tmp_path_factory):
    from iceledger.sources.stats.ingest import ingest_stats

    path = tmp_path_factory.mktemp("real-workbooks") / "w.duckdb"
    assert not ingest_stats(stats_workbooks, Warehouse(path)).failed
    return duckdb_backend(path)


def test_real_workbooks_give_what_ice_printed(real_backend):
    transgender = {r["date"]: r for r in
                   compute("published_transgender_detainees", real_backend).to_pylist()}
    # FY24_detentionStats06202024.xlsx, "Trans. Detainee Pop." A5:B8.
    june = transgender[date(2024, 6, 16)]
    assert (june["book_ins_fytd"], june["detained"], june["detained_with_final_order"],
            june["detained_without_final_order"]) == (182, 51, 17, 34)
    families = [r for r in compute("published_family_units", real_backend).to_pylist()
                if r["population"].startswith("book-ins") and r["fiscal_year"] == 2020]
    # FY20-detentionstats.xlsx prints FRC 1,830 of 182,869; the 2021-10-28 reprint swaps the rows.
    assert [(r["count"], r["of_all"], r["workbook"], r["reprints_differing"]) for r in families] \
        == [(1830, 182869, "FY20-detentionstats.xlsx", 1)]
    citizens = {(r["action"], r["data_fiscal_year"]): r for r in compute(
        "published_special_populations", real_backend,
        MetricParams(filters={"population": ("United States Citizens",)})).to_pylist()}
    # FY25_detentionStats09242025.xlsx prints 7; the FY2026 workbook's 0 is a placeholder.
    # Its Footnotes date the refresh: "FY2025 ICE Arrests data are updated through 04/22/2025"
    # (its detention data run to 2025-09-20). The FY2026 workbook prints no refresh date: its
    # FY2024 figure is dated by the release alone.
    arrests = citizens[("Arrests", 2025)]
    assert (arrests["people"], arrests["workbook"], arrests["as_of_date"]) == \
        (7, "FY25_detentionStats09242025.xlsx", date(2025, 4, 22))
    assert arrests["dated_by"].startswith("ICE's semiannual refresh")
    fy24 = citizens[("Arrests", 2024)]
    assert (fy24["workbook"], fy24["as_of_date"]) == ("FY26_detentionStats02022026.xlsx",
                                                      date(2026, 1, 22))
    assert fy24["dated_by"].startswith("no refresh date printed")
    deaths = {r["figure"]: r for r in
              compute("deaths_in_custody_published", real_backend).to_pylist()}
    assert (deaths["FY2025"]["deaths"], deaths["FY2025"]["months_published"]) == (23, 12)
    assert deaths["FY2024"]["deaths_per_100k_bed_days"] is None  # September 2024 unprinted
