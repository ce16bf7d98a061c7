"""The detention-statistics parser on SYNTHETIC workbooks written with xlsxwriter.

Every workbook here is invented test data (the file names say SYNTHETIC): small tables shaped
like ICE's, moved around, renamed, widened and broken, to show that tables are found by caption
and header wherever they sit, and that bad input becomes one located error, never a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pytest
import xlsxwriter
from hypothesis import given
from hypothesis import strategies as st

from iceledger.errors import SourceError
from iceledger.sources.stats.parse import parse_workbook
from iceledger.sources.stats.sheet_tables import _count_inside

MONTHS = ["Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep"]
CRIMINALITY = ["Convicted Criminal", "Pending Criminal Charges", "Other Immigration Violator"]
AS_OF = "Data Source: ICE Integrated Decision Support (IIDS), 03/15/2025"

Table = list[list[object]]  # caption row, header row(s), data rows; None is an empty cell


def month_values(base: int) -> list[float]:
    """Twelve monthly figures; April onwards are zero, as ICE prints months not yet reported."""
    return [float(base + i) if i < 6 else 0.0 for i in range(12)]


def detained_now() -> Table:
    return [
        ["ICE Currently Detained by Criminality and Arresting Agency: FY2025"],
        ["Criminality", "ICE", "Percent ICE", "CBP", "Percent CBP", "Total"],
        ["Total", 600.0, 0.6, 400.0, 0.4, 1000.0],
        ["Convicted Criminal", 300.0, 0.75, 100.0, 0.25, 400.0],
        ["Pending Criminal Charges", 200.0, 0.5, 200.0, 0.5, 400.0],
        ["Other Immigration Violator", 100.0, 0.5, 100.0, 0.5, 200.0],
    ]


def book_ins() -> Table:
    return [
        ["ICE Initial Book-Ins by Arresting Agency and Month: FY2025"],
        ["Agency", *MONTHS, "Total"],
        ["Total", *month_values(3000), 18015.0],
        ["CBP", *month_values(1000), 6015.0],
        ["ICE  ", *month_values(2000), 12015.0],  # the stray spaces ICE's files carry
    ]


def adp() -> Table:
    rows: Table = [
        ["ICE Average Daily Population by Arresting Agency, Month and Criminality: FY2025"],
        ["Agency", *MONTHS, "FY Overall"],
    ]
    for number, group in enumerate(["CBP Average", "ICE Average  ", "Average "]):
        rows.append([group, *month_values(100 * (number + 1)), 50.0 * (number + 1)])
        for offset, label in enumerate(CRIMINALITY):
            rows.append([label, *month_values(10 * (number + 1) + offset), 5.0])
    return rows


def book_outs() -> Table:
    rows: Table = [
        ["ICE Final Book Outs by Release Reason, Month and Criminality: FY2025"],
        ["Release Reason", "Criminality", *MONTHS, "Total"],
        ["Total", None, *month_values(500), 3015.0],
    ]
    for reason_number, reason in enumerate(["Bonded Out", "Paroled"]):
        rows.append([reason, "Total", *month_values(40 + reason_number), 255.0])
        for offset, label in enumerate(CRIMINALITY):
            rows.append([None, label, *month_values(10 + offset), 75.0])
    return rows


def atd_technology() -> Table:
    return [
        ["ATD Active Population Counts and Daily Cost by Technology"],
        ["Technology", "Count", "Daily Tech Cost"],
        ["SmartLINK", 1000.0, 950.5],
        ["Ankle Monitor", "2,000", "4,100.25"],  # numbers typed as text
        ["Total", 3000.0, 5050.75],
        ["Data from BI Inc. Participants Report, 3.15.2025"],  # a source note, not a row
    ]


FACILITY_HEADER = ["Name", "Address", "City", "State", "Zip", "AOR", "Type Detailed",
                   "Male/Female", "FY25 ALOS", "Level A", "Level B", "Level C", "Level D",
                   "Male Crim", "Male Non-Crim", "Female Crim", "Female Non-Crim",
                   "Last Inspection End Date"]


def facilities(extra_column: bool = False) -> Table:
    header = FACILITY_HEADER + (["Beds Funded"] if extra_column else [])
    rows = [
        ["SYNTHETIC COUNTY JAIL", "1 MAIN ST", "SPRINGFIELD", "IL", 62701.0, "CHI", "IGSA",
         "Male", 20.5, 10.0, 5.0, 3.0, 2.0, 8.0, 9.0, 1.0, 2.0, date(2024, 9, 19)],
        ["SYNTHETIC PROCESSING CENTER", "2 SIDE RD", "SAN JUAN", "PR", 939.0, "MIA", "SPC",
         "Female/Male", 31.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, "-", "New Facility"],
    ]
    if extra_column:
        rows = [row + [75.0] for row in rows]
    return [[AS_OF], header, *rows]


Placement = tuple[Table, int, int]  # a table and its top-left cell (0-based row, column)


def write_workbook(path: Path, sheets: Mapping[str, list[Placement]]) -> Path:
    book = xlsxwriter.Workbook(str(path))
    header = book.add_worksheet("Header")
    header.write(0, 0, "SYNTHETIC test workbook: invented figures, not ICE data")
    for name, placements in sheets.items():
        sheet = book.add_worksheet(name)
        for table, top, left in placements:
            for r, row in enumerate(table):
                for c, value in enumerate(row):
                    if isinstance(value, date):
                        sheet.write_datetime(top + r, left + c, value,
                                             book.add_format({"num_format": "m/d/yyyy"}))
                    elif value is not None:
                        sheet.write(top + r, left + c, value)
    book.close()
    return path


def standard_sheets(detention: str = "Detention FY25", gap: int = 2, column: int = 0,
                    extra_column: bool = False) -> dict[str, list[Placement]]:
    """ICE's usual arrangement: tables down the Detention sheet, two of them side by side."""
    tables = [book_ins(), adp(), book_outs()]
    placements = [(detained_now(), 7, column), (book_ins(), 7, column + 8)]
    top = 7 + len(detained_now()) + gap
    for table in tables[1:]:
        placements.append((table, top, column))
        top += len(table) + gap
    return {
        "ATD FY25 YTD": [(atd_technology(), 6, 0)],
        detention: placements,
        "Facilities FY25": [(facilities(extra_column), 4, 0)],
    }


