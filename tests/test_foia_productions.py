"""ICE productions in layouts no [[layouts]] entry lists: vocabulary, ICE's Summary and Footnotes
sheets, redaction spellings, the placeholder guard, declared layouts, the XML fallback reader,
bombs and impossible cells, and the real UW v. DHS production (skipped when shared is absent).

Fixtures are built here in the shape of the UW v. DHS production (title rows, one sheet per
dataset, ICE's verbatim headers), labelled SCRATCH: test data, not real records.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import xlsxwriter
from conftest import SHARED
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.sources.foia import canonical
from iceledger.sources.foia.ingest import ingest_foia
from iceledger.sources.foia.layouts import catalog
from iceledger.sources.foia.readers import BeyondColumns
from iceledger.warehouse import Warehouse

TITLE = ["ERO-LESA Statistical Tracking Unit", "SCRATCH test data - not real ICE records",
         "Test v. DHS - ICE Productions", "Please review the last tab for footnotes.", ""]
ARREST_HEADERS = ["Arrest Date", "Date of Birth", "Gender", "Country of Citizenship",
                  "Event Number", "Apprehension Landmark", "Arrest Method",
                  "Most Serious Conviction"]
REMOVAL_HEADERS = ["Departed Date", "Date of Birth", "Gender", "Country of Citizenship",
                   "Event Number", "Most Serious Conviction", "Case Category"]
REAL = SHARED / "data" / "ice-foia-real"


def arrest(day: date, **changes) -> dict:
    row = {"Arrest Date": day, "Date of Birth": "(b)(6),(b)(7)c)", "Gender": "Male",
           "Country of Citizenship": "MEXICO", "Event Number": "(b)(7)e)",
           "Apprehension Landmark": "SNOHOMISH COUNTY JAIL",
           "Arrest Method": "CAP Local Incarceration", "Most Serious Conviction": None}
    row.update(changes)
    return row


def removal(day: date, **changes) -> dict:
    row = {"Departed Date": day, "Date of Birth": "(b)(6),(b)(7)c)", "Gender": "Female",
           "Country of Citizenship": "GUATEMALA", "Event Number": "(b)(7)e)",
           "Most Serious Conviction": None, "Case Category": "[8F] Expedited Removal"}
    row.update(changes)
    return row


def write_production(path: Path, sheets: dict[str, tuple[list[str], list[dict]]], *,
                     summary: list[list] | None = None, footnotes: list[str] | None = None,
                     titled: bool = True) -> Path:
    """A workbook shaped like ICE's UW v. DHS production: per sheet, title rows naming the
    dataset, ICE's header row, then records."""
    book = xlsxwriter.Workbook(path)
    day = book.add_format({"num_format": "mm/dd/yyyy"})
    if summary is not None:
        sheet = book.add_worksheet("Summary")
        for r, row in enumerate([[t] for t in TITLE] + summary):
            sheet.write_row(r, 0, row)
    for name, (headers, rows) in sheets.items():
        sheet = book.add_worksheet(name)
        title = [*TITLE, f"FY2019 - FY2020 SCRATCH {name}"] if titled else []
        for r, text in enumerate(title):
            sheet.write(r, 0, text)
        sheet.write_row(len(title), 0, headers)
        for r, row in enumerate(rows, start=len(title) + 1):
            for c, header in enumerate(headers):
                value = row.get(header)
                if isinstance(value, date):
                    sheet.write_datetime(r, c, datetime(value.year, value.month, value.day), day)
                elif value is not None:
                    sheet.write(r, c, value)
    if footnotes is not None:
        sheet = book.add_worksheet("Footnotes")
        for r, text in enumerate(footnotes):
            sheet.write(r, 0, text)
    book.close()
    return path


def ingest(paths: list[Path], db: Path, **options):
    return ingest_foia(paths, Warehouse(db), workers=1, **options)


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


# --- vocabulary, Summary, Footnotes ------------------------------------------------------------


