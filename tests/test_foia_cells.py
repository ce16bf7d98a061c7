"""How each cell of a FOIA release loads: typed, a redaction, unparsed, or an unreadable key date
that quarantines its row; exact duplicates; record numbers of CSV rows. Hand-built cases with
known answers (SCRATCH test data, not real records), loaded through the real `ingest_foia`.
"""

from __future__ import annotations

import csv
import time
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_foia_ingest import arrest_row, layout, load, table, write_xlsx

ARRESTS = "arrests-2026-03"
STINTS = "stints-2023-2026"
NAME = "SCRATCH_Arrests_FY23-FY26_20260311"

# (header, cell as written, canonical column, value loaded, `unparsed` entry or None). Each
# case is one row; its other cells are those of arrest_row().
CASES = [
    ("Apprehension Date", "2025-01-01 12:00:00", "apprehension_date",
     datetime(2025, 1, 1, 12), None),
    ("Apprehension Date", "2025-01-01T08:30", "apprehension_date",
     datetime(2025, 1, 1, 8, 30), None),
    ("Apprehension Date", "2025-01-01 12", "apprehension_date", datetime(2025, 1, 1, 12), None),
    # Kept to the second, rounded half up.
    ("Apprehension Date", "2025-01-01 12:00:00.5", "apprehension_date",
     datetime(2025, 1, 1, 12, 0, 1), None),
    ("Apprehension Date", "2025-01-01 12:00:01.25", "apprehension_date",
     datetime(2025, 1, 1, 12, 0, 1), None),
    ("Apprehension Date", "01/02/2025 09:05", "apprehension_date",
     datetime(2025, 1, 2, 9, 5), None),
    ("Apprehension Date", "1/2/2025 9:05", "apprehension_date", datetime(2025, 1, 2, 9, 5), None),
    ("Apprehension Date", "02-Jan-25", "apprehension_date", datetime(2025, 1, 2), None),
    # Excel serial numbers (1899-12-30 is day 0); with spaces around one, too.
    ("Apprehension Date", "45658.5", "apprehension_date", datetime(2025, 1, 1, 12), None),
    ("Apprehension Date", " 45658 ", "apprehension_date", datetime(2025, 1, 1), None),
    ("Final Order Date", "2024-02-01", "final_order_date", date(2024, 2, 1), None),
    ("Final Order Date", "2024-02-30", "final_order_date", None, "final_order_date=2024-02-30"),
    ("Final Order Date", "2024-01-01 24:00:00", "final_order_date", None,
     "final_order_date=2024-01-01 24:00:00"),
    # As Oracle and Excel write them to text: month names and AM/PM in any case, two-digit years
    # (never the year 24).
    ("Final Order Date", "01-FEB-24", "final_order_date", date(2024, 2, 1), None),
    ("Final Order Date", "2/1/24", "final_order_date", date(2024, 2, 1), None),
    ("Final Order Date", "31-FEB-24", "final_order_date", None, "final_order_date=31-FEB-24"),
    ("Final Order Date", "01-Feb-196", "final_order_date", None, "final_order_date=01-Feb-196"),
    ("Final Order Date", "2/1/4", "final_order_date", None, "final_order_date=2/1/4"),
    ("Apprehension Date", "6/3/25 9:30", "apprehension_date", datetime(2025, 6, 3, 9, 30), None),
    ("Apprehension Date", "6/3/2025 9:30:05 PM", "apprehension_date",
     datetime(2025, 6, 3, 21, 30, 5), None),
    ("Apprehension Date", "06/03/2025 12:05 am", "apprehension_date", datetime(2025, 6, 3, 0, 5),
     None),
    ("Apprehension Date", "03-Jun-2025", "apprehension_date", datetime(2025, 6, 3), None),
    # ISO text with a zone, as JSON and API exports write it: the clock as written.
    ("Apprehension Date", "2025-01-05T00:00:00Z", "apprehension_date", datetime(2025, 1, 5),
     None),
    ("Apprehension Date", "2025-01-05T09:30:00.000Z", "apprehension_date",
     datetime(2025, 1, 5, 9, 30), None),
    ("Apprehension Date", "2025-01-05 09:30:00-05:00", "apprehension_date",
     datetime(2025, 1, 5, 9, 30), None),
    ("Final Order Date", "2024-02-01T00:00:00+0000", "final_order_date", date(2024, 2, 1), None),
    ("Final Order Date", "2024-02-01Z", "final_order_date", None, "final_order_date=2024-02-01Z"),
    # Oracle's TIMESTAMP text, year first with slashes, Excel's long form, 8 digits.
    ("Apprehension Date", "05-JAN-25 09.30.00.000000 PM", "apprehension_date",
     datetime(2025, 1, 5, 21, 30), None),
    ("Apprehension Date", "2025/01/05 09:30:00", "apprehension_date",
     datetime(2025, 1, 5, 9, 30), None),
    ("Final Order Date", "2024/02/01", "final_order_date", date(2024, 2, 1), None),
    ("Final Order Date", "Feb 01, 2024", "final_order_date", date(2024, 2, 1), None),
    ("Final Order Date", "20240201", "final_order_date", date(2024, 2, 1), None),
    ("Final Order Date", "20240231", "final_order_date", None, "final_order_date=20240231"),
    ("Final Order Date", "6/3/2025 13:30 PM", "final_order_date", None,
     "final_order_date=6/3/2025 13:30 PM"),
    ("Final Order Date", "2024-02-01 ", "final_order_date", None,
     "final_order_date=2024-02-01 "),
    ("Birth Year", "1990", "birth_year", 1990, None),
    ("Birth Year", " 1990.0 ", "birth_year", 1990, None),
    ("Birth Year", "+1990", "birth_year", None, "birth_year=+1990"),
    ("Birth Year", "1,990", "birth_year", None, "birth_year=1,990"),
    ("Birth Year", "19.5", "birth_year", None, "birth_year=19.5"),
    ("Birth Year", "3000000000", "birth_year", None, "birth_year=3000000000"),
    ("Final Order Yes No", "Y", "final_order", True, None),
    ("Final Order Yes No", "No ", "final_order", False, None),
    ("Final Order Yes No", "\u00a0YES", "final_order", True, None),
    # Case and punctuation aside when the text as written is no value; other text stays unread.
    ("Final Order Yes No", "y", "final_order", True, None),
    ("Final Order Yes No", "Yeah", "final_order", None, "final_order=Yeah"),
    # A boolean column as databases and dataframes write it.
    ("Final Order Yes No", "1", "final_order", True, None),
    ("Final Order Yes No", "0", "final_order", False, None),
    ("Final Order Yes No", "True", "final_order", True, None),
    ("Final Order Yes No", "FALSE", "final_order", False, None),
    ("Final Order Yes No", "2", "final_order", None, "final_order=2"),
    ("Apprehension Criminality", "1-CONVICTED CRIMINAL", "criminality", "Convicted Criminal",
     None),
    ("Apprehension Criminality", "2 Pending Criminal Charges", "criminality",
     "Pending Criminal Charges", None),
    ("Apprehension Criminality", " Convicted Criminal ", "criminality", "Convicted Criminal",
     None),
    ("Apprehension Criminality", "Other", "criminality", None, "criminality=Other"),
    ("TOA Current Duty AOR", "St. Paul Area of Responsibility", "aor", "St Paul", None),
    ("TOA Current Duty AOR", "atl", "aor", "Atlanta", None),
    ("TOA Current Duty AOR", "Washington  DC", "aor", "Washington", None),
    ("TOA Current Duty AOR", "Atlantis", "aor", None, "aor=Atlantis"),
    # A country as ICE writes it, whatever the case, accents or spaces around it.
    ("Citizenship Country", "Mexico ", "citizenship_country", "MEXICO", None),
    ("Citizenship Country", " m\u00e9xico\u00a0", "citizenship_country", "MEXICO", None),
    ("Citizenship Country", "Dominican Republic", "citizenship_country", "DOMINICAN REPUBLIC",
     None),
    # Exemptions 6 and 7 alone are markers without parentheses (REDACTIONS); "B2" is a value.
    ("County", "B2", "apprehension_county", "B2", None),
    ("County", "", "apprehension_county", None, None),
    # An export's NULL holds nothing: neither a redaction nor unparsed; longer text is a value.
    ("County", "NULL", "apprehension_county", None, None),
    ("Birth Year", "NULL", "birth_year", None, None),
    ("Final Order Date", "NULL", "final_order_date", None, None),
    ("County", "NULL ISLAND", "apprehension_county", "NULL ISLAND", None),
    # No value of any column, text or typed (the key date too): Excel's error values (in any
    # case and spacing), a formula saved without its value, NUL characters.
    ("Gender", "#N/A", "gender", None, "gender=#N/A"),
    ("Gender", " #value! ", "gender", None, "gender= #value! "),
    ("Birth Year", "#DIV/0!", "birth_year", None, "birth_year=#DIV/0!"),
    ("Birth Year", "=1989+1", "birth_year", None, "birth_year==1989+1"),
    ("Apprehension Date", "#N/A", "apprehension_date", None, "apprehension_date=#N/A"),
    ("County", "FUL\x00TON", "apprehension_county", None, "apprehension_county=FUL\\x00TON"),
    ("County", "#1 COUNTY", "apprehension_county", "#1 COUNTY", None),
    # The word alone is a redaction; in a value it is the value's.
    ("County", "REDACTED COUNTY", "apprehension_county", "REDACTED COUNTY", None),
    ("Birth Year", "Unredacted", "birth_year", None, "birth_year=Unredacted"),
    # Words beside a marker say it is one; alone, or the word with another, they are values.
    ("County", "WITHHELD", "apprehension_county", "WITHHELD", None),
    ("County", "FOIA", "apprehension_county", "FOIA", None),
    ("County", "- REDACTED COUNTY -", "apprehension_county", "- REDACTED COUNTY -", None),
    ("County", "*B2*", "apprehension_county", "*B2*", None),
]
REDACTIONS = ["(b)(6)", "b(6), b(7)c", "(B)(6) and (b)(7)(C)", " (b)(6)\u00a0", "(b)(7)e)",
              "(b)(6),(b)(7)c)", "REDACTED", "[Redacted]", "(REDACTED)", "b6", "B7E",
              "REDACTED - b6", "Redacted (b)(6)", "FOIA Exemption (b)(7)(C)", "Withheld (b)(6)",
              "(b)(6) - Redacted", "*REDACTED*", "<REDACTED>", "-Redacted-", "REDACTED.",
              "\uff08b\uff09\uff086\uff09", '"b(6), b(7)C"']
