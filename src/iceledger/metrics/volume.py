"""Volume against targets: arrests, removals and book-ins per day, and arrests against the targets.

Every daily series here is complete: days with no events are zero rows, not missing rows, so the
7- and 28-day averages are true calendar averages. FOIA releases overlap in time; for each day one
release speaks (the newest whose coverage includes the day), so no event is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import ibis
import pyarrow as pa
from ibis import _
from ibis.common.exceptions import TableNotFound

from iceledger.errors import IceledgerError
from iceledger.facts import FAR_FUTURE, Target, load_targets
from iceledger.field_offices import field_offices
from iceledger.metrics.backends import memtable, remembered
from iceledger.metrics.published_series import SeriesSpec, latest, snapshots
from iceledger.metrics.registry import (
    Disclosure,
    Metric,
    MetricParams,
    NationalFigure,
    Need,
    View,
    register,
)
from iceledger.tables import (
    FOIA_ARRESTS,
    FOIA_RELEASES,
    FOIA_REMOVALS,
    FOIA_STAYS,
    STATS_BOOK_INS,
    STATS_REMOVALS,
    STATS_WORKBOOKS,
)

ROLLING_WINDOWS = (7, 28)
ARREST_DIMENSIONS = (
    "aor",
    "criminality",
    "arrest_setting",
    "citizenship_country",
    "apprehension_state",
    "apprehension_method",
)
ARREST_FILTERS = (
    "aor", "criminality", "citizenship_country", "arrest_setting", "apprehension_method"
)
# Without identifiers the records still count arrests and book-ins, one per row.
ARREST_EPISODES = Need(
    FOIA_ARRESTS, "person_id",
    "arrests are counted as episodes, one person's arrests within 24 hours being one",
    otherwise="without identifiers, each row is its own arrest, so a re-processed arrest "
    "of the same person within 24 hours is counted again",
)
STAY_IDENTIFIERS = Need(
    FOIA_STAYS, "person_id",
    "a stay is one person's continuous custody across facilities",
    otherwise="without identifiers, each detention record is its own stay, so a person moved "
    "between facilities may be counted once per placement",
)


# --- FOIA releases: which release speaks for which day ------------------------------------------


def _subtract(span: tuple[date, date], taken: list[tuple[date, date]]) -> list[tuple[date, date]]:
    """The parts of `span` not inside any interval of `taken` (all inclusive)."""
    pieces = [span]
    for t_start, t_end in taken:
        remaining = []
        for start, end in pieces:
            if t_end < start or t_start > end:
                remaining.append((start, end))
                continue
            if start < t_start:
                remaining.append((start, t_start - timedelta(days=1)))
            if end > t_end:
                remaining.append((t_end + timedelta(days=1), end))
        pieces = remaining
    return pieces


Windows = dict[str, list[tuple[date, date]]]  # release -> the spans of days it speaks for


@dataclass(frozen=True)
class ReleaseSpan:
    """One release present in a table, and its coverage: foia_releases' for a release listed
    there, otherwise the span of its own rows' days (None when none of its rows has a date)."""

    release: str | None
    coverage_start: date | None
    coverage_end: date | None
    # Whether its rows are of part of the country (REACH_PART): it then speaks only for the days
    # no release reaching further covers (release_windows).
    part_of_country: bool = False


# The queries below find what they need in a few rows of a release, not by reading all of it:
# DuckDB stops a LIMIT 1 at the first row found and skips the row groups whose zone maps (each
# row group's least and greatest value of a column) rule it out, so each costs milliseconds
# where a min() or count() over the release would read millions of rows.


def release_spans(backend: ibis.BaseBackend, table: ibis.Table, moment: str) -> list[ReleaseSpan]:
    """Every release with a row in `table`, dated by its column `moment` (a date or timestamp)."""
    return list(remembered(backend, ("release spans", table.op(), moment),
                           lambda: tuple(_release_spans(backend, table, moment))))


def _release_spans(backend: ibis.BaseBackend, table: ibis.Table, moment: str) -> list[ReleaseSpan]:
    try:
        published = backend.table(FOIA_RELEASES).to_pyarrow().to_pylist()
    except TableNotFound:
        published = []
    listed = [r["release"] for r in published]
    at = table[moment]
    present = [
        table.filter(table.release == release)
        .select("release", first=ibis.null(at.type()), last=ibis.null(at.type()))
        .limit(1)
        for release in listed
    ]
    unlisted = table.filter(~table.release.isin(listed) | table.release.isnull()) if listed else table
    own_span = unlisted.group_by("release").aggregate(first=at.min(), last=at.max())
    found = {r["release"]: r for r in ibis.union(*present, own_span).to_pyarrow().to_pylist()}
    partial = _parts_of_country(backend, table)
    return [
        ReleaseSpan(r["release"], _as_date(r["coverage_start"]), _as_date(r["coverage_end"]),
                    r["release"] in partial)
        for r in published
        if r["release"] in found
    ] + [
        ReleaseSpan(release, _as_date(r["first"]), _as_date(r["last"]), release in partial)
        for release, r in found.items()
        if release not in listed
    ]


