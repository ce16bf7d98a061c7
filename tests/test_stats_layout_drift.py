"""Layouts a later ICE release plausibly has: each built from a real shared workbook.

Every case copies a real workbook with openpyxl (values kept), changes one thing the way a later
release might (a sheet renamed, a table split by an empty row, a footnote marker on a label, a
sheet copied and hidden ...), and asserts that the figures are the same as the unchanged copy's,
or that the change is reported with one line naming the file, sheet and cell. The cases skip
when the shared data are absent.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from conftest import STATS_WORKBOOKS
from typer.testing import CliRunner

from iceledger.cli import app
from iceledger.sources.stats.checks import run_checks
from iceledger.sources.stats.parse import parse_workbook
from iceledger.tables import STATS_UNRECOGNISED

openpyxl = pytest.importorskip("openpyxl")

FY26 = "FY26_detentionStats02022026.xlsx"
DETENTION = "Detention FY26"
ICLOS = " ICLOS and Detainees"
# Where figures sit, not what they are: left out when two parses are compared.
PLACES = {"workbook", "sha256", "sheet", "cell_range", "cell"}


@pytest.fixture(scope="module")
def source() -> Path:
    path = STATS_WORKBOOKS / FY26
    if not path.exists():
        pytest.skip(f"real ICE workbooks not found under {STATS_WORKBOOKS} (set ICELEDGER_SHARED)")
    return path


@pytest.fixture(scope="module")
def plain(source, tmp_path_factory):
    """A plain openpyxl copy, parsed."""
    return parse_workbook(_copy(source, tmp_path_factory.mktemp("unchanged") / FY26))


@pytest.fixture(scope="module")
def unchanged(plain):
    """The figures of a plain openpyxl copy: the reference every variant is held to."""
    return _figures(plain)


def _copy(source: Path, target: Path, change=None) -> Path:
    book = openpyxl.load_workbook(source, data_only=True)
    if change is not None:
        change(book)
    book.save(target)
    return target


def _figures(parsed) -> dict[str, list[tuple]]:
    """Every table's rows without their places, in a stable order (values to 10 digits: openpyxl
    writes floats with fewer digits than Excel)."""
    figures = {}
    for name, table in parsed.tables.items():
        if name == "stats_workbooks":
            continue
        columns = [c for c in table.column_names if c not in PLACES]
        rows = table.select(columns).to_pylist()
        figures[name] = sorted((tuple(_rounded(row[c]) for c in columns) for row in rows),
                               key=repr)
    return figures


def _rounded(value):
    return float(f"{value:.10g}") if isinstance(value, float) else value


def _variant(source: Path, tmp_path: Path, change, name: str = FY26):
    path = _copy(source, tmp_path / name, change)
    return path, parse_workbook(path)


def _renamed(old: str, new: str):
    def change(book):
        book[old].title = new
    return change


def test_a_sheet_name_with_three_digits_after_fy_names_no_year(source, unchanged, tmp_path):
    # "FY261" is no fiscal year: it used to stop the whole ingest with a CellValueError.
    path, parsed = _variant(source, tmp_path, _renamed("ATD FY26 YTD", "ATD FY261"),
                            name="FY261_detentionStats02022026.xlsx")
    assert parsed.errors == []
    assert parsed.fiscal_year == 2026
    assert _figures(parsed) == unchanged
    result = CliRunner().invoke(app, ["ingest", "stats", str(path),
                                      "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 0, result.output
    assert "loaded FY261_detentionStats02022026.xlsx" in result.output


def _hidden_copy(edit=None):
    def change(book):
        copy = book.copy_worksheet(book[DETENTION])
        copy.title = f"{DETENTION} (2)"
        copy.sheet_state = "hidden"
        if edit is not None:
            edit(copy)
    return change


def test_a_hidden_copy_of_a_sheet_is_not_counted_twice(source, unchanged, tmp_path):
    # Before, every detention figure was loaded twice, without a word.
    _, parsed = _variant(source, tmp_path, _hidden_copy())
    assert parsed.errors == []
    figures = _figures(parsed)
    figures.pop(STATS_UNRECOGNISED)
    assert figures == unchanged
    # The copy's figures are kept, as printed, where every figure of no table goes.
    assert {row["sheet"] for row in parsed.tables[STATS_UNRECOGNISED].to_pylist()} == \
        {f"{DETENTION} (2)"}
    repeated = [w for w in parsed.warnings if "is printed again" in w]
    assert any(w.startswith(f"table stats_detained_now (FY2026) is printed again at {DETENTION} "
                            f"(2)!A18, first at {DETENTION}!A18, figure for figure") for w in
               repeated), repeated


def test_a_copy_with_other_figures_is_an_error_naming_both_places(source, unchanged, tmp_path):
    def edit(copy):
        copy["B21"] = copy["B21"].value + 100  # ICE's convicted criminals detained now

    _, parsed = _variant(source, tmp_path, _hidden_copy(edit))
    figures = _figures(parsed)
    figures.pop(STATS_UNRECOGNISED)
    assert figures == unchanged
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{DETENTION} (2)', cell A18: table stats_detained_now (FY2026) is "
        f"printed again at {DETENTION} (2)!A18, first at {DETENTION}!A18, with other figures; "
        f"the first is loaded, this one is kept in {STATS_UNRECOGNISED}: read both before "
        "trusting either"]


def test_the_court_appearances_printed_on_both_atd_sheets_load_once(source):
    # The release of 2024-11-15 prints FY2024's court appearances on its FY2025 ATD sheet and
    # again, cell for cell, on its EOFY24 sheet; both used to load.
    parsed = parse_workbook(source.parent / "20241116152220-FY24_detentionStats11152024.xlsx")
    rows = parsed.tables["stats_atd_court_appearances"].to_pylist()
    keys = [(r["fiscal_year"], r["hearing_type"], r["outcome"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r["sheet"] for r in rows if r["fiscal_year"] == 2024} == {"ATD FY25 YTD"}
    assert sum(r["fiscal_year"] == 2024 for r in rows) == 6  # two hearing types, 3 outcomes


def _parted(sheet: str, row: int, rows: int = 1, last_row: int = 300, last_column: str = "AX"):
    """Everything of `sheet` from `row` down moved `rows` lower: empty rows part the table."""
    def change(book):
        page = book[sheet]
        for merged in list(page.merged_cells.ranges):
            page.unmerge_cells(str(merged))
        page.move_range(f"A{row}:{last_column}{last_row}", rows=rows)
    return change


@pytest.mark.parametrize(("sheet", "row", "rows"), [
    (DETENTION, 59, 1),  # book-outs by release reason, between two reasons
    (DETENTION, 61, 2),  # ... inside a reason's criminality rows, two empty rows
    (DETENTION, 96, 1),  # ADP, between CBP's and ICE's groups
    (DETENTION, 190, 1),  # the stateless detained, a facility list
    ("Facilities FY26", 100, 1),  # the facilities list
])
def test_a_table_parted_by_empty_rows_reads_whole(source, unchanged, tmp_path, sheet, row, rows):
    # Before, the table ended at the first empty row: the rest went to stats_unrecognised with
    # a warning the command does not print, and the table loaded in part.
    _, parsed = _variant(source, tmp_path, _parted(sheet, row, rows))
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


def _cells(sheet: str, values: dict):
    def change(book):
        page = book[sheet]
        for cell, value in values.items():
            page[cell] = value(page[cell].value) if callable(value) else value
    return change


def test_footnote_marks_as_superscripts_are_no_part_of_a_label(source, unchanged, tmp_path):
    # Before, "Criminality¹" over the row labels refused the book-outs table, and "Total²" or
    # "Convicted Criminal¹" quarantined their rows.
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, {
        "B37": "Criminality¹", "A20": "Total²", "A21": "Convicted Criminal¹",
        "B40": "Convicted Criminal³", "J19": "Oct¹", "B21": lambda v: f"{v:,}¹"}))
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


def test_captions_and_headers_may_use_the_abbreviations_ice_defines(source, unchanged, tmp_path):
    # ADP, ALOS and ALIP are defined on the Footnotes sheet; a caption using them used to send
    # its table to stats_unrecognised with a warning alone.
    change = _cells(DETENTION, {
        "A90": "ICE ADP by Arresting Agency, Month and Criminality: FY2026",
        "A107": "ICE ALOS by Arresting Agency, Month and Criminality: FY2026",
        "A124": "ICE ADP by Facility Type and Month: FY2026",
        "A130": "ICE ALOS by Facility Type and Month: FY2026",
        "A136": "ICE ALOS Adult Facility Type by Month and Arresting Agency: FY2026"})
    atd = _cells("ATD FY26 YTD", {
        "A27": "Active ATD Participants and ALIP, FY26,  as of 01/24/2026, by AOR and Technology",
        "C28": "ALIP", "C18": "Average Length in Program"})
    facilities = _cells("Facilities FY26", {"A10": "Facility Name", "I10": "ALOS FY26"})

    def every(book):
        for one in (change, atd, facilities):
            one(book)

    _, parsed = _variant(source, tmp_path, every)
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


def test_a_known_sheet_with_none_of_its_tables_is_an_error(source, tmp_path):
    # The facilities list headed by a word the layout does not know: before, a warning the
    # command does not print, and no facility loaded.
    _, parsed = _variant(source, tmp_path,
                         _cells("Facilities FY26", {"A10": "Detention Facility"}))
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet 'Facilities FY26': none of its known tables found (a caption or header "
        f"reworded? see stats_tables.toml); its figures are kept in {STATS_UNRECOGNISED}"]
    assert "stats_facilities" not in parsed.tables
    kept = parsed.tables[STATS_UNRECOGNISED].to_pylist()
    assert {row["sheet"] for row in kept} == {"Facilities FY26"} and len(kept) > 3000


@pytest.mark.parametrize(("old", "new", "tables"), [
    ("Monthly Bond Statistics", "Bond Statistics", "stats_bond"),
    ("Semiannual", "Semi-Annual", "stats_semiannual, stats_tps_countries"),
    ("Vulnerable & Special Population", "Special & Vulnerable Population",
     "stats_segregation_vulnerable"),
    ("FY26 Monthly Segregation", "FY26 Restrictive Housing", "stats_segregation_monthly"),
    (" ICLOS and Detainees", "Length of Stay", "stats_iclos, stats_iclos_detainees"),
])
def test_a_renamed_sheet_is_searched_for_every_captioned_table(source, unchanged, tmp_path,
                                                                old, new, tables):
    # Before, a sheet whose name matched no table's `sheets` pattern was read as of no known
    # kind: every table on it went to stats_unrecognised with a warning alone.
    _, parsed = _variant(source, tmp_path, _renamed(old, new))
    assert parsed.errors == []
    assert _figures(parsed) == unchanged
    assert f"sheet {new.strip()!r} is of no known kind; its tables were found by their " \
           f"captions: {tables}" in parsed.warnings


@pytest.mark.parametrize("name", ["FOOTNOTES", "Footnote", "Foot notes "])
def test_the_footnotes_sheet_dates_the_tables_whatever_its_spelling(source, unchanged,
                                                                    tmp_path, name):
    # Before, "Footnote" was a sheet of no known kind and its dating lines went unread: every
    # table dated by a footnote took the IIDS line's date instead.
    def change(book):
        book["Footnotes"].title = "renamed"
        book["renamed"].title = name

    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


@pytest.mark.parametrize("header", ["FY2026 Total", "FY26 Total", "Grand Total", "YTD",
                                    "Total FY2026", "FY 2026 YTD"])
def test_the_fiscal_year_total_column_may_be_headed_otherwise(source, unchanged, tmp_path,
                                                              header):
    # Before, each of these refused the month table with "expected a month name".
    _, parsed = _variant(source, tmp_path,
                         _cells(DETENTION, {"V19": header, "O37": header, "N91": header}))
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


def test_another_years_total_beside_the_months_is_an_error(source, unchanged, tmp_path):
    # Before, a column "FY2025" beside FY2026's months and total was loaded as a second FY2026
    # total: two figures for one agency, without a word.
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, {
        "W19": "FY2025", "W20": 158000, "W21": 20000, "W22": 138000}))
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{DETENTION}', cell W19: table stats_book_ins: unexpected column "
        "header: 'FY2025' is a total of FY2025, not of the table's FY2026"]
    assert "stats_book_ins_fy" not in parsed.tables
    kept = {row["cell"] for row in parsed.tables[STATS_UNRECOGNISED].to_pylist()}
    assert {"J21", "V21", "W20", "W21", "W22"} <= kept


def test_the_command_names_figures_no_table_claims(source, tmp_path):
    # A table ICE added (here: a caption no spec knows) loads only as printed; the command
    # used to count it among "N warnings" alone.
    path, _ = _variant(source, tmp_path, _cells(
        DETENTION, {"A90": "ICE Average Daily Headcount by Arresting Agency: FY2026"}))
    result = CliRunner().invoke(app, ["ingest", "stats", str(path),
                                      "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 0, result.output
    assert f"unrecognised {FY26}: 1 block(s) of figures in no known table, the first: " \
           f"{DETENTION}!B92:N103: 156 figure(s) under 'ICE Average Daily Headcount by " \
           "Arresting Agency: FY2026' match no table" in " ".join(result.output.split())


def test_a_header_over_no_figures_does_not_refuse_its_table(source, unchanged, tmp_path):
    # A note typed in the header row beside the table (or a column not yet filled) used to
    # refuse the whole table as "unexpected column header".
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, {"H19": "see note 3"}))
    assert parsed.errors == []
    assert _figures(parsed) == unchanged
    assert f"{FY26}, sheet '{DETENTION}', cell H19: table stats_detained_now: header over no " \
           "figures ignored (unrecognised agency label 'see note 3')" in parsed.warnings


def _checks(parsed, table: str, check: str) -> list[dict]:
    return [r for r in run_checks(parsed).to_pylist()
            if r["table"] == table and r["check"] == check]


def _new_book_ins_agency(total_adds_up: bool):
    """An agency HSI printed under ICE and CBP in the book-ins by month (I20:V22), its
    figures added to the Total row when `total_adds_up`."""
    def change(book):
        page = book[DETENTION]
        page["I23"] = "HSI"
        for column, figure in zip("JKLMV", (11, 12, 13, 14, 50)):
            page[f"{column}23"] = figure
            if total_adds_up:
                page[f"{column}20"] = page[f"{column}20"].value + figure
    return change


def test_a_new_agency_row_loads_as_its_own_and_the_checks_add_it_in(source, plain, unchanged,
                                                                     tmp_path):
    # Before, a label of a closed vocabulary ICE had not printed (HSI beside ICE and CBP) was
    # quarantined with its figures, and the Total no longer added up.
    _, parsed = _variant(source, tmp_path, _new_book_ins_agency(total_adds_up=True))
    assert parsed.errors == [] and parsed.quarantined == plain.quarantined
    figures = _figures(parsed)
    for table, added in (("stats_book_ins", 14 + 11 + 12 + 13), ("stats_book_ins_fy", 50)):
        rows = figures.pop(table)
        hsi = [row for row in rows if "HSI" in row]
        assert sum(row[-1] or 0 for row in hsi) == added  # every HSI figure, as printed
        # The other agencies' figures are unmoved; the Total moves by HSI's figures alone.
        before = {row[:-1]: row[-1] for row in unchanged[table]}
        after = {row[:-1]: row[-1] for row in rows if "HSI" not in row}
        assert after.keys() == before.keys()
        assert sum(v or 0 for v in after.values()) - sum(v or 0 for v in before.values()) \
            == added
        assert {k for k in after if after[k] != before[k]} <= {k for k in after if "Total" in k}
    assert figures == {k: v for k, v in unchanged.items()
                       if k not in ("stats_book_ins", "stats_book_ins_fy")}
    assert f"{FY26}, sheet '{DETENTION}', cell I23: table stats_book_ins: new agency 'HSI', " \
           "none of stats_tables.toml's, loaded as a category of its own; the add-up checks " \
           "count it among the parts" in parsed.warnings
    added_up = _checks(parsed, "stats_book_ins", "ICE + CBP = Total")
    assert added_up and {r["status"] for r in added_up} == {"pass"}
    assert any("CBP + ICE + HSI" in r["detail"] for r in added_up), added_up
    assert {r["status"] for r in _checks(parsed, "stats_book_ins",
                                         "months add to fiscal-year total")} == {"pass"}
    known = [(r["table"], r["status"], r["location"], r["observed"])
             for r in run_checks(parsed).to_pylist() if r["check"] == "every category a known one"]
    assert known == [("stats_book_ins", "warn", f"{DETENTION}!J23", 12.0),
                     ("stats_book_ins_fy", "warn", f"{DETENTION}!V23", 1.0)]


def test_the_command_names_a_new_category(source, tmp_path):
    path, _ = _variant(source, tmp_path, _new_book_ins_agency(total_adds_up=False))
    result = CliRunner().invoke(app, ["ingest", "stats", str(path),
                                      "--warehouse", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"new categories {FY26}: 1 value(s) no layout declares, loaded as their own, the " \
           f"first: {FY26}, sheet '{DETENTION}', cell I23: table stats_book_ins: new agency " \
           "'HSI'" in output
    # The Total printed without HSI's figures fails the check in four months and the year.
    assert "checks of 1 loaded workbooks: 5 failed, 2 warnings" in output


def test_a_new_agency_whose_figures_do_not_add_up_fails_the_check(source, tmp_path):
    _, parsed = _variant(source, tmp_path, _new_book_ins_agency(total_adds_up=False))
    assert parsed.errors == []
    failed = [r for r in _checks(parsed, "stats_book_ins", "ICE + CBP = Total")
              if r["status"] == "fail"]
    assert [(r["location"], r["observed"] - r["expected"]) for r in failed] == [
        (f"{DETENTION}!J20 vs J21, J22, J23", -11.0), (f"{DETENTION}!K20 vs K21, K22, K23", -12.0),
        (f"{DETENTION}!L20 vs L21, L22, L23", -13.0), (f"{DETENTION}!M20 vs M21, M22, M23", -14.0)]


def _new_column(first: str, last: str, headers: tuple, figures: dict[int, tuple],
                total_column: str):
    """New columns at `first` (the columns from there to `last` moved right to make room),
    headed `headers`, holding `figures` by row; each row's total gets the first figure."""
    def change(book):
        page = book[DETENTION]
        row, column = page[first].row, page[first].column
        page.move_range(f"{first}:{last}", cols=len(headers))
        for offset, header in enumerate(headers):
            page.cell(row, column + offset, header)
        for figure_row, values in figures.items():
            for offset, value in enumerate(values):
                page.cell(figure_row, column + offset, value)
            total = page[f"{total_column}{figure_row}"]
            total.value = (total.value or 0) + values[0]
    return change