KEY_NOT_DATES = ["not a date", "2025-02-30", "2025-01-01 24:00:00", "02-JUX-25", "0", "x"]


def _text(value) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def _write(path: Path, name: str, rows: list[dict]) -> Path:
    headers = layout(name).headers
    if path.suffix == ".xlsx":
        return write_xlsx(path, name, [rows])
    texts = [[_text(row.get(h)) for h in headers] for row in rows]
    if path.suffix == ".parquet":
        pq.write_table(pa.table({h: [t[i] or None for t in texts]
                                 for i, h in enumerate(headers)}), path)
    else:
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(headers)
            writer.writerows(texts)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_each_cell_loads_typed_or_unparsed_and_never_silently_null(tmp_path, suffix):
    # xlsxwriter writes text starting with "=" as a formula (with a value): that case is the
    # corpus's (tests/test_bad_input_corpus.py, a formula saved without its value).
    cases = [case for case in CASES if suffix != ".xlsx" or not case[1].startswith("=")]
    rows = [arrest_row(**{header: raw, "Anonymized Identifier": f"C{number}"})
            for number, (header, raw, *_) in enumerate(cases)]
    rows += [arrest_row(**{"County": raw, "Anonymized Identifier": f"R{number}"})
             for number, raw in enumerate(REDACTIONS)]
    warehouse, report = load(tmp_path, _write(tmp_path / f"{NAME}{suffix}", ARRESTS, rows))
    assert report.files[0].status == "loaded", report.files[0].error
    got = {r["person_id"]: r for r in table(warehouse, "foia_arrests")}
    for number, (header, raw, column, value, unparsed) in enumerate(cases):
        row = got[f"C{number}"]
        assert (row[column], row["unparsed"]) == (value, [unparsed] if unparsed else []), (
            header, raw)
        if raw == "NULL":
            assert column not in row["redacted"], header
    for number, raw in enumerate(REDACTIONS):
        row = got[f"R{number}"]
        assert row["apprehension_county"] is None and "apprehension_county" in row["redacted"]
    atl = next(number for number, case in enumerate(cases) if case[1] == "atl")
    assert got[f"C{atl}"]["aor_code"] == "ATL"


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_key_date_that_is_no_date_quarantines_its_row_naming_the_cell(tmp_path, suffix):
    rows = [arrest_row(**{"Apprehension Date": raw, "Anonymized Identifier": f"K{number}"})
            for number, raw in enumerate(KEY_NOT_DATES)]
    rows.append(arrest_row(**{"Apprehension Date": None, "Anonymized Identifier": "empty"}))
    warehouse, report = load(tmp_path, _write(tmp_path / f"{NAME}{suffix}", ARRESTS, rows))
    a = report.files[0].accounting
    assert (a.rows_read, a.rows_loaded, a.rows_quarantined) == (7, 1, 6)
    (loaded,) = table(warehouse, "foia_arrests")
    assert loaded["person_id"] == "empty" and loaded["apprehension_date"] is None
    first = 8 if suffix == ".xlsx" else 2  # under the title rows, or the CSV's header line
    quarantined = sorted(table(warehouse, "ingest_quarantine"), key=lambda q: q["row_number"])
    assert [q["row_number"] for q in quarantined] == list(range(first, first + 6))
    assert [q["reason"] for q in quarantined] == [
        f"Apprehension Date {raw!r} is not a date" for raw in KEY_NOT_DATES]
    assert quarantined[0]["cell"] == ("A8" if suffix == ".xlsx" else "Apprehension Date")