# A release's reach, from the field offices its records name (`reach`).
REACH_PART, REACH_UNNAMED, REACH_NATIONAL = "part of the country", "unnamed", "national"
# A release whose records name fewer than this share of ICE's field offices is of part of the
# country: a national production names every office (hundreds of records each), one office's
# production names that office, perhaps with a few others. Judged on releases of at least
# REACH_JUDGED_ROWS records of a table: a national handful could name few offices by chance.
NATIONAL_OFFICES_SHARE = 0.5
REACH_JUDGED_ROWS = 200
# A release naming few offices is of part of the country only if most of its records name one:
# where most name none the reference knows (redacted, or spellings it lacks), the few offices
# the others name do not tell its reach.
NAMED_SHARE = 0.5


def reach(rows: int, named: int, offices: int) -> str | None:
    """A release's reach from its `rows` records, the `named` of them naming a field office and
    the `offices` they name; None when too few to judge."""
    if rows < REACH_JUDGED_ROWS:
        return None
    if offices >= NATIONAL_OFFICES_SHARE * len(field_offices()):
        return REACH_NATIONAL
    return REACH_PART if named >= NAMED_SHARE * rows else REACH_UNNAMED


def _parts_of_country(backend: ibis.BaseBackend, table: ibis.Table) -> set[str | None]:
    """The releases whose records in `table` are of part of the country."""
    return {g["release"] for g in offices_by_release(backend, table)
            if reach(g["rows"], g["named"], len(g["offices"])) == REACH_PART}


def offices_by_release(backend: ibis.BaseBackend, table: ibis.Table) -> tuple[dict, ...]:
    """release, rows, named (the rows naming a field office) and offices (those they name,
    sorted) of each release with rows in `table`; asked once per table (where the backend
    remembers)."""
    return remembered(backend, ("offices by release", table.op()),
                      lambda: tuple(_count_offices(table)))


def _count_offices(table: ibis.Table) -> list[dict]:
    if "aor" not in table.columns:  # no loaded layout named a field office
        table = table.mutate(aor=ibis.null("string"))
    counts = table.group_by(["release", "aor"]).aggregate(rows=ibis._.count())
    groups: dict[str | None, dict] = {}
    for count in counts.to_pyarrow().to_pylist():
        group = groups.setdefault(count["release"], {
            "release": count["release"], "rows": 0, "named": 0, "offices": []})
        group["rows"] += count["rows"]
        if count["aor"] is not None:
            group["named"] += count["rows"]
            group["offices"].append(count["aor"])
    for group in groups.values():
        group["offices"].sort()
    return list(groups.values())


def first_days(table: ibis.Table, moment: str, spans: list[ReleaseSpan]) -> dict:
    """release -> the day of its first dated row in `table`, or its coverage start when it has a
    row on or before that day (its days start there at the earliest, so an earlier first day
    changes nothing); None when none of its rows has a date."""
    at = table[moment]

    def of(release: str | None) -> ibis.Table:
        return table.filter(table.release == release if release is not None
                            else table.release.isnull())

    dated = [s for s in spans if s.coverage_start is not None]
    on_or_before_start = [
        of(s.release).filter(at < midnight(s.coverage_start + timedelta(days=1), at))
        .select("release").limit(1)
        for s in dated
    ]
    days = {}
    if on_or_before_start:
        found = ibis.union(*on_or_before_start).to_pyarrow().column("release").to_pylist()
        days = {s.release: s.coverage_start for s in dated if s.release in found}
    later = [
        of(s.release).select("release", first=at)
        .order_by(ibis.asc("first", nulls_first=False)).limit(1)
        for s in spans if s.release not in days
    ]
    if later:
        days.update((r["release"], _as_date(r["first"]))
                    for r in ibis.union(*later).to_pyarrow().to_pylist())
    return days


def event_windows(backend: ibis.BaseBackend, table: ibis.Table, moment: str) -> Windows:
    """The days each release speaks for in `table` (rows dated by column `moment`), from its
    first event there."""
    def answer() -> Windows:
        spans = release_spans(backend, table, moment)
        return from_first_event(release_windows(spans), first_days(table, moment, spans))

    windows = remembered(backend, ("event windows", table.op(), moment), answer)
    return {release: list(pieces) for release, pieces in windows.items()}


