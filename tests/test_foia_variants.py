"""ICE productions re-shaped as real ones come: headers joined or annotated otherwise, sheets
of definitions beside the records, files a folder holds in formats iceledger cannot read,
field offices written otherwise, hidden sheets, the header repeated among the records; and the
real UW v. DHS production re-saved in those shapes (skipped when shared is absent).

Fixtures are SCRATCH test data in the shape of the UW v. DHS production, not real records.
"""

from __future__ import annotations

import csv
import re
import shutil
import zipfile
from datetime import date, datetime

import openpyxl
import pytest
import xlsxwriter
from test_foia_productions import (
    ARREST_HEADERS,
    REAL,
    REAL_SUMMARY_AGREES,
    arrest,
    ingest,
    query,
    run_cli,
    summary_checks,
    write_production,
)

from iceledger.sources.foia.layouts import catalog


@pytest.mark.parametrize("headers, redacted", [
    # Joined or annotated otherwise.
    (["Apprehension Date And Time ", "DATE OF\nBIRTH", " gender", "Country of Citizenship (COC)",
      "Event  Number", "Apprehension Landmark", "Arrest Method", "Most Serious Conviction"],
     ["birth_date", "event_number"]),
    # Carrying a mark that a footnote explains, as ICE marks them: `Arrest Date*`, `Gender¹`.
    (["Arrest Date*", "Date of Birth", "Gender\u00b9", "Country of Citizenship (1)",
      "Event Number", "Apprehension Landmark", "Arrest Method \u00b2",
      "Most Serious Conviction **"], ["birth_date", "event_number"]),
])
def test_headers_spelled_otherwise_are_read_by_the_vocabulary(tmp_path, headers, redacted):
    rows = [{headers[i]: value for i, value in enumerate(arrest(date(2019, 10, 1)).values())}]
    path = write_production(tmp_path / "spelled.xlsx", {"Arrests": (headers, rows)})
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT apprehension_date, gender, citizenship_country, apprehension_method, "
                     "redacted, extras FROM foia_arrests") == [
        (datetime(2019, 10, 1), "Male", "MEXICO", "CAP Local Incarceration", redacted, {})]


def test_a_data_dictionary_sheet_is_notes_not_a_sheet_of_records(tmp_path):
    path = write_production(tmp_path / "dictionary.xlsx", {
        "Arrests": (ARREST_HEADERS, [arrest(date(2019, 10, 1))]),
        "Data Dictionary": (["Field Name", "Definition", "Data Type"],
                            [{"Field Name": h, "Definition": f"the {h}", "Data Type": "Text"}
                             for h in ARREST_HEADERS])})
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT count(*) FROM foia_arrests") == [(1,)]
    assert query(db, "SELECT count(*) FROM foia_release_notes "
                     "WHERE sheet = 'Data Dictionary'")[0][0] > len(ARREST_HEADERS)


def test_field_offices_written_with_words_around_their_names_are_found(tmp_path):
    spellings = {"Los Angeles Field Office": "LOS", "LOS ANGELES AREA OF RESPONSIBILITY": "LOS",
                 "LOS": "LOS", "NYC": "NYC", "ERO New York City": "NYC", "St. Paul AOR": "SPM",
                 "Los Angeles Field Office (LOS)": "LOS", "Field Office": None,
                 "Los Angeles Fieldoffice": None}
    lines = ["Apprehension Date,Apprehension AOR,Gender,Apprehension Method"]
    lines += [f"2024-01-0{i + 1},{text},Male,Located" for i, text in enumerate(spellings)]
    path = tmp_path / "aors.csv"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db, release="2024-02-01").files[0]
    assert outcome.status == "loaded", outcome.error
    assert [code for (code,) in query(db, "SELECT aor_code FROM foia_arrests ORDER BY source_row")
            ] == list(spellings.values())
    assert query(db, "SELECT unparsed FROM foia_arrests WHERE aor_code IS NULL") == [
        (["aor=Field Office"],), (["aor=Los Angeles Fieldoffice"],)]


