"""Productions in the workbook forms older ones come in (.ods and .xls, written by hand; .xlsb
goes through the same reader, WholeSheetReader, and calamine's same call, but nothing here
writes one): loaded as the same rows saved as .xlsx load, each row numbered as the sheet shows
it. And the real UW v. DHS production re-saved in both forms (skipped when shared is absent).

Fixtures are SCRATCH test data in the shape of the UW v. DHS production, not real records.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import python_calamine
import xlsxwriter
from handmade_workbooks import write_ods, write_xls
from test_foia_productions import ARREST_HEADERS, REAL, ingest, query, run_cli

from iceledger.tables import FOIA_ARRESTS, FOIA_CHECKS, FOIA_REMOVALS, FOIA_STINTS, QUARANTINE

SHEETS = (FOIA_ARRESTS, FOIA_STINTS, FOIA_REMOVALS)


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]], hidden=()) -> Path:
    """The same rows as write_ods and write_xls write them, as an .xlsx (dates in a date
    format)."""
    book = xlsxwriter.Workbook(path, {"constant_memory": True})
    day = book.add_format({"num_format": "mm/dd/yyyy hh:mm:ss"})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, datetime):
                    sheet.write_datetime(r, c, value, day)
                elif value not in (None, ""):
                    sheet.write(r, c, value)
        if name in hidden:
            sheet.hide()
    book.close()
    return path


def loaded_rows(db: Path) -> dict[str, list[tuple]]:
    """Every loaded table's rows in file order, without what names the file (its name, and its
    hash in record_id; loaded without the derived rebuild, whose identifiers carry it too):
    what two forms of one production must agree on."""
    tables = {name for (name,) in query(db, "SELECT table_name FROM duckdb_tables()")}
    return {table: query(db, f"SELECT * EXCLUDE (source_file, record_id) FROM {table} "
                              "ORDER BY source_sheet, source_row")
            for table in SHEETS if table in tables} | {
        QUARANTINE: query(db, f"SELECT sheet, row_number, cell, reason FROM {QUARANTINE} "
                              "ORDER BY sheet, row_number")}


def scratch_arrests() -> list[list[object]]:
    """A sheet whose values start at B3: blank rows and a title above the header at B6, then
    records (a date-time with a fraction of a second, a redaction, Excel's error text, a date
    written as text), a blank row, and a row of totals."""
    records = [
        [datetime(2019, 10, 1), "(b)(6),(b)(7)c)", "Male", "MEXICO", "(b)(7)e)", "JAIL",
         "CAP Local Incarceration", None],
        [datetime(2019, 10, 2, 13, 45, 30, 500_000), datetime(1980, 2, 29), "Female",
         "GUATEMALA", 12345, "", "Located", "#N/A"],
        [],
        ["10/03/2019", None, "Male", "HONDURAS", None, None, "Located", "DUI"],
        ["Total", None, 3],
    ]
    return [[], [], [None, "SCRATCH test data - FY2020 Arrests"], [], [],
            [None, *ARREST_HEADERS], *([None, *row] if row else [] for row in records)]


@pytest.mark.parametrize(("write", "suffix"), [(write_ods, ".ods"), (write_xls, ".xls")])
def test_a_production_in_an_older_form_loads_as_the_same_rows_saved_as_xlsx_do(
        tmp_path, write, suffix):
    sheets = {"Arrests": scratch_arrests(), "Sheet1": scratch_arrests()}
    older_form = write(tmp_path / f"arrests_20191101{suffix}", sheets, hidden={"Sheet1"})
    xlsx = write_xlsx(tmp_path / "arrests_20191101.xlsx", sheets, hidden={"Sheet1"})
    loads = {}
    for path in (older_form, xlsx):
        db = tmp_path / f"{path.suffix[1:]}.duckdb"
        outcome = ingest([path], db, derive=False).files[0]
        assert outcome.status == "loaded", outcome.error
        assert (outcome.accounting.rows_read, outcome.accounting.rows_loaded,
                outcome.accounting.quarantined_rows) == (4, 3, 1)
        assert (f"{path.name}, sheet 'Sheet1': hidden in the workbook, so not loaded; unhide "
                "it to load its rows") in outcome.warnings
        loads[path.suffix] = loaded_rows(db)
    # Numbered as the sheet shows them: the header is on row 6, a blank row 9, totals row 11.
    older = tmp_path / f"{suffix[1:]}.duckdb"
    assert query(older, "SELECT source_file, source_sheet, source_row FROM "
                 "foia_arrests ORDER BY source_row") == [
        (older_form.name, "Arrests", 7), (older_form.name, "Arrests", 8),
        (older_form.name, "Arrests", 10)]
    assert loads[suffix][QUARANTINE] == [
        ("Arrests", 11, "B11", "Arrest Date holds no date and a cell reads 'Total': a row of "
                               "totals, not a record")]
    assert query(older, "SELECT apprehension_date, birth_date, unparsed FROM foia_arrests "
                        "ORDER BY source_row") == [
        (datetime(2019, 10, 1), None, []),
        (datetime(2019, 10, 2, 13, 45, 31), datetime(1980, 2, 29).date(),
         ["most_serious_conviction=#N/A"]),
        (datetime(2019, 10, 3), None, [])]
    assert loads[suffix] == loads[".xlsx"]
    shown = " ".join(run_cli("inspect", str(older_form)).output.split())
    assert "sheet 'Sheet1': hidden in the workbook, so not loaded" in shown


def test_a_damaged_or_password_protected_workbook_is_one_line_naming_the_file(tmp_path):
    good = write_ods(tmp_path / "good.ods", {"Arrests": scratch_arrests()})
    damaged = tmp_path / "damaged.ods"
    damaged.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    protected = write_xls(tmp_path / "protected.xls", {"Arrests": scratch_arrests()},
                          protected=True)
    db = tmp_path / "w.duckdb"
    outcomes = ingest([damaged, protected, good], db, release="2019-11-01").files
    assert [o.status for o in outcomes] == ["error", "error", "loaded"]
    assert outcomes[0].error.startswith("damaged.ods: not a readable .ods workbook (an "
                                        "OpenDocument spreadsheet: ")
    assert outcomes[1].error == (
        "protected.xls: not a readable .xls workbook (an old Excel (97-2003) workbook: Workbook "
        "is password protected); open it in a spreadsheet program and save it without a "
        "password")
    assert all("\n" not in o.error for o in outcomes[:2])


def resaved(source: Path, target: Path, write) -> Path:
    """Every sheet of a workbook, its cells as calamine reads them (dates as dates), saved in
    another form by `write`."""
    book = python_calamine.CalamineWorkbook.from_path(str(source))
    try:
        sheets = {name: book.get_sheet_by_name(name).to_python(skip_empty_area=False)
                  for name in book.sheet_names}
    finally:
        book.close()
    return write(target, sheets)


@pytest.mark.parametrize(("write", "suffix"), [(write_ods, ".ods"), (write_xls, ".xls")])
def test_the_real_production_resaved_in_an_older_form_loads_the_same_rows(tmp_path, write,
                                                                           suffix):
    files = sorted(REAL.glob("*.xlsx")) if REAL.is_dir() else []
    if not files:
        pytest.skip(f"the real ICE FOIA production is not here ({REAL}); set ICELEDGER_SHARED")
    older_form = resaved(files[0], tmp_path / f"production{suffix}", write)
    loads, accounts = {}, {}
    for path in (files[0], older_form):
        db = tmp_path / f"{path.suffix[1:]}.duckdb"
        outcome = ingest([path], db, derive=False).files[0]
        assert outcome.status == "loaded", outcome.error
        accounts[path.suffix] = (outcome.release, outcome.accounting.rows_read,
                                 outcome.accounting.rows_loaded,
                                 outcome.accounting.quarantined_rows)
        loads[path.suffix] = loaded_rows(db) | {
            FOIA_CHECKS: query(db, "SELECT dataset, \"check\", status, failed_rows, total_rows "
                                   f"FROM {FOIA_CHECKS} ORDER BY ALL")}
    assert accounts[suffix] == accounts[".xlsx"]
    assert accounts[".xlsx"][1] == 96_273
    assert {t: len(rows) for t, rows in loads[suffix].items()} == {
        t: len(rows) for t, rows in loads[".xlsx"].items()}
    assert loads[suffix] == loads[".xlsx"]


def test_an_old_workbook_named_xlsx_is_told_to_take_its_own_name(tmp_path):
    misnamed = write_xls(tmp_path / "arrests_20191101.xlsx", {"Arrests": scratch_arrests()})
    outcome = ingest([misnamed], tmp_path / "w.duckdb", derive=False).files[0]
    assert outcome.status == "error"
    assert outcome.error.startswith("arrests_20191101.xlsx: not a readable xlsx workbook: an OLE "
                                    "compound file: an old Excel (97-2003) workbook (name it "
                                    ".xls) or a password-protected")
    renamed = misnamed.rename(tmp_path / "arrests_20191101.xls")
    assert ingest([renamed], tmp_path / "w.duckdb", derive=False).files[0].status == "loaded"
