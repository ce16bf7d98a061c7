"""A FOIA CSV's records that do not fit its header, and title rows above the header: a record
of another field count than the header's is quarantined with its record number while the rest
load; a header under an ICE sheet's title rows is found, and the rows keep the file's record
numbers. Hand-built files (SCRATCH test data, not real records) loaded through `ingest_foia`.
"""

from __future__ import annotations

import csv

import pytest
from test_foia_cells import ARRESTS, NAME, _text
from test_foia_ingest import arrest_row, layout, load, table

from iceledger.sources.foia import readers
from iceledger.sources.foia.inspect import inspect_file
from iceledger.sources.foia.layouts import catalog
from iceledger.tables import QUARANTINE

HEADERS = list(layout(ARRESTS).headers)
WIDTH = len(HEADERS)
PERSON = HEADERS.index("Anonymized Identifier")
COUNTY = HEADERS.index("County")


def cells(identifier: str, county: str = "FULTON") -> list[str]:
    row = [_text(arrest_row()[h]) for h in HEADERS]
    row[PERSON], row[COUNTY] = identifier, county
    return row


def line(row: list[str], delimiter: str = ",") -> str:
    return delimiter.join(f'"{c}"' for c in row)


def loaded_rows(warehouse) -> dict[str, int]:
    return {r["person_id"]: r["source_row"] for r in table(warehouse, "foia_arrests")}


def quarantined(warehouse) -> list[tuple[int, str]]:
    return [(r["row_number"], r["reason"]) for r in sorted(
        table(warehouse, QUARANTINE), key=lambda r: r["row_number"])]


def assert_adds_up(outcome) -> None:
    accounting = outcome.accounting
    assert accounting.rows_read == (accounting.rows_loaded + accounting.rows_quarantined
                                    + accounting.rows_duplicate), accounting


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_records_of_another_field_count_are_quarantined_and_the_rest_load(tmp_path, ending):
    # Record 3 is one field long, 6 one short, 10 a line cut off (no line end after it);
    # record 4 holds a quoted line end, 5 and 8 are empty lines.
    lines = [",".join(HEADERS), line(cells("A1")), line([*cells("A2"), "extra"]),
             line(cells("A3", "DOÑA\nANA")), "", line(cells("A4")[:-1]), line(cells("A5")), "",
             line(cells("A6")), line(cells("A7"))[:120]]
    path = tmp_path / f"{NAME}.csv"
    path.write_bytes(ending.join(lines).encode("utf-8"))
    warehouse, report = load(tmp_path, path)
    (outcome,) = report.files
    assert outcome.status == "loaded", outcome.error
    assert loaded_rows(warehouse) == {"A1": 2, "A3": 4, "A5": 7, "A6": 9}
    cut = len(next(csv.reader([lines[-1]])))
    assert quarantined(warehouse) == [
        (3, f"a record of {WIDTH + 1} fields where the header has {WIDTH}"),
        (6, f"a record of {WIDTH - 1} fields where the header has {WIDTH}"),
        (10, f"a record of {cut} fields where the header has {WIDTH}")]
    assert (outcome.accounting.rows_read, outcome.accounting.rows_quarantined) == (7, 3)
    assert_adds_up(outcome)
    assert outcome.first_quarantined.row_number == 3
    assert any("2 blank rows" in w for w in outcome.warnings), outcome.warnings


def test_a_cut_off_last_line_alone_is_quarantined(tmp_path):
    """No empty line, no quoted line end: the file's lines outnumber the records DuckDB read by
    the one it left out, which the line count alone must not take for a missing line end."""
    path = tmp_path / f"{NAME}.csv"
    path.write_text("\n".join([",".join(HEADERS), line(cells("A1")), line(cells("A2")),
                               line(cells("A3"))[:60]]), encoding="utf-8")
    warehouse, report = load(tmp_path, path)
    assert loaded_rows(warehouse) == {"A1": 2, "A2": 3}
    assert [row for row, _ in quarantined(warehouse)] == [4]
    assert_adds_up(report.files[0])


def test_a_line_of_spaces_is_a_record_of_one_field(tmp_path):
    path = tmp_path / f"{NAME}.csv"
    path.write_text("\n".join([",".join(HEADERS), line(cells("A1")), "   ", line(cells("A2")),
                               ""]), encoding="utf-8")
    warehouse, report = load(tmp_path, path)
    assert loaded_rows(warehouse) == {"A1": 2, "A2": 4}
    assert quarantined(warehouse) == [(3, f"a record of 1 field where the header has {WIDTH}")]
    assert_adds_up(report.files[0])


def test_a_last_line_cut_inside_a_quoted_value_is_quarantined(tmp_path):
    path = tmp_path / f"{NAME}.csv"
    path.write_text("\n".join([",".join(HEADERS), line(cells("A1")), line(cells("A2"))[:60]]),
                    encoding="utf-8")
    warehouse, report = load(tmp_path, path)
    assert loaded_rows(warehouse) == {"A1": 2}
    assert quarantined(warehouse) == [(3, "the file's last line, cut off inside a quoted value")]
    assert_adds_up(report.files[0])


@pytest.mark.parametrize("ragged_before", [False, True])
def test_a_quote_that_never_closes_still_fails_the_file(tmp_path, ragged_before):
    """The open quote holds the rest of the file: one quarantined record would hide the records
    in it, so the file is not loaded, and the error names the record where the quote opens."""
    first = line([*cells("A1"), "extra"]) if ragged_before else line(cells("A1"))
    # The last value's closing quote is missing; the records after it hold no quote to close it.
    unclosed = line(cells("A2"))[:-1]
    plain = ",".join(c.replace(",", ";") for c in cells("A3"))
    path = tmp_path / f"{NAME}.csv"
    path.write_text("\n".join([",".join(HEADERS), first, unclosed, plain, plain, ""]),
                    encoding="utf-8")
    warehouse, report = load(tmp_path, path)
    (outcome,) = report.files
    assert outcome.status == "error"
    assert f"{NAME}.csv, row 3: Expected {WIDTH} columns, got a quoted value that never closes" \
        in outcome.error
    assert "foia_arrests" not in warehouse.table_names()


