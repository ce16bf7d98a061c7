"""Which day each table's figures describe, in ICE's own words, and which releases are stale.

A workbook is not one snapshot. ICE dates its tables in the Footnotes sheet ("FY2022 ICE Detention
data are updated through 01/15/2022", "... Currently in ICE Detention Facilities data are a
snapshot as of 01/16/2022"), in some captions ("... as of 06/19/2021"), and on the facilities
sheet's source line ("Source: ICE Integrated Decision Support (IIDS), 01/17/2022"). A workbook
may also carry an older year's sheet (`Detention EOFY2020` beside `Detention FY22`), dated years
apart. So every table gets the date of its own snapshot, from the first of these that speaks for
it (caption, footnote, IIDS line, file name: `SnapshotDating`), and the source that gave it.

A date only speaks for a table of fiscal year FY if it lies within FY or the grace after it in
which ICE posts a year's final figures: the current year's footnote cannot date the older year's
sheet beside it.

A hidden sheet of another fiscal year (a stale `Detention FY25` left hidden in an FY2026 file) is
dated only by what it says itself (a caption's date, its own IIDS line): the workbook's Footnotes
and data-as-of line describe the sheets its reader sees, and would date a stale copy as the
newest figures of its year. Nothing on the sheet dating it, its tables get no date and the source
`HIDDEN_UNDATED`: their figures are kept, but never taken as a latest value (published_series).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from iceledger.sources.stats.cells import (
    DATE_TEXT,
    CellValueError,
    cell_name,
    clean_text,
    fiscal_year_start,
    parse_date,
    parse_fiscal_year,
    sheet_key,
)
from iceledger.tables import HIDDEN_UNDATED

# Where a snapshot date came from, most trusted first.
CAPTION, FOOTNOTE, IIDS, FILE_NAME = "caption", "footnote", "iids", "file_name"
# ICE posts a year's final workbook up to about ten weeks after 30 September (checks.py uses the
# same grace for file dates).
FINAL_RELEASE_GRACE_DAYS = 120


@dataclass(frozen=True)
class FootnoteRule:
    """A Footnotes line that dates the tables whose name `tables` finds on sheets `sheets` finds."""

    line: re.Pattern[str]
    tables: re.Pattern[str]
    sheets: re.Pattern[str] | None = None
    # The tables print one row per fiscal year, refreshed apart from the workbook's own data (the
    # Semiannual sheet): a line dates them when its date fits the year it names, which may be
    # before the table's (an FY2024 workbook's refresh through the end of FY2023).
    earlier_years: bool = False
    # The words by which a line names what the rule dates: a line naming them that the rule
    # does not read is a dating line reworded (footnote_dates).
    subject: re.Pattern[str] | None = None


@dataclass(frozen=True)
class FootnoteDate:
    rule: int  # index of the rule that found it: the first rule speaking for a table wins
    fiscal_year: int | None  # the year the line names ("FY2022 ICE Detention ..."), if any
    day: date


def fits_fiscal_year(day: date, fiscal_year: int | None) -> bool:
    """Whether a date can describe figures of `fiscal_year` (inside it, or its final grace)."""
    if fiscal_year is None:
        return True
    start = fiscal_year_start(fiscal_year)
    return start <= day <= date(fiscal_year, 9, 30) + timedelta(days=FINAL_RELEASE_GRACE_DAYS)


_DATE = re.compile(DATE_TEXT, re.IGNORECASE)


def footnote_dates(rows: Sequence[Sequence[object]], rules: Sequence[FootnoteRule],
                   warnings: list[str], sheet: str = "Footnotes") -> list[FootnoteDate]:
    """Every dating line of a Footnotes sheet, with the rule that read it.

    A line that names what a rule dates (its `subject`) and a date, which no rule reads while
    that rule reads no line and others read theirs, is a dating line reworded: its tables are
    dated by the next source, and a warning names the line and its cell.
    """
    found = []
    unread: list[tuple[int, int, str]] = []
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            text = clean_text(cell) if cell.__class__ is str else None
            if not text:
                continue
            for index, rule in enumerate(rules):
                match = rule.line.search(text)
                if match is None:
                    continue
                try:
                    day = parse_date(match["date"])
                    named = match.groupdict().get("fiscal_year")
                    year = parse_fiscal_year(named) if named else None
                except (CellValueError, ValueError):
                    warnings.append(f"Footnotes: unreadable date in {text[:80]!r}")
                    break
                found.append(FootnoteDate(index, year, day))
                break
            else:
                if _DATE.search(text):
                    unread.append((r, c, text))
    if found:
        reading = {footnote.rule for footnote in found}
        for r, c, text in unread:
            subject = next((match[0] for index, rule in enumerate(rules)
                            if index not in reading and rule.subject is not None
                            and (match := rule.subject.search(text))), None)
            if subject is not None:
                warnings.append(
                    f"{sheet.strip()}!{cell_name(r, c)}: no [[footnote_dates]] rule of "
                    f"stats_tables.toml reads the line {text[:100]!r}, which dates "
                    f"{subject!r} (reworded?), while other lines date their tables; its "
                    "tables are dated by the next source that speaks for them (as_of_source "
                    "says which)")
    return found


@dataclass
class SnapshotDating:
    """Dates each table of one workbook from the most trusted source that speaks for it."""

    rules: Sequence[FootnoteRule]
    footnotes: list[FootnoteDate]
    iids_by_sheet: Mapping[str, date]
    file_date: date | None
    caption_as_of: re.Pattern[str]
    # Sheets the workbook hides whose fiscal year is not the workbook's: only their own words
    # date them (module docstring).
    hidden_other_years: frozenset[str] = frozenset()
    undated: list[str] = field(default_factory=list)
    hidden_undated: list[tuple[str, str]] = field(default_factory=list)  # (sheet, table)
    # Dates a caption prints that no calendar has ("as of 2/30/2026"): its table is dated by
    # the next source, which the command must say.
    impossible_captions: list[str] = field(default_factory=list)

    def date_for(self, table: str, sheet: str, fiscal_year: int | None,
                 caption: str | None) -> tuple[date | None, str | None]:
        hidden = sheet in self.hidden_other_years
        candidates = self._own_words(sheet, caption) if hidden else \
            self._candidates(table, sheet, fiscal_year, caption)
        for source, day in candidates:
            # A footnote's date was fitted to its year by its rule (_footnote).
            if day is not None and (source == FOOTNOTE or fits_fiscal_year(day, fiscal_year)):
                return day, source
        if hidden:
            self.hidden_undated.append((sheet, table))
            return None, HIDDEN_UNDATED
        self.undated.append(f"{sheet.strip()}: {table}")
        return None, None

    def _own_words(self, sheet: str, caption: str | None) -> Iterable[tuple[str, date | None]]:
        """The dates a sheet prints itself: its table's caption, its own IIDS line."""
        yield CAPTION, self._caption_date(caption)
        yield IIDS, self.iids_by_sheet.get(sheet)

    def _candidates(self, table: str, sheet: str, fiscal_year: int | None,
                    caption: str | None) -> Iterable[tuple[str, date | None]]:
        yield CAPTION, self._caption_date(caption)
        yield FOOTNOTE, self._footnote(table, sheet, fiscal_year)
        yield IIDS, self.iids_by_sheet.get(sheet)
        for other in self.iids_by_sheet.values():
            yield IIDS, other
        yield FILE_NAME, self.file_date

    def _caption_date(self, caption: str | None) -> date | None:
        if caption and (match := self.caption_as_of.search(caption)):
            try:
                return parse_date(match["date"])
            except CellValueError:
                if match["date"] not in self.impossible_captions:
                    self.impossible_captions.append(match["date"])
                return None
        return None

    def _footnote(self, table: str, sheet: str, fiscal_year: int | None) -> date | None:
        """The latest date of the first rule that speaks for the table and its year."""
        for index, rule in enumerate(self.rules):
            if not rule.tables.search(table) or (
                    rule.sheets is not None and not rule.sheets.search(sheet_key(sheet))):
                continue
            if rule.earlier_years:
                days = [f.day for f in self.footnotes if f.rule == index
                        and f.fiscal_year is not None and fits_fiscal_year(f.day, f.fiscal_year)
                        and (fiscal_year is None or f.fiscal_year <= fiscal_year)]
            else:
                days = [f.day for f in self.footnotes if f.rule == index
                        and f.fiscal_year in (None, fiscal_year)
                        and fits_fiscal_year(f.day, fiscal_year)]
            if days:
                return max(days)
        return None