def test_files_iceledger_cannot_read_in_a_folder_are_one_line_each_never_skipped(tmp_path):
    folder = tmp_path / "release"
    folder.mkdir()
    good = write_production(folder / "arrests.xlsx",
                            {"Arrests": (ARREST_HEADERS, [arrest(date(2019, 10, 1))])})
    (folder / "old.xls").write_bytes(bytes.fromhex("D0CF11E0A1B11AE1") + bytes(504))
    with zipfile.ZipFile(folder / "binary.xlsb", "w") as package:
        package.writestr("xl/workbook.bin", b"\x83\x01\x00")
    shutil.copy(folder / "binary.xlsb", folder / "binary renamed.xlsx")
    with zipfile.ZipFile(folder / "exports.zip", "w") as package:
        package.write(good, "arrests.xlsx")
    (folder / "README.md").write_text("not a release")
    result = run_cli("ingest", "foia", str(folder), "--warehouse", str(tmp_path / "w.duckdb"),
                     "--no-derive")
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    # The .xls and .xlsb are read, and these are damaged: a line each, naming the file.
    for line in ["old.xls: not a readable .xls workbook (an old Excel (97-2003) workbook: Cfb "
                 "error: Invalid sector shift", "binary.xlsb: not a readable .xlsb workbook (a "
                 "binary Excel workbook: failed to fill whole buffer)", "binary renamed.xlsx: "
                 "not a readable xlsx workbook: a binary Excel workbook; name it .xlsb",
                 "exports.zip: cannot read .zip files as a FOIA release: an archive: unzip it "
                 "and load the folder", "1 loaded, 0 already loaded, 4 failed"]:
        assert line in output
    assert "README" not in output


def test_a_hidden_sheet_is_not_loaded_and_a_warning_names_it(tmp_path):
    rows = [arrest(date(2019, 10, 1)), arrest(date(2019, 10, 2))]
    path = write_production(tmp_path / "hidden.xlsx", {"Arrests": (ARREST_HEADERS, rows),
                                                       "Sheet1": (ARREST_HEADERS, rows)})
    with zipfile.ZipFile(path) as package:
        parts = {name: package.read(name) for name in package.namelist()}
    parts["xl/workbook.xml"] = parts["xl/workbook.xml"].replace(
        b'<sheet name="Sheet1"', b'<sheet name="Sheet1" state="hidden"')
    with zipfile.ZipFile(path, "w") as package:
        for name, data in parts.items():
            package.writestr(name, data)
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT DISTINCT source_sheet, count(*) FROM foia_arrests GROUP BY 1") == [
        ("Arrests", 2)]
    assert ("hidden.xlsx, sheet 'Sheet1': hidden in the workbook, so not loaded; unhide it to "
            "load its rows") in outcome.warnings
    shown = run_cli("inspect", str(path)).output
    assert "sheet 'Sheet1': hidden in the workbook, so not loaded" in shown
    assert 'sheet = "^Sheet1$"' not in shown


def joined_csv(path, second_header: list[str]) -> str:
    """Two exports joined one under another: the second with its own header row."""
    first = ["Arrest Date,Gender,Country of Citizenship,Arrest Method",
             "2019-10-01,Male,MEXICO,Located", "2019-10-02,Female,GUATEMALA,Located"]
    second = {"arrest date": "2019-10-03", "gender": "Male",
              "country of citizenship": "HONDURAS", "arrest method": "Custodial Arrest"}
    lines = [*first, ",".join(second_header),
             ",".join(second[h.strip().lower()] for h in second_header)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_header_row_again_among_the_records_is_quarantined_as_such(tmp_path):
    path = joined_csv(tmp_path / "joined.csv", ["arrest date ", "Gender", "Country of Citizenship",
                                                "ARREST METHOD"])
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db, release="2019-11-01").files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT gender, citizenship_country FROM foia_arrests ORDER BY source_row"
                 ) == [("Male", "MEXICO"), ("Female", "GUATEMALA"), ("Male", "HONDURAS")]
    assert query(db, "SELECT row_number, reason FROM ingest_quarantine") == [
        (4, "the header row again (files joined one under another?), not a record")]