@pytest.mark.parametrize(("table", "change", "value"), [
    # A new criminality class in the book-ins by facility type (A28:E31).
    ("stats_book_ins_by_facility_type",
     _new_column("E28", "E31", ("Unknown",), {29: (7,), 30: (2,), 31: (5,)}, "F"), "Unknown"),
    # A new arresting agency, with its share beside it as ICE prints ICE's, in the currently
    # detained (A19:F23).
    ("stats_detained_now",
     _new_column("F19", "F23", ("HSI", "Percent HSI"),
                 {20: (9, 0.1), 21: (2, 0.1), 22: (3, 0.1), 23: (4, 0.1)}, "H"), "HSI"),
])
def test_a_new_column_value_loads_as_its_own_category(source, plain, unchanged, tmp_path,
                                                      table, change, value):
    # Before, the whole table was refused with "unexpected column header": every figure of it
    # lost on the release that first printed the new value.
    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == [] and parsed.quarantined == plain.quarantined
    figures = _figures(parsed)
    rows = figures.pop(table)
    assert figures == {k: v for k, v in unchanged.items() if k != table}
    new = [row for row in rows if value in row]
    assert len(new) == (3 if value == "Unknown" else 4)
    old = {row[:-1]: row[-1] for row in rows if value not in row}
    before = {row[:-1]: row[-1] for row in unchanged[table]}
    assert old.keys() == before.keys()
    assert {k for k in old if old[k] != before[k]} <= {k for k in old if "Total" in k}
    assert any(f"table {table}: new {'criminality' if value == 'Unknown' else 'agency'} "
               f"{value!r}" in w for w in parsed.warnings)
    statuses = {r["status"] for r in run_checks(parsed).to_pylist()
                if r["table"] == table and r["check"] != "every category a known one"}
    assert statuses == {"pass"}