def sheets_with(index: int, table: Table) -> dict[str, list[Placement]]:
    """The standard sheets with the index-th Detention table replaced, in the same place."""
    sheets = standard_sheets()
    _, top, left = sheets["Detention FY25"][index]
    sheets["Detention FY25"][index] = (table, top, left)
    return sheets


def parse(tmp_path: Path, sheets, name: str = "SYNTHETIC_FY25_detentionStats03252025.xlsx"):
    return parse_workbook(write_workbook(tmp_path / name, sheets))


def rows(parsed, table: str, **where) -> list[dict]:
    found = parsed.tables[table].to_pylist()
    return [r for r in found if all(r[k] == v for k, v in where.items())]


def only(parsed, table: str, **where) -> dict:
    (row,) = rows(parsed, table, **where)
    return row


EXPECTED_TABLES = {
    "stats_detained_now", "stats_book_ins", "stats_book_ins_fy", "stats_adp", "stats_adp_fy",
    "stats_book_outs", "stats_book_outs_fy", "stats_atd_technology", "stats_facilities",
    "stats_workbooks",
}


LAYOUTS = {
    "as ICE prints it": standard_sheets(),
    "moved right and down": standard_sheets(column=3, gap=5),
    "blank rows between tables": standard_sheets(gap=9),
    "sheet renamed with spaces": standard_sheets(detention=" Detention FY2025 YTD "),
    "extra facilities column": standard_sheets(extra_column=True),
    "one table per sheet position reversed": {
        "Facilities FY25": [(facilities(), 0, 2)],
        "Detention FY25": [(book_outs(), 0, 0), (adp(), 30, 0), (detained_now(), 60, 20),
                           (book_ins(), 70, 1)],
        "ATD FY25 YTD": [(atd_technology(), 40, 40)],
    },
}


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
def test_every_table_is_found_wherever_it_sits(tmp_path, layout):
    parsed = parse(tmp_path, LAYOUTS[layout])
    assert [str(e) for e in parsed.errors] == []
    assert set(parsed.tables) == EXPECTED_TABLES
    assert parsed.fiscal_year == 2025
    # Currently detained: one row per (agency, criminality), percentages not loaded.
    assert only(parsed, "stats_detained_now", agency="ICE", criminality="Total")["detained"] == 600
    assert only(parsed, "stats_detained_now", agency="Total",
                criminality="Other Immigration Violator")["detained"] == 200
    assert len(rows(parsed, "stats_detained_now")) == 12
    # Months by fiscal year; the stray spaces of "ICE  " are gone; totals kept apart.
    assert only(parsed, "stats_book_ins", agency="ICE", month=date(2024, 11, 1))["book_ins"] == 2001
    assert only(parsed, "stats_book_ins_fy", agency="CBP")["book_ins"] == 6015
    # Agency groups: "ICE Average" rows are ICE's total, the rows below it ICE's classes.
    assert only(parsed, "stats_adp", agency="ICE", criminality="Total",
                month=date(2024, 10, 1))["adp"] == 200
    assert only(parsed, "stats_adp", agency="Total", criminality="Pending Criminal Charges",
                month=date(2025, 1, 1))["adp"] == 31 + 3
    assert only(parsed, "stats_adp_fy", agency="CBP", criminality="Total")["adp"] == 50
    # Merged release-reason cells: the reason carries down to its criminality rows.
    assert only(parsed, "stats_book_outs", release_reason="Paroled",
                criminality="Pending Criminal Charges", month=date(2024, 12, 1))["book_outs"] == 13
    assert only(parsed, "stats_book_outs", release_reason="Total", criminality="Total",
                month=date(2024, 10, 1))["book_outs"] == 500
    # Numbers typed as text; the source note under the table is not a row.
    assert only(parsed, "stats_atd_technology", technology="Ankle Monitor")["daily_tech_cost"] \
        == 4100.25
    assert len(rows(parsed, "stats_atd_technology")) == 3