def test_a_header_row_in_another_order_among_the_records_fails_the_file_there(tmp_path):
    # Read under the first header, the second file's countries would be genders.
    for name, header, reads in [
            ("swapped.csv", ["Arrest Date", "Country of Citizenship", "Gender", "Arrest Method"],
             "Arrest Date"),
            ("moved.csv", ["Gender", "Arrest Date", "Country of Citizenship", "Arrest Method"],
             "Gender")]:
        path = joined_csv(tmp_path / name, header)
        db = tmp_path / f"{name}.duckdb"
        outcome = ingest([path], db, release="2019-11-01").files[0]
        assert outcome.status == "error"
        assert outcome.error == (
            f"{name}, row 4: a header row (its 'Arrest Date' column reads {reads!r}) unlike the "
            "one at row 1: files of other layouts joined one under another, whose rows would be "
            "read under the wrong columns; split the file there")
        assert query(db, "SELECT count(*) FROM ingest_sources") == [(0,)]


def test_dates_written_day_first_fail_the_file_unless_declared(tmp_path):
    lines = ["Arrest Date;Gender;Country of Citizenship;Arrest Method"]
    lines += [f"{day:02d}/01/2019;Male;MEXICO;Located" for day in range(1, 21)]
    path = tmp_path / "european.csv"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db, release="2019-02-01").files[0]
    # Read month first, 2 January would be 1 February: never loaded so.
    assert outcome.status == "error"
    assert outcome.error == (
        "european.csv, row 14: Arrest Date '13/01/2019' is a date only day first, as are 7 more: "
        "its column writes day/month/year, and its dates whose day is 12 or less would be read "
        'month first; declare its form in a layout file (date_formats = ["%d/%m/%Y"] and '
        "--layout; docs/foia-ingest.md)")
    layout = tmp_path / "layout.toml"
    layout.write_text('date_formats = ["%d/%m/%Y"]\n')
    outcome = ingest([path], db, release="2019-02-01", layout=layout).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT min(apprehension_date), max(apprehension_date), count(*) "
                     "FROM foia_arrests") == [(datetime(2019, 1, 1), datetime(2019, 1, 20), 20)]


def test_a_stray_day_first_date_among_many_is_quarantined_not_fatal(tmp_path):
    lines = ["Arrest Date,Gender,Country of Citizenship,Arrest Method"]
    lines += [f"1/{day % 28 + 1}/2019,Male,MEXICO,Located" for day in range(199)]
    lines.append("13/01/2019,Male,MEXICO,Located")
    path = tmp_path / "stray.csv"
    path.write_text("\n".join(lines) + "\n")
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db, release="2019-02-01").files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT row_number, reason FROM ingest_quarantine") == [
        (201, "Arrest Date '13/01/2019' is not a date")]


def dated_csv(path, dataset: str, dates: list[str]):
    """A CSV whose key date is ISO, and whose other date column (a stint's book-out, an arrest's
    date of birth) holds `dates`."""
    header, key, other = {"stints": ("Book In Date,Book Out Date,Gender,Detention Facility Code",
                                     "2019-01-01", "{},Male,ABCDEF"),
                          "arrests": ("Arrest Date,Date of Birth,Gender,Arrest Method",
                                      "2019-01-01", "{},Male,Located")}[dataset]
    path.write_text("\n".join([header, *(f"{key},{other.format(d)}" for d in dates)]) + "\n")
    return path


@pytest.mark.parametrize(("dataset", "column", "header", "table"), [
    ("stints", "book_out", "Book Out Date", "foia_stints"),
    ("arrests", "birth_date", "Date of Birth", "foia_arrests")])
def test_any_date_column_written_day_first_fails_the_file_unless_declared(
        tmp_path, dataset, column, header, table):
    path = dated_csv(tmp_path / f"{dataset}.csv", dataset,
                     [f"{day:02d}/02/1990" for day in range(1, 21)])
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db, release="2019-02-01").files[0]
    # Read month first, 2 February would be 2 February only by chance: 5 February, 2 May.
    assert outcome.status == "error"
    assert outcome.error == (
        f"{dataset}.csv, row 14: {header} '13/02/1990' is a date only day first, as are 7 more: "
        "its column writes day/month/year, and its dates whose day is 12 or less would be read "
        'month first; declare its form in a layout file (date_formats = ["%d/%m/%Y"] and '
        "--layout; docs/foia-ingest.md)")
    assert query(db, "SELECT count(*) FROM ingest_sources") == [(0,)]
    layout = tmp_path / "layout.toml"
    layout.write_text('date_formats = ["%d/%m/%Y"]\n')
    outcome = ingest([path], db, release="2019-02-01", layout=layout).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, f"SELECT CAST(min({column}) AS DATE), CAST(max({column}) AS DATE), "
                     f"count({column}) FROM {table}") == [
        (date(1990, 2, 1), date(1990, 2, 20), 20)]