TOTALS_LABELS = ["Total", "GRAND TOTAL:", " Subtotal 2,000 ", "Totals"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".xlsx"])
def test_rows_of_totals_below_the_records_are_quarantined_as_such(tmp_path, suffix):
    blank = {header: None for header in layout(ARRESTS).headers}
    records = [arrest_row(**{"Anonymized Identifier": "P1"}),
               # Without a key date, but a record: the word is part of a value.
               arrest_row(**{"Apprehension Date": None, "County": "TOTAL WINE PARKING LOT",
                             "Anonymized Identifier": "P2"})]
    totals = [{**blank, "County": TOTALS_LABELS[0], "State": "2"},
              {**blank, "Anonymized Identifier": TOTALS_LABELS[1]},
              {**blank, "Apprehension Date": TOTALS_LABELS[2]},
              {**arrest_row(**{"Apprehension Date": None}), "Gender": TOTALS_LABELS[3]}]
    warehouse, report = load(tmp_path, _write(tmp_path / f"{NAME}{suffix}", ARRESTS,
                                              records + totals))
    a = report.files[0].accounting
    assert (a.rows_read, a.rows_loaded, a.rows_quarantined) == (6, 2, 4)
    assert sorted(r["person_id"] for r in table(warehouse, "foia_arrests")) == ["P1", "P2"]
    quarantined = sorted(table(warehouse, "ingest_quarantine"), key=lambda q: q["row_number"])
    assert [q["reason"] for q in quarantined] == [
        f"Apprehension Date holds no date and a cell reads {label!r}: a row of totals, not a "
        "record" for label in TOTALS_LABELS]


