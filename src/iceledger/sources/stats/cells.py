"""Cleaning single spreadsheet cells: labels, numbers, dates, fiscal years and months.

ICE's workbooks are typed by hand: numbers arrive as numbers or as text with thousands separators,
labels carry stray and non-breaking spaces, a dash stands for zero, footnote markers ("*", "[1]")
cling to labels and values. Every function here takes one raw cell value as a reader returns it
(calamine and openpyxl return different Python types for the same cell) and returns a clean value,
or raises CellValueError with a reason that names what was wrong, so the caller can quarantine
the cell with its address instead of guessing.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from math import isfinite

from iceledger.sources.xlsx_files import ERROR_VALUES

MONTH_NUMBERS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}

_SPACES = re.compile(r"\s+")
# "[1]" anywhere, a run of asterisks / daggers at either end, or superscript digits at the end
# ("Total¹"): footnote references, not content.
_SUPERSCRIPT_DIGITS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_FOOTNOTE_MARKERS = re.compile(rf"\[\d+\]|^[*†‡]+|[*†‡{_SUPERSCRIPT_DIGITS}]+$")
_FOOTNOTE_CHARACTERS = frozenset("[*†‡" + _SUPERSCRIPT_DIGITS)
_NUMBER_TEXT = re.compile(r"^(?P<sign>[-+])?\$?(?P<digits>\d[\d,]*(\.\d*)?|\.\d+)(?P<percent>%)?$")
# "1.234" typed as text: a decimal to three places, or 1234 written with a European thousands
# separator (a workbook saved in another locale); which, the cell does not say.
_DOT_THOUSANDS = re.compile(r"^[1-9]\d{0,2}(\.\d{3})+$")
_SPACE_BESIDE_MARK = re.compile(r"(?<=[-+($])\s+|\s+(?=[%)])")
# A dash alone is how spreadsheets print zero in accounting formats.
_ZERO_TEXT = {"-", "–", "—"}
# Text that says "no figure here" rather than giving one. Excel's error values (#N/A, #REF!, ...)
# are not among them: a formula that failed is no figure ICE chose to leave out, so such a cell is
# an ExcelErrorValue, kept with its place (the reader hands them on as text, xlsx_files).
_MISSING_TEXT = {"", "n/a", "na", "n.a.", "none", "null"}
_SLASH_DATE = re.compile(r"^(\d{1,2})([/-])(\d{1,2})\2(\d{2}|\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})")
_MONTH_NAME = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
               r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
_DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
# A date as ICE's staff may type it in a line of prose, each form parse_date reads: 1/25/2026
# (every archived release), 1-25-2026, 2026-01-25, January 25, 2026, Jan. 25 2026, 25 January
# 2026. Layout patterns name it `{date}` (stats_tables.toml), so that a release writing its dates
# another way still dates its tables instead of falling silently to the next source.
DATE_TEXT = (rf"(?:\d{{1,2}}/\d{{1,2}}/\d{{2,4}}|\d{{1,2}}-\d{{1,2}}-(?:\d{{4}}|\d{{2}})\b"
             rf"|\d{{4}}-\d{{1,2}}-\d{{1,2}}\b|{_MONTH_NAME}\.? {_DAY},? \d{{4}}"
             rf"|{_DAY} {_MONTH_NAME}\.?,? \d{{4}})")
_WORD_DATE = re.compile(rf"^(?:(?P<month>{_MONTH_NAME})\.? (?P<day>{_DAY}),? (?P<year>\d{{4}})"
                        rf"|(?P<day2>{_DAY}) (?P<month2>{_MONTH_NAME})\.?,? (?P<year2>\d{{4}}))$",
                        re.IGNORECASE)
_FISCAL_YEAR = re.compile(r"^(?:EO)?Y?\s*(?:FY|Fiscal\s+Year)\s*'?(\d{4}|\d{2})\b", re.IGNORECASE)
_BARE_YEAR = re.compile(r"^(\d{4}|\d{2})$")
# Excel stores dates as days since 1899-12-30; serials in this range are 1954..2119.
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_SERIALS = range(20000, 80000)
_MONTH_YEAR = re.compile(r"^([A-Za-z]+)\.?[\s\-']+(\d{4}|\d{2})$")
_NUMBERED_MONTH = re.compile(r"^(?:(?P<month>\d{1,2})[/-](?P<year>\d{4})"
                             r"|(?P<year2>\d{4})[/-](?P<month2>\d{1,2}))$")


class CellValueError(ValueError):
    """A cell whose content cannot be read as the kind of value its column holds."""


class ExcelErrorValue(CellValueError):
    """A cell holding one of Excel's error values (#N/A, #REF! ...): a formula that failed."""


