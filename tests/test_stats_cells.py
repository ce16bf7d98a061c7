"""Cell cleaning for the detention-statistics parser, mostly as properties (hypothesis)."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iceledger.sources.stats.cells import (
    DATE_TEXT,
    CellValueError,
    ExcelErrorValue,
    cell_name,
    clean_text,
    clean_texts,
    detached,
    fiscal_month,
    fiscal_year_start,
    month_and_year,
    parse_date,
    parse_dates,
    parse_fiscal_year,
    parse_number,
    parse_numbers,
    snake_case,
)

spaces = st.text(alphabet=" \t\u00a0", max_size=3)
markers = st.sampled_from(["", "*", "**", " [1]", "[2]", "†", "¹", " ²³"])


def with_commas(n: int) -> str:
    return f"{n:,}"


@given(st.integers(min_value=0, max_value=10**12), spaces, spaces, markers)
def test_numbers_written_as_text_read_back_exactly(n, before, after, marker):
    assert parse_number(f"{before}{with_commas(n)}{marker}{after}") == n


@given(st.integers(min_value=1, max_value=10**9))
def test_negative_numbers_in_parentheses_or_with_a_sign(n):
    assert parse_number(f"({with_commas(n)})") == -n
    assert parse_number(f"-{n}") == -n
    assert parse_number(f"\u2212{n}") == -n  # a typographic minus


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=99))
def test_percentages_become_fractions(whole, hundredths):
    text = f"{whole}.{hundredths:02d}%"
    assert parse_number(text) == pytest.approx((whole + hundredths / 100) / 100)


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(min_value=-10**15,
                                                                       max_value=10**15))
def test_real_numbers_pass_through(value):
    assert parse_number(value) == float(value)


@given(spaces)
def test_blank_cells_are_missing_not_zero(blank):
    assert parse_number(blank) is None
    assert parse_number(None) is None


@pytest.mark.parametrize("dash", ["-", " - ", "–", "—"])
def test_a_dash_is_zero(dash):
    assert parse_number(dash) == 0.0


@pytest.mark.parametrize("text", ["N/A", "n/a", "NA", "none"])
def test_not_available_is_missing(text):
    assert parse_number(text) is None


@pytest.mark.parametrize("text", ["#N/A", "#REF!", "#DIV/0!", " #value! "])
def test_an_excel_error_value_is_no_figure_and_says_so(text):
    with pytest.raises(ExcelErrorValue, match="Excel error value"):
        parse_number(text)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1).filter(
    lambda t: t not in {"na", "none", "null"}))
def test_words_are_not_numbers(word):
    with pytest.raises(CellValueError, match="expected a number"):
        parse_number(word)


@pytest.mark.parametrize("text", ["12,34", "1,2345", "1.2.3", "$", "5 6", "1e5x", True])
def test_malformed_numbers_are_refused(text):
    with pytest.raises(CellValueError):
        parse_number(text)


def test_dates_are_not_numbers():
    with pytest.raises(CellValueError, match="date"):
        parse_number(date(2025, 1, 1))


@given(st.text(max_size=40))
def test_clean_text_is_idempotent_and_tidy(raw):
    cleaned = clean_text(raw)
    if cleaned is None:
        return
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned and "\t" not in cleaned and "\u00a0" not in cleaned
    assert clean_text(cleaned) == cleaned


@given(st.sampled_from(["ICE", "Average", "Total", "Convicted Criminal"]), spaces, spaces,
       markers)
def test_labels_lose_stray_spaces_and_footnote_markers(label, before, after, marker):
    assert clean_text(f"{before}{label}{marker}{after}") == label


def test_labels_keep_inner_parentheses_and_stars():
    assert clean_text("CENTRAL LOUISIANA ICE PROCESSING CENTER (CLIPC)") == \
        "CENTRAL LOUISIANA ICE PROCESSING CENTER (CLIPC)"
    assert clean_text("ICE Transgender* Detainee Population") == \
        "ICE Transgender* Detainee Population"
    assert clean_text(2020.0) == "2020"


@given(st.integers(min_value=2000, max_value=2099),
       st.sampled_from(["Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                        "Aug", "Sep", "Sept", "October", "january"]))
def test_fiscal_months_fall_inside_their_fiscal_year(fiscal_year, month):
    first = fiscal_month(month, fiscal_year)
    assert first.day == 1
    assert fiscal_year_start(fiscal_year) <= first < fiscal_year_start(fiscal_year + 1)


def test_fiscal_year_2025_runs_october_2024_to_september_2025():
    assert fiscal_month("Oct", 2025) == date(2024, 10, 1)
    assert fiscal_month("Sep", 2025) == date(2025, 9, 1)
    assert fiscal_month(datetime(2024, 8, 17, 0, 0), 2025) == date(2024, 8, 1)
    assert fiscal_month("August 2025", 1900) == date(2025, 8, 1)


@pytest.mark.parametrize("header, read", [
    ("Oct", (10, None)), ("October 2025", (10, 2025)), ("Oct-25", (10, 2025)),
    ("10/2025", (10, 2025)), ("2025-10", (10, 2025)), ("1/2026", (1, 2026)),
    (datetime(2025, 10, 31), (10, 2025)),
])
def test_a_month_header_gives_its_month_and_the_year_it_prints(header, read):
    assert month_and_year(header) == read


@pytest.mark.parametrize("header", ["13/2025", "2025-00", "FY2025", "Total", None])
def test_a_header_naming_no_month_is_refused(header):
    with pytest.raises(CellValueError):
        month_and_year(header)


@pytest.mark.parametrize("label, year", [
    ("FY25", 2025), ("FY2025", 2025), ("FY 2021 YTD", 2021), ("EOFY2020", 2020),
    ("EOYFY20", 2020), ("FY2022 ", 2022), (2024.0, 2024), ("2019", 2019),
    ("Fiscal Year 2018", 2018), ("fiscal year 2026 YTD", 2026),
])
def test_fiscal_year_labels(label, year):
    assert parse_fiscal_year(label) == year


@pytest.mark.parametrize("label", ["Total", "FYI", 1.5, "Fiscal Year"])
def test_not_fiscal_years(label):
    with pytest.raises(CellValueError):
        parse_fiscal_year(label)


@pytest.mark.parametrize("raw, expected", [
    ("5/9/2019", date(2019, 5, 9)), ("09/15/25", date(2025, 9, 15)),
    ("2024-03-18", date(2024, 3, 18)), ("42615", date(2016, 9, 2)),
    (datetime(2024, 1, 30, 12, 0), date(2024, 1, 30)), ("", None), (None, None),
    # The forms a line of prose may write: every one DATE_TEXT finds is read.
    ("1-25-2026", date(2026, 1, 25)), ("2026-1-5", date(2026, 1, 5)),
    ("January 25, 2026", date(2026, 1, 25)), ("Jan. 25 2026", date(2026, 1, 25)),
    ("Sept 3rd, 2025", date(2025, 9, 3)), ("25 January 2026", date(2026, 1, 25)),
])
def test_dates(raw, expected):
    if isinstance(raw, str) and raw and not raw.isdecimal():
        assert re.fullmatch(DATE_TEXT, raw, re.IGNORECASE)
    assert parse_date(raw) == expected


# A superscript ("¹") is a digit to str.isdigit, not to int. (At the end of a cell it is a
# footnote mark, and removed: "¹" alone reads as blank.)
@pytest.mark.parametrize("raw", ["New Facility", "13/45/2020", "N/A", "¹5", "4²615",
                                 "February 30, 2026", "Janvier 25, 2026"])
def test_words_are_not_dates(raw):
    with pytest.raises(CellValueError):
        parse_date(raw)


@pytest.mark.parametrize("header, name", [
    ("Male Non-Crim", "male_non_crim"), ("Type Detailed", "type_detailed"),
    ("Last Inspection Rating - Final", "last_inspection_rating_final"),
    ("Male/Female", "male_female"), ("ICE Threat Level 1", "ice_threat_level_1"),
])
def test_snake_case(header, name):
    assert snake_case(header) == name


@given(st.integers(min_value=0, max_value=20_000), st.integers(min_value=0, max_value=16_383))
def test_cell_names_round_trip(row, column):
    name = cell_name(row, column)
    letters = name.rstrip("0123456789")
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - 64
    assert (int(name[len(letters):]) - 1, index - 1) == (row, column)


# Cells as readers return them: numbers (non-finite ones too), text, blanks, dates, logicals.
cell_values = st.one_of(
    st.floats(), st.integers(-10**6, 10**6), st.text(max_size=12), st.just(""), st.none(),
    st.dates(), st.datetimes(), st.booleans(),
    st.sampled_from(["1,234", " 56 ", "-", "n/a", "3/4/2025", "2025-03-04", "FY25", "[1]"]),
)


def _each_or_error(read, values):
    try:
        return [read(value) for value in values]
    except CellValueError:
        return CellValueError


def _all_or_error(read_all, values):
    try:
        return read_all(values)
    except CellValueError:
        return CellValueError


@given(st.lists(cell_values, max_size=8) | st.lists(st.floats(), max_size=8)
       | st.lists(st.text(max_size=8), max_size=8))
def test_whole_column_readers_read_each_cell_as_the_cell_reader_does(values):
    # The column readers take shortcuts for columns of one kind; the values must not change.
    for read_all, read in ((parse_numbers, parse_number), (parse_dates, parse_date),
                           (clean_texts, clean_text)):
        assert _all_or_error(read_all, values) == _each_or_error(read, values)


def test_a_remembered_error_keeps_no_frame_alive():
    def read(cell):
        grid = [[cell] * 100]  # what a parse frame holds while it reads
        try:
            raise KeyError(cell)
        except KeyError:
            raise ExcelErrorValue(f"{grid[0][0]!r} is an error value") from None

    with pytest.raises(ExcelErrorValue) as raised:
        read("#N/A")
    assert raised.value.__traceback__ is not None and raised.value.__context__ is not None
    kept = detached(raised.value)
    assert type(kept) is ExcelErrorValue and kept.args == raised.value.args
    assert kept.__traceback__ is None and kept.__context__ is None


@pytest.mark.parametrize("text", ["1.234", "12.345", "(1.234)", "-999.000", "1.234%"])
def test_a_dot_before_three_digits_as_text_is_refused_not_guessed(text):
    # A workbook saved in a European locale writes 1234 as "1.234": read as a decimal, the
    # figure would be a thousand times too small without a word.
    with pytest.raises(CellValueError, match="European thousands separator"):
        parse_number(text)


@pytest.mark.parametrize(("text", "value"), [("0.977", 0.977), ("1.23", 1.23),
                                             ("1.2345", 1.2345), ("1,234.567", 1234.567)])
def test_decimals_that_cannot_be_thousands_read_as_decimals(text, value):
    assert parse_number(text) == value