def test_a_production_in_an_unlisted_layout_loads_with_its_summary_and_footnotes(tmp_path):
    arrests = [arrest(date(2019, 9, 30)), arrest(date(2019, 10, 1)), arrest(date(2019, 10, 1)),
               arrest(date(2020, 2, 3), **{"Most Serious Conviction": "DUI"})]
    expedited = [removal(date(2019, 11, 5)), removal(date(2020, 1, 2))]
    other = [removal(date(2020, 3, 4), **{"Case Category": "[16] Reinstated Final Order"})]
    summary = [
        ["FY2019 - FY2020 YTD ERO Administrative Arrests for the Test AOR"],
        ["Fiscal Year", "Total"], ["FY2019", 1], ["FY2020 YTD", 3], [],
        # ICE credits removals to the year confirmed: the years differ, the totals agree.
        ["FY2019 - FY2020 YTD ICE Removals for the Test AOR"],
        ["Fiscal Year", "Expedited Removals", "Other Removals", "Total"],
        ["FY2019", 1, 0, 1], ["FY2020 YTD", 1, 1, 2],
    ]
    notes = ["ERO-LESA Statistical Tracking Unit",
             "FY2020 YTD data are updated through 03/31/2020 (IIDS run date 04/02/2020).",
             "Most Serious Conviction was not recorded prior to FY2015."]
    path = write_production(tmp_path / "Test v DHS production.xlsx",
                            {"Arrests": (ARREST_HEADERS, arrests),
                             "Expedited Removals": (REMOVAL_HEADERS, expedited),
                             "Other Removals": (REMOVAL_HEADERS, other)},
                            summary=summary, footnotes=notes)
    db = tmp_path / "w.duckdb"
    report = ingest([path], db)
    outcome = report.files[0]
    assert outcome.status == "loaded", outcome.error
    assert outcome.dataset == "arrests,removals"
    assert outcome.release == "2020-03-31"  # from the footnotes: the file name has no date
    assert query(db, "SELECT count(*), count(apprehension_date), count(event_number), "
                     "count(birth_date) FROM foia_arrests") == [(4, 4, 0, 0)]
    assert query(db, "SELECT list(DISTINCT source_sheet ORDER BY source_sheet) "
                     "FROM foia_removals") == [(["Expedited Removals", "Other Removals"],)]
    # Equal rows that name no one are two people's, never exact duplicates.
    assert query(db, "SELECT count(*) FILTER (is_exact_duplicate) FROM foia_arrests") == [(0,)]
    checks = {(c["check"]): c for c in outcome.checks if c["check"] == "ice_summary_totals"}
    assert checks["ice_summary_totals"]["status"] == "pass"
    assert query(db, """SELECT dataset, "column", label, ice_total, records, compared
                        FROM foia_published_totals ORDER BY dataset, "column", fiscal_year""") == [
        ("arrests", "Total", "FY2019", 1, 1, "fiscal_year"),
        ("arrests", "Total", "FY2020 YTD", 3, 3, "fiscal_year"),
        ("removals", "Expedited Removals", "FY2019", 1, 0, "total"),
        ("removals", "Expedited Removals", "FY2020 YTD", 1, 2, "total"),
        ("removals", "Other Removals", "FY2019", 0, 0, "total"),
        ("removals", "Other Removals", "FY2020 YTD", 1, 1, "total"),
        ("removals", "Total", "FY2019", 1, 0, "total"),
        ("removals", "Total", "FY2020 YTD", 2, 3, "total"),
    ]
    assert query(db, "SELECT note, dates FROM foia_release_notes WHERE row = 2") == [
        (notes[1], [date(2020, 3, 31), date(2020, 4, 2)])]
    # What the release can say: event numbers and birth dates are all redacted.
    assert query(db, """SELECT "column", sum("rows"), sum(non_null), sum(redacted)
                        FROM foia_capabilities WHERE dataset = 'arrests'
                          AND "column" IN ('event_number', 'most_serious_conviction', 'person_id')
                        GROUP BY ALL ORDER BY 1""") == [
        ("event_number", 4, 0, 4), ("most_serious_conviction", 4, 1, 0), ("person_id", 4, 0, 0)]
    assert query(db, "SELECT DISTINCT fiscal_year FROM foia_capabilities "
                     "WHERE dataset = 'arrests' ORDER BY 1") == [(2019,), (2020,)]


def test_totals_on_a_sheet_not_named_summary_are_still_read_as_ices_totals(tmp_path):
    book = xlsxwriter.Workbook(tmp_path / "with_totals_20200331.xlsx")
    totals = book.add_worksheet("Sheet1")
    for r, row in enumerate([["ERO Administrative Arrests"],
                             ["Fiscal Year", "Arrests", "Total"], ["FY2020", 2, 2]]):
        totals.write_row(r, 0, row)
    records = book.add_worksheet("Arrests")
    records.write_row(0, 0, ARREST_HEADERS)
    for r in (1, 2):
        records.write_row(r, 0, ["2020-01-02", "(b)(6)", "Male", "MEXICO", "(b)(7)e)", "JAIL",
                                 "Located", ""])
    book.close()
    outcome = ingest([tmp_path / "with_totals_20200331.xlsx"], tmp_path / "w.duckdb").files[0]
    assert outcome.status == "loaded", outcome.error
    check = next(c for c in outcome.checks if c["check"] == "ice_summary_totals")
    assert (check["status"], check["total_rows"]) == ("pass", 2)
    shown = run_cli("inspect", str(tmp_path / "with_totals_20200331.xlsx")).output
    assert "sheet 'Sheet1': ICE's summary" in shown


def test_a_summary_total_the_records_miss_fails_its_check(tmp_path):
    summary = [["ERO Administrative Arrests"], ["Fiscal Year", "Total"], ["FY2020", 5]]
    path = write_production(tmp_path / "short_20200331.xlsx",
                            {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 1, 1))] * 4)},
                            summary=summary)
    outcome = ingest([path], tmp_path / "w.duckdb").files[0]
    check = next(c for c in outcome.checks if c["check"] == "ice_summary_totals")
    assert (check["status"], check["failed_rows"], check["total_rows"]) == ("fail", 1, 5)
    assert check["example"] == "FY2020 Total: 4 records, ICE 5 (sheet 'Summary' row 8)"


def test_summary_totals_naming_no_single_dataset_are_shown_not_compared(tmp_path):
    summary = [["Arrests and Removals"], ["Fiscal Year", "Total"], ["FY2020", 9]]
    path = write_production(tmp_path / "mixed_20200331.xlsx",
                            {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 1, 1))])},
                            summary=summary)
    outcome = ingest([path], tmp_path / "w.duckdb").files[0]
    assert outcome.status == "loaded"
    assert not [c for c in outcome.checks if c["check"] == "ice_summary_totals"]
    assert ("mixed_20200331.xlsx, sheet 'Summary' row 7: the totals under 'Arrests and "
            "Removals' name 2 datasets, not one; not compared") in outcome.warnings


def test_one_sheet_per_fiscal_year_with_differing_headers_loads_and_keeps_unknown_columns(
        tmp_path):
    later = [*ARREST_HEADERS, "Removal Case COL"]
    path = write_production(tmp_path / "years_20200930.xlsx", {
        "Arrests FY2019": (ARREST_HEADERS, [arrest(date(2019, 5, 1))]),
        "Arrests FY2020": (later, [arrest(date(2020, 5, 1), **{"Removal Case COL": "X-1"})]),
    })
    db = tmp_path / "w.duckdb"
    assert ingest([path], db).files[0].status == "loaded"
    assert query(db, "SELECT source_sheet, extras FROM foia_arrests ORDER BY source_row, "
                     "source_sheet") == [("Arrests FY2019", {}),
                                         ("Arrests FY2020", {"Removal Case COL": "X-1"})]