@pytest.mark.parametrize("layout", LAYOUTS, ids=list(LAYOUTS))
def test_rows_read_balance_loaded_and_quarantined(tmp_path, layout):
    parsed = parse(tmp_path, LAYOUTS[layout])
    loaded = sum(t.num_rows for name, t in parsed.tables.items() if name != "stats_workbooks")
    assert parsed.rows_loaded == loaded
    assert parsed.rows_read == parsed.rows_loaded + len(parsed.quarantined)


def test_every_value_names_its_cell(tmp_path):
    parsed = parse(tmp_path, standard_sheets(column=3))
    # detained_now starts at D8 (row 7, column 3): ICE's Total is two rows down, one across.
    row = only(parsed, "stats_detained_now", agency="ICE", criminality="Total")
    assert (row["sheet"], row["cell_range"]) == ("Detention FY25", "E10")
    assert row["workbook"] == "SYNTHETIC_FY25_detentionStats03252025.xlsx"
    assert row["sha256"] == parsed.sha256
    facility = only(parsed, "stats_facilities", name="SYNTHETIC COUNTY JAIL")
    assert facility["cell_range"] == "A7:R7"


def test_facilities_keep_every_column_and_sum_their_adp(tmp_path):
    parsed = parse(tmp_path, standard_sheets(extra_column=True))
    jail = only(parsed, "stats_facilities", name="SYNTHETIC COUNTY JAIL")
    assert jail["adp"] == 8 + 9 + 1 + 2
    assert jail["alos"] == 20.5
    assert jail["beds_funded"] == 75
    assert jail["last_inspection_end_date"] == date(2024, 9, 19)
    center = only(parsed, "stats_facilities", name="SYNTHETIC PROCESSING CENTER")
    assert center["zip"] == "00939"  # a number cell lost Puerto Rico's leading zeros
    assert center["female_non_crim"] == 0  # "-"
    assert center["last_inspection_end_date"] is None
    assert center["notes"] == "last_inspection_end_date: New Facility"


def test_months_after_the_data_date_are_not_zero(tmp_path):
    parsed = parse(tmp_path, standard_sheets())
    assert parsed.as_of_date == date(2025, 3, 15)
    march = only(parsed, "stats_book_ins", agency="CBP", month=date(2025, 3, 1))
    april = only(parsed, "stats_book_ins", agency="CBP", month=date(2025, 4, 1))
    assert march["book_ins"] == 1005
    assert april["book_ins"] is None  # printed 0 for a month not yet reported
    assert any("placeholders" in w for w in parsed.warnings)


def test_workbook_description(tmp_path):
    parsed = parse(tmp_path, standard_sheets(),
                   name="20250330001816-FY25_detentionStats03252025.xlsx")
    (row,) = parsed.tables["stats_workbooks"].to_pylist()
    assert row["file_date"] == date(2025, 3, 25)
    assert row["archive_date"] == date(2025, 3, 30)
    assert row["as_of_date"] == date(2025, 3, 15)
    assert row["fiscal_year"] == 2025
    assert "stats_adp@Detention FY25!A16:N29" in row["tables_found"]
    assert row["rows_loaded"] == parsed.rows_loaded


