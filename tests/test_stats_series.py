"""The published series gives each month's latest figure and how releases revised it.

Warehouses here hold SYNTHETIC stats tables in the parser's shape: a few releases of book-ins whose
figures are revised between releases, loaded in an order unlike their publication order.
"""

from __future__ import annotations

import hashlib
from datetime import date
from itertools import pairwise
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.errors import IceledgerError
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.published_series import published_series
from iceledger.sources.stats.checks import (
    FAIL,
    PASS,
    WARN,
    CheckResult,
    results_table,
)
from iceledger.tables import STATS_CHECKS, STATS_RELEASE_CHECKS
from iceledger.warehouse import RowAccounting, SourceLoad, Warehouse

OCT, NOV, DEC = date(2024, 10, 1), date(2024, 11, 1), date(2024, 12, 1)


def _release_tables(workbook: str, file_date: date | None, as_of: date | None,
                    figures: dict[tuple[str, date], float]) -> dict[str, pa.Table]:
    """One synthetic release: {(agency, month): book-ins} plus its stats_workbooks row."""
    rows = [{"workbook": workbook, "fiscal_year": 2025, "month": month, "agency": agency,
             "book_ins": value, "sheet": "Detention FY25",
             "cell_range": f"{'JKL'[month.month % 3]}{20 + i}"}
            for i, ((agency, month), value) in enumerate(figures.items())]
    book_ins = pa.Table.from_pylist(rows, schema=pa.schema([
        ("workbook", pa.string()), ("fiscal_year", pa.int64()), ("month", pa.date32()),
        ("agency", pa.string()), ("book_ins", pa.float64()), ("sheet", pa.string()),
        ("cell_range", pa.string())]))
    workbooks = pa.table({"workbook": [workbook], "sha256": [_sha(workbook)],
                          "fiscal_year": [2025], "file_date": pa.array([file_date], pa.date32()),
                          "as_of_date": pa.array([as_of], pa.date32())})
    return {"stats_book_ins": book_ins, "stats_workbooks": workbooks}


def _sha(workbook: str) -> str:
    return hashlib.sha256(workbook.encode()).hexdigest()


def _load_release(warehouse: Warehouse, workbook: str, file_date: date | None, as_of: date | None,
                  figures: dict[tuple[str, date], float],
                  checks: tuple[CheckResult, ...] = ()) -> None:
    tables = _release_tables(workbook, file_date, as_of, figures)
    if checks:  # loaded with the workbook, as the ingest does
        tables[STATS_CHECKS] = results_table(checks)
    rows = tables["stats_book_ins"].num_rows
    warehouse.load(SourceLoad(
        path=Path(workbook), sha256=_sha(workbook), kind="stats", tables=tables,
        accounting=RowAccounting(rows_read=rows, rows_loaded=rows), synthetic=True))


@pytest.fixture
def warehouse(tmp_path) -> Path:
    wh = Warehouse(tmp_path / "w.duckdb")
    # Loaded newest first; names sort against publication order ("z" first, "a" last).
    _load_release(wh, "synthetic-a-march.xlsx", date(2025, 3, 14), date(2025, 3, 3),
                  {("ICE", OCT): 8612, ("ICE", NOV): 7580, ("ICE", DEC): 7890,
                   ("Total", OCT): 23620})
    _load_release(wh, "synthetic-z-january.xlsx", date(2025, 1, 3), date(2024, 12, 23),
                  {("ICE", OCT): 8609, ("ICE", NOV): 7570, ("ICE", DEC): 3100,
                   ("Total", OCT): 23613})
    _load_release(wh, "synthetic-m-february.xlsx", date(2025, 2, 14), date(2025, 2, 8),
                  {("ICE", OCT): 8609, ("ICE", NOV): 7581, ("ICE", DEC): 7884,
                   ("Total", OCT): 23616})
    return wh.path


def _rows(table: pa.Table) -> dict[tuple, dict]:
    return {(r["agency"], r["month"]): r for r in table.to_pylist()}


def test_latest_value_and_revision_summary_per_month(warehouse):
    spec, table = published_series(duckdb_backend(warehouse), "stats_book_ins")
    assert spec.value == "book_ins" and spec.dimensions == ("agency",)
    rows = _rows(table)
    october = rows[("ICE", OCT)]
    assert october["value"] == 8612 and october["workbook"] == "synthetic-a-march.xlsx"
    assert october["first_value"] == 8609
    assert october["first_workbook"] == "synthetic-z-january.xlsx"
    assert october["n_releases"] == 3 and october["n_revisions"] == 1
    assert october["max_abs_revision"] == 3 and october["change_since_first"] == 3
    assert october["sheet"] == "Detention FY25" and october["cell_range"] == "K20"
    assert october["failed_checks"] is None  # no checks loaded: nothing to mark
    december = rows[("ICE", DEC)]  # a partial month in January, filled in later
    assert december["n_revisions"] == 2 and december["max_abs_revision"] == 7884 - 3100
    assert rows[("Total", OCT)]["value"] == 23620
    assert [(r["agency"], r["month"]) for r in table.to_pylist()] == sorted(rows)


