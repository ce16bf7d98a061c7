"""Human cost: who is swept in, what detention does to them, how often records get people wrong.

Seven families of indicators, each read from the FOIA records as loaded (docs/methodology.md,
"Human cost", defines each and says what the records cannot show):

1. long-term residents: years from the recorded entry date to the detention book-in;
2. recorded U.S. citizenship among arrests, book-ins and removals;
3. children and families: ages at book-in, stays in family residential facilities, children held
   longer than the Flores settlement's 20 days;
4. detained, then not removable: stays whose case ended in relief or termination, their days,
   bed-days and cost;
5. removals with no conviction, and removals by case category;
6. re-arrests: arrests of a person already arrested in the same release;
7. identification quality: missing, placeholder and self-contradicting identifiers.

Most indicators are shares of a set of records. They are computed from one row per record
carrying, for each share, whether the record counts towards it (`<share>_with_data`: the
denominator) and whether it matches (`<share>_matching`, within the denominator); the monthly
metric and the before/after metric of an indicator both aggregate those rows, so the two always
agree. Shares carry 95% Wilson intervals and differences Newcombe's hybrid score interval
(targeting.py).

An indicator whose columns the period's records lack (a layout without them, or every value
redacted) is refused with "not measurable from these records", never shown as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis import _

from iceledger.metrics.backends import memtable
from iceledger.metrics.cost import RATE_CAVEATS, RATE_COLUMNS, priced
from iceledger.metrics.detention import (
    POPULATION_FILTERS,
    coverage,
    nights_held,
    owned,
    require_derived,
    source_table,
    windows_of,
)
from iceledger.metrics.registry import (
    FISCAL_YEAR,
    SPLIT_KEYS,
    Disclosure,
    Metric,
    MetricParams,
    NotMeasurable,
    View,
    register,
)
from iceledger.metrics.targeting import (
    _INTERVAL_CAVEAT,
    SPLIT_FILTER,
    category_shares,
    criminality_mix,
    default_splits,
    share_difference,
    share_with_interval,
    split_days,
    without_split,
)
from iceledger.metrics.volume import (
    ARREST_FILTERS,
    apply_filters,
    covered_days,
    during,
    fiscal_year,
    fiscal_year_of,
    foia_events,
    release_spans,
    release_windows,
)
from iceledger.tables import (
    FOIA_ARREST_STAY_LINKS,
    FOIA_ARRESTS,
    FOIA_RELEASES,
    FOIA_REMOVALS,
    FOIA_STAYS,
    FOIA_STINTS,
    FAMILY_FACILITY_WORDS,
)

QUESTION = "human_cost"
DEFAULT_SPLIT = date(2025, 5, 21)
DEFAULT_SPLIT_EVENT = "default split: the 3,000-arrests-a-day target is set (2025-05-21)"
LONG_TERM_YEARS = (5, 10, 20)
DAYS_PER_YEAR = 365.25
SECONDS_PER_DAY = 86_400
FLORES_DAYS = 20
# How ICE's records spell the United States as a country of citizenship, compared in upper case.
UNITED_STATES = ("UNITED STATES", "UNITED STATES OF AMERICA", "USA", "U.S.A.", "US")
NOT_REMOVABLE_STATUSES = ("relief granted", "proceedings terminated")
# Identifier values that name nobody: a filler word, or one character repeated ("0000000").
PLACEHOLDER_IDENTIFIERS = ("UNKNOWN", "NONE", "NULL", "N/A", "NA", "-", "0")

REPEAT_ARREST_DIMENSIONS = ("aor", "criminality", "arrest_setting")
STAY_DIMENSIONS = ("aor", "criminality")
REMOVAL_FILTERS = ("aor", "criminality", "citizenship_country")

RECORDED_CAVEAT = (
    "Records without the value an indicator needs are counted in `records` but left out of its "
    "denominator (`with_data`); shares are of the records that hold the value."
)
BOOK_IN_CAVEAT = (
    f"Book-ins are detention stays ({FOIA_STAYS}), dated by their book-in; person fields (birth, "
    "entry date, case status, facility) come from the stay's stints."
)


def require_columns(table: ir.Table, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise NotMeasurable(f"{name} has no {', '.join(missing)} column (no loaded layout carries "
                            f"it)")


def require_values(rows: ir.Table, what: str, recorded: ir.BooleanValue) -> None:
    """Refuse when the period holds records but none of them holds the value needed."""
    if any_row(rows.filter(recorded)):
        return
    records = rows.count().to_pyarrow().as_py()
    if records:
        raise NotMeasurable(f"none of the period's {records} records holds {what} (redacted or "
                            f"blank)")


def any_row(rows: ir.Table) -> bool:
    # One row settles it, and DuckDB stops at the first it finds.
    return rows.select(found=ibis.literal(1)).limit(1).to_pyarrow().num_rows > 0


# --- shares of records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """One share: of the records where `with_data` holds, those where `matching` also holds."""

    name: str
    with_data: Callable[[ir.Table], ir.BooleanValue]
    matching: Callable[[ir.Table], ir.BooleanValue]
    # The share whose matching records include all of this one's (over 5 years holds over 10),
    # over the same records: the difference counts people, and public outputs protect it.
    within: str | None = None


def flag(rows: ir.Table, shares: tuple[Share, ...]) -> ir.Table:
    """The rows with `<share>_with_data` and `<share>_matching` as 0/1 for each share."""
    columns = {}
    for share in shares:
        counted = share.with_data(rows).fill_null(False)
        columns[f"{share.name}_with_data"] = counted.cast("int64")
        columns[f"{share.name}_matching"] = (counted & share.matching(rows).fill_null(False)).cast(
            "int64"
        )
    return rows.mutate(**columns)


def monthly_shares(rows: ir.Table, shares: tuple[Share, ...], keys: list[str]) -> ir.Table:
    """month, keys, indicator, records, with_data, matching, share, ci_low, ci_high: one row per
    month, group and share."""
    return share_rows(flag(rows, shares).mutate(month=_.date.truncate("M")), shares,
                      ["month", *keys])


def period_shares(
    rows: ir.Table, days: list[date], shares: tuple[Share, ...], keys: list[str]
) -> ir.Table:
    """period_start, period_end (the days the data cover), keys, indicator, records, with_data,
    matching, share, ci_low, ci_high: one row per group and share over the whole period."""
    bounds = {
        "period_start": ibis.literal(days[0] if days else None, type="date"),
        "period_end": ibis.literal(days[-1] if days else None, type="date"),
    }
    counted = share_rows(flag(rows, shares), shares, keys)
    return counted.mutate(**bounds).relocate("period_start", "period_end")


def fiscal_year_shares(
    rows: ir.Table, days: list[date], shares: tuple[Share, ...], keys: list[str]
) -> ir.Table:
    """period_shares with one row per fiscal year too (`keys` holds FISCAL_YEAR, a column of
    `rows`): each year's period_start and period_end are the first and last of its days that the
    data cover."""
    bounds: dict[int, tuple[date, date]] = {}
    for day in days:
        year = fiscal_year(day)
        bounds[year] = (bounds.get(year, (day,))[0], day)
    spans = memtable(pa.table({
        FISCAL_YEAR: pa.array(list(bounds), pa.int64()),
        "period_start": pa.array([first for first, _ in bounds.values()], pa.date32()),
        "period_end": pa.array([last for _, last in bounds.values()], pa.date32()),
    }))
    counted = share_rows(flag(rows, shares), shares, keys)
    return counted.inner_join(spans, FISCAL_YEAR).select(
        "period_start", "period_end", *counted.columns
    ).order_by([*keys, "indicator"])


def share_rows(rows: ir.Table, shares: tuple[Share, ...], keys: list[str]) -> ir.Table:
    """Of rows `flag` marked: per group of `keys` and share, records, with_data, matching, and
    share = matching / with_data with its Wilson interval."""
    sums = {
        f"{s.name}_{part}": rows[f"{s.name}_{part}"].sum()
        for s in shares
        for part in ("with_data", "matching")
    }
    grouped = rows.group_by(keys) if keys else rows
    counted = grouped.aggregate(records=_.count(), **sums)
    parts = []
    for share in shares:
        with_data, matching = counted[f"{share.name}_with_data"], counted[f"{share.name}_matching"]
        value, low, high = share_with_interval(matching, with_data)
        parts.append(
            counted.select(
                *keys,
                indicator=ibis.literal(share.name),
                records=counted.records,
                with_data=with_data,
                matching=matching,
                share=value,
                ci_low=low,
                ci_high=high,
            )
        )
    return ibis.union(*parts).order_by([*keys, "indicator"])


def split_dates(params: MetricParams, days: list[date]) -> ir.Table:
    """The split dates asked for (--filter split=...), else 2025-05-21 if the data span it."""
    if SPLIT_FILTER in params.filters:
        return memtable(split_days(params, days))
    default = split_days(MetricParams(filters={SPLIT_FILTER: (DEFAULT_SPLIT.isoformat(),)}), days)
    labels = pa.array([DEFAULT_SPLIT_EVENT] * default.num_rows, pa.string())
    return memtable(default.set_column(1, "split_event", labels))


def default_split_dates() -> frozenset[date]:
    """Every split date a before/after metric reads when none is asked for: the dated events and
    targets' starts (targeting.default_splits) and DEFAULT_SPLIT (these indicators). Public mode
    plans its daily tables against the parts of the months they cut; a metric with a default
    missing here is not broken, only judged by the stricter rule (serving/disclosure.py,
    unsafe_splits)."""
    return frozenset({DEFAULT_SPLIT, *(day for day, _ in default_splits())})


def shifted_shares(
    rows: ir.Table,
    days: list[date],
    shares: tuple[Share, ...],
    params: MetricParams,
    keys: tuple[str, ...] = (),
) -> ir.Table:
    """Each share before and after each split date, and the difference with its interval."""
    paired = flag(rows, shares).cross_join(split_dates(params, days))
    after = paired.date >= paired.split_date
    keys = ["split_date", "split_event", *keys, *params.by]
    # Every share's counts in one pass over the records; then one row per share.
    sums = {}
    for share in shares:
        for part in ("with_data", "matching"):
            flagged = paired[f"{share.name}_{part}"]
            sums[f"before_{share.name}_{part}"] = ibis.ifelse(after, 0, flagged).sum()
            sums[f"after_{share.name}_{part}"] = ibis.ifelse(after, flagged, 0).sum()
    counted = paired.group_by(keys).aggregate(**sums)
    parts = []
    for share in shares:
        one = counted.select(
            *keys,
            before_records=counted[f"before_{share.name}_with_data"],
            after_records=counted[f"after_{share.name}_with_data"],
            **{
                f"before_{share.name}": counted[f"before_{share.name}_matching"],
                f"after_{share.name}": counted[f"after_{share.name}_matching"],
            },
        )
        parts.append(share_difference(one, keys, share.name))
    return ibis.union(*parts).order_by([*keys, "definition"])


# In the rows of `share_rows`, the records without the value and those with it that do not match
# count people too.
SHARE_PARTS = (("records", "with_data"), ("with_data", "matching"))

Population = Callable[[ibis.BaseBackend, MetricParams], tuple[ir.Table, list[date]]]


@dataclass(frozen=True)
class Indicator:
    """A family of shares over one population of records: a monthly metric and a shift metric."""

    name: str
    title: str
    definition: str
    caveats: tuple[str, ...]
    tables: tuple[str, ...]
    population: Population  # (rows with `date` and the dimensions, the days the data cover)
    shares: tuple[Share, ...]
    dimensions: tuple[str, ...]
    filters: tuple[str, ...]
    # Columns the population always groups by, before any --by (the release, the action).
    keys: tuple[str, ...] = ()
    # The monthly metric, when it shows more than the shares (counts of days, cost ...), and
    # its column counting the people behind each row.
    monthly: Callable[[ibis.BaseBackend, MetricParams], ir.Table] | None = None
    monthly_count: str = "matching"
    # The monthly metric's default chart: each indicator's share, unless `monthly` says other.
    view: View = View("share", "share of records", group="indicator")
    # How public outputs read the monthly metric's columns, when `monthly` gives its own.
    monthly_disclosure: Disclosure | None = None
    # Whether a public daily table may count the matching records day by day (Disclosure).
    shares_by_day: bool = True

    def disclosure(self) -> Disclosure:
        """The monthly metric's: its own, or that of the rows `monthly_shares` gives (one per
        month, key and indicator), where the records without the value and those with it that
        do not match count people too, and so does a share's excess over one nested in it."""
        if self.monthly:
            return self.monthly_disclosure or Disclosure()
        return Disclosure(keys=(*self.keys, "indicator"), unsummed=self.keys, parts=SHARE_PARTS,
                          nested=self.nested())

    def nested(self) -> tuple[tuple[str, str, str], ...]:
        """Each share inside another, as Disclosure.nested reads the `indicator` rows."""
        return tuple(("indicator", s.name, s.within) for s in self.shares if s.within)