def test_a_respelt_value_is_the_value_it_stands_for(source, plain, unchanged, tmp_path):
    # Case, spacing, punctuation, a plural or a footnote mark make no new category.
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, {
        "A21": "convicted-criminals*", "A22": "PENDING  CRIMINAL CHARGE", "I21": "C.B.P.",
        "B28": "Convicted Criminals [1]", "A31": "ADULTS", "A128": "adult ²"}))
    assert parsed.errors == [] and parsed.quarantined == plain.quarantined
    assert not [w for w in parsed.warnings if "new " in w]
    assert _figures(parsed) == unchanged


def test_a_new_group_and_a_new_class_in_a_table_of_agency_groups(source, plain, unchanged,
                                                                  tmp_path):
    # ADP by agency, month and criminality (A91:V103) heads each agency's group
    # "<agency> Average". A group "HSI Average" printed before the grand "Average" opens a group
    # of its own; an unknown label among ICE's classes is a new class of ICE.
    def change(book):
        _parted(DETENTION, 100, 5)(book)  # everything from the grand Average down moved
        page = book[DETENTION]
        labels = ("HSI Average", "Convicted Criminal", "Pending Criminal Charges",
                  "Other Immigration Violator", "Unknown")
        for offset, label in enumerate(labels):
            page.cell(100 + offset, 1, label)
            page.cell(100 + offset, 2, 3.0 if offset == 0 else 1.0)
        page.cell(104, 1, "Stateless")  # within HSI's group, after its three classes

    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == [] and parsed.quarantined == plain.quarantined
    figures = _figures(parsed)
    rows = figures.pop("stats_adp")
    figures["stats_adp_fy"] = [row for row in figures["stats_adp_fy"] if "HSI" not in row]
    assert figures == {k: v for k, v in unchanged.items() if k != "stats_adp"}
    new = sorted(row for row in rows if "HSI" in row and row[-1] is not None)
    assert [(row[-3], row[-1]) for row in new] == [
        ("Convicted Criminal", 1.0), ("Other Immigration Violator", 1.0),
        ("Pending Criminal Charges", 1.0), ("Stateless", 1.0), ("Total", 3.0)]
    assert sorted(row for row in rows if "HSI" not in row) == unchanged["stats_adp"]
    assert any("new agency 'HSI'" in w and "cell A100" in w for w in parsed.warnings)
    assert any("new criminality 'Stateless'" in w and "cell A104" in w
               for w in parsed.warnings)
    # HSI's October figures were not added to the grand Average: the agencies' check, which
    # counts HSI among the parts, fails there (and only there).
    failed = [r["detail"] for r in _checks(parsed, "stats_adp", "ICE + CBP = Total")
              if r["status"] == "fail"]
    assert failed and all("month 2025-10" in d and "CBP + ICE + HSI" in d for d in failed)