def test_csv_and_parquet_in_other_spellings_load_by_their_vocabulary(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    csv_path = tmp_path / "seattle_arrests_20200331.csv"
    csv_path.write_text("Arrest Date,Gender,Country of Citizenship,Site Code\n"
                        "01/02/2020,Male,MEXICO,S1\n01/03/2020,(b)(6),GUATEMALA,\n")
    parquet_path = tmp_path / "removals_20200331.parquet"
    pq.write_table(pa.table({"Departure Date": [date(2020, 1, 5)], "Gender": ["Female"],
                             "Country of Citizenship": ["HONDURAS"], "Port": ["SEA"]}),
                   parquet_path)
    db = tmp_path / "w.duckdb"
    report = ingest([csv_path, parquet_path], db)
    assert [f.status for f in report.files] == ["loaded", "loaded"], report.files
    assert query(db, "SELECT apprehension_date, gender, extras, redacted FROM foia_arrests "
                     "ORDER BY source_row") == [
        (datetime(2020, 1, 2), "Male", {"Site Code": "S1"}, []),
        (datetime(2020, 1, 3), None, {}, ["gender"])]
    assert query(db, "SELECT departed_date, citizenship_country, extras FROM foia_removals") == [
        (date(2020, 1, 5), "HONDURAS", {"Port": "SEA"})]


def test_the_sheet_name_decides_between_datasets_whose_dates_a_header_row_both_holds():
    headers = ["Apprehension Date", "Departed Date", "Gender", "Citizenship Country"]
    assert catalog().match(headers, "Removals").dataset.name == "removals"
    assert catalog().match(headers, "Sheet1", "ICE Removals FY2020").dataset.name == "removals"
    assert catalog().match(headers, "Arrests").dataset.name == "arrests"
    assert catalog().match(headers, "Sheet1") is None  # two readings, nothing to choose


def test_productions_of_every_dataset_in_other_spellings_go_to_their_tables(tmp_path):
    sheets = {
        "Encounters": (["Encounter Date", "Responsible AOR", "Lead Source", "Gender"],
                       [{"Encounter Date": date(2020, 1, 2), "Responsible AOR": "Seattle",
                         "Lead Source": "CAP", "Gender": "Male"}]),
        "Detainers": (["Detainer Prepare Date", "Apprehension Date", "Departed Date",
                       "Detainer Type", "Gender"],
                      [{"Detainer Prepare Date": date(2020, 1, 3),
                        "Apprehension Date": date(2020, 1, 1), "Detainer Type": "I-247A",
                        "Gender": "Female"}]),
        "FY2020 Removals": (["Departure Date", "Processing Disposition", "Final Charge Section",
                             "Removal Case COL", "Gender"],
                            [{"Departure Date": date(2020, 2, 1),
                              "Processing Disposition": "Reinstatement",
                              "Final Charge Section": "212a7AiI", "Removal Case COL": "X",
                              "Gender": "Male"}]),
        "Book-ins FY2020": (["Book In Date", "Release Date", "Facility", "Gender"],
                            [{"Book In Date": date(2020, 1, 5), "Release Date": date(2020, 2, 5),
                              "Facility": "NORTHWEST DET. CENTER", "Gender": "Male"}]),
    }
    path = write_production(tmp_path / "all_20200331.xlsx", sheets, titled=False)
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert outcome.dataset == "encounters,detainers,removals,stints"
    assert query(db, "SELECT event_date, aor, lead_source FROM foia_encounters") == [
        (datetime(2020, 1, 2), "Seattle", "CAP")]
    assert query(db, "SELECT detainer_prepare_date, apprehension_date, detainer_type "
                     "FROM foia_detainers") == [
        (datetime(2020, 1, 3), datetime(2020, 1, 1), "I-247A")]
    assert query(db, "SELECT departed_date, final_charge_section, extras FROM foia_removals") == [
        (date(2020, 2, 1), "212a7AiI", {"Removal Case COL": "X"})]
    assert query(db, "SELECT book_in, book_out, facility_name FROM foia_stints") == [
        (datetime(2020, 1, 5), datetime(2020, 2, 5), "NORTHWEST DET. CENTER")]


def test_a_sheet_two_datasets_read_equally_is_refused_naming_both(tmp_path):
    headers = ["Apprehension Date", "Departed Date", "Gender", "Citizenship Country"]
    path = write_production(tmp_path / "tie_20200331.xlsx", {"Sheet1": (headers, [
        {"Apprehension Date": date(2020, 1, 1), "Departed Date": date(2020, 2, 1)}])},
        titled=False)
    outcome = ingest([path], tmp_path / "w.duckdb").files[0]
    assert outcome.status == "error"
    assert outcome.error.startswith("tie_20200331.xlsx, sheet 'Sheet1': not a FOIA release")
    assert "arrests maps 4 of 4 headers but ties with another dataset" in outcome.error
    assert "removals maps 4 of 4 headers but ties" in outcome.error


# --- redactions and the placeholder guard ------------------------------------------------------


@pytest.mark.parametrize("marker", [
    "(b)(6)", "b(7)(C)", "(b)(7)e)", "(b)(7)(E )", "(b)(6),(b)(7)(c )", "b(6), b(7)c",
    "(b)(6),(b)(7)c)", "B(6) ,B(7)(C)", " ( b ) ( 7 ) ( e ) ", "(b)(6); (b)(7)(C)",
    "(b)(6) and (b)(7)(C)", "b6", "b7c", "b6/b7c", "B7E", "b6, b7(c)", "[b6]"])
def test_every_spelling_of_an_exemption_marker_is_a_redaction_in_any_column(tmp_path, marker):
    rows = [arrest(date(2020, 1, 2), **{"Gender": marker, "Apprehension Landmark": marker,
                                        "Event Number": marker})]
    path = write_production(tmp_path / "r_20200331.xlsx", {"Arrests": (ARREST_HEADERS, rows)})
    db = tmp_path / "w.duckdb"
    assert ingest([path], db).files[0].status == "loaded"
    assert query(db, "SELECT gender, apprehension_site_landmark, event_number, redacted "
                     "FROM foia_arrests") == [
        (None, None, None, ["birth_date", "gender", "event_number", "apprehension_site_landmark"])]
    assert query(db, """SELECT sum(redacted) FROM foia_capabilities
                        WHERE "column" = 'gender'""") == [(1,)]


@st.composite
def exemption_markers(draw) -> str:
    """Exemption markers as people type them: any case, spacing, stray or missing parentheses
    around the b and the subsection, several joined by commas, semicolons or "and"."""
    def space() -> str:
        return draw(st.sampled_from(["", "", " ", "  "]))

    def one() -> str:
        b = draw(st.sampled_from(["b", "B", "(b)", "(B)", "(b", "b)"]))
        number = f"({space()}{draw(st.sampled_from('6789'))}{space()})"
        letter = draw(st.sampled_from(["", "c", "C", "e", "E", "(c)", "(C )", "e)", "(E"]))
        return f"{b}{space()}{number}{space()}{letter}"

    joints = st.sampled_from([",", ", ", " ,", ";", " and ", " ", "/"])
    markers = [one() for _ in range(draw(st.integers(1, 3)))]
    text = markers[0] + "".join(draw(joints) + m for m in markers[1:])
    return f"{space()}{text}{draw(st.sampled_from(['', ')', ' ']))}"


@given(exemption_markers())
def test_any_spelling_of_exemption_markers_is_a_redaction(marker):
    assert catalog().is_redaction(marker), marker


def test_values_that_merely_look_like_markers_are_kept():
    for value in ("B2", "B1/B2", "(b)", "b(x)", "Section 212(a)(6)(C)", "ABC (b)(6)", "b8",
                  "b67", "B7 ROAD", "BRAZIL 6", "b6x"):
        assert not catalog().is_redaction(value), value


def test_an_identifier_on_many_rows_over_many_days_is_a_placeholder_never_one_person(tmp_path):
    headers = [*ARREST_HEADERS, "Unique Identifier"]
    start = date(2019, 10, 1)
    rows = [arrest(start + timedelta(days=i % 120), **{"Unique Identifier": "WITHHELD",
                                                        "Apprehension Landmark": f"SITE {i}"})
            for i in range(240)]
    # A real person, arrested twice within 24 hours: one episode.
    rows += [arrest(date(2020, 3, 1), **{"Unique Identifier": "P-1"}),
             arrest(date(2020, 3, 1), **{"Unique Identifier": "P-1",
                                         "Apprehension Landmark": "OTHER"})]
    path = write_production(tmp_path / "p_20200331.xlsx", {"Arrests": (headers, rows)})
    db = tmp_path / "w.duckdb"
    report = ingest([path], db)
    assert report.files[0].status == "loaded"
    assert query(db, "SELECT count(*), count(person_id), count(DISTINCT episode_id) "
                     "FROM foia_arrests") == [(242, 2, 241)]
    assert query(db, """SELECT "table", "column", value, "rows", days
                        FROM foia_placeholder_identifiers""") == [
        ("foia_arrests", "person_id", "WITHHELD", 240, 120)]
    assert query(db, """SELECT dataset, status, failed_rows, total_rows FROM foia_checks
                        WHERE "check" = 'placeholder_identifiers'""") == [
        ("arrests", "warn", 240, 242)]
    assert any("placeholder" in note for note in report.derived.notes)


# --- declared layouts, inspect and refusals ----------------------------------------------------

SPANISH = ["Fecha de arresto", "Sexo", "Pais", "Metodo"]


def spanish_workbook(path: Path) -> Path:
    rows = [{"Fecha de arresto": "03.02.2020", "Sexo": "RETENIDO", "Pais": "MEXICO",
             "Metodo": "Located"},
            {"Fecha de arresto": "04.02.2020", "Sexo": "Female", "Pais": "(b)(6)",
             "Metodo": "Located"}]
    return write_production(path, {"Hoja1": (SPANISH, rows)}, titled=False)


def test_an_unrecognised_sheet_is_one_line_naming_the_closest_readings_and_inspect(tmp_path):
    path = spanish_workbook(tmp_path / "es_20200331.xlsx")
    good = write_production(tmp_path / "good_20200331.xlsx",
                            {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 1, 2))])})
    result = run_cli("ingest", "foia", str(path), str(good), "--warehouse",
                     str(tmp_path / "w.duckdb"))
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith("error: es_20200331.xlsx, sheet 'Hoja1': not a FOIA release")
    assert "lacks its date column" in errors[0]
    assert "iceledger inspect es_20200331.xlsx" in errors[0]
    assert query(tmp_path / "w.duckdb", "SELECT count(*) FROM foia_arrests") == [(1,)]