def test_a_few_day_first_dates_in_a_column_are_kept_in_unparsed_not_fatal(tmp_path):
    dates = [f"02/{day % 28 + 1:02d}/2019" for day in range(298)] + ["13/02/2019", "31/01/2019"]
    path = dated_csv(tmp_path / "stints.csv", "stints", dates)
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db, release="2019-04-01").files[0]
    assert outcome.status == "loaded", outcome.error
    assert outcome.accounting.rows_loaded == 300
    assert query(db, "SELECT source_row, unparsed FROM foia_stints WHERE book_out IS NULL") == [
        (300, ["book_out=13/02/2019"]), (301, ["book_out=31/01/2019"])]
    assert query(db, "SELECT count(book_out), min(book_out) FROM foia_stints") == [
        (298, datetime(2019, 2, 1))]


def resaved_real_production(source, target):
    """The real production as a requester might re-save it: the arrests split into a sheet per
    fiscal-year span, each under the title rows, the first with its headers spelled otherwise,
    the second with its header again in the middle; a hidden copy of some arrests; a data
    dictionary. The other sheets as they were."""
    book = openpyxl.load_workbook(source, read_only=True, data_only=True)
    sheets = {sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)]
              for sheet in book.worksheets}
    book.close()
    out = xlsxwriter.Workbook(target, {"constant_memory": True})
    day = out.add_format({"num_format": "mm/dd/yyyy"})

    def sheet(name, rows, hidden=False):
        written = out.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, datetime):
                    written.write_datetime(r, c, value, day)
                elif value is not None:
                    written.write(r, c, value)
        if hidden:
            written.hide()

    arrests = sheets.pop("Arrests")
    title, header, records = arrests[:6], arrests[6], arrests[7:]
    cut = next(i for i, row in enumerate(records) if row[0] >= datetime(2015, 10, 1))
    spelled = ["Apprehension Date And Time", "DATE OF\nBIRTH", *header[2:]]
    later, middle = records[cut:], (len(records) - cut) // 2
    sheet("Summary", sheets.pop("Summary"))
    sheet("Arrests FY2012-FY2015", [*title, spelled, *records[:cut]])
    sheet("Arrests FY2016-FY2019", [*title, header, *later[:middle], header, *later[middle:]])
    sheet("Sheet1", [header, *records[:500]], hidden=True)
    sheet("Data Dictionary", [["Field", "Definition", "Type"],
                              *[[h, f"the {h}", "text"] for h in header if h]])
    for name, rows in sheets.items():
        sheet(name, rows)
    out.close()
    return target


def test_the_real_production_resaved_otherwise_loads_the_same_records(tmp_path):
    files = sorted(REAL.glob("*.xlsx")) if REAL.is_dir() else []
    if not files:
        pytest.skip(f"the real ICE FOIA production is not here ({REAL}); set ICELEDGER_SHARED")
    path = resaved_real_production(files[0], tmp_path / "resaved.xlsx")
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert (outcome.accounting.rows_read, outcome.accounting.rows_loaded,
            outcome.accounting.quarantined_rows) == (96_274, 96_273, 1)
    assert summary_checks(db) == REAL_SUMMARY_AGREES
    assert query(db, "SELECT count(*), count(apprehension_date), count(birth_date) "
                     "FROM foia_arrests") == [(32_549, 32_549, 0)]
    assert query(db, "SELECT reason FROM ingest_quarantine") == [
        ("the header row again (files joined one under another?), not a record",)]
    assert ("resaved.xlsx, sheet 'Sheet1': hidden in the workbook, so not loaded; unhide it to "
            "load its rows") in outcome.warnings