def test_every_version_in_publication_order(warehouse):
    _, table = published_series(duckdb_backend(warehouse), "stats_book_ins", all_versions=True)
    november = [r for r in table.to_pylist() if r["agency"] == "ICE" and r["month"] == NOV]
    assert [r["workbook"] for r in november] == [
        "synthetic-z-january.xlsx", "synthetic-m-february.xlsx", "synthetic-a-march.xlsx"]
    assert [r["release_number"] for r in november] == [1, 2, 3]
    assert [r["value"] for r in november] == [7570, 7581, 7580]
    assert [r["change"] for r in november] == [None, 11, -1]
    assert [r["is_revision"] for r in november] == [False, True, True]
    assert [r["is_latest"] for r in november] == [False, False, True]
    assert table.num_rows == 12


def _check(workbook: str, check: str, table: str, status: str) -> CheckResult:
    return CheckResult(workbook, check, table, status, detail="synthetic check result")


def test_a_value_from_a_release_whose_checks_failed_is_marked_with_them(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    january, february, march = ("synthetic-z-january.xlsx", "synthetic-m-february.xlsx",
                                "synthetic-a-march.xlsx")
    _load_release(wh, january, date(2025, 1, 3), date(2024, 12, 23), {("ICE", OCT): 8609},
                  checks=(_check(january, "data date plausible", "stats_workbooks", FAIL),))
    _load_release(wh, february, date(2025, 2, 14), date(2025, 2, 8), {("ICE", OCT): 8610},
                  checks=(_check(february, "ICE + CBP = Total", "stats_book_ins", PASS),))
    _load_release(wh, march, date(2025, 3, 14), date(2025, 3, 3),
                  {("ICE", OCT): 8612, ("ICE", NOV): 7580},
                  checks=(_check(march, "ICE + CBP = Total", "stats_book_ins", FAIL),
                          _check(march, "ICE + CBP = Total", "stats_book_ins", FAIL),
                          _check(march, "months add to fiscal-year total", "stats_book_ins", WARN),
                          _check(march, "criminality classes add to total", "stats_adp", FAIL)))
    wh.replace_table(STATS_RELEASE_CHECKS, results_table([
        _check(february, "ICE and CBP not transposed", "stats_book_ins", PASS),
        _check(march, "ICE and CBP not transposed", "stats_book_ins", FAIL)]))
    backend = duckdb_backend(wh.path)

    _, latest = published_series(backend, "stats_book_ins")
    # Failures for this table, within the workbook and against the release before, each named
    # once; a warning, a pass and another table's failure are not.
    assert {r["month"]: r["failed_checks"] for r in latest.to_pylist()} == {
        OCT: "ICE + CBP = Total; ICE and CBP not transposed",
        NOV: "ICE + CBP = Total; ICE and CBP not transposed"}

    _, history = published_series(backend, "stats_book_ins", all_versions=True)
    october = [r for r in history.to_pylist() if r["month"] == OCT]
    assert [(r["workbook"], r["failed_checks"]) for r in october] == [
        (january, "data date plausible"),  # a failure of the workbook as a whole counts too
        (february, None),
        (march, "ICE + CBP = Total; ICE and CBP not transposed")]

    runner = CliRunner()
    shown = runner.invoke(app, ["stats", "series", "stats_book_ins", "--warehouse", str(wh.path)])
    assert shown.exit_code == 0, shown.output
    table, _, summary = shown.output.partition("2 of 2 values come from a release whose checks")
    assert "failed" in table and summary  # the column (its heading wraps), then the summary
    listed = runner.invoke(app, ["stats", "series", "stats_book_ins", "--format", "csv",
                                 "--warehouse", str(wh.path)])
    assert pa_csv.read_csv(pa.py_buffer(listed.stdout_bytes)).column("failed_checks").to_pylist() \
        == ["ICE + CBP = Total; ICE and CBP not transposed"] * 2


def test_releases_without_a_file_date_are_ordered_by_their_data_date(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    _load_release(wh, "synthetic-FY20-late.xlsx", None, date(2020, 9, 30), {("ICE", OCT): 2})
    _load_release(wh, "synthetic-FY20-early.xlsx", None, date(2020, 3, 1), {("ICE", OCT): 1})
    _, table = published_series(duckdb_backend(wh.path), "stats_book_ins")
    assert table.to_pylist()[0]["value"] == 2


def test_a_later_capture_holding_older_data_is_a_stale_repost_never_the_latest(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    _load_release(wh, "synthetic-FY22_detentionStats08192022.xlsx", date(2022, 8, 19),
                  date(2022, 8, 14), {("ICE", OCT): 1})
    # Archived 2022-12-10, but its data end before the August release's: posted later, older.
    tables = _release_tables("20221210163906-synthetic-FY22-detentionStats.xlsx", None,
                             date(2022, 8, 10), {("ICE", OCT): 2})
    tables["stats_workbooks"] = tables["stats_workbooks"].append_column(
        "archive_date", pa.array([date(2022, 12, 10)]))
    wh.load(SourceLoad(path=Path("synthetic.xlsx"), sha256=_sha("archived"), kind="stats",
                       tables=tables, accounting=RowAccounting(rows_read=1, rows_loaded=1),
                       synthetic=True))
    # Ordered by their data, the August release is the latest even before any review.
    backend = duckdb_backend(wh.path)
    _, table = published_series(backend, "stats_book_ins")
    backend.disconnect()
    [october] = table.to_pylist()
    assert october["value"] == 1 and october["n_revisions"] == 1
    # Reviewed, the capture is a stale re-post: left out, it makes no revision either.
    from iceledger.sources.stats.checks import review_warehouse
    from iceledger.tables import STALE_REPOST_CHECK

    stale = [r for r in review_warehouse(wh).across.to_pylist() if r["check"] == STALE_REPOST_CHECK]
    assert [(r["workbook"], r["status"], r["fiscal_year"]) for r in stale] == [
        ("20221210163906-synthetic-FY22-detentionStats.xlsx", FAIL, 2025)]
    _, table = published_series(duckdb_backend(wh.path), "stats_book_ins")
    [october] = table.to_pylist()
    assert october["value"] == 1 and october["n_revisions"] == 0 and october["n_releases"] == 1


def test_a_workbook_reposted_under_the_same_name_gives_two_versions(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    for sha, as_of, value in (("a" * 64, date(2025, 1, 20), 100.0),
                              ("b" * 64, date(2025, 1, 27), 104.0)):
        tables = _release_tables("synthetic-FY25_detentionStats02032025.xlsx",
                                 date(2025, 2, 3), as_of, {("ICE", OCT): value})
        tables = {name: t.drop_columns([c for c in ("sha256",) if c in t.column_names])
                  .append_column("sha256", pa.array([sha] * t.num_rows))
                  for name, t in tables.items()}
        wh.load(SourceLoad(path=Path("synthetic.xlsx"), sha256=sha, kind="stats", tables=tables,
                           accounting=RowAccounting(rows_read=1, rows_loaded=1), synthetic=True))
    _, table = published_series(duckdb_backend(wh.path), "stats_book_ins", all_versions=True)
    assert [(r["sha256"][0], r["value"], r["is_latest"]) for r in table.to_pylist()] == [
        ("a", 100, False), ("b", 104, True)]


def test_only_monthly_tables_and_their_figures_are_accepted(warehouse):
    backend = duckdb_backend(warehouse)
    with pytest.raises(IceledgerError, match="tables with a month column: stats_book_ins"):
        published_series(backend, "stats_workbooks")
    with pytest.raises(IceledgerError, match="no numeric column 'adp'.*figures: book_ins"):
        published_series(backend, "stats_book_ins", value="adp")


def test_two_figures_for_one_month_in_one_release_is_an_error_not_a_guess(tmp_path):
    wh = Warehouse(tmp_path / "w.duckdb")
    _load_release(wh, "synthetic-a.xlsx", date(2025, 1, 3), date(2024, 12, 23),
                  {("ICE", OCT): 1, ("ICE ", OCT): 2})
    with wh.connect() as con:
        con.execute("UPDATE stats_book_ins SET agency = 'ICE'")
    with pytest.raises(IceledgerError, match="2 figures for one month in one release"):
        published_series(duckdb_backend(wh.path), "stats_book_ins")


@settings(max_examples=12, deadline=None)
@given(values=st.lists(st.integers(min_value=0, max_value=50).map(float), min_size=1, max_size=6))
def test_revision_summary_matches_the_sequence_of_releases(values):
    releases = [_release_tables(f"synthetic-{i}.xlsx", date(2025, 1, 1 + i),
                                date(2024, 12, 1 + i), {("ICE", OCT): value})
                for i, value in enumerate(values)]
    backend = ibis.duckdb.connect()  # in memory: the same expressions, without file I/O
    for name in ("stats_book_ins", "stats_workbooks"):
        backend.create_table(name, pa.concat_tables(r[name] for r in releases))
    _, table = published_series(backend, "stats_book_ins")
    [row] = table.to_pylist()
    changes = [b - a for a, b in pairwise(values)]
    assert row["value"] == values[-1] and row["first_value"] == values[0]
    assert row["n_releases"] == len(values)
    assert row["n_revisions"] == sum(1 for c in changes if c != 0)
    assert row["max_abs_revision"] == max((abs(c) for c in changes), default=0)


def test_cli_series_as_table_and_csv(warehouse, tmp_path):
    runner = CliRunner()
    shown = runner.invoke(app, ["stats", "series", "stats_book_ins", "--warehouse", str(warehouse)])
    assert shown.exit_code == 0, shown.output
    assert "8,612" in shown.output and "4,784" in shown.output

    out = tmp_path / "series.csv"
    written = runner.invoke(app, ["stats", "series", "stats_book_ins", "--format", "csv",
                                  "--versions", "--output", str(out),
                                  "--warehouse", str(warehouse)])
    assert written.exit_code == 0, written.output
    assert pa_csv.read_csv(out).num_rows == 12

    missing = runner.invoke(app, ["stats", "series", "stats_nothing",
                                  "--warehouse", str(warehouse)])
    assert missing.exit_code == 1 and "no monthly detention-statistics table" in missing.output