@pytest.mark.parametrize("label", ["Subtotal", "ICE and CBP Total", "Percent HSI", "2026"])
def test_a_label_that_reads_as_a_total_is_no_new_category(source, plain, tmp_path, label):
    # Counted among the parts, a subtotal or a share would double them or mix shares into
    # counts: the row is quarantined with its cell, as before.
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, {"I23": label, "J23": 5}))
    assert parsed.errors == []
    refused = [q for q in parsed.quarantined if q not in plain.quarantined]
    assert {q.cell for q in refused} == {f"{column}23" for column in "JKLMNOPQRSTUV"}
    assert {q.reason for q in refused} == {
        f"stats_book_ins: unrecognised agency label {label!r}"
        + ("" if label == "2026" else ": it reads as a total or a share, which cannot be a "
           "new category")}


@pytest.mark.parametrize(("ice", "cbp"), [("% ICE", "% CBP"), ("Percent of ICE", "Percent of CBP"),
                                          ("ICE %", "CBP %")])
def test_the_shares_beside_the_counts_are_skipped_however_headed(source, unchanged, tmp_path,
                                                                 ice, cbp):
    # The shares of ICE and CBP are recomputable from the counts; headed otherwise than
    # "Percent ICE" they used to refuse the currently-detained table.
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, {"C19": ice, "E19": cbp}))
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


def test_footnotes_reworded_out_of_every_rule_are_a_warning(source, tmp_path):
    # The tables are then dated by the next source, which says so in `as_of_source`; before,
    # nothing said that the Footnotes sheet had stopped dating anything.
    def change(book):
        for row in book["Footnotes"].iter_rows():
            for cell in row:
                if isinstance(cell.value, str):
                    cell.value = cell.value.replace("updated through", "current as of") \
                        .replace("are a snapshot as", "reflect a snapshot taken on")

    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == []
    assert "Footnotes: none of its lines dates a table (reworded? see [[footnote_dates]] in " \
           "stats_tables.toml); the tables are dated by their IIDS line or the file name" \
           in parsed.warnings
    assert {row["as_of_source"] for row in parsed.tables["stats_adp"].to_pylist()} == {"iids"}


@pytest.mark.parametrize("gap", [0, 1])
def test_a_total_row_under_the_facility_list_is_no_facility(source, unchanged, tmp_path, gap):
    # Before, a "Total" row printed under the list (right below it, or after an empty row)
    # was loaded as a facility named Total: every sum over facilities counted it twice.
    def change(book):
        page = book["Facilities FY26"]
        row = 236 + gap
        page.cell(row, 1, "Total")
        for column in range(14, 18):  # the four criminality-by-sex ADP columns, N..Q
            page.cell(row, column, sum(page.cell(r, column).value or 0 for r in range(11, 236)))

    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == []
    figures = _figures(parsed)
    assert len(figures.pop(STATS_UNRECOGNISED)) == 4
    assert figures == unchanged
    assert parsed.unrecognised == [
        f"Facilities FY26!N{236 + gap}:Q{236 + gap}: 4 figure(s) under 'no caption' match no "
        f"table of stats_tables.toml; kept in {STATS_UNRECOGNISED}"]


def test_month_headers_typed_as_dates_read_as_their_months(source, unchanged, tmp_path):
    # A later release may print its month headers as date cells shown as "Oct-25".
    def change(book):
        page = book[DETENTION]
        for offset, column in enumerate("JKLMNOPQRSTU"):
            month = 10 + offset
            page[f"{column}19"] = datetime(2025 + (month > 12), (month - 1) % 12 + 1, 1)

    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


_MONTH_NAMES = {datetime(2000, m, 1).strftime(f): m for m in range(1, 13) for f in ("%b", "%B")}
_MONTH_FORMS = {
    "date": lambda y, m: datetime(y, m, 1),
    "numbered": lambda y, m: f"{m:02d}/{y}",
    "year-first": lambda y, m: f"{y}-{m:02d}",
    "named": lambda y, m: f"{datetime(y, m, 1):%B} {y}",
}


