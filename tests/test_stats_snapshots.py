"""Snapshots: each table dated in ICE's words, several years per workbook, releases in data order.

Every case is built from the real shared workbooks (copied with openpyxl into tmp_path, values
kept, one thing changed) and asserts keys, dates, order and that no figure is lost.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import STATS_WORKBOOKS
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.metrics.backends import duckdb_backend
from iceledger.metrics.published_series import published_series
from iceledger.sources.stats.checks import review_warehouse, run_checks
from iceledger.sources.stats.ingest import ingest_stats
from iceledger.sources.stats.parse import parse_workbook
from iceledger.metrics.registry import compute
from iceledger.tables import HIDDEN_UNDATED, STALE_REPOST_CHECK, STATS_UNRECOGNISED
from iceledger.warehouse import Warehouse

openpyxl = pytest.importorskip("openpyxl")

MARCH = "20220318014755-FY22_detentionStats03172022b.xlsx"  # FY22 data through 2022-03-12
APRIL = "20220428125157-FY22_detentionStats04282022.xlsx"  # FY22 data through 2022-04-23
FY20 = "FY20-detentionstats.xlsx"  # the final FY2020 workbook
FY25_LAST = "FY25_detentionStats09242025.xlsx"  # FY2025 data through 2025-09-20
FY26 = "FY26_detentionStats02022026.xlsx"  # FY2026 data through 2026-01-25 (IIDS 2026-01-22)


@pytest.fixture(scope="module")
def shared() -> Path:
    if not (STATS_WORKBOOKS / MARCH).exists():
        pytest.skip(f"real ICE workbooks not found under {STATS_WORKBOOKS} (set ICELEDGER_SHARED)")
    return STATS_WORKBOOKS


def _copy(source: Path, target: Path, change=None) -> Path:
    """A copy of a real workbook, its figures kept as values, with `change(book)` applied.

    The Header sheet's first cell is marked so that the copy's bytes (and sha256) are its own.
    """
    book = openpyxl.load_workbook(source, data_only=True)
    book["Header"]["A1"] = f"{book['Header']['A1'].value or ''} (test copy {target.name})"
    if change is not None:
        change(book)
    book.save(target)
    return target


def _copy_sheet(source: Path, sheet: str, book) -> None:
    """Every value of `sheet` of another workbook, as a new sheet of `book`."""
    other = openpyxl.load_workbook(source, data_only=True, read_only=True)
    target = book.create_sheet(sheet)
    for row in other[sheet].iter_rows():
        for cell in row:
            if cell.value is not None:
                target.cell(cell.row, cell.column, cell.value)


def _rows(parsed, table: str) -> list[dict]:
    return parsed.tables[table].to_pylist()


def test_each_table_is_dated_from_the_footnotes_caption_or_iids_line(shared):
    parsed = parse_workbook(shared / MARCH)
    dated = {table: {(r["snapshot_date"], r["as_of_source"]) for r in _rows(parsed, table)}
             for table in ("stats_book_ins", "stats_detained_now", "stats_iclos",
                           "stats_facilities", "stats_transgender", "stats_adp")}
    # Footnotes: "FY2022 ICE Detention data are updated through 03/12/2022", "... Currently in
    # ICE Detention Facilities data are a snapshot as of 03/13/2022", "ICE ICLOS and Detainees
    # Data are updated through 03/12/2022"; the facilities sheet's IIDS line says 3/7/2022; the
    # transgender caption "... as of 3/14/2022".
    assert dated["stats_book_ins"] == {(date(2022, 3, 12), "footnote")}
    assert dated["stats_adp"] == {(date(2022, 3, 12), "footnote")}
    assert dated["stats_detained_now"] == {(date(2022, 3, 13), "footnote")}
    assert dated["stats_iclos"] == {(date(2022, 3, 12), "footnote")}
    assert dated["stats_facilities"] == {(date(2022, 3, 7), "iids")}
    assert dated["stats_transgender"] == {(date(2022, 3, 14), "caption")}


def test_without_footnotes_the_iids_line_then_the_file_name_dates_a_table(shared, tmp_path):
    def drop_footnotes(book):
        del book["Footnotes"]

    copy = _copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx", drop_footnotes)
    parsed = parse_workbook(copy)
    assert {(r["snapshot_date"], r["as_of_source"]) for r in _rows(parsed, "stats_book_ins")} \
        == {(date(2022, 3, 7), "iids")}

    def drop_iids_lines(book):
        del book["Footnotes"]
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str) and "(IIDS)" in cell.value:
                        cell.value = None

    copy = _copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx", drop_iids_lines)
    parsed = parse_workbook(copy)
    assert {(r["snapshot_date"], r["as_of_source"]) for r in _rows(parsed, "stats_book_ins")} \
        == {(date(2022, 3, 17), "file_name")}


def _two_years(shared: Path, tmp_path: Path) -> Path:
    """The April FY22 workbook with FY2020's final detention sheet beside its own, and the
    FY2020 footnote line, as ICE has posted such workbooks."""
    def add_fy20(book):
        _copy_sheet(shared / FY20, "Detention EOFY2020", book)
        notes = book["Footnotes"]
        notes.cell(notes.max_row + 2, 2, "EOFY2020 ICE Detention data are historic and static. "
                   "Data are filtered through 9/30/2020 (IIDS v.1.34 run date 10/04/2020; EID "
                   "as of 10/02/2020).")

    return _copy(shared / APRIL, tmp_path / "FY22_detentionStats04282022.xlsx", add_fy20)


def test_two_years_in_one_workbook_are_two_snapshots_and_never_added(shared, tmp_path):
    combined = parse_workbook(_two_years(shared, tmp_path))
    alone = {name: parse_workbook(shared / name) for name in (APRIL, FY20)}
    assert not combined.errors
    # Zero lost figures: the combined workbook holds every figure of April's workbook and of
    # FY2020's detention sheet.
    assert combined.rows_loaded == alone[APRIL].rows_loaded + _detention_values(alone[FY20])
    # Keys: each row carries its sheet's fiscal year and that year's footnote date.
    detained = _rows(combined, "stats_detained_now")
    by_year = {}
    for row in detained:
        by_year.setdefault(row["fiscal_year"], set()).add((row["snapshot_date"],
                                                           row["as_of_source"]))
    assert by_year == {2022: {(date(2022, 4, 25), "footnote")},
                       2020: {(date(2020, 9, 30), "footnote")}}
    # Each year's figures are the ones its own workbook gives.
    def total(rows, year=None):
        return [r["detained"] for r in rows if r["agency"] == "Total"
                and r["criminality"] == "Total" and year in (None, r["fiscal_year"])]

    assert total(detained, 2020) == total(_rows(alone[FY20], "stats_detained_now"))
    assert total(detained, 2022) == total(_rows(alone[APRIL], "stats_detained_now"))
    # Checks run per snapshot: as many criminality checks as the two workbooks apart, all pass.
    checks = run_checks(combined).to_pylist()
    classes = [r for r in checks if r["table"] == "stats_detained_now"]
    apart = [r for name in alone for r in run_checks(alone[name]).to_pylist()
             if r["table"] == "stats_detained_now"]
    assert len(classes) == len(apart) and all(r["status"] == "pass" for r in classes)
    assert {r["fiscal_year"] for r in classes} == {2020, 2022}
    assert not [r for r in checks if r["status"] == "fail"
                and "outside" in r["detail"] and r["fiscal_year"] == 2022]


def _detention_values(parsed) -> int:
    """How many figures a parse loaded from its detention sheet (each is one output row)."""
    return sum(1 for table in parsed.tables.values() if "sheet" in table.column_names
               for sheet in table.column("sheet").to_pylist()
               if sheet.strip().startswith("Detention"))


def test_a_stale_repost_is_flagged_never_latest_never_a_revision(shared, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in (MARCH, APRIL):
        (folder / name).write_bytes((shared / name).read_bytes())
    # March's data re-posted in May under a newer name: posted after April, holding older data.
    stale = _copy(shared / MARCH, folder / "FY22_detentionStats05122022.xlsx")
    # April's data under a name dated before they were pulled: a misnamed file.
    misnamed = _copy(shared / APRIL, folder / "FY22_detentionStats01052022.xlsx")
    warehouse = Warehouse(tmp_path / "w.duckdb")
    summary = ingest_stats([folder], warehouse)
    assert not summary.failed and summary.count("loaded") == 4
    across = review_warehouse(warehouse).across.to_pylist()
    flagged = [(r["workbook"], r["status"], r["fiscal_year"], r["compared_with"])
               for r in across if r["check"] == STALE_REPOST_CHECK]
    assert flagged == [(stale.name, "fail", 2022, APRIL)]
    [name_check] = [r for r in across if r["check"] == "file-name date agrees with the data"]
    assert (name_check["workbook"], name_check["status"]) == (misnamed.name, "warn")
    backend = duckdb_backend(warehouse.path)
    _, versions = published_series(backend, "stats_book_ins", all_versions=True)
    _, latest = published_series(backend, "stats_book_ins")
    backend.disconnect()
    assert stale.name not in set(versions.column("workbook").to_pylist())
    march_total = [r for r in latest.to_pylist()
                   if r["agency"] == "Total" and r["month"] == date(2022, 3, 1)]
    assert [r["workbook"] in (APRIL, misnamed.name) for r in march_total] == [True]
    # Ordered by data: March's release first, then April's data (in either file).
    october = [r for r in versions.to_pylist()
               if r["agency"] == "Total" and r["month"] == date(2021, 10, 1)]
    assert [r["workbook"] for r in october][0] == MARCH
    assert [r["as_of_date"] for r in october] == [date(2022, 3, 12), date(2022, 4, 23),
                                                  date(2022, 4, 23)]


def _hidden_stale_fy25(shared: Path, iids_line: str | None = None):
    """FY2026's workbook with FY2025's detention sheet (from the last FY2025 release, one figure
    changed so that its versions tell apart) left hidden in it, as a stale copy would be. The
    FY2026 workbook's dates (2026-01-22..25) lie in FY2025's final-release grace, so before,
    its Footnotes dated the copy as FY2025's newest figures."""
    def add_stale(book):
        _copy_sheet(shared / FY25_LAST, "Detention FY25", book)
        stale = book["Detention FY25"]
        stale.sheet_state = "hidden"
        stale["B21"] = stale["B21"].value + 500  # convicted criminals detained now, ICE
        if iids_line is not None:
            stale["A200"] = iids_line
    return add_stale