def test_a_declared_layout_loads_a_layout_nobody_listed(tmp_path):
    path = spanish_workbook(tmp_path / "es_20200331.xlsx")
    layout = tmp_path / "es.toml"
    layout.write_text("""
date_formats = ["%d.%m.%Y"]
redactions = ["RETENIDO"]

[[sheets]]
dataset = "arrests"
sheet = "^Hoja"
[sheets.columns]
"Fecha de arresto" = "apprehension_date"
"Sexo" = "gender"
"Pais" = "citizenship_country"
"Metodo" = "apprehension_method"
""")
    shown = run_cli("inspect", str(path), "--layout", str(layout))
    assert "sheet 'Hoja1': header row 1; loads as arrests" in shown.output
    db = tmp_path / "w.duckdb"
    result = run_cli("ingest", "foia", str(path), "--layout", str(layout), "--warehouse",
                     str(db))
    assert result.exit_code == 0, result.output
    assert query(db, "SELECT apprehension_date, gender, citizenship_country, arrest_setting, "
                     "redacted FROM foia_arrests ORDER BY source_row") == [
        (datetime(2020, 2, 3), None, "MEXICO", "at-large", ["gender"]),
        (datetime(2020, 2, 4), "Female", None, "at-large", ["citizenship_country"])]


@pytest.mark.parametrize(("text", "message"), [
    ("[[sheets]]\ndataset = 'arrests'\n", "say which sheets it is for"),
    ("[[sheets]]\ndataset = 'people'\nsheet = 'x'\n", "dataset 'people' is none of"),
    ("[[sheets]]\ndataset = 'arrests'\nsheet = '('\n", "is not a pattern"),
    ("[[sheets]]\ndataset = 'arrests'\nsheet = 'x'\ncolumns = { A = 'Not Snake' }\n",
     "must map to a snake_case canonical name"),
    ("colour = 'red'\n", "unknown key(s) colour"),
    ("date_formats = '%d'\n", "date_formats must be a list of texts"),
    ("[[sheets]\n", "not a TOML layout file"),
])
def test_every_mistake_in_a_layout_file_is_one_line(tmp_path, text, message):
    layout = tmp_path / "bad.toml"
    layout.write_text(text)
    path = spanish_workbook(tmp_path / "es_20200331.xlsx")
    result = run_cli("ingest", "foia", str(path), "--layout", str(layout), "--warehouse",
                     str(tmp_path / "w.duckdb"))
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_a_missing_layout_file_is_one_line(tmp_path):
    path = spanish_workbook(tmp_path / "es_20200331.xlsx")
    result = run_cli("ingest", "foia", str(path), "--layout", str(tmp_path / "none.toml"),
                     "--warehouse", str(tmp_path / "w.duckdb"))
    assert result.exit_code == 1
    assert "none.toml: cannot read the layout file (No such file or directory)" in result.output