def test_declared_date_formats_come_before_the_catalogues(tmp_path):
    # Day first: the catalogue's %m/%d/%Y would read the first date as 6 March.
    layout_file = tmp_path / "day_first.toml"
    layout_file.write_text('date_formats = ["%d/%m/%Y"]\n')
    rows = [arrest_row(**{"Apprehension Date": text, "Anonymized Identifier": f"D{number}"})
            for number, text in enumerate(["3/6/2025", "25/12/2024", "12/25/2024"])]
    warehouse, _ = load(tmp_path, _write(tmp_path / f"{NAME}.csv", ARRESTS, rows),
                        layout=layout_file)
    got = {r["person_id"]: r["apprehension_date"] for r in table(warehouse, "foia_arrests")}
    # The catalogue's forms still read what the declared one cannot.
    assert got == {"D0": datetime(2025, 6, 3), "D1": datetime(2024, 12, 25),
                   "D2": datetime(2024, 12, 25)}


def test_a_declared_format_without_zeros_is_tried(tmp_path):
    # "%-d.%-m.%Y" (fields without their zeros, which strptime reads) has a shape of its own.
    layout_file = tmp_path / "unpadded.toml"
    layout_file.write_text('date_formats = ["%-d.%-m.%Y"]\n')
    rows = [arrest_row(**{"Apprehension Date": "3.6.2025", "Anonymized Identifier": "D0"})]
    warehouse, report = load(tmp_path, _write(tmp_path / f"{NAME}.csv", ARRESTS, rows),
                             layout=layout_file)
    assert report.files[0].accounting.rows_quarantined == 0
    (row,) = table(warehouse, "foia_arrests")
    assert row["apprehension_date"] == datetime(2025, 6, 3)