def test_a_hidden_sheet_of_another_year_is_dated_only_by_its_own_words(shared, tmp_path):
    copy = _copy(shared / FY26, tmp_path / FY26, _hidden_stale_fy25(shared))
    parsed = parse_workbook(copy)
    assert not parsed.errors
    dated = {(r["fiscal_year"], r["snapshot_date"], r["as_of_source"])
             for r in _rows(parsed, "stats_detained_now")}
    assert dated == {(2026, date(2026, 1, 25), "footnote"), (2025, None, HIDDEN_UNDATED)}
    [said] = [w for w in parsed.warnings if "is hidden" in w]
    assert said.endswith("of another fiscal year, and nothing on it dates its tables: the "
                         "workbook's Footnotes and data-as-of line describe its visible sheets, "
                         "so these figures are kept as versions but never taken as the latest "
                         "published value")
    # Its own IIDS line dates it: a version of its year like any other.
    copy = _copy(shared / FY26, tmp_path / FY26, _hidden_stale_fy25(
        shared, "Data Source: ICE Integrated Decision Support (IIDS), 09/12/2025"))
    parsed = parse_workbook(copy)
    assert {(r["snapshot_date"], r["as_of_source"]) for r in _rows(parsed, "stats_book_ins")
            if r["fiscal_year"] == 2025} == {(date(2025, 9, 12), "iids")}
    assert [w for w in parsed.warnings if "is hidden" in w][0].endswith(
        "of another fiscal year, dated by its own words")