def _months_with_years(form):
    """Every month header with its year: on the detention sheet (FY2026's months; the parole
    tables' rows are FY2024..FY2026 under one header row) and on the ICLOS sheet, whose year
    row is printed once over each year's months."""
    def change(book):
        for column in book[DETENTION].iter_cols():
            for cell in column:
                month = _MONTH_NAMES.get(str(cell.value).strip())
                if month is not None:
                    cell.value = form(2025 if month >= 10 else 2026, month)
        page = book[ICLOS]
        for row in page.iter_rows(min_row=2):
            year, previous = None, 0
            for cell in row:
                above = page.cell(cell.row - 1, cell.column).value
                month = _MONTH_NAMES.get(str(cell.value).strip())
                if isinstance(above, int):
                    year = above
                elif month is not None and year is not None and month < previous:
                    year += 1  # January after December, its year not printed
                if month is not None and year is not None:
                    cell.value, previous = form(year, month), month
    return change


@pytest.mark.parametrize("form", _MONTH_FORMS.values(), ids=_MONTH_FORMS.keys())
def test_month_headers_with_their_years_in_every_month_table(source, unchanged, tmp_path, form):
    # Before, the parole tables (one row per fiscal year) and both ICLOS tables were refused
    # (`expected a month name, found '2025-10-01'`), and `10/2025` or `2025-10` refused every
    # month table. A header over rows of several fiscal years gives only its month: the row
    # gives the year.
    _, parsed = _variant(source, tmp_path, _months_with_years(form))
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


def test_an_iclos_month_whose_year_contradicts_its_year_row_is_refused(source, tmp_path):
    # The year row says 2023 over a month printed as January 2024: which year the figures
    # belong to, the sheet does not say.
    _, parsed = _variant(source, tmp_path, _cells(ICLOS, {"B5": datetime(2024, 1, 1)}))
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{ICLOS.strip()}', cell B4: table stats_iclos: unexpected column header: "
        "expected a year, month and 'mid'/'end', found no year, 2024-01-01, mid"]


def test_a_figure_merged_into_its_neighbour_is_an_error_naming_its_cell(source, plain,
                                                                       tmp_path):
    # Merging B92:C92 (October's and November's CBP ADP) keeps only October's: November's
    # figure is no longer in the file. Before, its place loaded as blank without a word.
    _, parsed = _variant(source, tmp_path, lambda book: book[DETENTION].merge_cells("B92:C92"))
    assert parsed.warnings == plain.warnings
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{DETENTION}', cell C92: table stats_adp: the cell lies under the merged "
        "cells B92:C92, which keep only B92's value: 1 figure cell(s) of the merge loaded as "
        "blank (a figure there, if ICE printed one, is no longer in the file)"]
    before, after = (
        {row["cell_range"]: row["adp"] for row in p.tables["stats_adp"].to_pylist()}
        for p in (plain, parsed))
    assert before["C92"] is not None and after.pop("C92") is None
    before.pop("C92")
    assert after == before


def test_a_grand_total_row_is_the_total(source, plain, unchanged, tmp_path):
    # Before, "Grand Total" over a criminality, agency or facility-type table quarantined the
    # table's Total row.
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, {
        "A20": "Grand Total", "I20": "GRAND TOTAL", "A29": "Grand Total"}))
    assert parsed.errors == [] and parsed.quarantined == plain.quarantined
    assert _figures(parsed) == unchanged


@pytest.mark.parametrize(("cells", "quarantined", "reason"), [
    # The next fiscal year's first month beside FY2026's: loaded as FY2026's, it was in no
    # fiscal year's total.
    ({"W19": "Oct 2026", "W20": 7, "W21": 3, "W22": 4}, {"W20", "W21", "W22"},
     "stats_book_ins: the column 'Oct 2026' is a month of FY2027, not of the table's FY2026; "
     "not loaded"),
    # A month column copied beside the table and hidden.
    ({"W19": "Oct", "W20": 1, "W21": 2, "W22": 3}, {"W20", "W21", "W22"},
     "stats_book_ins: the column 'Oct' again, first at J19"),
    # An agency's row pasted again below the table.
    ({"I23": "ICE", "J23": 5}, {f"{column}23" for column in "JKLMNOPQRSTUV"},
     "stats_book_ins: the row agency ICE again, first at row 22"),
    # A measure's header printed twice: the figures under the second used to replace the
    # first's, blanks included.
    ({"K28": "Total", "K29": 1}, {"K29"},
     "stats_book_outs_by_facility_type: the column 'Total' again, first at J28"),
])
def test_a_figure_of_no_place_in_its_table_is_quarantined(source, plain, unchanged, tmp_path,
                                                        cells, quarantined, reason):
    # Before, both figures loaded (a month, an agency counted twice by every sum), or the month
    # loaded under the wrong fiscal year, silently.
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, cells))
    assert parsed.errors == []
    assert _figures(parsed) == unchanged
    repeats = [q for q in parsed.quarantined if q not in plain.quarantined]
    assert {q.cell for q in repeats} == quarantined
    assert {q.reason for q in repeats} == {
        reason if reason.endswith("not loaded") else
        f"{reason}: two figures for one place; this one not loaded"}


@pytest.mark.parametrize(("sheet", "cell", "table", "location"), [
    # The share of hearings attended (a row of measures: its cells E9:G9).
    ("ATD FY26 YTD", "G9", "stats_atd_court_appearances", "E9:G9"),
    ("Monthly Bond Statistics", "L6", "stats_bond", "L6"),  # book-outs with bond posted
])
def test_a_share_printed_in_percentage_points_fails_a_check(source, tmp_path, sheet, cell,
                                                            table, location):
    # Every archived workbook prints shares as fractions (0.977); one printed as 97.7 loaded
    # 100 times too large without a word.
    _, parsed = _variant(source, tmp_path, _cells(sheet, {cell: lambda v: round(v * 100, 1)}))
    [failed] = [r for r in run_checks(parsed).to_pylist()
                if r["check"] == "shares between 0 and 1"]
    assert (failed["table"], failed["status"], failed["observed"]) == (table, "fail", 1.0)
    assert failed["location"] == f"{sheet}!{location}"


def test_a_hidden_sheet_of_another_year_is_read_and_said_to_be_hidden(source, tmp_path):
    # A stale sheet left hidden in the file: its figures are ICE's as saved, but nobody who
    # opens the workbook sees them. Before, nothing said it was hidden.
    def change(book):
        stale = book.copy_worksheet(book[DETENTION])
        stale.title, stale.sheet_state = "Detention FY25", "hidden"
        for row in stale.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and "FY2026" in cell.value:
                    cell.value = cell.value.replace("FY2026", "FY2025")

    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == []
    [said] = [w for w in parsed.warnings if "hidden" in w]
    assert said.startswith("sheet 'Detention FY25' is hidden in the workbook; its tables were "
                           "read as saved (a reader of the workbook does not see them): stats_adp,")
    assert {r["fiscal_year"] for r in parsed.tables["stats_detained_now"].to_pylist()} == \
        {2025, 2026}