@pytest.mark.parametrize("name, expected", [
    ("FY25_detentionStats09242025.xlsx", date(2025, 9, 24)),
    ("20230317113040-FY23_detentionStats230316.xlsx", date(2023, 3, 16)),
    ("20210625005023-FY21_detentionStats062421.xlsx", date(2021, 6, 24)),
    ("20210310184436-FY21_detention-stats_0301.xlsx", date(2021, 3, 1)),
    ("20220318014755-FY22_detentionStats03172022b.xlsx", date(2022, 3, 17)),
    ("FY19-detentionstats.xlsx", None),
])
def test_report_date_from_the_file_name(tmp_path, name, expected):
    parsed = parse(tmp_path, standard_sheets(), name=name)
    assert parsed.file_date == expected


def test_sheet_fiscal_year_wins_over_a_wrong_file_name(tmp_path):
    parsed = parse(tmp_path, standard_sheets(), name="SYNTHETIC_FY24_detentionStats11152024.xlsx")
    assert parsed.fiscal_year == 2025
    assert any("file name says FY2024" in w for w in parsed.warnings)


def test_a_table_with_an_unexpected_header_is_one_error_and_the_rest_loads(tmp_path):
    # A header no agency spells and that cannot be a new one (it reads as a total); a new
    # agency's name is loaded as a category of its own (tests/test_stats_layout_drift.py).
    broken = detained_now()
    broken[1][1] = "All Agencies"
    parsed = parse(tmp_path, sheets_with(0, broken))
    (error,) = parsed.errors
    assert isinstance(error, SourceError)
    assert (error.location.sheet, error.location.cell) == ("Detention FY25", "B9")
    assert "stats_detained_now" in str(error) and "All Agencies" in str(error)
    assert "stats_detained_now" not in parsed.tables
    assert parsed.tables["stats_adp"].num_rows == 144


def test_a_wrong_label_header_is_reported_at_its_cell(tmp_path):
    broken = adp()
    broken[1][0] = "Agencies and more"
    parsed = parse(tmp_path, sheets_with(2, broken))
    assert len(parsed.errors) == 1
    assert "over the row labels" in str(parsed.errors[0])
    assert "stats_adp" not in parsed.tables and "stats_book_outs" in parsed.tables


def test_unreadable_values_are_quarantined_with_their_cell(tmp_path):
    broken = detained_now()
    broken[3][1] = "three hundred"
    parsed = parse(tmp_path, sheets_with(0, broken))
    assert parsed.errors == []
    (bad,) = parsed.quarantined
    assert (bad.sheet, bad.row_number, bad.cell) == ("Detention FY25", 11, "B11")
    assert "three hundred" in bad.reason
    assert len(rows(parsed, "stats_detained_now")) == 11
    assert parsed.rows_read == parsed.rows_loaded + 1


def test_an_unknown_label_is_a_new_category_not_guessed(tmp_path):
    # Not taken for a class it might mean: kept as printed, with a warning naming its cell.
    broken = adp()
    broken[4][0] = "Unknown Class"  # CBP's second class
    parsed = parse(tmp_path, sheets_with(2, broken))
    assert parsed.quarantined == [] and parsed.errors == []
    rows = [r for r in parsed.tables["stats_adp"].to_pylist()
            if r["criminality"] == "Unknown Class"]
    assert [r["agency"] for r in rows] == ["CBP"] * 12
    assert any("new criminality 'Unknown Class'" in w for w in parsed.warnings)


def test_an_unknown_label_that_reads_as_a_total_is_quarantined(tmp_path):
    broken = adp()
    broken[4][0] = "Subtotal"
    parsed = parse(tmp_path, sheets_with(2, broken))
    assert len(parsed.quarantined) == 13  # twelve months and the fiscal-year figure
    assert all("unrecognised criminality label 'Subtotal': it reads as a total" in q.reason
               for q in parsed.quarantined)


def test_an_unknown_table_is_kept_in_the_generic_table_with_a_warning(tmp_path):
    sheets = standard_sheets()
    sheets["Detention FY25"].append(([["ICE Something New: FY2025"], ["Kind", "Count"],
                                      ["A", 1.0]], 80, 0))
    parsed = parse(tmp_path, sheets)
    assert parsed.errors == []
    [kept] = parsed.tables["stats_unrecognised"].to_pylist()
    assert (kept["cell"], kept["caption"], kept["row_labels"], kept["column_labels"],
            kept["value"]) == ("B83", "ICE Something New: FY2025", "A", "Count", 1.0)
    assert "Detention FY25!B83:B83: 1 figure(s) under 'ICE Something New: FY2025' match no " \
           "table of stats_tables.toml; kept in stats_unrecognised" in parsed.warnings


def test_a_missing_sheet_is_reported(tmp_path):
    sheets = standard_sheets()
    del sheets["Facilities FY25"]
    parsed = parse(tmp_path, sheets)
    assert any("missing sheet" in str(e) and "Facilities" in str(e) for e in parsed.errors)
    assert "stats_adp" in parsed.tables