def test_a_birth_date_read_into_the_future_is_flagged(tmp_path):
    # Two-digit years 00-68 read as 2000-2068: a birth in 1955 written "01-JAN-55" reads 2055.
    rows = [arrest_row(**{"Birth Date": text, "Birth Year": None,
                          "Anonymized Identifier": f"B{number}"})
            for number, text in enumerate(["01-JAN-55", "01-JAN-85", "1990-05-01"])]
    warehouse, _ = load(tmp_path, _write(tmp_path / f"{NAME}.csv", ARRESTS, rows))
    got = {r["person_id"]: r["birth_date"] for r in table(warehouse, "foia_arrests")}
    assert got == {"B0": date(2055, 1, 1), "B1": date(1985, 1, 1), "B2": date(1990, 5, 1)}
    (check,) = [c for c in table(warehouse, "foia_checks") if c["check"] == "impossible_birth_years"]
    assert (check["failed_rows"], check["total_rows"], check["status"]) == (1, 3, "fail")


def test_one_production_loaded_twice_is_said(tmp_path):
    # The same 120 records as a CSV and as parquet; a third file with one record fewer is not
    # the same production.
    rows = [arrest_row(**{"Apprehension Date": datetime(2025, 1 + n % 5, 1 + n % 28),
                          "Anonymized Identifier": None}) for n in range(120)]
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    _, report = load(tmp_path, _write(first / f"{NAME}.csv", ARRESTS, rows),
                     _write(second / f"{NAME}.parquet", ARRESTS, rows),
                     _write(tmp_path / f"{NAME}.xlsx", ARRESTS, rows[1:]))
    alike = [note for note in report.derived.notes if "loaded twice" in note]
    assert alike == [f"{NAME}.csv and {NAME}.parquet hold the same number of foia_arrests rows "
                     "in every month of release 2026-03-11 (120 each): the same records loaded "
                     "twice? Both are loaded and counted (rebuild the warehouse without one of "
                     "them)"]


def test_a_row_of_nulls_is_blank_and_a_null_key_date_loads(tmp_path):
    headers = layout(ARRESTS).headers
    rows = [arrest_row(**{"Anonymized Identifier": "P1"}),
            {header: "NULL" for header in headers},
            arrest_row(**{"Apprehension Date": "NULL", "Anonymized Identifier": "P2"})]
    warehouse, report = load(tmp_path, _write(tmp_path / f"{NAME}.csv", ARRESTS, rows))
    a = report.files[0].accounting
    assert (a.rows_read, a.rows_loaded, a.rows_quarantined) == (2, 2, 0)
    got = {r["person_id"]: r["apprehension_date"] for r in table(warehouse, "foia_arrests")}
    assert got["P2"] is None and set(got) == {"P1", "P2"}