@pytest.mark.parametrize("sheet", ["Header", "Footnotes"])
def test_figures_on_a_sheet_of_prose_are_kept_and_reported(source, unchanged, tmp_path, sheet):
    # No archived release prints a figure on its Header or Footnotes sheet, which were skipped
    # unread: a summary a later release puts there was lost without a word.
    path, parsed = _variant(source, tmp_path, _cells(sheet, {
        "K60": "Currently detained, all agencies", "L60": 70766}))
    assert parsed.errors == []
    figures = _figures(parsed)
    [kept] = figures.pop(STATS_UNRECOGNISED)
    assert kept[-1] == 70766
    assert figures == {k: v for k, v in unchanged.items() if k != STATS_UNRECOGNISED}
    assert f"sheet {sheet!r}, a sheet of prose, holds figures; read as a sheet of no known " \
           "kind" in parsed.warnings
    assert parsed.unrecognised and parsed.unrecognised[0].startswith(f"{sheet}!L60:")


def test_a_new_release_reason_joins_the_total_not_a_subtotal(source, plain, unchanged, tmp_path):
    # Book-outs by release reason (A37:O86): a reason printed after "Other", its October and
    # fiscal-year figures added to the Total row. Before, release reasons were kept as printed
    # without a word; now a new one is named, and counted against the Total but not against
    # Bonded Out (of which Bond Set by ICE and by IJ are the parts).
    def change(book):
        _parted(DETENTION, 87, 4)(book)
        page = book[DETENTION]
        page["A87"] = "Humanitarian Release"
        for row, (label, figure) in enumerate((("Total", 10), ("Convicted Criminal", 3),
                                               ("Pending Criminal Charges", 3),
                                               ("Other Immigration Violator", 4)), start=87):
            page[f"B{row}"], page[f"C{row}"], page[f"O{row}"] = label, figure, figure
        for column in "CO":
            page[f"{column}38"] = page[f"{column}38"].value + 10

    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == [] and parsed.quarantined == plain.quarantined
    assert parsed.new_categories == [
        f"{FY26}, sheet '{DETENTION}', cell A87: table stats_book_outs: new release_reason "
        "'Humanitarian Release', none of stats_tables.toml's, loaded as a category of its own; "
        "the add-up checks count it among the parts"]
    new = [r for r in parsed.tables["stats_book_outs"].to_pylist()
           if r["release_reason"] == "Humanitarian Release" and r["book_outs"] is not None]
    assert sorted((r["criminality"], r["book_outs"]) for r in new) == [
        ("Convicted Criminal", 3.0), ("Other Immigration Violator", 4.0),
        ("Pending Criminal Charges", 3.0), ("Total", 10.0)]
    checks = [r for r in run_checks(parsed).to_pylist() if r["table"] == "stats_book_outs"
              and r["check"] != "every category a known one"]
    assert {r["status"] for r in checks} == {"pass"}
    october = [r["detail"] for r in checks if r["check"] == "release reasons add to total"
               and "month 2025-10, criminality Total" in r["detail"]]
    assert len(october) == 1 and "Humanitarian Release" in october[0]
    assert not [r for r in checks if r["check"] == "subtotal release reasons add up"
                and "Humanitarian" in r["detail"]]


def _header_on_two_rows(sheet: str, header: str, group: str | None = None, labels: int = 1,
                        down: int = 1, merge: bool = True, block: str | None = None,
                        note: str | None = None):
    """The table whose header is `header` ("I19:V19") with a row put above that header: the
    table `block` moved down a row, or (no block) everything from the header down.

    With a `group`, the header is printed over two rows: the first `labels` cells (the label
    headers) and the last `down` (the fiscal-year total) merged down over both rows, stored in
    the upper cell; `group` over the cells between, merged across, stored in the leftmost.
    With a `note`, the row above the header holds that note alone, merged across. Unmerged
    (`merge` False), the cells hold the same values without the merge: a header typed so.
    """
    def change(book):
        page = book[sheet]
        first, row, last, _ = openpyxl.utils.range_boundaries(header)
        if block is None:
            _parted(sheet, row, 1)(book)
        else:
            left, top, right, bottom = openpyxl.utils.range_boundaries(block)
            for merged in list(page.merged_cells.ranges):  # move_range leaves merges behind
                if merged.min_col <= right and merged.max_col >= left \
                        and merged.min_row <= bottom + 1 and merged.max_row >= top:
                    page.unmerge_cells(str(merged))
            page.move_range(block, rows=1)
        upper, lower = row, row + 1
        if note is not None:
            page.cell(upper, first, note)
            if merge:
                page.merge_cells(start_row=upper, start_column=first, end_row=upper,
                                 end_column=last)
            return
        for column in [*range(first, first + labels), *range(last - down + 1, last + 1)]:
            page.cell(upper, column, page.cell(lower, column).value)
            page.cell(lower, column).value = None
            if merge:
                page.merge_cells(start_row=upper, start_column=column, end_row=lower,
                                 end_column=column)
        page.cell(upper, first + labels, group)
        if merge:
            page.merge_cells(start_row=upper, start_column=first + labels, end_row=upper,
                             end_column=last - down)
    return change


BOOK_INS = dict(sheet=DETENTION, header="I19:V19", block="I19:V22")  # beside detained-now
ADP = dict(sheet=DETENTION, header="A91:N91")
BOOK_OUTS = dict(sheet=DETENTION, header="A37:O37", labels=2)
ALOS_ADULT = dict(sheet=DETENTION, header="A137:N137")
ATD_TECHNOLOGY = dict(sheet="ATD FY26 YTD", header="A8:C8", block="A8:C15", down=0)


@pytest.mark.parametrize("variant", [
    # Months under a merged group, the label header and the fiscal-year total merged down.
    dict(BOOK_INS, group="Month"),
    dict(BOOK_INS, group="Month", merge=False),
    dict(ADP, group="FY2026"),
    dict(ADP, group="Months"),
    dict(BOOK_OUTS, group="Month"),  # two label headers, both merged down
    dict(ALOS_ADULT, group="FY2026", merge=False),
    # Measure headers under a group.
    dict(ATD_TECHNOLOGY, group="FY26"),
    dict(ATD_TECHNOLOGY, group="Active Population", merge=False),
    # A caption-like note on the row above the header.
    dict(ADP, note="Average number of people detained each day, by month"),
    dict(BOOK_INS, note="Initial book-ins (persons)", merge=False),
], ids=lambda variant: f"{variant['header']}-{variant.get('group') or 'note'}"
                       f"{'' if variant.get('merge', True) else '-unmerged'}")
def test_a_header_printed_over_two_rows_reads_as_one(source, plain, unchanged, tmp_path,
                                                     variant):
    # Before, the cell under the group (or beside the merged label) had no header of its own:
    # "values in a column with no header", and the table's figures went to stats_unrecognised.
    _, parsed = _variant(source, tmp_path, _header_on_two_rows(**variant))
    assert parsed.errors == [] and parsed.quarantined == plain.quarantined
    assert parsed.unrecognised == plain.unrecognised
    assert _figures(parsed) == unchanged