def release_windows(spans: list[ReleaseSpan]) -> Windows:
    """For each release, the days it speaks for: those of its coverage that no newer release
    covers (newer: later coverage end, then later coverage start). A release of part of the
    country (one field office's production) gives way to every other: its days are those no
    other release covers, whatever their dates, for a newer count of one office is no count of
    the country."""
    newest_first = sorted(
        (s for s in spans if s.coverage_start and s.coverage_end),
        key=lambda s: (not s.part_of_country, s.coverage_end, s.coverage_start),
        reverse=True,
    )
    windows: Windows = {}
    taken: list[tuple[date, date]] = []
    for span in newest_first:
        coverage = (span.coverage_start, span.coverage_end)
        windows[span.release] = _subtract(coverage, taken)
        taken.append(coverage)
    return windows


def from_first_event(windows: Windows, first: dict) -> Windows:
    """The windows cut to start at each release's first event (`first_days`) in a table.

    A release's coverage starts at the earliest event of any of its datasets; the days before
    this dataset's first record in it are missing records, not days without events.
    """
    return {
        release: [(max(start, first[release]), end) for start, end in pieces
                  if end >= first[release]]
        for release, pieces in windows.items()
        if first.get(release) is not None
    }


def _as_date(value) -> date | None:
    return value.date() if hasattr(value, "date") else value


def one_release_per_day(table: ibis.Table, windows: Windows) -> ibis.Table:
    """Keep each row only if its release is the one that speaks for its day."""
    speaks = [
        (table.release == release) & table.date.between(start, end)
        for release, spans in windows.items()
        for start, end in spans
    ]
    return table.filter(ibis.or_(*speaks) if speaks else ibis.literal(False))


def covered_days(windows: Windows, params: MetricParams) -> list[date]:
    """The days the data speaks for, within the requested period."""
    days: set[date] = set()
    for spans in windows.values():
        for start, end in spans:
            start, end = max(start, params.start or start), min(end, params.end or end)
            days.update(start + timedelta(days=i) for i in range((end - start).days + 1))
    return sorted(days)


# --- generic pieces every FOIA metric uses -------------------------------------------------------


def apply_filters(table: ibis.Table, params: MetricParams) -> ibis.Table:
    for column, values in params.filters.items():
        table = table.filter(table[column].isin(list(values)))
    return table


def midnight(day: date, like: ibis.Value) -> ibis.Value:
    """00:00 on `day`, typed like `like` (a date or timestamp column) to compare with it."""
    if like.type().is_timestamp():
        return ibis.literal(datetime.combine(day, time.min), type=like.type())
    return ibis.literal(day, type=like.type())


def during(table: ibis.Table, params: MetricParams, moment: str) -> ibis.Table:
    """Rows whose `moment` (a date or timestamp column) falls on a day of the period.

    The column itself is compared with the period's first and after-last midnights, not its day
    with the days: DuckDB then skips the row groups whose zone maps (each row group's least and
    greatest value) lie outside the period instead of casting every row.
    """
    column = table[moment]
    if params.start:
        table = table.filter(column >= midnight(params.start, column))
    if params.end:
        table = table.filter(column < midnight(params.end + timedelta(days=1), column))
    return table


def foia_events(
    backend: ibis.BaseBackend,
    table_name: str,
    when: str,
    params: MetricParams,
) -> tuple[ibis.Table, Windows]:
    """One FOIA table's rows with a `date` column, one release per day, filtered and in period."""
    table = backend.table(table_name)
    if "is_duplicate" in table.columns:
        table = table.filter(~table.is_duplicate.fill_null(False))
    windows = event_windows(backend, table, when)
    table = table.mutate(date=table[when].cast("date"))
    table = one_release_per_day(table, windows)
    return during(apply_filters(table, params), params, when), windows


def has_tables(backend: ibis.BaseBackend, *names: str) -> bool:
    """Whether the warehouse has every table named (for a side of a comparison it may lack)."""
    try:
        for name in names:
            backend.table(name)
    except TableNotFound:
        return False
    return True


def fiscal_year(day: date) -> int:
    """The U.S. federal fiscal year of a day: FY2025 is 1 Oct 2024 - 30 Sep 2025."""
    return day.year + (day.month >= 10)


def fiscal_year_of(day: ibis.DateValue) -> ibis.IntegerValue:
    """fiscal_year of a date column."""
    return day.year() + ibis.ifelse(day.month() >= 10, 1, 0)


def calendar(days: list[date]) -> ibis.Table:
    return memtable(pa.table({"date": pa.array(days, pa.date32())}))


def on_every_day(
    counts: ibis.Table, days: list[date], by: tuple[str, ...], value: str
) -> ibis.Table:
    """`counts` (date, *by, value) with a zero row for every covered day a group had no events."""
    spine = calendar(days)
    if by:
        spine = spine.cross_join(counts.select(*by).distinct())
    joined = spine.left_join(
        counts,
        [spine.date == counts.date, *(spine[d].identical_to(counts[d]) for d in by)],
    )
    return joined.select(
        date=spine.date, **{d: spine[d] for d in by}, **{value: joined[value].fill_null(0)}
    )


