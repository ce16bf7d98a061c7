"""`iceledger ingest foia`: raw layouts -> canonical rows, with every row accounted for.

Fixtures are written here with xlsxwriter in ICE's raw layouts (title rows, verbatim headers,
Excel datetimes, redaction strings), labelled SCRATCH: they are test data, not real records.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.sources.foia.ingest import ingest_foia
from iceledger.sources.foia.layouts import catalog, snake_case
from iceledger.warehouse import Warehouse

RELEASE_NAME = "2026-ICLI-00005_Arrests_FY23-FY26_20260311_Redacted.xlsx"
REDACTED = "b(6), b(7)c"


def layout(name: str):
    return next(x for x in catalog().layouts if x.name == name)


def arrest_row(**changes) -> dict:
    row = {
        "Apprehension Date": datetime(2025, 6, 3, 9, 30), "Apprehension Type": "Arrest",
        "State": "GEORGIA", "County": "FULTON",
        "TOA Current Duty AOR": "Atlanta Area of Responsibility",
        "Apprehension Final Program": "Fugitive Operations", "Arresting Agency": "ERO",
        "Apprehension Method": "Located", "Apprehension Criminality": "3 Other Immigration Violator",
        "Case Status": "ACTIVE", "Case Category": "[16] Reinstated Final Order",
        "Departure Country": None, "Final Order Yes No": "YES", "Birth Date": REDACTED,
        "Birth Year": 1990, "Citizenship Country": "MEXICO", "Gender": "Male",
        "Departed Date": None, "Final Order Date": date(2024, 2, 1),
        "Apprehension Site Landmark": REDACTED, "Operation": None, "TOA Current Duty Site": "ATL",
        "Case Criminality": "1 Convicted Criminal", "Case Threat Level": 2,
        "Anonymized Identifier": "A1",
    }
    row.update(changes)
    return row


def write_xlsx(path: Path, layout_name: str, sheets: list[list[dict]], *,
               title_rows: int | None = None, headers: list[list[str]] | None = None,
               title: str = "SCRATCH test data - not real ICE records") -> Path:
    """A workbook in a raw ICE layout: title rows, the verbatim header row, then data rows."""
    spec = layout(layout_name)
    title_rows = spec.title_rows if title_rows is None else title_rows
    book = xlsxwriter.Workbook(path)
    moment = book.add_format({"num_format": "mm/dd/yyyy hh:mm"})
    day = book.add_format({"num_format": "mm/dd/yyyy"})
    for number, rows in enumerate(sheets):
        sheet = book.add_worksheet(f"Sheet{number + 1}")
        header = headers[number] if headers else list(spec.headers)
        for r in range(title_rows):
            sheet.write(r, 0, title if r == 0 else f"note {r}")
        sheet.write_row(title_rows, 0, header)
        for r, row in enumerate(rows, start=title_rows + 1):
            for c, name in enumerate(header):
                value = row.get(name)
                if isinstance(value, datetime):
                    sheet.write_datetime(r, c, value, moment)
                elif isinstance(value, date):
                    sheet.write_datetime(r, c, datetime(value.year, value.month, value.day), day)
                elif value is not None:
                    sheet.write(r, c, value)
    book.close()
    return path


def load(tmp_path: Path, *files: Path, **options):
    warehouse = Warehouse(tmp_path / "w.duckdb")
    return warehouse, ingest_foia(list(files), warehouse, **options)


def table(warehouse: Warehouse, name: str) -> list[dict]:
    return warehouse.read_table(name).to_pylist()


def test_every_layout_is_recognised_by_its_own_header_and_its_snake_case_form():
    for spec in catalog().layouts:
        assert catalog().match(list(spec.headers)).layout == spec
        assert catalog().match([snake_case(h) for h in spec.headers]).layout == spec
        # Short of two headers it is no listed layout, but its vocabulary still reads it as the
        # same dataset, every column under the same canonical name.
        partial = catalog().match(list(spec.headers)[:-2])
        assert partial.by_vocabulary and partial.dataset == spec.dataset
        whole = catalog().match(list(spec.headers))
        for mine, listed in zip(partial.canonical, whole.canonical, strict=False):
            assert mine in (listed, f"extra:{spec.headers[whole.canonical.index(listed)]}")
    old = layout("stints-2012-2023")
    assert "Unique Identifier" in old.headers and "Anonymized Identifier" not in old.headers
    assert old.title_rows == 5


def test_march_2026_arrests_become_canonical_rows(tmp_path):
    rows = [arrest_row(),
            arrest_row(**{"Apprehension Method": "CAP Local Incarceration",
                          "Apprehension Criminality": REDACTED, "Anonymized Identifier": None,
                          "TOA Current Duty AOR": "St. Paul Area of Responsibility"}),
            arrest_row(**{"Apprehension Method": "ERO Reprocessed Arrest",
                          "Final Order Yes No": "NO", "Birth Year": "unknown"})]
    path = write_xlsx(tmp_path / RELEASE_NAME, "arrests-2026-03", [rows[:2], rows[2:]])
    warehouse, report = load(tmp_path, path)
    outcome = report.files[0]
    assert (outcome.status, outcome.layout, outcome.release) == ("loaded", "arrests-2026-03",
                                                                 "2026-03-11")
    got = sorted(table(warehouse, "foia_arrests"), key=lambda r: r["record_id"])
    first, second, third = got
    assert first["apprehension_date"] == datetime(2025, 6, 3, 9, 30)
    assert first["final_order_date"] == date(2024, 2, 1)
    assert (first["aor"], first["aor_code"]) == ("Atlanta", "ATL")
    assert (second["aor"], second["aor_code"]) == ("St Paul", "SPM")
    assert first["criminality"] == "Other Immigration Violator"
    assert first["case_criminality"] == "Convicted Criminal"
    assert (first["arrest_setting"], second["arrest_setting"], third["arrest_setting"]) == (
        "at-large", "custodial", "other")
    assert (first["final_order"], third["final_order"]) == (True, False)
    assert first["birth_year"] == 1990 and first["case_threat_level"] == 2
    assert first["birth_date"] is None and first["redacted"] == ["birth_date",
                                                                 "apprehension_site_landmark"]
    assert second["criminality"] is None and "criminality" in second["redacted"]
    assert second["person_id"] is None and first["person_id"] == "A1"
    assert third["birth_year"] is None and third["unparsed"] == ["birth_year=unknown"]
    assert first["apprehension_state"] == "GEORGIA" and first["operation"] is None
    assert first["apprehension_type"] == "Arrest"  # a column outside the codebook, kept
    # Provenance: sheet, spreadsheet row (6 title rows + header: data starts on row 8).
    assert [(r["source_sheet"], r["source_row"]) for r in got] == [
        ("Sheet1", 8), ("Sheet1", 9), ("Sheet2", 8)]
    assert first["record_id"] == f"{outcome.sha256[:12]}:0:8"
    assert third["record_id"].endswith(":1:8")
    assert {r["release"] for r in got} == {"2026-03-11"}
    source = warehouse.sources()[0]
    assert (source["rows_read"], source["rows_loaded"], source["synthetic"]) == (3, 3, False)


@pytest.mark.parametrize("title_rows", [0, 5, 9])
def test_the_header_row_is_found_by_its_contents_not_its_position(tmp_path, title_rows):
    row = {"Stay Book In Date Time": datetime(2024, 1, 1, 8), "Book In Date Time":
           datetime(2024, 1, 1, 8), "Detention Facility Code": "STWRTGA",
           "Unique Identifier": "P1", "Book In AOR": "Atlanta Area of Responsibility",
           "Book In Criminality": "2 Pending Criminal Charges"}
    path = write_xlsx(tmp_path / "Detention-Stints_FY12-FY23_20231101.xlsx", "stints-2012-2023",
                      [[row]], title_rows=title_rows)
    warehouse, report = load(tmp_path, path)
    assert report.files[0].layout == "stints-2012-2023"
    (got,) = table(warehouse, "foia_stints")
    assert got["source_row"] == title_rows + 2
    assert (got["person_id"], got["facility_code"], got["criminality"]) == (
        "P1", "STWRTGA", "Pending Criminal Charges")


def test_july_2025_arrests_map_onto_the_same_columns(tmp_path):
    row = {"Apprehension Date": datetime(2025, 5, 1, 10), "Apprehension State": "TEXAS",
           "Apprehension AOR": "Houston Area of Responsibility", "Final Program": "ERO",
           "Apprehension Method": "Worksite Enforcement", "Unique Identifier": "U7",
           "Apprehension Criminality": "2 Pending Criminal Charges", "Alien File Number": REDACTED}
    path = write_xlsx(tmp_path / "2025-ICLI-00041_Arrests_FY24-FY25_20250728.xlsx",
                      "arrests-2025-07", [[row]])
    warehouse, report = load(tmp_path, path)
    (got,) = table(warehouse, "foia_arrests")
    assert report.files[0].layout == "arrests-2025-07"
    assert (got["apprehension_state"], got["aor_code"], got["person_id"], got["final_program"],
            got["arrest_setting"]) == ("TEXAS", "HOU", "U7", "ERO", "at-large")
    assert got["alien_file_number"] is None and got["redacted"] == ["alien_file_number"]


def test_unusable_rows_are_quarantined_blank_rows_counted_and_duplicates_flagged(tmp_path):
    good = arrest_row()
    rows = [good, arrest_row(**{"Apprehension Date": "not a date"}),
            arrest_row(**{"Apprehension Date": None}), good,
            arrest_row(**{"Apprehension Date": REDACTED})]
    with_blank_row = [arrest_row(**{"Anonymized Identifier": "Z"}), {}, good]
    path = write_xlsx(tmp_path / RELEASE_NAME, "arrests-2026-03", [rows, with_blank_row])
    warehouse, report = load(tmp_path, path)
    a = report.files[0].accounting
    assert (a.rows_read, a.rows_loaded, a.rows_quarantined, a.rows_duplicate) == (7, 4, 1, 2)
    got = table(warehouse, "foia_arrests")
    assert len(got) == a.rows_loaded + a.rows_duplicate
    flags = {(r["source_sheet"], r["source_row"]): r["is_exact_duplicate"] for r in got}
    assert flags == {("Sheet1", 8): False, ("Sheet1", 10): False, ("Sheet1", 11): True,
                     ("Sheet1", 12): False, ("Sheet2", 8): False, ("Sheet2", 10): True}
    (quarantined,) = table(warehouse, "ingest_quarantine")
    assert (quarantined["sheet"], quarantined["row_number"], quarantined["cell"]) == (
        "Sheet1", 9, "A9")
    assert "'not a date' is not a date" in quarantined["reason"]
    assert any("1 blank rows" in w for w in report.files[0].warnings)
    source = warehouse.sources()[0]
    assert (source["rows_read"], source["rows_quarantined"], source["rows_duplicate"]) == (7, 1, 2)


def test_checks_count_failures_and_are_stored(tmp_path):
    stint = {"Stay Book In Date Time": datetime(2025, 1, 1, 8),
             "Book In Date Time": datetime(2025, 1, 1, 8),
             "Book Out Date Time": datetime(2025, 1, 3, 8), "Detention Facility Code": "STWRTGA",
             "Book In AOR": "Atlanta Area of Responsibility", "Anonymized Identifier": "P1",
             "Birth Year": 1980}
    rows = [stint,
            {**stint, "Book Out Date Time": datetime(2024, 12, 31), "Anonymized Identifier": "P2"},
            {**stint, "Birth Year": 1850, "Detention Facility Code": "NOWHERE",
             "Anonymized Identifier": None},
            {**stint, "Book In Date Time": datetime(2026, 5, 1), "Book In AOR": "Atlantis",
             "Book Out Date Time": None, "Anonymized Identifier": "P4"}]
    path = write_xlsx(tmp_path / "Detention-Stints_FY23-FY26_20260311.xlsx", "stints-2023-2026",
                      [rows])
    warehouse, report = load(tmp_path, path)
    checks = {c["check"]: c for c in table(warehouse, "foia_checks")}
    expect = {"book_out_before_book_in": (1, 3, "sheet 'Sheet1' row 9"),  # 3 have a book-out
              "impossible_birth_years": (1, 4, "sheet 'Sheet1' row 10"),
              "unknown_facility_codes": (1, 4, "sheet 'Sheet1' row 10"),
              "identifier_gaps": (1, 4, "sheet 'Sheet1' row 10"),
              "dates_outside_release_window": (1, 4, "sheet 'Sheet1' row 11"),
              "unknown_aors": (1, 4, "sheet 'Sheet1' row 11")}
    for name, (failed, total, example) in expect.items():
        got = checks[name]
        assert (got["failed_rows"], got["total_rows"], got["example"]) == (failed, total, example)
        assert got["status"] in ("warn", "fail")
    assert checks["unreadable_values"]["failed_rows"] == 1  # the unknown AOR text, kept verbatim
    assert report.files[0].accounting.rows_loaded == 4  # checks never drop rows


def test_facility_codes_seen_in_the_release_or_a_user_reference_are_known(tmp_path):
    stint = {"Book In Date Time": datetime(2025, 1, 1), "Detention Facility Code": "NEWCODE",
             "Anonymized Identifier": "P1"}
    detainer = {"Detainer Prepare Date": datetime(2025, 1, 2), "Detainer Facility Code": "NEWCODE",
                "Anonymized Identifier": "P1"}
    reference = tmp_path / "reference.tsv"
    reference.write_text("detention_facility_code\tname\nOTHERCODE\tX\n")
    stints = write_xlsx(tmp_path / "Detention-Stints_FY23-FY26_20260311.xlsx",
                        "stints-2023-2026", [[stint, {**stint, "Detention Facility Code":
                                                      "OTHERCODE"}]])
    detainers = write_xlsx(tmp_path / "Detainers_FY23-FY26_20260311.xlsx", "detainers-2023-2026",
                           [[detainer]])
    warehouse, report = load(tmp_path, stints, detainers, facility_references=[reference])
    unknown = {c["dataset"]: c["failed_rows"] for c in table(warehouse, "foia_checks")
               if c["check"] == "unknown_facility_codes"}
    assert unknown == {"stints": 1, "detainers": 0}


def test_csv_and_parquet_releases_load_like_the_workbook(tmp_path):
    spec = layout("arrests-2026-03")
    rows = [arrest_row(County="DOÑA ANA"),
            arrest_row(**{"Anonymized Identifier": "A2", "Birth Year": 1975})]

    def text(value):
        if isinstance(value, datetime):
            return value.strftime("%Y-%m-%d %H:%M:%S")
        return "" if value is None else str(value)

    for delimiter, suffix, encoding in ((",", "csv", "utf-8"), ("\t", "tsv", "utf-8-sig"),
                                        (";", "csv", "cp1252")):
        path = tmp_path / f"{delimiter == ';'}_Arrests_FY23-FY26_20260311.{suffix}"
        with open(path, "w", newline="", encoding=encoding) as handle:
            writer = csv.writer(handle, delimiter=delimiter)
            writer.writerow(spec.headers)
            writer.writerows([[text(r[h]) for h in spec.headers] for r in rows])
    # The Deportation Data Project's processed files: snake_case names, typed columns.
    processed = {snake_case(h): [r[h] for r in rows] for h in spec.headers}
    pq.write_table(pa.table(processed), tmp_path / "arrests_FY23-FY26_20260311.parquet")
    files = sorted(p for p in tmp_path.iterdir() if p.suffix in (".csv", ".tsv", ".parquet"))
    warehouse, report = load(tmp_path, *files)
    assert [f.status for f in report.files] == ["loaded"] * 4, [f.error for f in report.files]
    got = table(warehouse, "foia_arrests")
    assert len(got) == 8
    for r in got:
        assert r["apprehension_date"] == datetime(2025, 6, 3, 9, 30)
        assert (r["aor_code"], r["criminality"], r["final_order"]) == (
            "ATL", "Other Immigration Violator", True)
    assert {r["source_row"] for r in got} == {1, 2, 3}  # CSV records count the header as 1
    assert {r["apprehension_county"] for r in got} == {"DOÑA ANA", "FULTON"}
    assert any("Windows-1252" in w for f in report.files for w in f.warnings)



def test_an_empty_csv_line_is_a_counted_blank_row_and_later_rows_keep_their_line(tmp_path):
    spec = layout("arrests-2026-03")
    lines = [",".join(spec.headers)]
    for identifier in ("A1", "A2"):
        row = arrest_row(**{"Anonymized Identifier": identifier})
        row["Apprehension Date"] = row["Apprehension Date"].strftime("%Y-%m-%d %H:%M:%S")
        lines += [",".join("" if row[h] is None else f'"{row[h]}"' for h in spec.headers), ""]
    path = tmp_path / "Arrests_FY23-FY26_20260311.csv"
    path.write_text("\n".join(lines) + "\n")
    warehouse, report = load(tmp_path, path)
    a = report.files[0].accounting
    assert (a.rows_read, a.rows_loaded) == (2, 2)
    got = {r["person_id"]: r["source_row"] for r in table(warehouse, "foia_arrests")}
    assert got == {"A1": 2, "A2": 4}
    assert any("2 blank rows" in w for w in report.files[0].warnings)

    broken = tmp_path / "Broken_Arrests_FY23-FY26_20260311.csv"
    broken.write_text("\n".join([*lines[:3], lines[3] + ",extra"]) + "\n")
    _, report = load(tmp_path, broken)
    # The record one field long is quarantined; the one before it loads.
    (outcome,) = report.files
    a = outcome.accounting
    assert (a.rows_read, a.rows_loaded, a.rows_quarantined) == (2, 1, 1)
    assert (outcome.first_quarantined.row_number, outcome.first_quarantined.reason) == (
        4, f"a record of {len(spec.headers) + 1} fields where the header has "
        f"{len(spec.headers)}")

def test_no_derive_loads_only_and_derive_builds_the_derived_tables_later(tmp_path):
    path = write_xlsx(tmp_path / RELEASE_NAME, "arrests-2026-03", [[arrest_row()]])
    db = tmp_path / "w.duckdb"
    runner = CliRunner()
    loaded = runner.invoke(app, ["ingest", "foia", str(path), "--no-derive", "--warehouse", str(db)])
    assert loaded.exit_code == 0, loaded.output
    assert "derived" not in loaded.output
    assert "foia_releases" not in Warehouse(db).table_names()
    derived = runner.invoke(app, ["derive", "--warehouse", str(db)])
    assert derived.exit_code == 0, derived.output
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM foia_releases").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM foia_arrests WHERE episode_id IS NOT NULL"
                           ).fetchone() == (1,)


def test_reingesting_the_same_bytes_is_a_no_op_and_the_cli_reports_it(tmp_path):
    path = write_xlsx(tmp_path / RELEASE_NAME, "arrests-2026-03", [[arrest_row()]])
    db = tmp_path / "w.duckdb"
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", "foia", str(path), "--warehouse", str(db)])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["ingest", "foia", str(tmp_path), "--warehouse", str(db)])
    assert again.exit_code == 0 and "already loaded" in again.output
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM foia_arrests").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM ingest_sources").fetchone() == (1,)
        # Derived tables were rebuilt after the load.
        assert con.execute("SELECT count(*) FROM foia_releases").fetchone() == (1,)


def test_a_file_without_a_release_date_takes_its_latest_key_date_and_says_so(tmp_path):
    rows = [arrest_row(), arrest_row(**{"Apprehension Date": datetime(2025, 9, 30, 23, 59)})]
    path = write_xlsx(tmp_path / "arrests.xlsx", "arrests-2026-03", [rows])
    warehouse, report = load(tmp_path, path)
    outcome = report.files[0]
    assert outcome.release == "2025-09-30"
    assert any("no release date" in w for w in outcome.warnings)
    assert {r["release"] for r in table(warehouse, "foia_arrests")} == {"2025-09-30"}
    other = write_xlsx(tmp_path / "again.xlsx", "arrests-2026-03", [[arrest_row(Gender="X")]])
    _, named = load(tmp_path, other, release="2026-01-31")
    assert named.files[0].release == "2026-01-31" and not named.files[0].warnings


def test_the_deportation_data_projects_facility_table_serves_as_a_reference(tmp_path):
    from conftest import SHARED

    reference = SHARED / "data" / "reference" / "facility-locations-oct2025.tsv"
    if not reference.is_file():
        pytest.skip(f"shared facility reference not found at {reference} (set ICELEDGER_SHARED)")
    with open(reference, newline="") as handle:
        codes = [row["detention_facility_code"] for row in csv.DictReader(handle, delimiter="\t")]
    stints = [{"Book In Date Time": datetime(2025, 1, 1), "Detention Facility Code": code,
               "Anonymized Identifier": f"P{i}"} for i, code in enumerate(codes)]
    path = write_xlsx(tmp_path / "Detention-Stints_FY23-FY26_20260311.xlsx", "stints-2023-2026",
                      [stints])
    warehouse, report = load(tmp_path, path, facility_references=[reference])
    (check,) = [c for c in report.files[0].checks if c["check"] == "unknown_facility_codes"]
    assert (check["failed_rows"], check["total_rows"]) == (0, len(codes))


def test_dates_written_as_plain_excel_serial_numbers_or_text_are_read(tmp_path):
    rows = [arrest_row(**{"Apprehension Date": 45658.5}),  # a number without a date format
            arrest_row(**{"Apprehension Date": "2025-01-01 12:00:00"}),
            arrest_row(**{"Apprehension Date": "01/01/2025 12:00"}),
            arrest_row(**{"Apprehension Date": "2025-02-30 12:00:00"})]  # no such day
    path = write_xlsx(tmp_path / RELEASE_NAME, "arrests-2026-03", [rows])
    warehouse, report = load(tmp_path, path)
    got = sorted(table(warehouse, "foia_arrests"), key=lambda r: r["source_row"])
    assert [r["apprehension_date"] for r in got] == [datetime(2025, 1, 1, 12)] * 3
    (quarantined,) = table(warehouse, "ingest_quarantine")
    assert (quarantined["row_number"], quarantined["cell"]) == (11, "A11")
    assert report.files[0].accounting.rows_quarantined == 1