@pytest.mark.parametrize("spelling", ["{}_FY25{}", "  {}  FY25{}  ", "{}__FY25{}"])
def test_sheet_names_read_the_same_whatever_their_spaces_and_underscores(tmp_path, spelling):
    # A copy saved by hand may write "Detention_FY25" for ICE's "Detention FY25": the same
    # sheet, read by the same specs, with nothing reported missing.
    usual = parse(tmp_path, standard_sheets())
    respelled = {spelling.format(*name.rsplit(" FY25", 1)): placements
                 for name, placements in standard_sheets().items()}
    (tmp_path / "respelled").mkdir()
    parsed = parse(tmp_path / "respelled", respelled)
    assert parsed.errors == []
    assert not any("of no known kind" in w for w in parsed.warnings)
    for table in ("stats_detained_now", "stats_book_ins", "stats_adp", "stats_facilities",
                  "stats_atd_technology"):
        assert parsed.tables[table].drop_columns(["sheet", "sha256"]).equals(
            usual.tables[table].drop_columns(["sheet", "sha256"])), table


def test_an_unknown_sheet_is_a_warning(tmp_path):
    sheets = standard_sheets()
    sheets["Sheet1"] = [([["anything"], ["x", 1.0]], 0, 0)]
    parsed = parse(tmp_path, sheets)
    assert parsed.errors == []
    assert "sheet 'Sheet1' is of no known kind; its figures are kept in stats_unrecognised" \
        in parsed.warnings
    [kept] = parsed.tables["stats_unrecognised"].to_pylist()
    assert (kept["sheet"], kept["cell"], kept["row_labels"], kept["value"]) == \
        ("Sheet1", "B2", "x", 1.0)


def test_a_table_without_its_header_borrows_the_one_above(tmp_path):
    month_table = [["Facilities", "Placement Count"], ["SYNTHETIC JAIL", 5.0],
                   ["Grand Total", 5.0]]
    sheets = standard_sheets()
    sheets["Monthly Segregation"] = [
        ([["January 2025"], *month_table], 2, 0),
        ([["February 2025"], *month_table[1:]], 8, 0),  # ICE dropped this header row
    ]
    parsed = parse(tmp_path, sheets)
    assert parsed.errors == []
    feb = rows(parsed, "stats_segregation_monthly", month=date(2025, 2, 1))
    assert {(r["facility"], r["placements"]) for r in feb} == {("SYNTHETIC JAIL", 5),
                                                               ("Total", 5)}


@pytest.mark.parametrize("content", [b"", b"not a workbook at all", b"PK\x03\x04broken zip"])
def test_a_file_that_is_not_a_workbook_is_one_error(tmp_path, content):
    path = tmp_path / "SYNTHETIC_broken.xlsx"
    path.write_bytes(content)
    parsed = parse_workbook(path)
    (error,) = parsed.errors
    assert "SYNTHETIC_broken.xlsx" in str(error) and "not a readable .xlsx workbook" in str(error)
    assert parsed.tables == {}


class GridSource:
    """A cell source over in-memory grids: the parse does not depend on the reader."""

    def __init__(self, sheets: Mapping[str, list[Placement]]):
        self.grids = {}
        for name, placements in sheets.items():
            grid = [[None] * 60 for _ in range(100)]
            for table, top, left in placements:
                for r, row in enumerate(table):
                    for c, value in enumerate(row):
                        grid[top + r][left + c] = value
            self.grids[name] = grid

    @property
    def sheet_names(self) -> list[str]:
        return list(self.grids)

    def rows(self, sheet: str):
        return self.grids[sheet]


def test_any_cell_source_gives_the_same_tables(tmp_path):
    sheets = standard_sheets()
    from_file = parse(tmp_path, sheets)
    path = tmp_path / "SYNTHETIC_FY25_detentionStats03252025.xlsx"
    from_grids = parse_workbook(path, open_workbook=lambda _: GridSource(sheets))
    for name in EXPECTED_TABLES - {"stats_workbooks"}:
        assert from_grids.tables[name].to_pylist() == from_file.tables[name].to_pylist(), name


@given(columns=st.sets(st.integers(0, 40), min_size=1).map(sorted),
       spans=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 12))
                      .map(lambda start_width: (start_width[0], sum(start_width))), max_size=4))
def test_figures_inside_tables_are_counted_once_however_tables_overlap(columns, spans):
    # The count that spares the uncovered-figure check a test per figure on most rows.
    assert _count_inside(columns, spans) == sum(
        any(left <= c < right for left, right in spans) for c in columns)