def test_an_undated_hidden_sheet_never_gives_a_latest_value(shared, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / FY25_LAST).write_bytes((shared / FY25_LAST).read_bytes())
    _copy(shared / FY26, folder / FY26, _hidden_stale_fy25(shared))
    warehouse = Warehouse(tmp_path / "w.duckdb")
    summary = ingest_stats([folder], warehouse)
    assert not summary.failed and summary.count("loaded") == 2
    backend = duckdb_backend(warehouse.path)
    _, latest = published_series(backend, "stats_book_ins")
    _, versions = published_series(backend, "stats_book_ins", all_versions=True)
    detained = compute("detained_criminality", backend).to_pylist()
    backend.disconnect()
    fy25 = [r for r in latest.to_pylist() if r["month"] < date(2025, 10, 1)]
    assert fy25 and {r["workbook"] for r in fy25} == {FY25_LAST}
    # The copy's figures stay visible as versions, outside the order, with the reason.
    stale = [r for r in versions.to_pylist() if r["workbook"] == FY26
             and r["month"] < date(2025, 10, 1)]
    assert len(stale) == len(fy25)
    assert {(r["is_latest"], r["is_revision"], r["release_number"], r["as_of_date"])
            for r in stale} == {(False, False, None, None)}
    assert {r["left_out"] for r in stale} == {
        "undated: a hidden sheet of another fiscal year that nothing on it dates; the "
        "workbook's own date would make it the latest value"}
    assert {r["left_out"] for r in versions.to_pylist() if r["workbook"] == FY25_LAST} == {None}
    # A one-day figure cannot be placed without a date: ICE's count of people held comes from
    # each workbook's visible sheet alone (the stale copy's 500 more convicted are nowhere).
    assert [(r["date"], r["workbook"], r["convicted"]) for r in detained] == [
        (date(2025, 9, 21), FY25_LAST, 17007), (date(2026, 1, 25), FY26, 18262)]
    # Nor is it compared with the releases of its year.
    across = review_warehouse(warehouse).across.to_pylist()
    assert not [r for r in across if r["fiscal_year"] == 2025
                and FY26 in (r["workbook"], r["compared_with"])
                and r["check"] != STALE_REPOST_CHECK]
    # The command says how many versions stand outside the order (run last: it keeps the
    # warehouse open).
    result = CliRunner().invoke(app, ["stats", "series", "stats_book_ins", "--versions",
                                      "--warehouse", str(warehouse.path)])
    assert result.exit_code == 0, result.output
    assert f"{len(stale)} version(s) stand outside the order, without a release number" in \
        " ".join(result.output.split())