def with_rolling_means(table: ibis.Table, by: tuple[str, ...], value: str) -> ibis.Table:
    """Add `<value>_<n>d_avg`: the mean of the n days ending on each day, NULL until n days exist."""
    columns = {}
    for days in ROLLING_WINDOWS:
        window = ibis.window(group_by=list(by), order_by="date", preceding=days - 1, following=0)
        first_day = table.date.lag(days - 1).over(ibis.window(group_by=list(by), order_by="date"))
        complete = first_day == table.date - ibis.interval(days=days - 1)
        columns[f"{value}_{days}d_avg"] = ibis.ifelse(
            complete, table[value].sum().over(window) / days, ibis.null("float64")
        )
    return table.mutate(**columns)


def daily_series(
    backend: ibis.BaseBackend, params: MetricParams, table_name: str, when: str, value: str
) -> ibis.Table:
    """Events per day of one FOIA table, zero-filled, with 7- and 28-day means."""
    events, windows = foia_events(backend, table_name, when, params)
    counts = events.group_by(["date", *params.by]).aggregate(**{value: _.count()})
    days = covered_days(windows, params)
    series = on_every_day(counts, days, params.by, value)
    return with_rolling_means(series, params.by, value).order_by(["date", *params.by])


def _series_metric(
    name: str, title: str, table: str, when: str, value: str, definition: str,
    caveats: tuple[str, ...], dimensions: tuple[str, ...], filters: tuple[str, ...],
    needs: tuple[Need, ...] = (),
    months: tuple[str, ...] = (),
    crossed: tuple[str, ...] = (),
) -> Metric:
    return register(
        Metric(
            name=name,
            title=title,
            question="volume",
            definition=definition,
            unit=f"{value.replace('_', '-')} per day",
            caveats=caveats,
            tables=(table, FOIA_RELEASES),
            build=lambda backend, params: daily_series(backend, params, table, when, value),
            dimensions=dimensions,
            filters=filters,
            count_column=value,
            needs=needs,
            view=View(f"{value}_7d_avg", f"{value.replace('_', '-')} per day",
                      also=(f"{value}_28d_avg",)),
            disclosure=Disclosure(months=months, crossed=crossed),
        )
    )


_ROLLING_CAVEAT = (
    "The 7- and 28-day averages are NULL until the series has that many days; days with no "
    "records count as zero."
)
_RELEASE_CAVEAT = (
    "FOIA releases overlap; each day is counted from the newest release that covers it. Recent "
    "days of a release are incomplete until a later release back-fills them."
)

_series_metric(
    "arrests_per_day",
    "ICE arrests per day",
    FOIA_ARRESTS,
    "apprehension_date",
    "arrests",
    "ICE arrests per calendar day from the FOIA arrest records, counting arrest episodes: a person's "
    "arrests within 24 hours are one episode (rows flagged is_duplicate are left out), so "
    "re-processed arrests are not counted twice. With 7- and 28-day trailing means.",
    (
        _ROLLING_CAVEAT,
        _RELEASE_CAVEAT,
        "Rows without a person identifier are never merged into episodes, so they may overcount.",
    ),
    ARREST_DIMENSIONS,
    ARREST_FILTERS,
    needs=(ARREST_EPISODES,),
    months=("arrest_criminality", "arrest_setting_share", "arrests_by_method", "arrest_outcomes",
            "arrests_287g_share", "repeat_arrests", "field_office_ranking"),
    crossed=("criminality", "arrest_setting"),
)

_series_metric(
    "removals_per_day",
    "ICE removals per day",
    FOIA_REMOVALS,
    "departed_date",
    "removals",
    "Removals (departures) per calendar day from the FOIA removal records, by departed date. "
    "With 7- and 28-day trailing means.",
    (_ROLLING_CAVEAT, _RELEASE_CAVEAT, "Case AOR and case criminality, not those at arrest."),
    ("aor", "criminality", "citizenship_country", "departure_country"),
    ("aor", "criminality", "citizenship_country"),
    months=("removals_without_conviction", "removals_by_case_category"),
)

_series_metric(
    "book_ins_per_day",
    "Detention book-ins per day (FOIA stays)",
    FOIA_STAYS,
    "stay_book_in",
    "book_ins",
    "New detention stays per calendar day from the FOIA detention stints: a stay is one person's "
    "continuous custody, possibly across facilities, counted on the day it began (stay book-in), "
    "so transfers between facilities are not new book-ins. With 7- and 28-day trailing means.",
    (
        _ROLLING_CAVEAT,
        _RELEASE_CAVEAT,
        "Includes people arrested by CBP and held by ICE; the workbook splits book-ins by arresting "
        "agency (see book_ins_monthly_compared).",
    ),
    ("aor", "criminality", "citizenship_country"),
    ("aor", "criminality", "citizenship_country"),
    needs=(STAY_IDENTIFIERS,),
    months=("book_in_criminality", "book_ins_after_ice_arrest"),
)