def test_inspect_shows_each_sheet_and_prints_a_layout_that_loads_it(tmp_path):
    path = spanish_workbook(tmp_path / "es_20200331.xlsx")
    result = run_cli("inspect", str(path))
    assert result.exit_code == 0, result.output
    assert "sheet 'Hoja1'" in result.output and "header row 1" in result.output
    assert "not recognised" in result.output
    layout_text = result.output[result.output.index("# iceledger layout file"):]
    # The printed layout names every header; the user fills in the canonical columns.
    for header in SPANISH:
        assert f'"{header}" = ' in layout_text
    edited = (layout_text.replace('"Fecha de arresto" = ""', '"Fecha de arresto" = '
                                  '"apprehension_date"')
              .replace('dataset = ""', 'dataset = "arrests"')
              .replace('"Sexo" = ""', '"Sexo" = "gender"')
              .replace('"Pais" = ""', '"Pais" = "citizenship_country"')
              .replace('"Metodo" = ""', '"Metodo" = "apprehension_method"')
              .replace("date_formats = []", 'date_formats = ["%d.%m.%Y"]'))
    layout = tmp_path / "edited.toml"
    layout.write_text(edited)
    db = tmp_path / "w.duckdb"
    result = run_cli("ingest", "foia", str(path), "--layout", str(layout), "--warehouse", str(db))
    assert result.exit_code == 0, result.output
    assert query(db, "SELECT count(apprehension_date) FROM foia_arrests") == [(2,)]


def test_inspect_reads_a_csv_and_shows_what_an_unrecognised_sheet_maps(tmp_path):
    path = tmp_path / "arrests.csv"
    path.write_text("Arrest Day,Gender,Country of Citizenship,Sitio\n2020-01-02,Male,MEXICO,X\n")
    result = run_cli("inspect", str(path))
    assert result.exit_code == 0, result.output
    assert "file: not recognised" in result.output
    assert "closest arrests: maps 2 of 4 headers, lacks its date column apprehension_date" in (
        result.output)
    assert "Country of Citizenship -> citizenship_country" in result.output
    # The layout to edit carries what already maps; only the rest is blank.
    assert '"Gender" = "gender"' in result.output and '"Arrest Day" = ""' in result.output
    assert 'headers = ["Arrest Day", "Gender", "Country of Citizenship"]' in result.output


def test_a_header_below_many_formatted_blank_rows_is_found(tmp_path):
    path = tmp_path / "low_20200331.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Arrests")
    shaded = book.add_format({"bg_color": "#DDDDDD"})
    for r in range(51):
        sheet.write_blank(r, 0, None, shaded)
    sheet.write_row(51, 0, ARREST_HEADERS)
    sheet.write_row(52, 0, ["2020-01-02", "(b)(6)", "Male", "MEXICO", "(b)(7)e)", "JAIL",
                            "Located", ""])
    book.close()
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT source_row, apprehension_date FROM foia_arrests") == [
        (53, datetime(2020, 1, 2))]


def test_a_workbook_of_notes_only_is_refused_in_one_line(tmp_path):
    path = write_production(tmp_path / "notes_20200331.xlsx", {}, footnotes=["Read me", "x"])
    outcome = ingest([path], tmp_path / "w.duckdb").files[0]
    assert outcome.error == ("notes_20200331.xlsx: no sheet holds FOIA records (every sheet is "
                             "empty, notes or hidden)")