def _semiannual_dates(parsed) -> set[tuple]:
    return {(r["snapshot_date"], r["as_of_source"])
            for table in ("stats_semiannual", "stats_tps_countries")
            for r in _rows(parsed, table)}


def _reworded_arrests_lines(new_text):
    """The Footnotes' semiannual "... ICE Arrests data are updated through ..." lines replaced."""
    def change(book):
        for row in book["Footnotes"].iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and "ICE Arrests data" in cell.value:
                    cell.value = new_text
    return change


def test_the_semiannual_tables_are_dated_by_their_refresh_not_the_release(shared, tmp_path):
    # The Semiannual sheet is refreshed twice a year, apart from the biweekly figures: the
    # release of 2025-09-24 (IIDS line 2025-09-15) says "FY2025 ICE Arrests data are updated
    # through 04/22/2025"; the FY2024 release of 2024-01-04 prints the end of FY2023's refresh,
    # a date before its own fiscal year ("EOFY2023 ICE Arrests data are updated through
    # 09/30/2023"). Before, both took the IIDS line's date.
    assert _semiannual_dates(parse_workbook(shared / FY25_LAST)) == \
        {(date(2025, 4, 22), "footnote")}
    january_2024 = "20240105184536-FY24_detentionStats01042024.xlsx"
    assert _semiannual_dates(parse_workbook(shared / january_2024)) == \
        {(date(2023, 9, 30), "footnote")}
    # A line whose date lies outside the year it names (FY2023 releases: "FY2023 ICE Arrests
    # data are updated through 03/31/2022") dates nothing: the release's IIDS line stands in.
    copy = _copy(shared / FY25_LAST, tmp_path / FY25_LAST, _reworded_arrests_lines(
        "FY2025 ICE Arrests data are updated through 03/31/2024 (IIDS Run Date 04/23/2025)."))
    assert _semiannual_dates(parse_workbook(copy)) == {(date(2025, 9, 15), "iids")}
    # A range of years and a bullet before the line read as the year that ends the range.
    copy = _copy(shared / FY25_LAST, tmp_path / FY25_LAST, _reworded_arrests_lines(
        "\u00b7\u00a0\u00a0 FY2018 - 2025 YTD ICE Arrests data are updated through 03/31/2025."))
    assert _semiannual_dates(parse_workbook(copy)) == {(date(2025, 3, 31), "footnote")}