def test_bond_amounts_read_dollars_and_refuse_what_a_number_cannot_hold(tmp_path):
    base = {"Book In Date Time": "2025-01-01 08:00:00", "Anonymized Identifier": "P"}
    amounts = {"1500": 1500.0, "$1,000.50": 1000.5, " 3 ": 3.0, "1,5": 15.0, "-$3": -3.0,
               "1e3": 1000.0, "$-3": None, "1e400": None, "NaN": None, "inf": None}
    rows = [{**base, "Bond Posted Amount": raw, "Anonymized Identifier": f"bond {number}"}
            for number, raw in enumerate(amounts)]
    path = _write(tmp_path / "SCRATCH_Detention-Stints_FY23-FY26_20260311.csv", STINTS, rows)
    warehouse, _ = load(tmp_path, path)
    got = {r["person_id"]: r for r in table(warehouse, "foia_stints")}
    for number, (raw, value) in enumerate(amounts.items()):
        row = got[f"bond {number}"]
        assert row["bond_posted_amount"] == value, raw
        assert row["unparsed"] == ([] if value is not None else [f"bond_posted_amount={raw}"])


cells = st.sampled_from(["", "A", "B", "b(6), b(7)c"])


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.tuples(st.sampled_from(["2025-01-02", "2025-01-03", "x", ""]),
                                  cells, cells), max_size=25))
def test_a_record_is_an_exact_duplicate_when_an_earlier_one_has_the_same_cells_and_names_someone(
        tmp_path, records):
    folder = tmp_path / str(len(list(tmp_path.iterdir())))
    folder.mkdir()
    rows = [{"Apprehension Date": day, "County": county, "Anonymized Identifier": person}
            for day, county, person in records]
    path = _write(folder / f"{NAME}.csv", ARRESTS, rows)
    warehouse, report = load(folder, path, derive=False)
    a = report.files[0].accounting
    expected, seen = {}, set()
    for number, (day, county, person) in enumerate(records, start=2):
        if not (day or county or person) or day == "x":
            continue  # blank, or quarantined: not loaded
        cells_ = (day, county, person)
        expected[number] = cells_ in seen and person in ("A", "B")
        seen.add(cells_)
    loaded = {} if not expected else {r["source_row"]: r["is_exact_duplicate"]
                                      for r in table(warehouse, "foia_arrests")}
    assert loaded == expected
    assert a.rows_duplicate == sum(expected.values())
    assert a.rows_read == a.rows_loaded + a.rows_quarantined + a.rows_duplicate


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_csv_rows_are_numbered_by_record_around_empty_lines_and_quoted_line_ends(
        tmp_path, ending):
    headers = layout(ARRESTS).headers
    person = headers.index("Anonymized Identifier")
    county = headers.index("County")

    def line(identifier: str, place: str = "FULTON") -> str:
        cells = [_text(arrest_row()[h]) for h in headers]
        cells[person], cells[county] = identifier, place
        return ",".join(f'"{c}"' for c in cells)

    # Record 2 holds a line end inside a quoted value; records 3, 6 and 8 are empty lines.
    lines = [",".join(headers), line("A1", "DOÑA\nANA"), "", line("A2"), line("A3"), "",
             line("A4"), "", ""]
    path = tmp_path / f"{NAME}.csv"
    path.write_bytes(ending.join(lines).encode("utf-8"))
    warehouse, report = load(tmp_path, path)
    got = {r["person_id"]: (r["source_row"], r["apprehension_county"])
           for r in table(warehouse, "foia_arrests")}
    assert got == {"A1": (2, "DOÑA\nANA"), "A2": (4, "FULTON"), "A3": (5, "FULTON"),
                   "A4": (7, "FULTON")}
    assert any("3 blank rows" in w for w in report.files[0].warnings), report.files[0].warnings


def test_a_workbook_error_cell_is_unparsed_wherever_it_is(tmp_path):
    import xlsxwriter

    from test_foia_ingest import RELEASE_NAME

    headers = list(layout(ARRESTS).headers)
    book = xlsxwriter.Workbook(tmp_path / RELEASE_NAME)
    sheet = book.add_worksheet("Sheet1")
    sheet.write(0, 0, "SCRATCH test data - not real ICE records")
    sheet.write_row(6, 0, headers)
    for row, person in ((7, "E1"), (8, "E2"), (9, "E3")):
        sheet.write_row(row, 0, [_text(arrest_row(**{"Anonymized Identifier": person})[h])
                                 for h in headers])
    # Formulas whose cached results are Excel's error values (t="e" in the sheet's XML).
    sheet.write_formula(7, headers.index("Gender"), "=NA()", None, "#N/A")
    sheet.write_formula(8, headers.index("Birth Year"), "=1/0", None, "#DIV/0!")
    sheet.write_formula(9, 0, "=NA()", None, "#N/A")
    book.close()
    warehouse, report = load(tmp_path, tmp_path / RELEASE_NAME)
    got = {r["person_id"]: r for r in table(warehouse, "foia_arrests")}
    assert (got["E1"]["gender"], got["E1"]["unparsed"]) == (None, ["gender=#N/A"])
    assert (got["E2"]["birth_year"], got["E2"]["unparsed"]) == (None, ["birth_year=#DIV/0!"])
    assert (got["E3"]["apprehension_date"], got["E3"]["unparsed"]) == (
        None, ["apprehension_date=#N/A"])
    assert report.files[0].accounting.rows_quarantined == 0