def test_inspect_names_the_dataset_a_known_production_loads_as(tmp_path):
    path = write_production(tmp_path / "p_20200331.xlsx",
                            {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 1, 2))])},
                            summary=[["Arrests"], ["Fiscal Year", "Total"], ["FY2020", 1]])
    result = run_cli("inspect", str(path))
    assert result.exit_code == 0, result.output
    assert "sheet 'Summary': ICE's summary" in result.output
    assert "loads as arrests" in result.output and "header row 7" in result.output
    assert "Event Number -> event_number" in result.output


# --- readers: fallback, bombs, impossible cells ------------------------------------------------


def rewrite_sheet(source: Path, target: Path, member: str, change) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item.filename)
            if item.filename == member:
                data = change(data.decode()).encode()
            new.writestr(item.filename, data)
    return target


def test_a_workbook_the_fast_reader_rejects_is_read_by_the_xml_reader(tmp_path):
    rows = [arrest(date(2020, 1, 2)), arrest(date(2020, 1, 3), Gender="Female")]
    plain = write_production(tmp_path / "plain.xlsx", {"Arrests": (ARREST_HEADERS, rows)})
    # Cell references without their column ("8" for "A8") make calamine fail with "Range is
    # missing the expected column component"; Excel and the XML reader place them in order.
    broken = rewrite_sheet(plain, tmp_path / "broken_20200331.xlsx", "xl/worksheets/sheet1.xml",
                           lambda xml: re.sub(r'<c r="[A-Z]+(\d+)"', r'<c r="\1"', xml))
    import python_calamine
    with pytest.raises(python_calamine.CalamineError, match="column component"):
        python_calamine.CalamineWorkbook.from_path(str(broken)).get_sheet_by_index(0).to_python()
    later = write_production(tmp_path / "later_20200331.xlsx",
                             {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 2, 2))])})
    db = tmp_path / "w.duckdb"
    report = ingest([broken, later], db)
    assert [f.status for f in report.files] == ["loaded", "loaded"]
    assert any("read with the XML reader" in w for w in report.files[0].warnings)
    assert query(db, "SELECT source_file, source_row, apprehension_date, gender FROM foia_arrests "
                     "ORDER BY source_file, source_row") == [
        ("broken_20200331.xlsx", 8, datetime(2020, 1, 2), "Male"),
        ("broken_20200331.xlsx", 9, datetime(2020, 1, 3), "Female"),
        ("later_20200331.xlsx", 8, datetime(2020, 2, 2), "Male")]


def test_a_panic_in_the_fast_reader_is_a_rejection_but_ctrl_c_is_not():
    from iceledger.sources.foia.readers import _fast_reader_rejected

    class PanicException(BaseException):  # how pyo3 hands a Rust panic to Python
        pass

    assert _fast_reader_rejected(PanicException("index out of bounds"))
    assert not _fast_reader_rejected(KeyboardInterrupt())
    assert not _fast_reader_rejected(MemoryError())


def test_unreadable_sheet_xml_is_one_line_and_later_files_load(tmp_path):
    plain = write_production(tmp_path / "plain.xlsx",
                             {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 1, 2))])})
    broken = rewrite_sheet(plain, tmp_path / "garbled_20200331.xlsx", "xl/worksheets/sheet1.xml",
                           lambda xml: xml.replace('<c r="A8"', '<c r="8" <<', 1))
    later = write_production(tmp_path / "later_20200331.xlsx",
                             {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 2, 2))])})
    report = ingest([broken, later], tmp_path / "w.duckdb")
    assert [f.status for f in report.files] == ["error", "loaded"]
    assert report.files[0].error.startswith("garbled_20200331.xlsx, sheet 'Arrests', row 8:")
    assert "\n" not in report.files[0].error


def bomb(path: Path, cells: str) -> Path:
    """A few-kilobyte workbook whose cells claim a sheet of a million rows and 16,384 columns."""
    plain = write_production(path.with_suffix(".plain.xlsx"),
                             {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 1, 2))])})
    return rewrite_sheet(plain, path, "xl/worksheets/sheet1.xml",
                         lambda xml: xml.replace("</sheetData>", cells + "</sheetData>"))


@pytest.mark.parametrize("cells", [
    '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>',
    '<row r="9"><c r="XFD9"><v>1</v></c></row>',
    '<row r="1048576"><c r="A1048576"><v>43831</v></c></row>',
])
def test_a_bomb_workbook_is_refused_or_read_without_building_its_claimed_size(tmp_path, cells):
    path = bomb(tmp_path / "bomb_20200331.xlsx", cells)
    assert path.stat().st_size < 12_000
    db = tmp_path / "w.duckdb"
    # In a process of its own: were the guard missing, the reader would abort the process.
    result = subprocess.run(
        [sys.executable, "-m", "iceledger", "ingest", "foia", str(path), "--warehouse", str(db)],
        check=False, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(Path(__file__).parents[1] / "src"), "PATH": "/usr/bin:/bin",
             "COLUMNS": "200"})
    assert "Traceback" not in result.stdout + result.stderr
    assert result.returncode in (0, 1), result.stderr
    if result.returncode == 1:
        assert "bomb_20200331.xlsx, sheet 'Arrests', cell XFD" in result.stderr
    else:
        assert query(db, "SELECT count(*) FROM foia_arrests") == [(2,)]


def _row(number: int, *cells: str) -> bytes:
    return (f'<row r="{number}">' + "".join(cells) + "</row>").encode()