def detached(problem: CellValueError) -> CellValueError:
    """The same error without the traceback and context it was raised with, to be remembered.

    A raised error holds the frames it passed through, and they hold everything their callers
    read (a workbook's every cell): remembered in a cache that lives as long as the layout,
    it would keep all of that alive, for the garbage collector to walk again and again.
    """
    return type(problem)(*problem.args)


def clean_text(value: object) -> str | None:
    """A label with whitespace runs collapsed and footnote markers removed; None when empty."""
    if value.__class__ is str:
        return _clean_string(value)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _clean_string(str(value))


def clean_texts(values: list) -> list[str | None]:
    """clean_text of each value; a column of text alone is cleaned without a call per cell."""
    if set(map(type, values)) == {str}:
        return list(map(_clean_string, values))
    return list(map(clean_text, values))


# Workbooks repeat the same labels (captions, facility names) thousands of times.
@lru_cache(maxsize=1 << 16)
def _clean_string(raw: str) -> str | None:
    # str.split() breaks at exactly the characters the pattern \s matches, in C.
    text = " ".join(raw.split())
    if not text:
        return None
    if not _FOOTNOTE_CHARACTERS.isdisjoint(text):
        text = _FOOTNOTE_MARKERS.sub("", text).strip()
    return text or None


def parse_number(value: object) -> float | None:
    """A numeric cell as float; None for a blank (missing) cell.

    Accepts real numbers and text such as "1,234", " 56 ", "12.5%", "$7,106.28", "(12)" (negative),
    "-" (zero) and values followed by footnote markers ("1,234*", "12 [2]").
    """
    if value.__class__ is float and isfinite(value):
        return value  # the common cases first: a plain number cell, or an empty one
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CellValueError(f"expected a number, found the logical value {value}")
    if isinstance(value, (int, float)):
        number = float(value)
        if not isfinite(number):
            raise CellValueError(f"expected a number, found {value!r}")
        return number
    if isinstance(value, (date, datetime)):
        raise CellValueError(f"expected a number, found the date {value.isoformat()}")
    text = _SPACES.sub(" ", str(value).replace("\u2212", "-")).strip()
    if text.upper() in ERROR_VALUES:
        raise ExcelErrorValue(f"the Excel error value {text!r} (a formula that failed), not a "
                              "figure")
    text = _FOOTNOTE_MARKERS.sub("", text).strip()
    # Spaces may follow a sign or currency mark and precede a percent sign; between digits they
    # would join two numbers into one.
    text = _SPACE_BESIDE_MARK.sub("", text)
    if text.casefold() in _MISSING_TEXT:
        return None
    if text in _ZERO_TEXT:
        return 0.0
    negative = text.startswith("(") and text.endswith(")")
    if negative:
        text = text[1:-1]
    match = _NUMBER_TEXT.match(text)
    if match is None or not _well_grouped(match["digits"]):
        raise CellValueError(f"expected a number, found the text {str(value).strip()!r}")
    if _DOT_THOUSANDS.match(match["digits"]):
        raise CellValueError(f"the text {str(value).strip()!r} reads as a decimal or, with a "
                             "European thousands separator, as a whole number a thousand times "
                             "larger: not loaded")
    number = float(match["digits"].replace(",", ""))
    if match["percent"]:
        number /= 100
    if negative or match["sign"] == "-":
        number = -number
    return number


def parse_numbers(values: list) -> list[float | None]:
    """parse_number of each value; a column of finite numbers alone is kept without a call per
    cell (the sum of finite numbers is finite unless it overflows, which takes the long way)."""
    if set(map(type, values)) == {float} and isfinite(sum(values)):
        return list(values)
    return list(map(parse_number, values))


def _well_grouped(digits: str) -> bool:
    """Thousands separators, if any, sit every three digits ("1,234", not "12,34")."""
    whole = digits.split(".")[0]
    if "," not in whole:
        return True
    head, *groups = whole.split(",")
    return 1 <= len(head) <= 3 and all(len(group) == 3 for group in groups)