def test_sheets_of_a_listed_layout_may_spell_and_order_its_header_otherwise(tmp_path):
    headers = list(next(layout.headers for layout in catalog().layouts
                        if layout.name == "arrests-2026-03"))
    row = {h: "" for h in headers} | {"Apprehension Date": "2024-01-02", "State": "TEXAS",
                                      "County": "DALLAS", "Anonymized Identifier": "A1"}
    second = [headers[1], headers[0], *headers[2:]]  # another order, then another case
    path = tmp_path / "arrests_20240301.xlsx"
    book = xlsxwriter.Workbook(path)
    for name, columns, spelled in [("Sheet1", headers, headers),
                                   ("Sheet2", second, [f"{h.upper()}  " for h in second])]:
        sheet = book.add_worksheet(name)
        sheet.write_row(0, 0, spelled)
        sheet.write_row(1, 0, [row[h] for h in columns])
    book.close()
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT source_sheet, apprehension_state, apprehension_county, person_id "
                     "FROM foia_arrests "
                     "ORDER BY source_sheet") == [("Sheet1", "TEXAS", "DALLAS", "A1"),
                                                  ("Sheet2", "TEXAS", "DALLAS", "A1")]


def test_classes_and_yes_no_in_other_case_and_punctuation_are_read(tmp_path):
    headers = list(next(layout.headers for layout in catalog().layouts
                        if layout.name == "arrests-2026-03"))
    spellings = [("1-Convicted Criminal", "yes", "Convicted Criminal", True),
                 ("2. PENDING CRIMINAL CHARGES", " no ", "Pending Criminal Charges", False),
                 ("other immigration violator", "y", "Other Immigration Violator", True),
                 ("4 Convicted Criminal", "Yes please", None, None)]
    path = tmp_path / "arrests_20240301.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, headers, restval="")
        writer.writeheader()
        for i, (criminality, yes_no, _, _) in enumerate(spellings):
            writer.writerow({"Apprehension Date": f"2024-01-0{i + 1}",
                             "Apprehension Criminality": criminality,
                             "Final Order Yes No": yes_no})
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT criminality, final_order FROM foia_arrests ORDER BY source_row") == [
        (criminality, yes_no) for _, _, criminality, yes_no in spellings]
    assert query(db, "SELECT unparsed FROM foia_arrests WHERE criminality IS NULL") == [
        (["criminality=4 Convicted Criminal", "final_order=Yes please"],)]


def test_records_without_their_key_date_load_with_a_warning_naming_them(tmp_path):
    rows = [arrest(date(2019, 10, 1)), arrest(None), arrest(None, **{"Arrest Date": "(b)(6)"})]
    path = write_production(tmp_path / "undated.xlsx", {"Arrests": (ARREST_HEADERS, rows)})
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT count(*), count(apprehension_date) FROM foia_arrests") == [(3, 1)]
    assert ("undated.xlsx: 2 arrests records have no apprehension_date (empty or redacted): "
            "loaded, but in no month or fiscal year, so no count by date includes them"
            ) in outcome.warnings


def test_gender_written_in_letters_or_any_case_is_read_as_ices_words(tmp_path):
    """Productions write `M`/`F`/`U` where ICE's releases write `Male`/`Female`/`Unknown`: one
    gender must not count as two (nor conflict with itself across datasets). A value none of
    the spellings knows is kept as written, never dropped."""
    written = ["M", "F", "U", "male", " FEMALE ", "Male", "X"]
    rows = [arrest(date(2019, 10, i + 1), Gender=g) for i, g in enumerate(written)]
    path = write_production(tmp_path / "genders.xlsx", {"Arrests": (ARREST_HEADERS, rows)})
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT gender, unparsed FROM foia_arrests ORDER BY source_row") == [
        ("Male", []), ("Female", []), ("Unknown", []), ("Male", []), ("Female", []),
        ("Male", []), ("X", [])]


def test_a_sheet_continuing_another_without_its_header_is_refused_saying_so(tmp_path):
    """A dataset past Excel's 1,048,576 rows goes on in the next sheet, often without the
    header. Its rows are not read under another sheet's header unasked: the file is refused
    with the way to load it, not as a sheet that resembles no dataset."""
    path = tmp_path / "continued.xlsx"
    book = xlsxwriter.Workbook(path)
    first, second = book.add_worksheet("Arrests"), book.add_worksheet("Arrests (2)")
    first.write_row(0, 0, ARREST_HEADERS)
    for sheet, start in ((first, 1), (second, 0)):
        for r in range(start, start + 3):
            sheet.write_row(r, 0, ["10/01/2019", "(b)(6)", "Male", "MEXICO", "(b)(7)e)",
                                   "KING COUNTY JAIL", "CAP Local Incarceration", ""])
    book.close()
    outcome = ingest([path], tmp_path / "w.duckdb").files[0]
    assert outcome.status == "error"
    assert outcome.error.startswith(
        "continued.xlsx, sheet 'Arrests (2)': no header row: if it continues sheet 'Arrests' "
        "(a sheet ends at row 1,048,576), copy that sheet's header row above its first row; "
        "not a FOIA release"), outcome.error