@pytest.mark.parametrize("width, xml, found", [
    # Empty styled cells past the header, as ICE's sheets have them, spaced or not: nothing.
    (53, _row(8, '<c r="BA8" t="s"><v>1</v></c>', '<c r="BB8" s="3"/>', '<c r="BC8" s="3" />'),
     None),
    # A value past the header, as a number, a shared string or an inline string.
    (53, _row(8, '<c r="BA8"><v>1</v></c>', '<c r="BB8" s="3"/>', '<c r="BC8"><v>2</v></c>'),
     "BC8"),
    (53, _row(9, '<c r="AAA9" t="inlineStr"><is><t>x</t></is></c>'), "AAA9"),
    # Attributes before the reference; the first of two rows is named.
    (8, _row(2, '<c s="4" t="s" r="I2"><v>7</v></c>') + _row(3, '<c r="J3"><v>1</v></c>'), "I2"),
    # Text that reads like a reference inside a cell within the header is no cell.
    (8, _row(2, '<c r="H2" t="inlineStr"><is><t>r="ZZ9" x</t></is></c>'), None),
    (26, _row(2, '<c r="Z2"><v>1</v></c>', '<c r="AA2"><v>1</v></c>'), "AA2"),
    # A header reaching the last column Excel has leaves nothing past it.
    (16_384, _row(2, '<c r="XFD2"><v>1</v></c>'), None),
])
def test_a_cell_past_the_header_is_found_before_the_fast_reader_runs(width, xml, found):
    for piece in (xml, memoryview(xml)):
        match = BeyondColumns(width).search(piece)
        assert (match.group(1).decode() if match else None) == found


def test_a_part_claiming_gigabytes_is_refused_before_it_is_inflated(tmp_path):
    path = write_production(tmp_path / "claims_20200331.xlsx",
                            {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 1, 2))])})
    data = bytearray(path.read_bytes())
    # The central directory's record of the shared strings: its name at offset 46, its
    # uncompressed size at offset 24.
    entry = next(m.start() for m in re.finditer(rb"PK\x01\x02", bytes(data))
                 if data[m.start() + 46:].startswith(b"xl/sharedStrings.xml"))
    data[entry + 24:entry + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    later = write_production(tmp_path / "later_20200331.xlsx",
                             {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 2, 2))])})
    report = ingest([path, later], tmp_path / "w.duckdb")
    assert [f.status for f in report.files] == ["error", "loaded"]
    assert report.files[0].error == (
        "claims_20200331.xlsx: xl/sharedStrings.xml claims 4.0 GB uncompressed, over the 2 GB "
        "any production's part needs; not read (a damaged or hostile file)")


def test_an_impossible_cell_is_null_with_an_unparsed_entry_and_the_file_loads(tmp_path):
    headers = ["Arrest Date", "Birth Year", "Departed Date", "Gender"]
    rows = [{"Arrest Date": date(2020, 1, 2), "Birth Year": 3_000_000_000, "Gender": "Male"},
            {"Arrest Date": date(2020, 1, 3), "Birth Year": 1e15, "Gender": "Male"},
            {"Arrest Date": date(2020, 1, 4), "Birth Year": 1990, "Departed Date": 1,
             "Gender": "Male"}]
    path = write_production(tmp_path / "odd_20200331.xlsx", {"Arrests": (headers, rows)})

    def year_30000(xml: str) -> str:
        # A date in year 30000: a day number no date can hold, in the sheet's date style.
        style = re.search(r'<c r="A10" s="(\d+)"', xml).group(1)
        return re.sub(r'<c r="C10"[^>]*>.*?</c>',
                      f'<c r="C10" s="{style}"><v>10227000</v></c>', xml)

    path = rewrite_sheet(path, tmp_path / "impossible_20200331.xlsx", "xl/worksheets/sheet1.xml",
                         year_30000)
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT source_row, birth_year, departed_date, unparsed FROM foia_arrests "
                     "ORDER BY source_row") == [
        (8, None, None, ["birth_year=3000000000"]),
        (9, None, None, ["birth_year=1000000000000000"]),
        (10, 1990, None, ["departed_date=+29900-07-28 00:00:00"])]


# --- the real UW v. DHS production -------------------------------------------------------------


# ICE's Summary sheet agrees with the real production's records: per fiscal year for arrests
# and book-ins, in total for removals.
REAL_SUMMARY_AGREES = [("arrests", "pass", 0, 32_549), ("removals", "pass", 0, 26_913),
                       ("stints", "pass", 0, 36_811)]


def summary_checks(db: Path) -> list[tuple]:
    return query(db, """SELECT dataset, status, failed_rows, total_rows FROM foia_checks
                        WHERE "check" = 'ice_summary_totals' ORDER BY dataset""")


@pytest.fixture(scope="module")
def real_production(tmp_path_factory):
    files = sorted(REAL.glob("*.xlsx")) if REAL.is_dir() else []
    if not files:
        pytest.skip(f"the real ICE FOIA production is not here ({REAL}); set ICELEDGER_SHARED")
    db = tmp_path_factory.mktemp("real") / "w.duckdb"
    result = run_cli("ingest", "foia", str(REAL), "--warehouse", str(db))
    return result, db


def test_the_real_uw_production_loads_as_published_and_agrees_with_ices_summary(
        real_production):
    result, db = real_production
    assert result.exit_code == 0, result.output
    published = query(db, """SELECT dataset, fiscal_year, ice_total, records
                             FROM foia_published_totals WHERE "column" = 'Total'
                             ORDER BY dataset, fiscal_year""")
    arrests = [(year, ice) for dataset, year, ice, _ in published if dataset == "arrests"]
    assert arrests[0] == (2012, 6620) and arrests[-1] == (2019, 1931) and len(arrests) == 8
    for dataset in ("arrests", "stints"):
        rows = [(ice, records) for name, _, ice, records in published if name == dataset]
        assert len(rows) == 8 and all(ice == records for ice, records in rows), rows
    assert query(db, "SELECT count(*) FROM foia_removals") == [(26_913,)]
    assert sum(ice for name, _, ice, _ in published if name == "removals") == 26_913
    assert summary_checks(db) == REAL_SUMMARY_AGREES
    # The redacted Event Numbers merge no one: every arrest is its own episode.
    assert query(db, "SELECT count(*), count(DISTINCT episode_id), count(event_number) "
                     "FROM foia_arrests") == [(32_549, 32_549, 0)]
    assert query(db, "SELECT DISTINCT release FROM foia_arrests") == [("2019-07-06",)]