# --- releases in the order of their data --------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """One fiscal year's figures in one workbook file, as the release ordering sees them."""

    workbook: str
    sha256: str | None
    fiscal_year: int | None
    data_date: date | None  # the latest snapshot date of its tables
    file_date: date | None
    archive_date: date | None


@dataclass(frozen=True)
class OrderedSnapshot:
    snapshot: Snapshot
    file_date_consistent: bool
    stale_against: str | None  # an earlier-published release holding newer data of the year


def publication_date(snapshot: Snapshot, newest_data: date | None) -> tuple[date | None, bool]:
    """The day a release was posted as far as can be told, and whether its file-name date is
    consistent with its data: a file cannot be posted before the data it holds were pulled."""
    consistent = snapshot.file_date is None or newest_data is None or \
        snapshot.file_date >= newest_data
    if snapshot.file_date is not None and consistent:
        return snapshot.file_date, True
    return snapshot.archive_date, consistent


def order_snapshots(snapshots: Iterable[Snapshot]) -> list[OrderedSnapshot]:
    """Snapshots in the order of their data dates (by fiscal year, then data date, then posting
    date), stale ones marked.

    A snapshot is a stale re-post when a release posted before it (by a trustworthy posting
    date) already held the same fiscal year's data to a later date.
    """
    snapshots = list(snapshots)
    newest: dict[tuple[str, str | None], date] = {}
    for s in snapshots:
        if s.data_date is not None:
            key = (s.workbook, s.sha256)
            newest[key] = max(newest.get(key, s.data_date), s.data_date)
    posted = {id(s): publication_date(s, newest.get((s.workbook, s.sha256))) for s in snapshots}
    ordered = sorted(snapshots, key=lambda s: (
        s.fiscal_year or 0, s.data_date or date.min, posted[id(s)][0] or date.min,
        s.workbook, s.sha256 or ""))
    result = []
    for s in ordered:
        when, consistent = posted[id(s)]
        stale = None
        if when is not None and s.data_date is not None:
            newer = [o for o in snapshots if o.fiscal_year == s.fiscal_year
                     and o.data_date is not None and o.data_date > s.data_date
                     and posted[id(o)][0] is not None and posted[id(o)][0] < when]
            if newer:
                stale = max(newer, key=lambda o: o.data_date).workbook
        result.append(OrderedSnapshot(s, consistent, stale))
    return result