def parse_date(value: object) -> date | None:
    """A date cell as a date; None when blank.

    Accepts real dates, "M/D/YYYY", "M/D/YY", "M-D-YYYY", ISO text, "January 25, 2026",
    "Jan. 25 2026", "25 January 2026", and Excel day serials (a date cell
    formatted as a number reads as e.g. 42615 = 2016-09-02).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = clean_text(value)
    if text is None:
        return None
    if text.isdecimal() and _EXCEL_SERIALS.start <= int(text) < _EXCEL_SERIALS.stop:
        return _EXCEL_EPOCH + timedelta(days=int(text))
    if match := _SLASH_DATE.match(text):
        month, day, year = (int(match[i]) for i in (1, 3, 4))
        year += 2000 if year < 100 else 0
    elif match := _ISO_DATE.match(text):
        year, month, day = (int(part) for part in match.groups())
    elif match := _WORD_DATE.match(text):
        year = int(match["year"] or match["year2"])
        month = month_number(match["month"] or match["month2"])
        day = int(re.sub(r"\D", "", match["day"] or match["day2"]))
    else:
        raise CellValueError(f"expected a date, found {text!r}")
    try:
        return date(year, month, day)
    except ValueError:
        raise CellValueError(f"expected a date, found the impossible date {text!r}") from None


def parse_dates(values: list) -> list[date | None]:
    """parse_date of each value; date cells and empty ones, most of a date column, without a
    call per cell."""
    return [value if value.__class__ is date else None if value == "" else parse_date(value)
            for value in values]


def parse_fiscal_year(value: object) -> int:
    """A fiscal-year label ("FY25", "FY2025", "FY 2025 YTD", "EOFY2020", "Fiscal Year 2025",
    2025) as a year."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if number.is_integer() and 1990 <= number <= 2100:
            return int(number)
        raise CellValueError(f"expected a fiscal year, found {value!r}")
    text = clean_text(value) or ""
    match = _FISCAL_YEAR.match(text) or _BARE_YEAR.match(text)
    if match is None:
        raise CellValueError(f"expected a fiscal year such as 'FY2025', found {text!r}")
    year = int(match.group(1))
    return year + 2000 if year < 100 else year


def fiscal_year_in(pattern: re.Pattern[str], text: str) -> int | None:
    """The fiscal year `pattern` finds in a name (a sheet's, a file's), or None: a name is no
    cell to quarantine, so what the pattern finds but is no year ("FY261") names none."""
    found = pattern.search(text)
    try:
        return parse_fiscal_year(found.group(0)) if found else None
    except CellValueError:
        return None


def fiscal_year_start(fiscal_year: int) -> date:
    """The first day of a U.S. federal fiscal year: FY2025 runs 2024-10-01 to 2025-09-30."""
    return date(fiscal_year - 1, 10, 1)


def fiscal_year_of(day: date) -> int:
    return day.year + 1 if day.month >= 10 else day.year


def month_number(name: str) -> int:
    try:
        return MONTH_NUMBERS[name.strip().rstrip(".").casefold()]
    except KeyError:
        raise CellValueError(f"expected a month name, found {name!r}") from None


def month_and_year(value: object) -> tuple[int, int | None]:
    """The month a month header names, and the year it prints with it (None for a bare name):
    a real date, "Oct", "October 2025", "Oct-25", "10/2025" or "2025-10"."""
    if isinstance(value, (date, datetime)):
        return value.month, value.year
    text = clean_text(value)
    if text is None:
        raise CellValueError("expected a month, found a blank cell")
    if match := _MONTH_YEAR.match(text):
        year = int(match.group(2))
        return month_number(match.group(1)), year + 2000 if year < 100 else year
    if match := _NUMBERED_MONTH.match(text):
        number = int(match["month"] or match["month2"])
        if 1 <= number <= 12:
            return number, int(match["year"] or match["year2"])
        raise CellValueError(f"expected a month, found {text!r}")
    return month_number(text), None


def fiscal_month(value: object, fiscal_year: int) -> date:
    """A month column header as the first day of that month.

    A bare month name ("Oct") belongs to the given fiscal year: October-December fall in the
    calendar year before it. A real date, or text with a year ("August 2025", "Aug-25",
    "08/2025"), stands on its own.
    """
    number, year = month_and_year(value)
    return date(year, number, 1) if year is not None else month_of_fiscal_year(number,
                                                                              fiscal_year)


def month_of_fiscal_year(number: int, fiscal_year: int) -> date:
    """The first day of month `number` (1..12) of a fiscal year."""
    return date(fiscal_year - 1 if number >= 10 else fiscal_year, number, 1)


def snake_case(header: str) -> str:
    """A column header as a column name: "Male Non-Crim" -> "male_non_crim"."""
    words = re.findall(r"[0-9a-z]+", header.casefold())
    return "_".join(words)


@lru_cache(maxsize=1024)
def column_letters(index: int) -> str:
    """Spreadsheet column letters for a 0-based column index: 0 -> A, 27 -> AB."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters



def column_index(letters: str) -> int:
    """0-based index of spreadsheet column letters: A -> 0, AB -> 27 (column_letters' inverse)."""
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - 64
    return index - 1

@lru_cache(maxsize=1 << 16)
def cell_name(row: int, column: int) -> str:
    """A1-style address of a 0-based (row, column) position."""
    return f"{column_letters(column)}{row + 1}"


def sheet_key(name: str) -> str:
    """A sheet's name as the layout's patterns read it: runs of spaces and underscores as one
    space, none at the ends (ICE wrote " ICLOS and Detainees"; a copy saved by hand may write
    "Detention_FY26")."""
    return re.sub(r"[\s_]+", " ", name).strip()