# --- removals per fiscal year: by departure, and as ICE credits them ----------------------------

_NO_PUBLISHED_REMOVALS = pa.schema([
    ("fiscal_year", pa.int64()), ("published_removals", pa.float64()),
    ("published_workbook", pa.string()), ("published_data_date", pa.date32()),
])


def _published_removals(backend: ibis.BaseBackend) -> ibis.Table:
    """Per fiscal year, ICE's removals total from the latest snapshot printing it, and the day
    that snapshot describes (published_series.snapshots: the table's own date, else the
    workbook's 'data as of' date, else its file date)."""
    if not has_tables(backend, STATS_REMOVALS, STATS_WORKBOOKS):
        return memtable(_NO_PUBLISHED_REMOVALS.empty_table())
    removals = backend.table(STATS_REMOVALS)
    rows = snapshots(backend, removals.filter(removals.category == "Total"), ["fiscal_year"],
                     "removals")
    rows = rows.mutate(data_date=rows.date)
    newest = ibis.window(group_by="fiscal_year",
                         order_by=[ibis.desc("data_date"), ibis.desc("workbook")])
    rows = rows.mutate(rank=ibis.row_number().over(newest))
    rows = rows.filter(rows["rank"] == 0)
    return rows.select(fiscal_year=rows.fiscal_year.cast("int64"),
                       published_removals=rows.removals.cast("float64"),
                       published_workbook=rows.workbook, published_data_date=rows.data_date)