def register_indicator(indicator: Indicator) -> None:
    def monthly(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
        rows, _days = indicator.population(backend, params)
        return monthly_shares(rows, indicator.shares, [*indicator.keys, *params.by])

    def shift(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
        rows, days = indicator.population(backend, without_split(params))
        return shifted_shares(rows, days, indicator.shares, params, indicator.keys)

    def period(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
        by_year = FISCAL_YEAR in params.by
        population_by = tuple(d for d in params.by if d != FISCAL_YEAR)
        rows, days = indicator.population(
            backend, MetricParams(population_by, params.start, params.end, params.filters)
        )
        if by_year:
            rows = rows.mutate(**{FISCAL_YEAR: fiscal_year_of(rows.date).cast("int64")})
            table = fiscal_year_shares(rows, days, indicator.shares,
                                       [*indicator.keys, *params.by])
        else:
            table = period_shares(rows, days, indicator.shares, [*indicator.keys, *params.by])
        # One label per row of the default view: the indicator, after the key that splits it,
        # and the fiscal year it counts, when it counts one.
        figure = table.indicator
        for key in reversed(indicator.keys):
            figure = table[key].cast("string") + " · " + figure
        if by_year:
            figure = figure + " · FY" + table[FISCAL_YEAR].cast("string")
        return table.mutate(figure=figure).relocate("figure", after="period_end")

    names = ", ".join(s.name for s in indicator.shares)
    register(
        Metric(
            name=indicator.name,
            title=f"{indicator.title}, by month",
            question=QUESTION,
            definition=(
                f"{indicator.definition} "
                + (
                    ""
                    if indicator.monthly
                    else f"One row per month and indicator ({names}): records, with_data (the "
                    "records holding what the indicator needs: its denominator), matching, and "
                    "share = matching / with_data with its 95% Wilson interval (ci_low, ci_high)."
                )
            ),
            unit="records; share (0-1) with 95% interval",
            caveats=(_INTERVAL_CAVEAT, RECORDED_CAVEAT, *indicator.caveats),
            tables=indicator.tables,
            build=indicator.monthly or monthly,
            dimensions=indicator.dimensions,
            filters=indicator.filters,
            count_column=indicator.monthly_count,
            view=indicator.view,
            disclosure=indicator.disclosure(),
        )
    )
    register(
        Metric(
            name=f"{indicator.name}_period",
            title=f"{indicator.title}, over a period",
            question=QUESTION,
            definition=(
                f"{indicator.definition} Over the whole period asked for (--from/--to; the "
                f"data's span by default), one row per indicator ({names})"
                + (f" and {', '.join(indicator.keys)}" if indicator.keys else "")
                + ": records, with_data (its denominator), matching, and share = matching / "
                "with_data with its 95% Wilson interval (ci_low, ci_high); period_start and "
                "period_end give the days the data cover, figure names the row. Events too "
                "rare to count month by month are counted here over the whole span; --by "
                "fiscal_year counts them per U.S. federal fiscal year (October to September; "
                "2025 is October 2024 to September 2025), each row's period_start and period_end "
                "then the days of its year that the data cover."
            ),
            unit="records; share (0-1) with 95% interval",
            caveats=(_INTERVAL_CAVEAT, RECORDED_CAVEAT, *indicator.caveats),
            tables=indicator.tables,
            build=period,
            dimensions=(*indicator.dimensions, FISCAL_YEAR),
            filters=indicator.filters,
            count_column="matching",
            view=View("share", "share of records", "dots", group="figure"),
            disclosure=Disclosure(
                keys=(*indicator.keys, "indicator"),
                unsummed=indicator.keys,
                parts=SHARE_PARTS,
                nested=indicator.nested(),
                facts=("period_start", "period_end"),
            ),
        )
    )
    register(
        Metric(
            name=f"{indicator.name}_shift",
            title=f"{indicator.title}, before and after a date",
            question=QUESTION,
            definition=(
                f"{indicator.definition} For each split date and each share ({names}; the "
                "`definition` column), the share before the date (from --from or the data's start) "
                "and from the date on (to --to or the data's end), with 95% Wilson intervals, and "
                "the difference after minus before with Newcombe's hybrid score interval. Split "
                f"dates: --filter split=YYYY-MM-DD (repeatable); by default {DEFAULT_SPLIT}, the "
                "day the 3,000-arrests-a-day target was set, when the data span it."
            ),
            unit="share (0-1); difference in share",
            view=View("after_share", "share of records", "paired", also=("before_share",)),
            disclosure=Disclosure(
                keys=(*SPLIT_KEYS, *indicator.keys), copies=("split_event",),
                unsummed=indicator.keys,
                splits=SPLIT_FILTER, shares_by_day=indicator.shares_by_day,
                nested=tuple(("definition", *pair[1:]) for pair in indicator.nested()),
            ),
            caveats=(
                _INTERVAL_CAVEAT,
                RECORDED_CAVEAT,
                "Before and after are the whole spans on either side of the split; a trend that "
                "began earlier shows up as a change at any split. Narrow the span with "
                "--from/--to.",
                *indicator.caveats,
            ),
            tables=indicator.tables,
            build=shift,
            dimensions=indicator.dimensions,
            filters=(*indicator.filters, SPLIT_FILTER),
            count_column="smaller_group",
        )
    )


# --- populations ---------------------------------------------------------------------------------


def arrests(backend: ibis.BaseBackend, params: MetricParams) -> tuple[ir.Table, list[date]]:
    """Arrest episodes (duplicates left out), one release per day, in the period."""
    rows, windows = foia_events(backend, FOIA_ARRESTS, "apprehension_date", params)
    return rows, covered_days(windows, params)


def removals(backend: ibis.BaseBackend, params: MetricParams) -> tuple[ir.Table, list[date]]:
    rows, windows = foia_events(backend, FOIA_REMOVALS, "departed_date", params)
    return rows, covered_days(windows, params)


def require_stay_facts(backend: ibis.BaseBackend, stints_columns: tuple[str, ...],
                       facts: tuple[str, ...]) -> None:
    """Refuse when the stints lack every one of `stints_columns` (no loaded layout carries them),
    and fail when the stays were derived before they carried `facts` (the person facts the
    derive takes from the stints, one per stay)."""
    if not set(stints_columns) & set(source_table(backend, FOIA_STINTS).columns):
        raise NotMeasurable(f"{FOIA_STINTS} has no {' or '.join(stints_columns)} column (no "
                            "loaded layout carries it)")
    require_derived(source_table(backend, FOIA_STAYS), FOIA_STAYS, facts)


def book_ins(columns: tuple[str, ...], required: str) -> Population:
    """Detention stays booked in during the period (one release per day), with `columns` (their
    person facts); refused when no stay of the period has any of them (`required` names what
    they record)."""

    def population(backend: ibis.BaseBackend, params: MetricParams):
        require_stay_facts(backend, columns, columns)
        rows, windows = foia_events(backend, FOIA_STAYS, "stay_book_in", params)
        require_values(rows, required, ibis.or_(*(rows[c].notnull() for c in columns)))
        return rows, covered_days(windows, params)

    return population


# --- 1. long-term residents ----------------------------------------------------------------------


def _years_in_country(rows: ir.Table) -> ir.FloatingValue:
    return rows.date.delta(rows.entry_date, unit="day").cast("float64") / DAYS_PER_YEAR


def _entered_before(rows: ir.Table) -> ir.BooleanValue:
    return rows.entry_date.notnull() & (rows.entry_date <= rows.date)


ENTRY_DATE = ("entry_date",)


def _long_term_population(backend: ibis.BaseBackend, params: MetricParams):
    """Book-ins, and arrests through the stay they led to, with `action` naming which."""
    require_stay_facts(backend, ENTRY_DATE, ENTRY_DATE)
    require_derived(source_table(backend, FOIA_ARRESTS), FOIA_ARRESTS, ("stay_entry_date",))
    stays, windows = foia_events(backend, FOIA_STAYS, "stay_book_in", params)
    arrests_rows, arrest_days = arrests(backend, params)
    # The derive writes on each arrest the entry date of the stay it led to.
    arrests_rows = arrests_rows.mutate(entry_date=arrests_rows.stay_entry_date)
    columns = ("date", "entry_date", *params.by)
    rows = ibis.union(
        arrests_rows.select(*columns, action=ibis.literal("arrests")),
        stays.select(*columns, action=ibis.literal("book_ins")),
    )
    # A book-in with an entry date settles it before any arrest is read.
    if not any_row(stays.filter(stays.entry_date.notnull())):
        require_values(rows, "an entry date", rows.entry_date.notnull())
    return rows, sorted(set(covered_days(windows, params)) | set(arrest_days))


register_indicator(
    Indicator(
        name="long_term_residents",
        # No daily table breaks book-ins or arrests down by what this counts.
        shares_by_day=False,
        title="Arrests and book-ins of long-term residents (years since entry)",
        definition=(
            "Arrest episodes and detention book-ins (stays), per action (arrests, book_ins), by "
            "the time from the person's recorded entry date (Entry Date, on the stints) to the "
            "arrest or book-in, in years of 365.25 days: the shares of records with an entry "
            "date on or before the event whose entry was at least 5, 10 and 20 years earlier "
            "(over_5_years, over_10_years, over_20_years). Arrests have no entry date of their "
            f"own: an arrest takes the one of the stay it led to ({FOIA_ARREST_STAY_LINKS}). --by "
            "criminality shows how many of the arrests with no conviction are of people "
            "settled for a decade."
        ),
        caveats=(
            BOOK_IN_CAVEAT,
            "Only arrests that led to a detention stay have an entry date; the arrest shares are "
            "of those, which need not resemble arrests of people never detained.",
            "Entry Date is the entry ICE recorded, often the last one; a person who left and came "
            "back counts from the later entry, and an entry without inspection may be recorded "
            "from the person's own statement or not at all.",
            "Entry dates after the book-in are errors in the record and are left out of the "
            "denominator.",
        ),
        tables=(FOIA_ARRESTS, FOIA_ARREST_STAY_LINKS, FOIA_STAYS, FOIA_STINTS,
                FOIA_RELEASES),
        population=_long_term_population,
        shares=tuple(
            Share(
                f"over_{years}_years",
                _entered_before,
                lambda rows, years=years: _years_in_country(rows) >= years,
                within=f"over_{fewer}_years" if fewer else None,
            )
            for fewer, years in zip((None, *LONG_TERM_YEARS), LONG_TERM_YEARS)
        ),
        dimensions=STAY_DIMENSIONS,
        filters=("aor", "criminality", "citizenship_country"),
        keys=("action",),
    )
)


# --- 2. recorded U.S. citizenship ----------------------------------------------------------------


def _citizenship_records(backend: ibis.BaseBackend, params: MetricParams):
    """Arrests, book-ins and removals, with `action` naming which."""
    parts, days = [], set()
    for action, table, when in (
        ("arrests", FOIA_ARRESTS, "apprehension_date"),
        ("book_ins", FOIA_STAYS, "stay_book_in"),
        ("removals", FOIA_REMOVALS, "departed_date"),
    ):
        require_columns(source_table(backend, table), table, ("citizenship_country",))
        rows, windows = foia_events(backend, table, when, params)
        parts.append(
            rows.select("date", "citizenship_country", *params.by, action=ibis.literal(action))
        )
        days.update(covered_days(windows, params))
    rows = ibis.union(*parts)
    require_values(rows, "a citizenship country", rows.citizenship_country.notnull())
    return rows, sorted(days)


register_indicator(
    Indicator(
        name="recorded_us_citizens",
        title="Arrests, book-ins and removals recorded as U.S. citizens",
        definition=(
            "Arrest episodes, detention book-ins (stays) and removals whose recorded citizenship "
            "country is the United States (spelled "
            + ", ".join(UNITED_STATES)
            + ", ignoring case), per action (arrests, book_ins, removals): indicator us_citizen, "
            "its share of the action's records with a citizenship recorded."
        ),
        caveats=(
            "This is what the record says, not a verified fact: a U.S. citizen recorded as a "
            "foreign national is invisible here, and a record naming the United States may be a "
            "data-entry error, a dual national, or a citizen wrongly held.",
            "Small counts are suppressed in public outputs.",
        ),
        tables=(FOIA_ARRESTS, FOIA_STAYS, FOIA_REMOVALS, FOIA_RELEASES),
        population=_citizenship_records,
        shares=(
            Share(
                "us_citizen",
                lambda rows: rows.citizenship_country.notnull(),
                lambda rows: rows.citizenship_country.upper().isin(UNITED_STATES),
            ),
        ),
        dimensions=STAY_DIMENSIONS,
        filters=("aor", "criminality"),
        keys=("action",),
    )
)


# --- 3. children and families --------------------------------------------------------------------


def _ages(rows: ir.Table) -> ir.Table:
    """age_low and age_high at book-in: exact from the birth date, else the two ages a birth
    year allows (the birthday may fall before or after the book-in day in that year). A birth
    after the book-in is no age at all (a two-digit year read into the wrong century, a typo):
    unknown, never a child's age; the ingest's impossible_birth_years check counts such rows."""
    day = rows.date
    birth = rows.birth_date
    before_birthday = (day.month() * 100 + day.day()) < (birth.month() * 100 + birth.day())
    exact = day.year() - birth.year() - before_birthday.cast("int64")
    by_year = day.year() - rows.birth_year.cast("int64")
    unknown = ibis.null("int64")
    from_year = ibis.ifelse(by_year >= 0, by_year, unknown)
    dated = birth.notnull() & (exact >= 0)
    return rows.mutate(
        age_low=ibis.ifelse(dated, exact, from_year - 1),
        age_high=ibis.ifelse(dated, exact, from_year),
    )


BIRTH_COLUMNS = ("birth_date", "birth_year")


def _birth_population(backend: ibis.BaseBackend, params: MetricParams):
    rows, days = book_ins(BIRTH_COLUMNS, "a birth date or birth year")(backend, params)
    return _ages(rows), days


def _age_known(rows: ir.Table) -> ir.BooleanValue:
    return rows.age_low.notnull()


register_indicator(
    Indicator(
        name="book_in_ages",
        # No daily table breaks book-ins or arrests down by what this counts.
        shares_by_day=False,
        title="Children and people 65 or older booked into detention",
        definition=(
            "Detention book-ins (stays) of people under 18 and of people 65 or older at book-in. "
            "Age comes from the birth date where the record has one, else from the birth year, "
            "which allows two ages (the birthday may fall before or after the book-in day): "
            "under_18_lower_bound counts the book-ins certainly under 18, under_18_upper_bound "
            "those that may be, and likewise aged_65_plus_lower_bound and _upper_bound. The true "
            "share lies between the two bounds."
        ),
        caveats=(
            BOOK_IN_CAVEAT,
            "The FOIA releases redact birth dates, so ages rest on birth years: the bounds state "
            "that uncertainty; they are not confidence intervals.",
            "Children held with a parent may not be booked in under their own record.",
        ),
        tables=(FOIA_STAYS, FOIA_STINTS, FOIA_RELEASES),
        population=_birth_population,
        shares=(
            Share("under_18_lower_bound", _age_known, lambda r: r.age_high < 18,
                  within="under_18_upper_bound"),
            Share("under_18_upper_bound", _age_known, lambda r: r.age_low < 18),
            Share("aged_65_plus_lower_bound", _age_known, lambda r: r.age_low >= 65,
                  within="aged_65_plus_upper_bound"),
            Share("aged_65_plus_upper_bound", _age_known, lambda r: r.age_high >= 65),
        ),
        dimensions=STAY_DIMENSIONS,
        filters=POPULATION_FILTERS,
    )
)


def _family_population(backend: ibis.BaseBackend, params: MetricParams):
    require_stay_facts(backend, ("facility_name",), ("family_facility",))
    rows, windows = foia_events(backend, FOIA_STAYS, "stay_book_in", params)
    require_values(rows, "a facility name", rows.family_facility.notnull())
    return rows, covered_days(windows, params)


register_indicator(
    Indicator(
        name="family_facility_stays",
        title="Detention stays in family residential facilities",
        definition=(
            "Detention book-ins (stays) with at least one placement (stint) in a family "
            "residential facility: a facility whose recorded name contains "
            + " or ".join(f"'{w}'" for w in FAMILY_FACILITY_WORDS)
            + " (ICE's names for its family residential centres, e.g. SOUTH TEXAS FAM "
            "RESIDENTIAL CENTER); the share is of stays with a facility name recorded."
        ),
        caveats=(
            BOOK_IN_CAVEAT,
            "Facilities are recognised by name only: a family facility ICE names otherwise (its "
            "FY2025 facilities list types DILLEY IMMIGRATION PROCESSING CENTER as family) is not "
            "counted, so the share is a lower bound. ICE's workbooks publish family-unit counts "
            "separately.",
            "Family separation is not recorded in these records and cannot be measured here.",
        ),
        tables=(FOIA_STAYS, FOIA_STINTS, FOIA_RELEASES),
        population=_family_population,
        shares=(
            Share(
                "family_facility",
                lambda r: r.family_facility.notnull(),
                lambda r: r.family_facility,
            ),
        ),
        dimensions=STAY_DIMENSIONS,
        filters=POPULATION_FILTERS,
    )
)


def _children_population(backend: ibis.BaseBackend, params: MetricParams):
    rows, days = _birth_population(backend, params)
    rows = rows.join(coverage(backend).select("release", "censor_at"), "release")
    followed = rows.stay_book_in + ibis.interval(days=FLORES_DAYS) <= rows.censor_at
    return rows.mutate(followed=followed), days


register_indicator(
    Indicator(
        name="children_held_over_20_days",
        # No daily table breaks book-ins or arrests down by what this counts.
        shares_by_day=False,
        title="Children held longer than the Flores settlement's 20 days",
        definition=(
            "Of the detention stays of people certainly under 18 at book-in (as in book_in_ages) "
            f"that the release follows for at least {FLORES_DAYS} days (booked in at least "
            f"{FLORES_DAYS} days before the release end), the share held longer than "
            f"{FLORES_DAYS} days (over_20_days: length of stay above {FLORES_DAYS} days, stays "
            "still open counted to the release end). The Flores settlement's benchmark is "
            f"release of children from family detention within about {FLORES_DAYS} days."
        ),
        caveats=(
            BOOK_IN_CAVEAT,
            "Children whose age is uncertain (birth year only, aged 17 or 18) are left out, so the "
            "count of children is a lower bound.",
            f"Stays booked in within {FLORES_DAYS} days of the release end are left out of the "
            "denominator: too little follow-up to tell.",
        ),
        tables=(FOIA_STAYS, FOIA_STINTS, FOIA_RELEASES),
        population=_children_population,
        shares=(
            Share(
                f"over_{FLORES_DAYS}_days",
                lambda r: (r.age_high < 18) & r.followed,
                lambda r: r.length_days > FLORES_DAYS,
            ),
        ),
        dimensions=STAY_DIMENSIONS,
        filters=POPULATION_FILTERS,
    )
)


# --- 4. detained, then not removable -------------------------------------------------------------


def _ended_stays(backend: ibis.BaseBackend, params: MetricParams):
    """Stays that ended in the period (dated by book-out), with their case status."""
    require_stay_facts(backend, ("case_status",), ("case_status",))
    stays = apply_filters(source_table(backend, FOIA_STAYS), params)
    stays = stays.filter(stays.stay_book_in.notnull() & stays.stay_book_out.notnull())
    windows = windows_of(backend, stays, "stay_book_out")
    stays = during(owned(backend, stays, "stay_book_out", windows), params, "stay_book_out")
    require_values(stays, "a case status", stays.case_status.notnull())
    status = stays.case_status.lower()
    not_removable = ibis.or_(*(status.contains(s) for s in NOT_REMOVABLE_STATUSES))
    stays = stays.mutate(
        date=stays.stay_book_out.date(),
        not_removable=not_removable,
        nights=nights_held(stays.stay_book_in, stays.stay_book_out),
    )
    return stays, covered_days(windows, params)


NOT_REMOVABLE_SHARES = (
    Share("not_removable", lambda r: r.case_status.notnull(), lambda r: r.not_removable),
)


def _not_removable_monthly(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    stays, _days = _ended_stays(backend, params)
    stays = priced(stays, stays.date)
    keys = [stays.date.truncate("M").name("month"), *by, *RATE_COLUMNS]
    is_target = stays.not_removable.fill_null(False)
    monthly = stays.group_by(keys).aggregate(
        stays_ended=_.count(),
        with_case_status=stays.case_status.count(),
        not_removable=is_target.cast("int64").sum(),
        # Whole seconds, summed as integers: a sum of floats depends on the order the engine's
        # threads add them in, so the same request could give different last digits.
        detained_seconds=ibis.ifelse(
            is_target, (stays.length_days * SECONDS_PER_DAY).round().cast("int64"), 0
        ).sum(),
        bed_days=ibis.ifelse(is_target, stays.nights, 0).sum(),
    )
    share, low, high = share_with_interval(monthly.not_removable, monthly.with_case_status)
    return monthly.select(
        "month",
        *by,
        "stays_ended",
        "with_case_status",
        "not_removable",
        not_removable_share=share,
        not_removable_ci_low=low,
        not_removable_ci_high=high,
        days_detained=monthly.detained_seconds.cast("float64") / SECONDS_PER_DAY,
        bed_days=monthly.bed_days,
        rate_usd_per_day=monthly.rate_usd_per_day,
        cost_usd=monthly.bed_days * monthly.rate_usd_per_day,
        rate_basis=monthly.rate_basis,
        rate_source=monthly.rate_source,
    ).order_by(["month", *by, "rate_usd_per_day"])


register_indicator(
    Indicator(
        name="detained_not_removable",
        # No daily table breaks book-ins or arrests down by what this counts.
        shares_by_day=False,
        view=View("not_removable_share", "share of stays ended"),
        title="Detained, then not removable: stays of people whose case ended in relief",
        definition=(
            "Detention stays that ended in the month (by book-out) whose case status, as the "
            "release records it on the stay's latest stint, is relief granted or proceedings "
            "terminated (matched ignoring case): people held whom the immigration courts then "
            "let stay. The monthly metric gives stays_ended, with_case_status, not_removable "
            "and its share of with_case_status (95% Wilson interval), days_detained (their "
            "lengths of stay summed), bed_days (the midnights they spent in custody) and "
            "cost_usd (bed-days times the daily rate in force on the book-out day, from "
            "cost_rates.csv, with rate, basis and source)."
        ),
        caveats=(
            *RATE_CAVEATS,
            "Case status is the status on the day of the extract, not at book-out: a case "
            "decided after the release date is not counted, so the count is a lower bound, "
            "most so for recent months.",
            "All nights of a stay are priced at the rate in force on its book-out day.",
        ),
        tables=(FOIA_STAYS, FOIA_STINTS, FOIA_RELEASES),
        population=_ended_stays,
        shares=NOT_REMOVABLE_SHARES,
        dimensions=STAY_DIMENSIONS,
        filters=POPULATION_FILTERS,
        monthly=_not_removable_monthly,
        monthly_count="not_removable",
        # A month under two rates has a row per rate: the rate is a key of the rows.
        monthly_disclosure=Disclosure(
            keys=("rate_usd_per_day",),
            parts=(("stays_ended", "with_case_status"), ("with_case_status", "not_removable")),
            facts=RATE_COLUMNS,
            measures=("bed_days",),
        ),
    )
)


# --- 5. removals with no conviction, by case category -------------------------------------------


def _removal_mix(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows, _days = removals(backend, params)
    rows = rows.mutate(month=rows.date.truncate("M"))
    return criminality_mix(rows, ["month", *params.by], "removals")


def _removal_categories(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    table = source_table(backend, FOIA_REMOVALS)
    require_columns(table, FOIA_REMOVALS, ("case_category",))
    rows, _days = removals(backend, params)
    require_values(rows, "a case category", rows.case_category.notnull())
    rows = rows.mutate(month=rows.date.truncate("M"))
    return category_shares(rows, ["month", *params.by], "case_category", "removals")


_NO_CONVICTION = ("Pending Criminal Charges", "Other Immigration Violator")
_KNOWN = ("Convicted Criminal", *_NO_CONVICTION)
REMOVAL_CRIMINALITY_CAVEAT = (
    "Removal criminality is ICE's case criminality at the time of the extract; a conviction may "
    "be for any offence, including immigration or traffic offences."
)

register_indicator(
    Indicator(
        name="removals_without_conviction",
        view=View("no_conviction_share", "share of removals",
                  also=("no_conviction_no_charge_share",)),
        title="Removals of people with no criminal conviction",
        definition=(
            "Removals (FOIA removals, dated by departure) by case criminality: the monthly metric "
            "gives convicted, pending charges, neither and unknown, and the shares with no "
            "conviction (pending + neither) and with no conviction and no charge (neither) of "
            "removals with a recorded criminality, with 95% Wilson intervals, so that claims of "
            "'deporting criminals' can be checked against both definitions."
        ),
        caveats=(REMOVAL_CRIMINALITY_CAVEAT,),
        tables=(FOIA_REMOVALS, FOIA_RELEASES),
        population=removals,
        shares=(
            Share(
                "no_conviction",
                lambda r: r.criminality.isin(_KNOWN),
                lambda r: r.criminality.isin(_NO_CONVICTION),
            ),
            Share(
                "no_conviction_no_charge",
                lambda r: r.criminality.isin(_KNOWN),
                lambda r: r.criminality == _NO_CONVICTION[1],
            ),
        ),
        dimensions=STAY_DIMENSIONS,
        filters=REMOVAL_FILTERS,
        monthly=_removal_mix,
        monthly_count="removals",
    )
)

register(
    Metric(
        name="removals_by_case_category",
        disclosure=Disclosure(
            keys=("case_category",),
            totals=(("removals_with_case_category", "removals", "case_category"),),
        ),
        view=View("share", "share of removals", group="case_category"),
        title="Removals by case category (expedited, reinstatement, final order ...), by month",
        question=QUESTION,
        definition=(
            "Removals (FOIA removals, dated by departure) per month by case category as recorded "
            "(e.g. [8F] Expedited Removal, [16] Reinstated Final Order, [5D] Final Order of "
            "Removal), and each category's share of the month's removals with a recorded "
            "category, with a 95% Wilson interval."
        ),
        unit="removals; share (0-1) with 95% interval",
        caveats=(
            _INTERVAL_CAVEAT,
            "Removals with no case category are shown with their count and no share.",
            "Expedited removal and reinstatement involve no hearing before an immigration judge.",
        ),
        tables=(FOIA_REMOVALS, FOIA_RELEASES),
        build=_removal_categories,
        dimensions=STAY_DIMENSIONS,
        filters=REMOVAL_FILTERS,
        count_column="removals",
    )
)


# --- 6. re-arrests -------------------------------------------------------------------------------


def _rearrest_population(backend: ibis.BaseBackend, params: MetricParams):
    table = source_table(backend, FOIA_ARRESTS)
    require_columns(table, FOIA_ARRESTS, ("person_id",))
    require_derived(table, FOIA_ARRESTS, ("previous_episode_date",))
    rows, days = arrests(backend, params)
    require_values(rows, "a person identifier", rows.person_id.notnull())
    # The derive dates each episode's previous one, even before the period: the order is over
    # the whole release.
    gap = rows.date.delta(rows.previous_episode_date.date(), unit="day")
    return rows.mutate(days_since_previous=gap), days


REARREST_SHARES = (
    Share("repeat_arrest", lambda r: r.person_id.notnull(),
          lambda r: r.previous_episode_date.notnull()),
)


def _rearrests_monthly(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    rows, _days = _rearrest_population(backend, params)
    rows = rows.mutate(month=rows.date.truncate("M"))
    repeat = rows.previous_episode_date.notnull()
    counted = rows.group_by(["month", *by]).aggregate(
        arrests=_.count(),
        arrests_with_identifier=rows.person_id.count(),
        repeat_arrests=repeat.cast("int64").sum(),
        mean_days_since_previous_arrest=rows.days_since_previous.mean(),
    )
    # Distinct people among the repeats alone: a distinct count filtered inside the grouping
    # above would hash every arrest's identifier.
    repeats = rows.filter(repeat)
    people = repeats.group_by(["month", *by]).aggregate(
        people_rearrested=repeats.person_id.nunique()
    )
    monthly = counted.left_join(
        people, [counted[k].identical_to(people[k]) for k in ["month", *by]]
    ).select(counted, people_rearrested=people.people_rearrested.fill_null(0))
    share, low, high = share_with_interval(monthly.repeat_arrests, monthly.arrests_with_identifier)
    return monthly.select(
        "month",
        *by,
        "arrests",
        "arrests_with_identifier",
        "repeat_arrests",
        repeat_share=share,
        repeat_ci_low=low,
        repeat_ci_high=high,
        people_rearrested=monthly.people_rearrested,
        mean_days_since_previous_arrest=monthly.mean_days_since_previous_arrest,
    ).order_by(["month", *by])


register_indicator(
    Indicator(
        name="repeat_arrests",
        # No daily table breaks book-ins or arrests down by what this counts.
        shares_by_day=False,
        view=View("repeat_share", "share of arrests"),
        title="Re-arrests: arrests of people already arrested in the same release",
        definition=(
            "Arrest episodes (a person's arrests within 24 hours are one) of a person with an "
            "earlier arrest episode in the same release (by anonymized identifier), at any time "
            "before, even before the period: volume that is not new people. The monthly metric "
            "gives arrests, arrests_with_identifier, repeat_arrests and repeat_share (of arrests "
            "with an identifier, 95% Wilson interval), people_rearrested (distinct people with a "
            "repeat arrest that month) and mean_days_since_previous_arrest."
        ),
        caveats=(
            "Identifiers link a person only within one release; an arrest whose earlier arrest "
            "predates the release's coverage is counted as a first arrest, so repeats are "
            "undercounted, most in a release's first months.",
            "Arrests with no identifier can be neither repeats nor counted as first arrests; "
            "they are left out of the share.",
        ),
        tables=(FOIA_ARRESTS, FOIA_RELEASES),
        population=_rearrest_population,
        shares=REARREST_SHARES,
        dimensions=REPEAT_ARREST_DIMENSIONS,
        filters=ARREST_FILTERS,
        monthly=_rearrests_monthly,
        monthly_count="repeat_arrests",
        monthly_disclosure=Disclosure(
            parts=(
                ("arrests", "arrests_with_identifier"),
                ("arrests_with_identifier", "repeat_arrests"),
                ("repeat_arrests", "people_rearrested"),
            ),
        ),
    )
)


# --- 7. identification quality -------------------------------------------------------------------

IDENTITY_FIELDS = ("birth_year", "gender", "citizenship_country")


def _identity_population(backend: ibis.BaseBackend, params: MetricParams):
    """Every arrest row of every release (duplicates too: they are records), in the period."""
    table = source_table(backend, FOIA_ARRESTS)
    require_columns(table, FOIA_ARRESTS, ("person_id", "criminality", *IDENTITY_FIELDS))
    days = covered_days(release_windows(release_spans(backend, table, "apprehension_date")),
                        params)
    rows = during(apply_filters(table.filter(table.apprehension_date.notnull()), params), params,
                  "apprehension_date")
    rows = rows.mutate(date=rows.apprehension_date.cast("date"),
                       gender=rows.gender.nullif("Unknown"))
    # Records can disagree in the period only where they disagree in the whole release, and the
    # derive marks every record of those identifiers: grouping just them spares grouping every
    # person.
    require_derived(table, FOIA_ARRESTS, ("identity_conflict",))
    people = rows.filter(rows.identity_conflict.fill_null(False))
    # Two or more different values: the least and the greatest differ (cheaper than counting
    # distinct values).
    conflicts = [f"{field}_conflicts" for field in IDENTITY_FIELDS]
    per_person = people.group_by(["release", "person_id"]).aggregate(
        **{f"{field}_conflicts": people[field].min() != people[field].max()
           for field in IDENTITY_FIELDS}
    )
    # Only the few people with a conflict are joined back; the rest match none (no conflict).
    per_person = per_person.filter(ibis.or_(*(per_person[c] for c in conflicts)))
    rows = rows.left_join(per_person, ["release", "person_id"]).drop(
        "release_right", "person_id_right"
    )
    return rows, days


def _placeholder(rows: ir.Table) -> ir.BooleanValue:
    identifier = rows.person_id.upper()
    one_character = identifier.replace(identifier.substr(0, 1), "") == ""
    return identifier.isin(PLACEHOLDER_IDENTIFIERS) | one_character


def _identified(rows: ir.Table) -> ir.BooleanValue:
    return rows.person_id.notnull()


def _every(rows: ir.Table) -> ir.BooleanValue:
    return ibis.literal(True)


register_indicator(
    Indicator(
        name="identification_quality",
        title="Identification quality of arrest records, per release",
        definition=(
            "Arrest records (every row, duplicates included, since each is a record) per month "
            "and release: no_identifier (no anonymized identifier; share of all records), "
            "placeholder_identifier (an identifier that names nobody: "
            + ", ".join(PLACEHOLDER_IDENTIFIERS)
            + " or one character repeated), conflicting_birth_year, conflicting_gender and "
            "conflicting_citizenship (the record's identifier carries two or more different "
            "values of the field across the release's arrest records in the period and field "
            "offices asked for, the whole release by default; shares of records with an "
            "identifier) and unknown_criminality (no criminality class; share of all records). "
            "--by aor gives the rates per field office."
        ),
        caveats=(
            "Identifiers are anonymized per release, so conflicts are found within a release "
            "only, and only among arrest records.",
            "A conflict shows that the records disagree, not which value is wrong; gender "
            "'Unknown' is not counted as a value.",
            "Every release's records are counted, each release apart (releases overlapping in "
            "time each show their own rates).",
        ),
        tables=(FOIA_ARRESTS, FOIA_RELEASES),
        population=_identity_population,
        shares=(
            Share("no_identifier", _every, lambda r: r.person_id.isnull()),
            Share("placeholder_identifier", _identified, _placeholder),
            *(
                Share(
                    f"conflicting_{label}",
                    _identified,
                    lambda r, field=field: r[f"{field}_conflicts"],
                )
                for field, label in zip(
                    IDENTITY_FIELDS, ("birth_year", "gender", "citizenship"), strict=True
                )
            ),
            Share("unknown_criminality", _every, lambda r: r.criminality.isnull()),
        ),
        dimensions=("aor",),
        filters=("aor",),
        keys=("release",),
    )
)