def _two_groups_of_the_same_months(book):
    """Book-ins with the first six months under `ICE` and the last six, headed Oct..Mar again,
    under `CBP`."""
    _header_on_two_rows(**BOOK_INS, group="ICE", merge=False)(book)
    _cells(DETENTION, {"P19": "CBP", **{f"{column}20": month for column, month in
                                        zip("PQRSTU", ("Oct", "Nov", "Dec", "Jan", "Feb", "Mar"))
                                        }})(book)


@pytest.mark.parametrize(("change", "cell"), [
    # A group naming another fiscal year than the table's says what the months under it do not.
    (_header_on_two_rows(**BOOK_INS, group="FY2025"), "K19"),
    # The same months under two groups: which group a figure belongs to cannot be dropped.
    (_two_groups_of_the_same_months, "K19"),
    # A header cell left blank over a real first row of figures.
    (_cells(DETENTION, {"J19": None}), "J19"),
])
def test_two_rows_that_are_not_one_header_keep_their_error(source, plain, tmp_path, change,
                                                           cell):
    _, parsed = _variant(source, tmp_path, change)
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{DETENTION}', cell {cell}: table stats_book_ins: values in a column "
        "with no header"]
    assert "stats_book_ins" not in parsed.tables
    kept = {row["cell"] for row in parsed.tables[STATS_UNRECOGNISED].to_pylist()}
    assert {"J21", "V22"} <= kept or {"J22", "V23"} <= kept


def _header_on_three_rows(band: str, group: str = "Month", labels: int = 1):
    """The ADP table's header printed over three rows: `band` over `group` over the months,
    unmerged, the label header(s) and the fiscal-year total on the top row, empty below."""
    def change(book):
        _header_on_two_rows(**dict(ADP, labels=labels), group=group, merge=False)(book)
        _parted(DETENTION, 91, 1)(book)
        page = book[DETENTION]
        for column in [*range(1, 1 + labels), 14]:
            page.cell(91, column, page.cell(92, column).value)
            page.cell(92, column).value = None
        page.cell(91, 1 + labels, band)
    return change


def _header_rows_parted(**variant):
    """A header printed over two rows (as `_header_on_two_rows`) with an empty row between."""
    def change(book):
        _header_on_two_rows(**variant)(book)
        _, row, _, _ = openpyxl.utils.range_boundaries(variant["header"])
        _parted(variant["sheet"], row + 1, 1)(book)
    return change


@pytest.mark.parametrize("change", [
    _header_rows_parted(**ADP, group="FY2026"),
    _header_rows_parted(**ADP, group="Month", merge=False),
    _header_rows_parted(**BOOK_OUTS, group="Month"),
    _header_rows_parted(**ADP, note="Average number of people detained each day, by month"),
    _header_on_three_rows(band="FY2026"),
    _header_on_three_rows(band="Average Daily Population", group="FY26"),
], ids=["gap-group", "gap-unmerged", "gap-two-labels", "gap-note", "three-rows",
        "three-rows-year-in-middle"])
def test_a_header_over_parted_or_three_rows_reads_as_one(source, plain, unchanged, tmp_path,
                                                         change):
    # Before, the row under the blank row (or the third row) was taken for the table's first
    # row: "values in a column with no header", and the figures went to stats_unrecognised.
    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == [] and parsed.quarantined == plain.quarantined
    assert parsed.unrecognised == plain.unrecognised
    assert _figures(parsed) == unchanged


def test_a_band_naming_another_year_keeps_the_error(source, plain, tmp_path):
    # A band of FY2025 over FY2026's months says what the months do not: refused as before.
    _, parsed = _variant(source, tmp_path, _header_on_three_rows(band="FY2025"))
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{DETENTION}', cell C91: table stats_adp: values in a column with no "
        "header"]
    assert "stats_adp" not in parsed.tables


FACILITIES = "Facilities FY26"


def _facility_headers(merged_down=(), groups: dict | None = None, lower: dict | None = None):
    """The facilities list's header (row 10, under ICE's group row 9) with the headers of the
    columns `merged_down` (1-based) moved up into the group row, as a header merged down over
    both rows is stored; `groups` and `lower` retype cells of the two rows."""
    def change(book):
        page = book[FACILITIES]
        for merged in list(page.merged_cells.ranges):
            page.unmerge_cells(str(merged))
        for column in merged_down:
            page.cell(9, column, page.cell(10, column).value)
            page.cell(10, column).value = None
        for cell, value in {**(groups or {}), **(lower or {})}.items():
            page[cell] = value
    return change


@pytest.mark.parametrize("change", [
    # Name .. ALOS merged down over the group row: the anchor `Name` on the upper row.
    _facility_headers(merged_down=range(1, 10)),
    # The ALOS column alone merged down: a gap in the row of `Name`.
    _facility_headers(merged_down=[9]),
    # A group completing its column's name.
    _facility_headers(groups={"I9": "ALOS"}, lower={"I10": "FY26"}),
    # One group over all the ADP columns, as FY2019's and FY2020's lists nearly print it.
    _facility_headers(groups={"J9": "Average Daily Population", "N9": None, "R9": None,
                              "V9": None}),
], ids=["own-headers-merged-down", "alos-merged-down", "alos-over-fy26", "adp-group"])
def test_a_facilities_header_over_two_rows_reads_as_one(source, plain, unchanged, tmp_path,
                                                        change):
    # Before, the first three were refused: `header lacks alos, male_crim, ...`, and every
    # facility's figures went to stats_unrecognised.
    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == [] and parsed.unrecognised == plain.unrecognised
    assert _figures(parsed) == unchanged


def test_a_facilities_group_that_names_no_column_keeps_the_error(source, tmp_path):
    # `Length of stay` over `FY26` names no column either way: refused, naming the header.
    _, parsed = _variant(source, tmp_path, _facility_headers(
        groups={"I9": "Length of stay"}, lower={"I10": "FY26"}))
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{FACILITIES}', cell A10:AA10: table stats_facilities: header lacks "
        "alos"]


@pytest.mark.parametrize(("cell", "reworded", "subject"), [
    ("B79", "FY2026 YTD ICE Book-ins data reflect activity through 01/25/2026.",
     "ICE Book-ins data"),
    ("B104", "ICE ICLOS and Detainees Data: last refreshed 01/28/2026.",
     "ICLOS and Detainees Data"),
])
def test_one_dating_line_reworded_is_a_warning_naming_it(source, tmp_path, cell, reworded,
                                                         subject):
    # The other lines still date their tables, so the sheet-wide warning does not fire; before,
    # the reworded line's tables were dated by the next source without a word.
    _, parsed = _variant(source, tmp_path, _cells("Footnotes", {cell: reworded}))
    assert parsed.errors == []
    assert [w for w in parsed.warnings if "footnote_dates" in w] == [
        f"Footnotes!{cell}: no [[footnote_dates]] rule of stats_tables.toml reads the line "
        f"{reworded!r}, which dates {subject!r} (reworded?), while other lines date their "
        "tables; its tables are dated by the next source that speaks for them (as_of_source "
        "says which)"]