def removals_by_fiscal_year(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    events, windows = foia_events(backend, FOIA_REMOVALS, "departed_date", params)
    events = events.mutate(fiscal_year=fiscal_year_of(events.date).cast("int64"))
    days_per_year: dict[int, int] = {}
    for day in covered_days(windows, params):
        days_per_year[fiscal_year(day)] = days_per_year.get(fiscal_year(day), 0) + 1
    covered = memtable(pa.table({
        "fiscal_year": pa.array(list(days_per_year), pa.int64()),
        "foia_days": pa.array(list(days_per_year.values()), pa.int64()),
    }))
    published = _published_removals(backend)
    joined = events.left_join(published, "fiscal_year")
    before_pull = (joined.date < joined.published_data_date).fill_null(False)
    foia = joined.group_by("fiscal_year").aggregate(
        foia_removals_by_departure=ibis._.count(),
        foia_removals_before_published_date=before_pull.cast("int64").sum(),
    )
    foia = covered.left_join(foia, "fiscal_year")
    result = foia.left_join(published, "fiscal_year")
    return result.select(
        "fiscal_year",
        "foia_days",
        foia_removals_by_departure=result.foia_removals_by_departure.fill_null(0),
        published_removals=result.published_removals,
        published_workbook=result.published_workbook,
        published_data_date=result.published_data_date,
        foia_removals_before_published_date=ibis.ifelse(
            result.published_data_date.notnull(),
            result.foia_removals_before_published_date.fill_null(0),
            ibis.null("int64"),
        ),
    ).order_by("fiscal_year")


register(
    Metric(
        name="removals_by_fiscal_year",
        view=View("foia_removals_by_departure", "removals", "bars", group="fiscal_year",
                  also=("published_removals",)),
        title="Removals per fiscal year: by departure date, and as ICE credits them",
        question="volume",
        definition=(
            "Two ways of putting removals in fiscal years (October to September). "
            "foia_removals_by_departure counts the FOIA removal records by the fiscal year of "
            "their departure date (ours), over foia_days, the days of that year the records "
            "cover. published_removals is ICE's removals total for the fiscal year from the "
            f"latest workbook printing it ({STATS_REMOVALS}, published_workbook; "
            "published_data_date is the day its figure describes: the table's own date from "
            "the Footnotes sheet, else the workbook's 'data as of' date): ICE credits a removal to the fiscal year in which it was "
            "confirmed, and a removal confirmed after its year was locked counts in the next "
            "year (the 'lag' rule of ICE's footnotes), so its years are not departure years. "
            "foia_removals_before_published_date counts the FOIA departures of the year before "
            "that workbook's data date, the like-for-like figure when the year was still open."
        ),
        unit="removals",
        caveats=(
            "The FOIA records carry no confirmation date, so removals cannot be put in ICE's "
            "confirmation years from them: the difference between the two counts mixes the lag "
            "with every other difference between the extracts.",
            "A fiscal year the FOIA records cover only in part (see foia_days) has a partial "
            "count.",
            "ICE's removals include returns (voluntary returns and departures); whether a FOIA "
            "release does depends on the release.",
            _RELEASE_CAVEAT,
        ),
        tables=(FOIA_REMOVALS, FOIA_RELEASES),
        build=removals_by_fiscal_year,
        count_column="foia_removals_by_departure",
        national=(NationalFigure(FOIA_REMOVALS, "ICE's published removals total"),),
    )
)


# --- FOIA book-ins beside the workbooks' monthly book-ins ----------------------------------------


def _days_in_month(month: ibis.DateValue) -> ibis.IntegerValue:
    return (month + ibis.interval(months=1) - ibis.interval(days=1)).day()


def _foia_book_ins_by_month(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    foia = daily_series(backend, MetricParams(start=params.start, end=params.end),
                        FOIA_STAYS, "stay_book_in", "book_ins")
    return foia.mutate(month=foia.date.truncate("M")).group_by("month").aggregate(
        foia_days=_.count(), foia_book_ins=_.book_ins.sum()
    )


def _published_book_ins_by_month(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    published = latest(backend, SeriesSpec(STATS_BOOK_INS, "book_ins", ("agency",)))
    if params.start:
        published = published.filter(published.month >= params.start.replace(day=1))
    if params.end:
        published = published.filter(published.month <= params.end)

    def agency(name: str):
        return ibis.ifelse(published.agency == name, published.value, 0).sum()

    return published.group_by("month").aggregate(
        workbook_book_ins=agency("Total"),
        workbook_ice_book_ins=agency("ICE"),
        workbook_cbp_book_ins=agency("CBP"),
        workbook=published.workbook.max(),
        data_date=ibis.coalesce(published.as_of_date, published.file_date).max(),
    )


_FOIA_SIDE = pa.schema([("month", pa.date32()), ("foia_days", pa.int64()),
                        ("foia_book_ins", pa.int64())])
_WORKBOOK_SIDE = pa.schema([("month", pa.date32()), ("workbook_book_ins", pa.float64()),
                            ("workbook_ice_book_ins", pa.float64()),
                            ("workbook_cbp_book_ins", pa.float64()), ("workbook", pa.string()),
                            ("data_date", pa.date32())])


def book_ins_compared(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    """Monthly FOIA stays and the workbook's latest book-ins, each per day of what it covers.

    Either side may be missing from the warehouse (FOIA records or workbooks not loaded yet); its
    columns are then empty.
    """
    sides, loaded = [], 0
    for build, empty in ((_foia_book_ins_by_month, _FOIA_SIDE),
                         (_published_book_ins_by_month, _WORKBOOK_SIDE)):
        try:
            sides.append(build(backend, params))
            loaded += 1
        except TableNotFound:
            sides.append(memtable(empty.empty_table()))
    foia, workbook = sides
    if not loaded:
        raise IceledgerError(f"book_ins_monthly_compared needs FOIA stays ({FOIA_STAYS}) or "
                             f"published book-ins ({STATS_BOOK_INS}); the warehouse has neither")
    # The month a workbook's data were pulled in is partial: count the days before the pull.
    partial = (workbook.data_date.truncate("M") == workbook.month).fill_null(False)
    workbook = workbook.mutate(
        workbook_partial_month=partial,
        workbook_days=ibis.ifelse(partial, workbook.data_date.day() - 1,
                                  _days_in_month(workbook.month)),
    )
    joined = foia.outer_join(workbook, foia.month == workbook.month)
    foia_per_day = joined.foia_book_ins / joined.foia_days.nullif(0)
    workbook_per_day = joined.workbook_book_ins / joined.workbook_days.nullif(0)
    return joined.select(
        month=ibis.coalesce(joined.month, joined.month_right),
        foia_days=joined.foia_days,
        foia_book_ins=joined.foia_book_ins,
        foia_book_ins_per_day=foia_per_day,
        workbook_days=joined.workbook_days,
        workbook_book_ins=joined.workbook_book_ins,
        workbook_book_ins_per_day=workbook_per_day,
        workbook_ice_book_ins_per_day=joined.workbook_ice_book_ins / joined.workbook_days.nullif(0),
        workbook_cbp_book_ins_per_day=joined.workbook_cbp_book_ins / joined.workbook_days.nullif(0),
        foia_to_workbook=foia_per_day / workbook_per_day.nullif(0),
        workbook_partial_month=joined.workbook_partial_month,
        workbook=joined.workbook,
    ).order_by("month")


register(
    Metric(
        name="book_ins_monthly_compared",
        title="Book-ins per day: FOIA stays beside the published workbooks",
        question="volume",
        definition="For each month, book-ins per day from two sources side by side: new FOIA "
        "detention stays (as book_ins_per_day) divided by the days of the month the FOIA data "
        "cover, and ICE's published initial book-ins (all arresting agencies; ICE and CBP also "
        "apart) from the latest workbook that printed the month, divided by the days in the month "
        "(for the month a workbook's data were pulled in, the days before its 'data as of' date, "
        "or its file date when it prints none; such months are flagged workbook_partial_month). "
        "foia_to_workbook is the ratio of the two rates.",
        unit="book-ins per day",
        caveats=(
            "Workbook figures for a fiscal year are revised until the year closes; the latest "
            "published value is used and the workbook named.",
            "A workbook's data date is when its data were pulled; whether the pull day itself is "
            "included is not stated, so the partial month's rate may be off by about one day's "
            "worth.",
            "FOIA stays count continuous custody; ICE's 'initial book-ins' may count some transfers "
            "differently. The ratio is a reconciliation aid, not a correction.",
            _RELEASE_CAVEAT,
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES, STATS_BOOK_INS, STATS_WORKBOOKS),
        build=book_ins_compared,
        count_column="foia_book_ins",
        needs=(STAY_IDENTIFIERS,),
        national=(NationalFigure(FOIA_STAYS, "ICE's published book-ins"),),
        disclosure=Disclosure(
            facts=("workbook_days", "workbook_book_ins", "workbook_book_ins_per_day",
                   "workbook_ice_book_ins_per_day", "workbook_cbp_book_ins_per_day",
                   "workbook_partial_month", "workbook"),
            measures=("foia_days",),
        ),
        view=View("foia_book_ins_per_day", "book-ins per day",
                  also=("workbook_book_ins_per_day",)),
    )
)


# --- arrests against the targets -----------------------------------------------------------------


def _target_rows(targets: list[Target], per_office: bool, offices: int) -> pa.Table:
    """Each target as a daily figure at the level asked for, with how that figure was reached."""
    rows = []
    for t in targets:
        if t.scope == "field_office" and per_office:
            per_day, basis = t.arrests_per_day, "as published (per field office)"
        elif t.scope == "field_office":
            per_day = t.arrests_per_day * offices
            basis = f"{t.arrests_per_day:g} per field office x {offices} field offices"
        elif per_office:
            per_day = t.arrests_per_day / offices
            basis = (f"equal share of the national {t.arrests_per_day:,.0f}/day over {offices} "
                     "field offices (not a published allocation)")
        else:
            per_day, basis = t.arrests_per_day, "as published (national)"
        rows.append(
            {
                "target": t.target_id,
                "target_status": t.status,
                "target_basis": basis,
                "target_per_day": float(per_day),
                "target_from": t.effective_from,
                "target_to": t.effective_to or FAR_FUTURE,
            }
        )
    schema = pa.schema(
        [("target", pa.string()), ("target_status", pa.string()), ("target_basis", pa.string()),
         ("target_per_day", pa.float64()), ("target_from", pa.date32()), ("target_to", pa.date32())]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def arrests_against_targets(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    """Daily arrests (and 7-day mean) beside every target in force that day, one row per target."""
    per_office = "aor" in params.by
    chosen = params.filters.get("aor")
    offices = len(chosen) if chosen and not per_office else len(field_offices())
    targets = memtable(_target_rows(load_targets(), per_office, offices))
    arrests = daily_series(backend, params, FOIA_ARRESTS, "apprehension_date", "arrests")
    joined = arrests.join(
        targets, (arrests.date >= targets.target_from) & (arrests.date <= targets.target_to)
    )
    return joined.select(
        "date", *params.by, "target", "target_status", "target_basis", "target_per_day", "arrests",
        "arrests_7d_avg",
        attainment_pct=joined.arrests / joined.target_per_day * 100,
        attainment_7d_pct=joined.arrests_7d_avg / joined.target_per_day * 100,
    ).order_by(["date", *params.by, "target"])


def monthly_attainment(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    daily = arrests_against_targets(backend, params)
    keys = ["month", *params.by, "target", "target_status", "target_basis", "target_per_day"]
    monthly = daily.mutate(month=daily.date.truncate("M")).group_by(keys).aggregate(
        days=_.count(), arrests=_.arrests.sum()
    )
    per_day = monthly.arrests / monthly.days
    return monthly.mutate(
        arrests_per_day=per_day, attainment_pct=per_day / monthly.target_per_day * 100
    ).order_by(["month", *params.by, "target"])


def field_office_ranking(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
    """Monthly arrests per field office, ranked as the May 2025 directive ranked them."""
    by_office = MetricParams(by=("aor",), start=params.start, end=params.end,
                             filters=params.filters)
    daily = daily_series(backend, by_office, FOIA_ARRESTS, "apprehension_date", "arrests")
    daily = daily.filter(daily.aor.notnull())
    monthly = daily.mutate(month=daily.date.truncate("M")).group_by(["month", "aor"]).aggregate(
        days=_.count(), arrests=_.arrests.sum()
    )
    in_month = ibis.window(group_by="month")
    offices = _.aor.count().over(in_month)
    from_bottom = ibis.rank().over(group_by="month", order_by=_.arrests)
    return monthly.mutate(
        arrests_per_day=_.arrests / _.days,
        rank=ibis.rank().over(group_by="month", order_by=ibis.desc("arrests")) + 1,
        offices=offices,
        bottom_decile=from_bottom < (offices / 10).ceil(),
    ).order_by(["month", "rank", "aor"])


_TARGET_CAVEATS = (
    "Targets are reported, not published: src/iceledger/data/facts/targets.csv gives each one's source, "
    "and the January start day is a placeholder (late January 2025). Edit the file, or pass "
    "--facts DIR / set ICELEDGER_FACTS_DIR to use your own.",
    "Alternative reports of a target (status 'alternative') are rows beside the primary target, "
    "never summed with it.",
    "Per-field-office figures for a national target are an equal share, which no source published.",
    "Arrests are FOIA arrest episodes (see arrests_per_day); ICE's own counts may differ.",
)


_TARGET_FACTS = ("target", "target_status", "target_basis", "target_per_day")


def _target_metric(
    *, name: str, title: str, definition: str, build, view: View, disclosure: Disclosure,
    caveats: tuple[str, ...] = (),
):
    return register(
        Metric(
            name=name,
            title=title,
            question="volume",
            definition=definition,
            unit="arrests per day; percent of target",
            caveats=(*_TARGET_CAVEATS, *caveats),
            tables=(FOIA_ARRESTS, FOIA_RELEASES, "targets.csv"),
            build=build,
            dimensions=("aor",),
            filters=("aor",),
            count_column="arrests",
            needs=(ARREST_EPISODES,),
            national=(NationalFigure(FOIA_ARRESTS, "the arrest target"),),
            disclosure=disclosure,
            view=view,
        )
    )


_target_metric(
    name="arrests_vs_target",
    title="ICE arrests per day against the arrest targets",
    definition="Arrest episodes per day (as arrests_per_day) beside each arrest target in force "
    "that day, "
    "and attainment: arrests as a percentage of the target, for the day and for the 7-day mean. "
    "National by default; with --by aor each field office against the per-office target "
    "(75/day) or an equal share of a national one.",
    build=arrests_against_targets,
    view=View("arrests_7d_avg", "arrests per day", group="target", reference="target_per_day"),
    # One row per target in force that day, each with the day's arrests.
    disclosure=Disclosure(facts=_TARGET_FACTS, months=("target_attainment",)),
)

_target_metric(
    name="target_attainment",
    title="Monthly attainment of the arrest targets",
    definition="For each month and each target in force in it: the days of the month under that "
    "target, "
    "the arrest episodes on those days, arrests per day, and attainment (arrests per day as a "
    "percentage of the daily target). A month with two targets has two rows, one per stretch of "
    "days. National, or per field office with --by aor.",
    build=monthly_attainment,
    view=View("attainment_pct", "percent of target", group="target"),
    # One row per stretch of days under a target; alternative targets repeat a stretch's arrests.
    disclosure=Disclosure(keys=("target",), copies=("target",), facts=_TARGET_FACTS, measures=("days",)),
    caveats=("Months at the edges of the data are partial (see days).",),
)

register(
    Metric(
        name="field_office_ranking",
        title="Field offices ranked by monthly arrests",
        question="volume",
        definition="Arrest episodes per field office (AOR) per month, ranked within the month "
        "(1 = most arrests; ties share the better rank), with the bottom tenth flagged: an office "
        "is in the bottom decile when fewer than ceil(offices/10) offices made fewer arrests, the "
        "measure the May 2025 directive reportedly used to threaten field-office leaders.",
        unit="arrests per month; rank",
        caveats=(
            "Raw counts, not adjusted for an office's size or population, as the directive "
            "reportedly ranked them.",
            "Only offices with at least one arrest in the period are ranked; arrests with no "
            "AOR are left out.",
            "Months at the edges of the data are partial (see days).",
            _RELEASE_CAVEAT,
        ),
        tables=(FOIA_ARRESTS, FOIA_RELEASES),
        build=field_office_ranking,
        filters=("criminality", "arrest_setting", "apprehension_method"),
        count_column="arrests",
        needs=(ARREST_EPISODES,),
        disclosure=Disclosure(keys=("aor",), measures=("days", "rank", "offices")),
        view=View("arrests_per_day", "arrests per day", "heatmap", group="aor",
                  link="/field-offices/"),
    )
)