@pytest.mark.parametrize("under_blank", [None, "stray"])
def test_a_blank_header_cell_between_named_ones_is_dropped_only_when_empty(tmp_path, under_blank):
    # A spacer column (a blank header cell inside the header) holds nothing: the rows load as
    # they would without it. A value under it belongs to no column: the file is refused,
    # naming the sheet and row, rather than the value dropped.
    headers = list(layout(ARRESTS).headers)
    headers.insert(2, "")
    rows = [arrest_row(**{"Anonymized Identifier": f"B{n}"}) | {"": under_blank}
            for n in range(3)]
    path = write_xlsx(tmp_path / f"{NAME}.xlsx", ARRESTS, [rows], headers=[headers])
    warehouse, report = load(tmp_path, path)
    (outcome,) = report.files
    if under_blank is None:
        assert outcome.status == "loaded", outcome.error
        got = sorted(table(warehouse, "foia_arrests"), key=lambda r: r["person_id"])
        assert [(r["person_id"], r["apprehension_county"], r["aor"]) for r in got] == [
            (f"B{n}", "FULTON", "Atlanta") for n in range(3)]
    else:
        assert outcome.status == "error"
        assert "sheet 'Sheet1'" in outcome.error and "row 8" in outcome.error
        assert "values under a blank header cell" in outcome.error


@pytest.mark.parametrize("zone", ["America/New_York", "+05:30", "-05:00", "UTC"])
def test_a_zoned_parquet_timestamp_loads_as_its_own_clock_wherever_the_load_runs(
        tmp_path, monkeypatch, zone):
    # Parquet keeps the instant and Arrow the zone; ICE's records are local times. The load
    # reads each as the clock in its own zone, not in the zone of the machine loading it.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    path = _write(tmp_path / f"{NAME}.parquet", ARRESTS, [arrest_row()])
    written = pq.read_table(path)
    clock = datetime(2025, 6, 3, 9, 30)
    zoned = pc.assume_timezone(pa.array([clock], pa.timestamp("us")), zone)
    pq.write_table(written.set_column(written.schema.get_field_index("Apprehension Date"),
                                      "Apprehension Date", zoned), path)
    try:
        warehouse, report = load(tmp_path, path)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert report.files[0].status == "loaded", report.files[0].error
    (row,) = table(warehouse, "foia_arrests")
    assert row["apprehension_date"] == clock


def test_countries_written_as_codes_are_a_failing_check_naming_the_first(tmp_path):
    """ICE names countries in words; a production writing codes (MX, MEX, 484) would count
    apart from ICE's MEXICO by country, and no table of ICE's names is shipped to translate."""
    rows = [arrest_row(**{"Citizenship Country": country, "Anonymized Identifier": f"P{n}"})
            for n, country in enumerate(["MEXICO", "MX", "mex", "484", "PERU"])]
    warehouse, report = load(tmp_path, _write(tmp_path / f"{NAME}.csv", ARRESTS, rows))
    (outcome,) = report.files
    assert outcome.status == "loaded", outcome.error
    check = next(c for c in outcome.checks if c["check"] == "country_codes")
    assert (check["status"], check["failed_rows"], check["total_rows"]) == ("fail", 3, 5)
    assert sorted(r["citizenship_country"] for r in table(warehouse, "foia_arrests")) == [
        "484", "MEX", "MEXICO", "MX", "PERU"]