def test_the_real_production_records_what_it_cannot_say(real_production):
    _, db = real_production
    carried = dict(query(db, """SELECT "column", sum(non_null) FROM foia_capabilities
                                WHERE dataset = 'stints' GROUP BY ALL"""))
    assert carried["book_in"] == 36_811
    assert carried["stay_book_out"] == 0 and carried["person_id"] == 0
    assert query(db, """SELECT min(fiscal_year), max(fiscal_year) FROM foia_capabilities
                        WHERE dataset = 'arrests' AND "column" = 'most_serious_conviction'
                          AND non_null > 0""") == [(2015, 2019)]


@pytest.mark.parametrize("metric", ["detained_population_daily", "length_of_stay", "alos_monthly"])
def test_the_real_production_population_and_stays_are_not_measurable(real_production, metric):
    """The production has book-ins but no book-out dates: counting everyone as still held would
    say ~37,000 people were detained in Seattle. The metric refuses instead, in one line."""
    _, db = real_production
    from iceledger.metrics import compute
    from iceledger.metrics.backends import duckdb_backend
    from iceledger.metrics.registry import NotMeasurable

    with pytest.raises(NotMeasurable, match="no book-out dates"):
        compute(metric, duckdb_backend(db))
    shown = run_cli("metric", metric, "--warehouse", str(db))
    assert shown.exit_code == 1 and "Traceback" not in shown.output
    assert "not measurable from these records" in shown.output
    assert len([line for line in shown.output.splitlines() if line.strip()]) <= 3


def test_the_real_production_arrests_count_as_ice_summarised(real_production):
    """Arrests per fiscal year from the metrics (not only the load) equal ICE's Summary."""
    _, db = real_production
    from iceledger.metrics import MetricParams, compute
    from iceledger.metrics.backends import duckdb_backend

    published = dict(query(db, """SELECT fiscal_year, ice_total FROM foia_published_totals
                                  WHERE dataset = 'arrests' AND "column" = 'Total'"""))
    daily = compute("arrests_per_day", duckdb_backend(db), MetricParams()).to_pylist()
    counted: dict[int, int] = {}
    for row in daily:
        year = row["date"].year + (row["date"].month >= 10)
        counted[year] = counted.get(year, 0) + row["arrests"]
    assert counted == published


def test_row_runs_read_a_slice_handed_over_without_a_copy():
    """The xlsx reader hands slices over as memoryviews of the sheet's buffer; the row-gap guard
    must read them as it reads bytes (a demo-sized workbook failed here)."""
    from iceledger.sources.foia.readers import MAX_ROW_GAP, _row_runs

    rows = b"".join(b'<row r="%d"><c r="A%d"><v>1</v></c></row>' % (n, n) for n in (8, 9, 10))
    far = b'<row r="%d"><c><v>2</v></c></row>' % (10 + MAX_ROW_GAP + 5)
    for piece in (rows, memoryview(rows)):
        assert [(bytes(p), first) for p, first in _row_runs(piece, 8)] == [(rows, 8)]
    runs = [(bytes(p), first) for p, first in _row_runs(memoryview(rows + far), 8)]
    assert runs == [(rows, 8), (far, 10 + MAX_ROW_GAP + 5)]


def test_a_production_without_summary_footnotes_or_dated_name_takes_its_latest_key_date(
        tmp_path):
    # No release date anywhere: the latest key date across its sheets is the release, though
    # arrests are keyed by a date-time and removals by a date (they were once compared as
    # such and the command ended in a traceback).
    path = write_production(tmp_path / "production.xlsx", {
        "Arrests": (ARREST_HEADERS, [arrest(date(2020, 2, 3))]),
        "Other Removals": (REMOVAL_HEADERS, [removal(date(2020, 3, 4))]),
    })
    (outcome,) = ingest([path], tmp_path / "w.duckdb").files
    assert outcome.status == "loaded", outcome.error
    assert outcome.release == "2020-03-04"
    assert any("no release date" in w for w in outcome.warnings)


def test_a_fault_while_loading_one_file_is_one_line_and_the_others_load(tmp_path, monkeypatch):
    # Whatever goes wrong inside one file's load (here a TypeError raised where the sheets are
    # typed), the command prints one line for that file, loads the next and exits 1.
    first = write_production(tmp_path / "broken_20200331.xlsx",
                             {"Arrests": (ARREST_HEADERS, [arrest(date(2020, 2, 3))])})
    second = write_production(tmp_path / "fine_20200331.xlsx",
                              {"Other Removals": (REMOVAL_HEADERS, [removal(date(2020, 3, 4))])})
    query_of = canonical.SheetRows.query

    def faulty(self, source):
        if self.plan.name == "Arrests":
            raise TypeError("a fault no check foresaw")
        return query_of(self, source)

    monkeypatch.setattr(canonical.SheetRows, "query", faulty)
    result = CliRunner().invoke(app, ["ingest", "foia", str(first), str(second),
                                      "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert ("broken_20200331.xlsx: cannot be loaded (TypeError: a fault no check foresaw); "
            "nothing was loaded") in " ".join(result.output.split())
    assert query(tmp_path / "w.duckdb", "SELECT count(*) FROM foia_removals") == [(1,)]
    assert query(tmp_path / "w.duckdb", "SELECT count(*) FROM ingest_sources") == [(1,)]