def test_an_unknown_sheet_is_kept_figure_by_figure_with_a_warning(shared, tmp_path):
    def add_sheet(book):
        sheet = book.create_sheet("Widget Statistics FY22")
        sheet["A1"] = "ICE Widgets by Field Office and Month FY22"
        sheet["A3"], sheet["B3"], sheet["C3"] = "Field Office", "Oct", "Nov"
        for r, (office, oct_, nov) in enumerate((("Atlanta", 5, 7), ("Boston", 2, 0)), start=4):
            sheet.cell(r, 1, office)
            sheet.cell(r, 2, oct_)
            sheet.cell(r, 3, nov)

    parsed = parse_workbook(_copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                                  add_sheet))
    original = parse_workbook(shared / MARCH)
    assert not parsed.errors
    kept = [r for r in _rows(parsed, STATS_UNRECOGNISED) if r["sheet"] == "Widget Statistics FY22"]
    assert [(r["cell"], r["row_labels"], r["column_labels"], r["value"]) for r in kept] == [
        ("B4", "Atlanta", "Oct", 5.0), ("C4", "Atlanta", "Nov", 7.0),
        ("B5", "Boston", "Oct", 2.0), ("C5", "Boston", "Nov", 0.0)]
    assert {r["caption"] for r in kept} == {"ICE Widgets by Field Office and Month FY22"}
    assert {(r["fiscal_year"], r["snapshot_date"]) for r in kept} == {(2022, date(2022, 3, 7))}
    assert any("Widget Statistics FY22!B4:C5: 4 figure(s)" in w for w in parsed.warnings)
    assert parsed.rows_loaded == original.rows_loaded + 4
    # `stats checks` lists the block, so that a new kind of table is seen.
    [listed] = [r for r in run_checks(parsed).to_pylist()
                if r["check"] == "every figure in a known table"]
    assert (listed["status"], listed["location"]) == ("warn", "Widget Statistics FY22!B4 … C5")


def test_a_year_header_typed_with_a_separator_is_still_the_year(shared, tmp_path):
    def year_as_text(book):
        book[" ICLOS and Detainees"]["B4"] = "2,020"

    parsed = parse_workbook(_copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                                  year_as_text))
    original = parse_workbook(shared / MARCH)
    assert not parsed.errors
    keys = ("iclos_population", "month", "point", "iclos_days")
    assert [tuple(r[k] for k in keys) for r in _rows(parsed, "stats_iclos")] == \
        [tuple(r[k] for k in keys) for r in _rows(original, "stats_iclos")]


def test_an_atd_field_office_unknown_to_the_project_keeps_its_figures(shared, tmp_path):
    def new_office(book):
        book["ATD FY22 YTD"]["A19"] = "Springfield Sub-Office"  # was "Atlanta"

    parsed = parse_workbook(_copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                                  new_office))
    original = parse_workbook(shared / MARCH)
    assert len(parsed.quarantined) == len(original.quarantined) and not parsed.errors

    def office(rows, name):
        return [(r["technology"], r["participants"], r["alip_days"]) for r in rows
                if r["aor"] == name]

    assert office(_rows(parsed, "stats_atd_aor"), "Springfield Sub-Office") == \
        office(_rows(original, "stats_atd_aor"), "Atlanta") != []
    assert any("kept as printed: Springfield Sub-Office" in w for w in parsed.warnings)


def test_a_transgender_caption_without_its_date_is_still_read(shared, tmp_path):
    sheet_name = "Trans. Detainee Pop. FY22 YTD "

    def drop_date(book):
        sheet = book[sheet_name]
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and "Transgender" in cell.value:
                    cell.value = cell.value.split(":")[0]

    parsed = parse_workbook(_copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                                  drop_date))
    original = parse_workbook(shared / MARCH)
    keys = ("category", "people")
    assert [tuple(r[k] for k in keys) for r in _rows(parsed, "stats_transgender")] == \
        [tuple(r[k] for k in keys) for r in _rows(original, "stats_transgender")] != []
    # With no date in its caption (and no footnote for it) the IIDS line dates it.
    assert {r["as_of_source"] for r in _rows(parsed, "stats_transgender")} == {"iids"}