def test_a_workbook_in_the_1904_date_system_reads_its_dates(tmp_path):
    """Excel for the Mac once saved workbooks counting days from 1904: the same serial number
    is a date four years and a day later there, so read in the 1900 system every date moves."""
    path = tmp_path / "mac.xlsx"
    book = xlsxwriter.Workbook(path, {"date_1904": True})
    day = book.add_format({"num_format": "mm/dd/yyyy"})
    sheet = book.add_worksheet("Arrests")
    sheet.write_row(0, 0, ARREST_HEADERS)
    for r, when in enumerate([datetime(2012, 1, 1), datetime(2019, 7, 5, 13, 30)], start=1):
        sheet.write_datetime(r, 0, when, day)
        sheet.write_row(r, 1, list(arrest(when.date()).values())[1:])
    book.close()
    db = tmp_path / "w.duckdb"
    outcome = ingest([path], db).files[0]
    assert outcome.status == "loaded", outcome.error
    assert query(db, "SELECT apprehension_date FROM foia_arrests ORDER BY source_row") == [
        (datetime(2012, 1, 1),), (datetime(2019, 7, 5, 13, 30),)]


def test_a_workbook_whose_rows_and_cells_carry_no_references_loads_the_same(tmp_path):
    """Some writers leave out the `r` attribute of rows and cells (it is optional in the
    format): each row follows the one before, each cell the one before it. Every cell is
    filled here, and every row, as such a writer must write an empty `<c/>` or `<row/>` for a
    gap."""
    rows = [arrest(date(2019, 10, d), **{"Most Serious Conviction": "DUI"}) for d in (1, 2, 3)]
    written = write_production(tmp_path / "referenced.xlsx", {"Arrests": (ARREST_HEADERS, rows)},
                               titled=False)
    bare = tmp_path / "bare.xlsx"
    with zipfile.ZipFile(written) as source, zipfile.ZipFile(bare, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("xl/worksheets/"):
                data = re.sub(rb'(<(?:row|c)\b[^>]*?) r="[A-Z]*\d+"', rb"\1", data)
                assert b' r="' not in data
            target.writestr(info, data)
    loaded = []
    for path in (written, bare):
        db = tmp_path / f"{path.stem}.duckdb"
        outcome = ingest([path], db).files[0]
        assert outcome.status == "loaded", outcome.error
        loaded.append(query(db, "SELECT source_row, apprehension_date, gender, "
                                "apprehension_site_landmark, most_serious_conviction "
                                "FROM foia_arrests ORDER BY source_row"))
    assert loaded[0] == loaded[1]
    assert [row[0] for row in loaded[1]] == [2, 3, 4]


def test_a_sheet_copied_whole_beside_its_original_is_said(tmp_path):
    """A visible working copy of a sheet ("Arrests (2)") doubles every count of its dataset;
    without ICE's Summary sheet nothing else would say so. Sheets of other years are not
    copies."""
    rows = [arrest(date(2019, 10 + n % 3, 1 + n % 28)) for n in range(120)]
    later = [arrest(date(2020, 10 + n % 3, 1 + n % 28)) for n in range(120)]
    path = write_production(tmp_path / "copied.xlsx", {
        "Arrests": (ARREST_HEADERS, rows), "Arrests (2)": (ARREST_HEADERS, rows),
        "Arrests FY2021": (ARREST_HEADERS, later)})
    report = ingest([path], tmp_path / "w.duckdb")
    assert report.files[0].status == "loaded", report.files[0].error
    assert [note for note in report.derived.notes if "copy" in note] == [
        "copied.xlsx: sheets 'Arrests' and 'Arrests (2)' hold the same number of foia_arrests "
        "rows in every month (120 each): one sheet a copy of the other? Both are loaded and "
        "counted (remove one and load the file again)"]
