"""SYNTHETIC detention-statistics workbooks drawn from a synthetic FOIA warehouse: the real
workbook parser reads them whole, they are labelled synthetic, and their figures are the FOIA
records' own (hand-checked against the FOIA metrics)."""

from __future__ import annotations

import shutil
from collections import defaultdict
from datetime import timedelta

import ibis
import pytest

from iceledger import metrics  # noqa: F401 - importing registers every metric
from iceledger import tables
from iceledger.metrics.registry import compute
from iceledger.sources.stats.ingest import ingest_stats
from iceledger.synth.workbooks import (
    ATD_STATUS,
    ICE_SHARE,
    SEGREGATION,
    SEMIANNUAL,
    TRANSGENDER,
    write_synthetic_workbooks,
)
from iceledger.warehouse import Warehouse


@pytest.fixture(scope="module")
def warehouse(synthetic_warehouse, tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic-workbooks")
    path = root / "w.duckdb"
    shutil.copy(synthetic_warehouse, path)
    paths = write_synthetic_workbooks(path, root / "workbooks")
    assert paths and all(p.name.startswith("SYNTHETIC_") for p in paths)
    summary = ingest_stats(paths, Warehouse(path))
    assert not summary.failed, [f.errors for f in summary.files]
    assert all(f.rows_quarantined == 0 for f in summary.files)
    return path


def test_workbooks_load_labelled_synthetic(warehouse):
    with Warehouse(warehouse).connect(read_only=True) as con:
        stats = con.execute(
            "SELECT count(*), bool_and(synthetic) FROM ingest_sources WHERE kind = 'stats'"
        ).fetchone()
    assert stats[0] >= 2 and stats[1] is True


def test_published_figures_are_the_foia_records_own(warehouse):
    backend = ibis.duckdb.connect(str(warehouse), read_only=True)
    book_ins = defaultdict(int)
    for row in compute("book_ins_per_day", backend).to_pylist():
        book_ins[row["date"].replace(day=1)] += row["book_ins"]
    published = compute("published_book_ins", backend).to_pylist()
    assert published
    # Whole months of the newest release: the total printed is the FOIA count of book-ins.
    whole = [r for r in published
             if r["month"] in book_ins and r["as_of_date"] >= r["month"].replace(day=28)]
    assert len(whole) >= 3
    for row in whole:
        assert row["book_ins"] == book_ins[row["month"]], row["month"]
    detained = compute("detained_criminality", backend).to_pylist()[-1]
    population = {r["date"]: r for r in compute("population_criminality", backend).to_pylist()}
    day = population[detained["date"]]
    assert detained["convicted"] == day["convicted"]
    assert detained["detained"] == day["population_midnight"] - day["criminality_unknown"]
    by_agency = compute("detained_criminality", backend, metrics.MetricParams(
        by=("agency",))).to_pylist()
    ice = next(r for r in by_agency if r["agency"] == "ICE" and r["date"] == detained["date"])
    assert ice["convicted"] == round(day["convicted"] * ICE_SHARE)
    backend.disconnect()


def test_published_book_outs_by_reason_are_the_stays_that_ended(warehouse):
    backend = ibis.duckdb.connect(str(warehouse), read_only=True)
    rows = compute("book_outs_by_reason", backend).to_pylist()
    both = [r for r in rows if r["published_book_outs"] is not None and r["foia_book_outs"]]
    assert len(both) >= 5
    assert all(r["published_book_outs"] == r["foia_book_outs"] for r in both)
    backend.disconnect()


def _table(warehouse, name: str) -> list[dict]:
    with Warehouse(warehouse).connect(read_only=True) as con:
        cursor = con.execute(f"SELECT * FROM {name}")
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _newest(rows: list[dict]) -> list[dict]:
    newest = max(r["snapshot_date"] for r in rows)
    return [r for r in rows if r["snapshot_date"] == newest]


def test_family_detention_tables_round_trip(warehouse):
    adp = _newest(_table(warehouse, tables.STATS_ADP_BY_FACILITY_TYPE))
    alos = _newest(_table(warehouse, tables.STATS_ALOS_BY_FACILITY_TYPE))
    assert {r["facility_type"] for r in adp} == {"Total", "FSC", "Adult"}
    by_month = defaultdict(dict)
    for r in adp:
        if r["adp"] is not None:  # the months after the snapshot are printed blank
            by_month[r["month"]][r["facility_type"]] = r["adp"]
    assert len(by_month) >= 3
    for month, parts in by_month.items():
        assert parts["Total"] == pytest.approx(parts["FSC"] + parts["Adult"]), month
    assert any(r["alos_days"] for r in alos if r["facility_type"] == "Total")
    backend = ibis.duckdb.connect(str(warehouse), read_only=True)
    # Whole months: the Total is the FOIA stints' mean midnight population over all facilities.
    held = defaultdict(int)
    for r in compute("detained_population_daily", backend,
                     metrics.MetricParams(by=("facility_code",))).to_pylist():
        held[r["date"]] += r["population_midnight"]
    days = defaultdict(list)
    for r in compute("population_criminality", backend).to_pylist():
        days[r["date"].replace(day=1)].append(held.get(r["date"], 0))
    snapshot = adp[0]["snapshot_date"]
    whole = [m for m in by_month if (m.replace(day=28) + timedelta(days=4)).replace(day=1)
             <= snapshot]
    assert len(whole) >= 3
    for month in whole:
        assert by_month[month]["Total"] == pytest.approx(sum(days[month]) / len(days[month]))
    rows = compute("published_family_detention", backend).to_pylist()
    backend.disconnect()
    assert rows and all(r["all_adp"] is not None for r in rows)


def test_family_unit_tables_round_trip(warehouse):
    book_ins = _newest(_table(warehouse, tables.STATS_BOOK_INS_BY_FACILITY_TYPE))
    total = {(r["facility_type"], r["criminality"]): r["book_ins"] for r in book_ins}
    assert total[("Total", "Total")] == total[("FSC", "Total")] + total[("Adult", "Total")] > 0
    removals = {r["category"]: r["removals"]
                for r in _newest(_table(warehouse, tables.STATS_REMOVALS))}
    assert set(removals) == {"Total", "Removals with a FAMU Identifier"}
    assert removals["Total"] >= removals["Removals with a FAMU Identifier"]
    atd = {r["status"]: r["participants"]
           for r in _newest(_table(warehouse, tables.STATS_ATD_STATUS))}
    assert atd == {label: count for label, count, _ in ATD_STATUS} | {
        "Total": sum(count for _, count, _ in ATD_STATUS)}
    backend = ibis.duckdb.connect(str(warehouse), read_only=True)
    rows = compute("published_family_units", backend).to_pylist()
    backend.disconnect()
    populations = {r["population"] for r in rows}
    assert {"book-ins into family facilities (FSC/FRC)",
            "removals with a family-unit (FAMU) identifier",
            "alternatives to detention: family units (FAMU)"} <= populations


def _rows(warehouse, metric: str) -> list[dict]:
    backend = ibis.duckdb.connect(str(warehouse), read_only=True)
    rows = compute(metric, backend).to_pylist()
    backend.disconnect()
    return rows


def test_transgender_table_round_trips(warehouse):
    printed = {r["category"]: r["people"]
               for r in _newest(_table(warehouse, tables.STATS_TRANSGENDER))}
    held = dict(TRANSGENDER[1:])
    assert printed["Currently Detained"] == sum(held.values())
    rows = _rows(warehouse, "published_transgender_detainees")
    newest = rows[-1]
    assert newest["book_ins_fytd"] == TRANSGENDER[0][1]
    assert newest["detained"] == sum(held.values())
    assert newest["detained_with_final_order"] == held["Currently Detained with Final Order"]


def test_vulnerable_segregation_table_round_trips(warehouse):
    printed = _table(warehouse, tables.STATS_SEGREGATION_VULNERABLE)
    quarters = {(r["data_fiscal_year"], r["quarter"]) for r in printed}
    assert len(quarters) >= 2
    rows = _rows(warehouse, "published_vulnerable_segregation")
    by_reason = {r["placement_reason"]: r["placements"] for r in rows
                 if (r["data_fiscal_year"], r["quarter"]) == max(quarters)}
    assert by_reason == {reason: n for reason, n, _, _ in SEGREGATION} | {
        "Total": sum(n for _, n, _, _ in SEGREGATION)}


def test_semiannual_tables_round_trip(warehouse):
    printed = _table(warehouse, tables.STATS_SEMIANNUAL)
    assert {(r["population"], r["action"]) for r in printed} == {
        (population, action) for population in
        ("United States Armed Forces", "United States Citizens", "Parents of USC")
        for action in ("Arrests", "Book-ins", "Removals")}
    rows = _rows(warehouse, "published_special_populations")
    expected = {(population.removesuffix(" Alien"), action.replace("Bookins", "Book-ins")): n
                for population, actions in SEMIANNUAL for action, n in actions}
    assert rows and all(r["people"] == expected[(r["population"], r["action"])] for r in rows)