def test_a_caption_dated_a_day_no_calendar_has_is_said_not_dropped(shared, tmp_path):
    import re

    def impossible_date(book):
        for row in book["ATD FY22 YTD"].iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and "Active ATD Participants" in cell.value:
                    cell.value = re.sub(r"\d{1,2}/\d{1,2}/\d{2,4}", "2/30/2022", cell.value)

    parsed = parse_workbook(_copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                                  impossible_date))
    original = parse_workbook(shared / MARCH)
    assert {r["as_of_source"] for r in _rows(original, "stats_atd_aor")} == {"caption"}
    # The same figures, dated by the next source that speaks for them, and the command says so.
    assert [r["participants"] for r in _rows(parsed, "stats_atd_aor")] == \
        [r["participants"] for r in _rows(original, "stats_atd_aor")] != []
    assert "caption" not in {r["as_of_source"] for r in _rows(parsed, "stats_atd_aor")}
    [warning] = [w for w in parsed.warnings if "2/30/2022" in w]
    assert "a date no calendar has" in warning
    assert not [w for w in original.warnings if "no calendar" in w]


def test_formula_cells_saved_without_values_are_reported_not_lost_silently(shared, tmp_path):
    def formulas(book):
        book["Detention FY22"]["C11"] = "=1+1"
        book["Detention FY22"]["D11"] = "=C11*2"

    parsed = parse_workbook(_copy(shared / MARCH, tmp_path / "FY22_detentionStats03172022.xlsx",
                                  formulas))
    [error] = parsed.errors
    assert (error.location.sheet, error.location.cell) == ("Detention FY22", "C11")
    assert "2 formula cell(s) saved without their value" in str(error)
    assert parsed.rows_loaded > 0  # the rest of the workbook still loads


def test_every_table_exports_as_csv_and_parquet_lists_as_json(shared, tmp_path):
    import csv
    import json

    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from iceledger.cli import app

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / MARCH).write_bytes((shared / MARCH).read_bytes())
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_stats([folder], warehouse)
    review_warehouse(warehouse)
    runner = CliRunner()
    for table in warehouse.table_names():
        rows = warehouse.read_table(table).num_rows
        for fmt in ("csv", "parquet"):
            target = tmp_path / f"{table}.{fmt}"
            done = runner.invoke(app, ["export", table, "--format", fmt, "--output", str(target),
                                       "--warehouse", str(warehouse.path)])
            assert done.exit_code == 0, (table, fmt, done.output)
            written = pq.read_table(target).num_rows if fmt == "parquet" else \
                len(list(csv.DictReader(target.open(encoding="utf-8"))))
            assert written == rows, (table, fmt)
    [workbook] = list(csv.DictReader((tmp_path / "stats_workbooks.csv").open(encoding="utf-8")))
    assert any(t.startswith("stats_adp@Detention FY22!") for t in json.loads(
        workbook["tables_found"]))


def test_partial_month_book_ins_per_day_divide_by_the_footnote_days(shared, tmp_path):
    from iceledger.metrics.registry import MetricParams
    from iceledger.metrics.volume import book_ins_compared

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / MARCH).write_bytes((shared / MARCH).read_bytes())
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_stats([folder], warehouse)
    backend = duckdb_backend(warehouse.path)
    rows = book_ins_compared(backend, MetricParams()).to_pyarrow().to_pylist()
    backend.disconnect()
    [march] = [r for r in rows if r["month"] == date(2022, 3, 1)]
    # "FY2022 ICE Detention data are updated through 03/12/2022": the days before the 12th
    # (the metric's convention), not before the IIDS line's 3/7.
    assert march["workbook_partial_month"] and march["workbook_days"] == 11
    assert march["workbook_book_ins_per_day"] == pytest.approx(march["workbook_book_ins"] / 11)