def test_records_the_two_readers_count_differently_fail_the_file(tmp_path, monkeypatch):
    """A record DuckDB leaves out for another reason than its field count (here a line over
    its line size) would shift every number after it: the file fails, with DuckDB's reason."""
    monkeypatch.setattr(readers, "CSV_MAX_LINE_BYTES", 4096)
    path = tmp_path / f"{NAME}.csv"
    path.write_text("\n".join([",".join(HEADERS), line(cells("A1")),
                               line(cells("A2", "X" * 8000)), line(cells("A3")), ""]),
                    encoding="utf-8")
    warehouse, report = load(tmp_path, path)
    (outcome,) = report.files
    assert outcome.status == "error"
    assert outcome.error.startswith(f"{NAME}.csv, row 3: "), outcome.error
    assert "foia_arrests" not in warehouse.table_names()


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
def test_the_header_is_found_under_title_rows(tmp_path, padded):
    """An ICE sheet saved as CSV: its title rows (padded with delimiters to the sheet's width by
    Excel, or not) above the header; the rows keep the numbers a spreadsheet shows, and the
    title reaches the load (its SYNTHETIC marker, here)."""
    pad = "," * (WIDTH - 1) if padded else ""
    titles = ["SYNTHETIC test data - not real ICE records", "Arrests FY2024-FY2026", "",
              '"Data through 03/11/2026, all AORs"']
    lines = [title + pad for title in titles] + [
        ",".join(HEADERS), line(cells("A1")), "", line(cells("A2")), line([*cells("A3"), "x"]),
        line(cells("A4")), ""]
    path = tmp_path / f"{NAME}.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    plan = readers.CsvReader(path).plans()[0]
    assert plan.header_row == 5
    assert plan.title_text == ("SYNTHETIC test data - not real ICE records Arrests FY2024-FY2026 "
                               "Data through 03/11/2026, all AORs")
    (reading,) = inspect_file(path, catalog())
    assert (reading.kind, reading.header_row, len(reading.title)) == ("records", 5, 3)
    warehouse, report = load(tmp_path, path)
    (outcome,) = report.files
    assert outcome.status == "loaded", outcome.error
    assert outcome.synthetic
    assert loaded_rows(warehouse) == {"A1": 6, "A2": 8, "A4": 10}
    assert quarantined(warehouse) == [
        (9, f"a record of {WIDTH + 1} fields where the header has {WIDTH}")]
    assert_adds_up(outcome)


def test_a_tab_separated_file_under_title_rows(tmp_path):
    path = tmp_path / f"{NAME}.csv"
    path.write_text("\n".join(["Arrests FY2024-FY2026", "\t".join(HEADERS),
                               line(cells("A1"), "\t"), line(cells("A2"), "\t")]),
                    encoding="utf-8")
    warehouse, _ = load(tmp_path, path)
    assert loaded_rows(warehouse) == {"A1": 3, "A2": 4}


@pytest.mark.parametrize("endings", [("\r\n", "\r\n"), ("\r\n", "\r")], ids=["crlf", "mixed"])
def test_a_utf16_file_with_windows_line_ends_loads(tmp_path, endings):
    """Excel's "Unicode Text": UTF-16 with a byte-order mark, tabs, CR LF line ends (each CR a
    NUL byte away from its LF, which no test on the bytes may take for a lone CR); once also
    with a lone CR among them, which has the file rewritten as UTF-8 before DuckDB reads it."""
    first, other = endings
    lines = ["Arrests FY2024-FY2026", "\t".join(HEADERS), line(cells("A1"), "\t"),
             line(cells("A2"), "\t"), line(cells("A3"), "\t")]
    path = tmp_path / f"{NAME}.csv"
    path.write_bytes((first.join(lines[:3]) + other + first.join(lines[3:]) + first)
                     .encode("utf-16"))
    warehouse, report = load(tmp_path, path)
    (outcome,) = report.files
    assert outcome.status == "loaded", outcome.error
    assert loaded_rows(warehouse) == {"A1": 3, "A2": 4, "A3": 5}
    assert_adds_up(outcome)


def test_windows_line_ends_with_line_breaks_inside_cells_load(tmp_path):
    """Excel on Windows saves a sheet as CSV with CR LF between records and a bare LF where a
    cell holds a line break (a header wrapped on two lines, a landmark): DuckDB took the first
    line end, inside the header, for the file's and read no record; the file is rewritten
    record by record first, with the same cells and record numbers."""
    headers = [h.replace(" ", "\n", 1) for h in HEADERS]
    wrapped = cells("A2", county="FULTON\nCOUNTY")
    lines = [line(headers), line(cells("A1")), line(wrapped), line(cells("A3"))]
    path = tmp_path / f"{NAME}.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    warehouse, report = load(tmp_path, path)
    (outcome,) = report.files
    assert outcome.status == "loaded", outcome.error
    assert loaded_rows(warehouse) == {"A1": 2, "A2": 3, "A3": 4}
    counties = {r["person_id"]: r["apprehension_county"] for r in table(warehouse, "foia_arrests")}
    assert counties == {"A1": "FULTON", "A2": "FULTON\nCOUNTY", "A3": "FULTON"}
    assert_adds_up(outcome)