_SLASHED_DATE = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b")
_DATE_FORMS = {
    "long": lambda d: f"{d:%B} {d.day}, {d.year}",
    "abbreviated": lambda d: f"{d:%b}. {d.day} {d.year}",
    "day-first": lambda d: f"{d.day} {d:%B} {d.year}",
    "iso": lambda d: f"{d:%Y-%m-%d}",
    "dashed": lambda d: f"{d.month}-{d.day}-{d.year}",
}


def _dates_written(form):
    """Every date typed in a line of text (the IIDS source lines, the Footnotes' dating lines,
    the captions' "as of" dates) written in another form, as a release may after a new hand or
    template."""
    def change(book):
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str):
                        cell.value = _SLASHED_DATE.sub(
                            lambda m: form(datetime(int(m[3]), int(m[1]), int(m[2]))), cell.value)
    return change


@pytest.mark.parametrize("form", _DATE_FORMS.values(), ids=_DATE_FORMS.keys())
def test_dates_written_in_another_form_date_the_same_tables(source, plain, unchanged, tmp_path,
                                                            form):
    # Before, only 1/25/2026 was read: every table fell to the next source that spoke for it (a
    # table dated 2026-01-25 by its footnote took the file name's 2026-02-02), the transgender
    # table lost its caption's date, and a single reworded footnote line did so without a word.
    _, parsed = _variant(source, tmp_path, _dates_written(form))
    assert parsed.errors == [] and parsed.warnings == plain.warnings
    assert parsed.as_of_date == plain.as_of_date
    assert _figures(parsed) == unchanged


def test_a_figure_typed_with_a_european_thousands_separator_is_quarantined(source, plain,
                                                                         tmp_path):
    # ICE's 17,141 convicted criminals detained now, typed "17.141" as a workbook saved in a
    # European locale writes it: before, loaded as 17.141 people without a word.
    _, parsed = _variant(source, tmp_path, _cells(DETENTION, {
        "B21": lambda v: f"{int(v):,}".replace(",", ".")}))
    assert parsed.errors == []
    assert [(q.cell, q.reason) for q in parsed.quarantined if q not in plain.quarantined] == [
        ("B21", "stats_detained_now: the text '17.141' reads as a decimal or, with a European "
                "thousands separator, as a whole number a thousand times larger: not loaded")]
    loaded = parsed.tables["stats_detained_now"].to_pylist()
    assert len(loaded) == len(plain.tables["stats_detained_now"]) - 1
    assert all(row["cell_range"] != "B21" for row in loaded)


def _adp_columns(order: list[str]):
    """The ADP table's columns B..N (the months, then the fiscal-year total) printed in the
    order of `order`, header and figures together."""
    def change(book):
        page = book[DETENTION]
        for merged in list(page.merged_cells.ranges):
            page.unmerge_cells(str(merged))
        for row in range(91, 104):
            values = [page[f"{column}{row}"].value for column in order]
            for column, value in zip("BCDEFGHIJKLMN", values):
                page[f"{column}{row}"] = value
    return change


def _numbering_column(book):
    """A column of row numbers inserted at A: every table of the sheet moves to B, the ADP
    table's rows numbered."""
    page = book[DETENTION]
    for merged in list(page.merged_cells.ranges):
        page.unmerge_cells(str(merged))
    page.insert_cols(1)
    page["A91"] = "#"
    for number, row in enumerate(range(92, 104), 1):
        page[f"A{row}"] = number


@pytest.mark.parametrize("change", [
    _adp_columns(list("MLKJIHGFEDCBN")),  # the months newest first
    _adp_columns(list("BCDEFGNHIJKLM")),  # the fiscal-year total among the months
    _adp_columns(list("NBCDEFGHIJKLM")),  # the total left of the months
], ids=["months-reversed", "total-among-months", "total-left"])
def test_columns_read_by_their_headers_not_their_places(source, plain, unchanged, tmp_path,
                                                        change):
    # Each column is read by its header (a month, the fiscal-year total), wherever it stands.
    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == [] and parsed.unrecognised == plain.unrecognised
    assert _figures(parsed) == unchanged


def test_a_caption_merged_over_part_of_its_table_reads_whole(source, unchanged, tmp_path):
    def change(book):
        book[DETENTION].merge_cells("A90:D90")

    _, parsed = _variant(source, tmp_path, change)
    assert parsed.errors == []
    assert _figures(parsed) == unchanged


def test_a_numbering_column_left_of_the_tables_is_reported_not_read(source, unchanged,
                                                                     tmp_path):
    # The tables read from their captions, now in B; the row numbers are no table's figures.
    _, parsed = _variant(source, tmp_path, _numbering_column)
    assert parsed.errors == []
    figures = _figures(parsed)
    assert figures.pop(STATS_UNRECOGNISED) == [
        (2026, datetime(2026, 1, 25).date(), "footnote", "#", None, None, float(number))
        for number in sorted(range(1, 13), key=lambda n: repr(float(n)))]
    assert figures == unchanged
    assert parsed.unrecognised == [
        f"{DETENTION}!A92:A103: 12 figure(s) under '#' match no table of stats_tables.toml; "
        f"kept in {STATS_UNRECOGNISED}"]


def test_a_numbering_column_inside_a_table_refuses_it(source, tmp_path):
    def change(book):
        page = book[DETENTION]
        for merged in list(page.merged_cells.ranges):
            page.unmerge_cells(str(merged))
        page.move_range("A91:N103", cols=1)
        page["A91"] = "No."
        for number, row in enumerate(range(92, 104), 1):
            page[f"A{row}"] = number

    _, parsed = _variant(source, tmp_path, change)
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{DETENTION}', cell A91: table stats_adp: unexpected header 'No.' over "
        "the row labels (expected /^Agency$/)"]
    assert "stats_adp" not in parsed.tables


def test_a_table_continued_on_another_sheet_is_an_error_naming_both(source, tmp_path):
    # The ADP table's last six rows moved to a new sheet under the caption "... (continued)":
    # the first part loads, the continuation is refused with one line naming both places.
    def change(book):
        page = book[DETENTION]
        rest = book.create_sheet(f"{DETENTION} (2)")
        rest["A1"] = f"{page['A90'].value} (continued)"
        for column in range(1, 15):
            rest.cell(2, column, page.cell(91, column).value)
            for offset, row in enumerate(range(98, 104)):
                rest.cell(3 + offset, column, page.cell(row, column).value)
                page.cell(row, column).value = None

    _, parsed = _variant(source, tmp_path, change)
    assert [str(e) for e in parsed.errors] == [
        f"{FY26}, sheet '{DETENTION} (2)', cell A1: table stats_adp (FY2026) is printed again "
        f"at {DETENTION} (2)!A1, first at {DETENTION}!A90, with other figures; the first is "
        f"loaded, this one is kept in {STATS_UNRECOGNISED}: read both before trusting either"]
