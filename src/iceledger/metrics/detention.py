"""Detention: how many people ICE holds each day, for how long, how they leave, against capacity.

Daily population is an event sweep, never a loop over days: every custody interval adds +1 on the
first day it counts and -1 on the first day it no longer counts, a cumulative sum over dates turns
those changes into a population, and each run of days with the same population is expanded to
days only at the end. The cost is one pass over the intervals plus one row per output day.

When FOIA releases overlap in time (a later release re-covers months of an earlier one), each day
is taken from the newest release that covers it (the one with the latest coverage end), so no
custody is counted twice (the rule and its code are volume.py's, shared by every FOIA metric).

The helpers here (release coverage, the sweep, dated CSV timelines and the release-reason groups)
are shared by the outcomes, cost and reconciliation metrics.
"""

from __future__ import annotations

import calendar
from datetime import date

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis.common.exceptions import TableNotFound

from iceledger.errors import IceledgerError
from iceledger.facts import load_timeline
from iceledger.metrics.backends import memtable
from iceledger.metrics.published_series import SeriesSpec, latest
from iceledger.metrics.registry import (
    Curve,
    Disclosure,
    Metric,
    MetricParams,
    NationalFigure,
    Need,
    NotServable,
    View,
    no_table,
    register,
)
from iceledger.metrics.volume import (
    STAY_IDENTIFIERS,
    Windows,
    apply_filters,
    covered_days,
    during,
    has_tables,
    midnight,
    one_release_per_day,
    release_spans,
    release_windows,
)
from iceledger.tables import (
    FOIA_RELEASES,
    FOIA_STAYS,
    FOIA_STINTS,
    STATS_ADP,
    STATS_ALOS,
    STATS_BOOK_OUTS,
    STATS_WORKBOOKS,
)

DAY = ibis.interval(days=1)

KM_RESTRICTION_DAYS = 365
RELEASE_HORIZON_DAYS = 60
KM_CENSORING_CAVEAT = (
    "Kaplan-Meier assumes that whether a stay is still open at the release end does not depend "
    "on how long it would last (true when censoring is only by the release date)."
)
BOOK_IN_PERIOD_CAVEAT = "The period filters stays by book-in date."

# Stay release reasons grouped by what they mean for the person, matched case-insensitively.
# Reasons in no group (Transferred, Deceased, Escaped, blanks...) count as book-outs but not as
# releases or removals; docs/methodology.md lists the groups.
REASON_GROUPS: dict[str, tuple[str, ...]] = {
    "removed": ("removed",),
    "voluntary_departure": ("voluntary departure",),
    "released": (
        "bonded out",
        "bond set by ice",
        "bond set by ij",
        "order of recognizance",
        "order of supervision",
        "paroled",
        "prosecutorial discretion",
        "released",
        "proceedings terminated",
        "relief granted",
        "relief granted by ij",
    ),
}

POPULATION_FILTERS = ("aor", "criminality", "citizenship_country")

BOOK_OUTS = Need(
    FOIA_STAYS, "stay_book_out",
    "who is held on a day, and for how long, is known only from when each stay ended",
)
RELEASE_REASONS = Need(
    FOIA_STAYS, "stay_release_reason",
    "a release from custody is told from a removal or a transfer only by the stay's release "
    "reason",
)


def reason_in(reason: ir.StringValue, group: str) -> ir.BooleanValue:
    # No strip(): Ibis 12 writes it for Spark as TRIM(' \t\n\r\v\f' ...), and Spark reads \v
    # and \f as the letters v and f ("voluntary departure" -> "oluntary departure").
    return reason.lower().isin(REASON_GROUPS[group]).fill_null(False)


def source_table(backend: ibis.BaseBackend, name: str) -> ir.Table:
    try:
        return backend.table(name)
    except TableNotFound:
        raise IceledgerError(no_table(name)) from None


def require_derived(table: ir.Table, name: str, columns: tuple[str, ...]) -> None:
    """Refuse when the derive that wrote `table` predates its derived `columns`."""
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise NotServable(f"{name} was derived before it carried {', '.join(missing)}; run "
                          "`iceledger derive`")


def coverage(backend: ibis.BaseBackend) -> ir.Table:
    """Each release's coverage end and `censor_at`, 00:00 on it: the moment open custody is
    last known (foia_stays censors open stays there too)."""
    releases = source_table(backend, FOIA_RELEASES)
    return releases.select(
        "release", "coverage_end", censor_at=releases.coverage_end.cast("timestamp")
    )


def windows_of(backend: ibis.BaseBackend, table: ir.Table, moment: str) -> Windows:
    """The days each release present in `table` speaks for, its rows dated by column `moment`."""
    return release_windows(release_spans(backend, table, moment))


def owned(
    backend: ibis.BaseBackend, table: ir.Table, moment: str, windows: Windows | None = None
) -> ir.Table:
    """Rows whose day (of column `moment`) is one their release speaks for, with their
    release's coverage. `windows`: windows_of(backend, table, moment), if already known."""
    windows = windows if windows is not None else windows_of(backend, table, moment)
    table = table.mutate(date=table[moment].cast("date"))
    kept = one_release_per_day(table, windows)
    return kept.drop("date").join(coverage(backend), "release")


def owned_days(backend: ibis.BaseBackend, table: ir.Table, moment: str) -> ir.Table:
    """release, owned_start, owned_end: the days each release present in `table` speaks for."""
    spans = [
        (release, start, end)
        for release, pieces in windows_of(backend, table, moment).items()
        for start, end in pieces
    ]
    return memtable(
        pa.table(
            {
                "release": pa.array([s[0] for s in spans], pa.string()),
                "owned_start": pa.array([s[1] for s in spans], pa.date32()),
                "owned_end": pa.array([s[2] for s in spans], pa.date32()),
            }
        )
    )


def nights_held(book_in: ir.TimestampValue, book_out: ir.TimestampValue) -> ir.IntegerValue:
    """The days a stay was still held at their end (bed-days): from its book-in day to the day
    before its book-out day, as detained_population_daily counts them; never negative."""
    return ibis.greatest(book_out.date().delta(book_in.date(), unit="day"), 0)


def custody_intervals(
    backend: ibis.BaseBackend, params: MetricParams
) -> tuple[ir.Table, ir.Table]:
    """(intervals, owned days): release, start, end (open custody cut at the release end) and
    the caller's dimensions, for the custody that overlaps the period; and the days each release
    speaks for.

    Per facility the intervals are stints; otherwise stays, because a person moved between two
    facilities in one day is two stints that day but one person in custody.
    """
    by = list(params.by)
    if "facility_code" in by:
        rows = source_table(backend, FOIA_STINTS)
        rows = rows.filter(~rows.is_duplicate.fill_null(False))
        start, end = "book_in", "book_out"
    else:
        rows = source_table(backend, FOIA_STAYS)
        start, end = "stay_book_in", "stay_book_out"
    rows = apply_filters(rows.filter(rows[start].notnull()), params)
    days = owned_days(backend, rows, start)
    rows = _reaching_into(rows, start, end, params).join(coverage(backend), "release")
    # Open custody is held through the release's last day; later days are never shown.
    closing = ibis.coalesce(rows[end], rows.censor_at + DAY)
    intervals = rows.select(
        "release",
        *by,
        start=rows[start],
        # A book-out before the book-in (loaders quarantine these) counts as zero-length.
        end=ibis.greatest(closing, rows[start]),
    )
    # Custody that ended before the period adds and removes itself before it, and custody that
    # began after it never shows: leave both out, so one year costs a year's intervals, not all.
    if params.start is not None:
        intervals = intervals.filter(intervals.end >= midnight(params.start, intervals.end))
    return intervals, days


def _reaching_into(rows: ir.Table, start: str, end: str, params: MetricParams) -> ir.Table:
    """The rows whose custody may reach into the period, found by comparing the raw columns
    (which DuckDB answers from zone maps, skipping row groups) rather than the computed interval
    end: custody begun before the period's last day, and, of that begun before its first day,
    only what was still open or ended on or after it. Custody begun on or after the first day
    is kept apart, because a book-out recorded before its book-in still counts (zero-length)."""
    rows = during(rows, MetricParams(end=params.end), start)
    if params.start is None:
        return rows
    first = midnight(params.start, rows[start])
    earlier = rows.filter((rows[start] < first) & (rows[end].isnull() | (rows[end] >= first)))
    return earlier.union(rows.filter(rows[start] >= first))


def _per_day(spans: ir.Table, keys: list[str], moment: ir.TimestampValue) -> ir.Table:
    """keys, date, n: how many intervals start (or end) each day.

    Counts are float64 from here on: DuckDB sums them several times faster than integers (whose
    sums it widens to 128 bits), and every count and running total stays an exact integer (far
    below 2^53); the populations are cast back to int64 at the end.
    """
    return spans.group_by([*keys, moment.date().name("date")]).aggregate(
        n=ibis._.count().cast("float64")
    )


def daily_population(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    """date, the dimensions in params.by, population_midnight, population_24h.

    Midnight: still in custody at the end of the day, at the midnight that closes it (booked in
    before it, booked out at or after it or not yet): the Deportation Data Project's rule of
    counting people still detained after 11:59 p.m. on the day (docs/methodology.md).
    24-hour: in custody at any moment of the day (the calendar days from start's to end's).

    Both counts change only on days with book-ins or book-outs. `held` after a day's book-ins
    and book-outs, the running total of book-ins less book-outs, is exactly the end-of-day
    count: a book-out at 00:00 of the next day is that day's. On a day with changes the 24-hour
    count adds those booked out that day; on a quiet day both counts are `held`.
    """
    by = list(params.by)
    spans, days_owned = custody_intervals(backend, params)
    keys = ["release", *by]
    # Book-ins and book-outs are first counted per day, so what follows works on those counts
    # rather than on every interval.
    starts, ends = (_per_day(spans, keys, spans[moment]) for moment in ("start", "end"))
    # Days with book-ins, book-outs or both: one row each (keys may be NULL, hence IS NOT DISTINCT).
    joined = starts.outer_join(
        ends, [starts.date == ends.date, *(starts[k].identical_to(ends[k]) for k in keys)]
    )
    per_day = joined.select(
        *(ibis.coalesce(joined[k], joined[f"{k}_right"]).name(k) for k in keys),
        date=ibis.coalesce(joined.date, joined.date_right),
        booked_in=joined.n.fill_null(0.0),
        booked_out=joined.n_right.fill_null(0.0),
    )
    running = ibis.window(group_by=keys, order_by="date", rows=(None, 0))
    ordered = ibis.window(group_by=keys, order_by="date")
    runs = per_day.mutate(
        held=(per_day.booked_in - per_day.booked_out).sum().over(running),
        next_change=per_day.date.lead().over(ordered),
    )
    runs = runs.mutate(h24_that_day=runs.held + runs.booked_out).join(days_owned, "release")
    # Each day with changes speaks for itself and the quiet days up to the next one; after the
    # last, nobody is held (every interval that began has ended) and no days are shown.
    first = ibis.greatest(runs.date, runs.owned_start)
    last = ibis.least(ibis.coalesce(runs.next_change - DAY, runs.date), runs.owned_end)
    if params.start is not None:
        first = ibis.greatest(first, ibis.literal(params.start))
    if params.end is not None:
        last = ibis.least(last, ibis.literal(params.end))
    runs = runs.mutate(first=first, last=last).filter(lambda r: r.first <= r.last)
    days = runs.select(
        *by,
        "h24_that_day",
        "held",
        change=runs.date,
        date=ibis.range(
            runs.first.cast("timestamp"), (runs.last + DAY).cast("timestamp"), DAY
        ).unnest(),
    )
    day = days.date.date()
    return days.select(
        *by,
        date=day,
        population_midnight=days.held.cast("int64"),
        population_24h=ibis.ifelse(day == days.change, days.h24_that_day,
                                   days.held).cast("int64"),
    )


def _population(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    return daily_population(backend, params).order_by(["date", *params.by])


register(
    Metric(
        name="detained_population_daily",
        title="People in ICE detention each day (midnight and 24-hour counts)",
        question="detention",
        definition=(
            "For each day, the number of people in ICE detention under two definitions, from the "
            "FOIA detention records: population_midnight counts the people still held at the "
            "end of the day, at the midnight that closes it (booked in before that midnight and "
            "booked out at or after it, or still held): the Deportation Data Project's rule, "
            "people still detained after 11:59 p.m. on the day. A count at 00:00 at the start "
            "of the day would be this count one day later. population_24h counts anyone in "
            "custody at any moment of the day, so it also counts people booked in and out the "
            "same day. Nationally and by AOR or criminality a "
            f"person's continuous stay is counted once ({FOIA_STAYS}); by facility each placement "
            "(non-duplicate stint) counts at its facility. Stays still open at the end of a "
            "release are counted up to the release's last day (censored), never closed early. "
            "Where releases overlap, each day comes from the newest release that covers it."
        ),
        unit="people",
        view=View("population_midnight", "people", also=("population_24h",)),
        caveats=(
            "People booked in before a release's coverage starts may be missing from it, so the "
            "first weeks of each release can undercount (left truncation).",
            "By facility, a person moved between facilities during a day appears in both "
            "facilities' 24-hour counts; the national 24-hour count counts them once.",
            "By AOR and criminality, the values are those recorded at book-in of the stay "
            "(or stint, by facility).",
            "Days after a facility's last book-out have no row; days between its stints show 0.",
        ),
        tables=(FOIA_STAYS, FOIA_STINTS, FOIA_RELEASES),
        build=_population,
        dimensions=("facility_code", "aor", "criminality"),
        filters=POPULATION_FILTERS,
        count_column="population_24h",
        needs=(BOOK_OUTS, STAY_IDENTIFIERS),
    )
)


def cohort_stays(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    """Stays booked in during the period, from the release owning their book-in day."""
    stays = apply_filters(source_table(backend, FOIA_STAYS), params)
    stays = stays.filter(stays.stay_book_in.notnull())
    stays = during(owned(backend, stays, "stay_book_in"), params, "stay_book_in")
    return stays.mutate(book_in_day=stays.stay_book_in.date())


def _kaplan_meier(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    """Per distinct length t (to the hour): stays at risk, stays ending, and survival S(t)."""
    by = list(params.by)
    stays = cohort_stays(backend, params)
    stays = stays.filter(stays.length_days.notnull())
    ended = (~stays.censored.fill_null(False)).cast("int64")
    # Kaplan-Meier over the distinct lengths: S(t) = prod over lengths s <= t of (1 - d_s / n_s),
    # with d_s stays ending at length s and n_s stays lasting at least s (ended or still open).
    # Lengths are taken to the hour: millions of stays then have thousands of distinct lengths.
    hours = (stays.length_days * 24).round().cast("float64") / 24
    times = stays.group_by([*by, hours.name("t")]).aggregate(
        at_t=ibis._.count(),
        ended_at_t=ended.sum(),
        ended_length=(stays.length_days * ended).sum(),
    )
    longer_first = ibis.window(group_by=by, order_by=ibis.desc("t"), rows=(None, 0))
    times = times.mutate(at_risk=times.at_t.sum().over(longer_first))
    factor = 1 - times.ended_at_t.cast("float64") / times.at_risk
    shorter_first = ibis.window(group_by=by, order_by="t", rows=(None, 0))
    # A product is a sum of logs; a factor of 0 (everyone at risk ended) makes S zero from there.
    times = times.mutate(
        zero_factors=(factor == 0).cast("int64").sum().over(shorter_first),
        log_survival=ibis.ifelse(factor > 0, factor.ln(), 0.0).sum().over(shorter_first),
    )
    times = times.mutate(
        survival=ibis.ifelse(times.zero_factors > 0, 0.0, times.log_survival.exp())
    )
    return times


def _length_of_stay(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    times = _kaplan_meier(backend, params)
    ordered = ibis.window(group_by=by, order_by="t")
    tau = float(KM_RESTRICTION_DAYS)
    times = times.mutate(
        area=times.survival.lag(1, 1.0).over(ordered)
        * (ibis.least(times.t, tau) - ibis.least(times.t.lag(1, 0.0).over(ordered), tau))
    )
    summary = times.aggregate(
        by=by,
        stays=times.at_t.sum(),
        closed_stays=times.ended_at_t.sum(),
        km_median_days=times.t.min(where=times.survival <= 0.5),
        area_to_last=times.area.sum(),
        last_survival=times.survival.min(),
        last_t=times.t.max(),
        closed_length_total=times.ended_length.sum(),
    )
    # Without a breakdown, an empty cohort still aggregates to one all-NULL row.
    summary = summary.filter(summary.stays > 0)
    return summary.select(
        *by,
        "stays",
        "closed_stays",
        open_stays=summary.stays - summary.closed_stays,
        km_median_days=summary.km_median_days,
        restricted_mean_days=summary.area_to_last
        + summary.last_survival * ibis.greatest(tau - summary.last_t, 0.0),
        restriction_days=ibis.literal(KM_RESTRICTION_DAYS, "int64"),
        naive_closed_mean_days=ibis.ifelse(
            summary.closed_stays > 0,
            summary.closed_length_total / summary.closed_stays.cast("float64"),
            ibis.null("float64"),
        ),
    ).order_by(by or ["stays"])


register(
    Metric(
        name="length_of_stay",
        title="How long detention stays last (Kaplan-Meier, with open stays censored)",
        question="detention",
        definition=(
            f"Length of each detention stay (continuous custody across facilities, {FOIA_STAYS}) "
            "booked in during the period, in days from stay book-in to stay book-out. Stays "
            "still open at the end of the release are right-censored at the release end, and the "
            "Kaplan-Meier estimator uses them as 'lasted at least this long'. km_median_days is "
            "the shortest length at which the estimated share still held falls to 50% or below "
            "(empty when it never does; lengths are taken to the hour); restricted_mean_days is "
            f"the mean number of days held within the first {KM_RESTRICTION_DAYS} days after "
            f"book-in (the area under the "
            f"survival curve up to {KM_RESTRICTION_DAYS} days), so stays longer than a year count "
            f"as {KM_RESTRICTION_DAYS}. naive_closed_mean_days, the mean of closed stays only, is "
            "shown beside them because it is what is often published; it understates length "
            "whenever long stays are still open."
        ),
        unit="days",
        view=View("km_median_days", "days", "dots",
                  also=("restricted_mean_days", "naive_closed_mean_days")),
        caveats=(
            KM_CENSORING_CAVEAT,
            f"The restricted mean is not comparable with a mean that is not restricted to "
            f"{KM_RESTRICTION_DAYS} days, such as ICE's average length of stay (ALOS, the "
            "figure ICE prints), which averages the stays ending in the period: alos_monthly.",
            BOOK_IN_PERIOD_CAVEAT,
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES),
        build=_length_of_stay,
        dimensions=("aor", "criminality"),
        filters=POPULATION_FILTERS,
        count_column="stays",
        needs=(BOOK_OUTS,),
        disclosure=Disclosure(measures=("restriction_days",)),
    )
)


def _length_of_stay_curve(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    times = _kaplan_meier(backend, params)
    times = times.filter(times.t <= KM_RESTRICTION_DAYS)
    # One point per whole day: the survival reached by the end of that day, and the stays still
    # at risk at its start, so the curve is readable and a chart has at most a year of points.
    day = times.t.floor().cast("int64").name("days")
    curve = times.group_by([*by, day]).aggregate(
        at_risk=times.at_risk.max(),
        ended=times.ended_at_t.sum(),
        survival=times.survival.min(),
    )
    return curve.order_by([*by, "days"])


register(
    Metric(
        name="length_of_stay_curve",
        title="Share of detention stays still held, by days since book-in (Kaplan-Meier)",
        question="detention",
        definition=(
            "The Kaplan-Meier survival curve behind length_of_stay: for each whole day since "
            "stay book-in (0 to "
            f"{KM_RESTRICTION_DAYS}), survival is the estimated share of stays booked in during "
            "the period that were still held at the end of that day, with stays still open at "
            "the release end right-censored (they count as at risk until their censoring time, "
            "never as ended). at_risk is the number of stays still held at the start of the day "
            "(ended or censored later); ended is the number of stays that ended during it."
        ),
        unit="share of stays still held",
        view=View("survival", "share of stays still held", "step", x="days"),
        caveats=(
            KM_CENSORING_CAVEAT,
            "The tail of the curve rests on few stays: read it with at_risk beside it.",
            BOOK_IN_PERIOD_CAVEAT,
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES),
        build=_length_of_stay_curve,
        dimensions=("aor", "criminality"),
        filters=POPULATION_FILTERS,
        count_column="at_risk",
        needs=(BOOK_OUTS,),
        disclosure=Disclosure(
            keys=("days",),
            curve=Curve("days", "at_risk", "ended", ("length_of_stay", "closed_stays")),
        ),
    )
)


def _released_within(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    horizon = RELEASE_HORIZON_DAYS
    stays = cohort_stays(backend, params)
    stays = stays.filter(stays.stay_book_in + ibis.interval(days=horizon) <= stays.censor_at)
    ended_in_time = ~stays.censored.fill_null(False) & (stays.length_days <= horizon)
    released = ended_in_time & reason_in(stays.stay_release_reason, "released")
    grouped = stays.group_by([stays.book_in_day.truncate("M").name("month"), *by]).aggregate(
        stays=ibis._.count(),
        ended_within_60d=ended_in_time.cast("int64").sum(),
        released_within_60d=released.cast("int64").sum(),
    )
    return grouped.mutate(
        share_ended_within_60d=grouped.ended_within_60d / grouped.stays.cast("float64"),
        share_released_within_60d=grouped.released_within_60d / grouped.stays.cast("float64"),
    ).order_by(["month", *by])


register(
    Metric(
        name="released_within_60_days",
        title="Share of detention stays released within 60 days of book-in",
        question="detention",
        definition=(
            "Of the stays booked in each month that the release follows for at least 60 days "
            "(book-in at least 60 days before the release end), the share that ended within 60 "
            "days for any reason (share_ended_within_60d) and the share that ended within 60 "
            "days in a release from custody: bond, recognizance, supervision, parole, "
            "prosecutorial discretion, termination or relief (share_released_within_60d; "
            "removals, voluntary departures and transfers are not releases). Stays booked in "
            "too late to have 60 days of follow-up are left out of the denominator rather than "
            "counted as not released."
        ),
        unit="share of stays",
        view=View("share_released_within_60d", "share of stays",
                  also=("share_ended_within_60d",)),
        caveats=(
            "Release reasons are grouped by docs/methodology.md; unrecognised reasons count as "
            "ended but not released.",
            "The most recent two months of a release have no row: too little follow-up.",
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES),
        build=_released_within,
        dimensions=("aor", "criminality"),
        filters=POPULATION_FILTERS,
        count_column="stays",
        needs=(BOOK_OUTS, RELEASE_REASONS),
    )
)


def on_timeline(table: ir.Table, day: ir.DateValue, timeline: pa.Table) -> ir.Table:
    """Left-join each row to the timeline row in force on `day` (NULLs before the first row)."""
    steps = memtable(timeline)
    return table.left_join(
        steps, [day >= steps.effective_from, day <= steps.effective_to]
    ).drop("effective_from", "effective_to")


def _against_capacity(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    capacity = load_timeline("capacity.csv", "funded_beds")
    population = daily_population(backend, params)
    joined = on_timeline(population, population.date, capacity)
    return joined.select(
        "date",
        "population_midnight",
        funded_beds=joined.funded_beds,
        population_over_funded_beds=joined.population_midnight - joined.funded_beds,
        share_of_funded_beds=joined.population_midnight / joined.funded_beds,
        capacity_basis=joined.basis,
        capacity_source=joined.source,
    ).order_by("date")


register(
    Metric(
        name="detention_vs_capacity",
        title="People detained against funded detention beds",
        question="detention",
        definition=(
            "The national midnight detained population (as in detained_population_daily) "
            "beside the number of detention beds Congress funded on that day, from the dated, "
            "sourced table src/iceledger/data/facts/capacity.csv (use your own with --facts DIR or "
            "$ICELEDGER_FACTS_DIR). share_of_funded_beds is population / funded beds; above "
            "1 means more people were held than beds were funded."
        ),
        unit="people; beds",
        view=View("population_midnight", "people", also=("funded_beds",)),
        caveats=(
            "Funded beds are an appropriations figure, not the physical capacity of facilities.",
            "The July 2025 law funds detention in dollars; with no sourced bed count for it, "
            "funded_beds is empty from 2025-07-04 unless capacity.csv is given one. It is empty "
            "too from 2023-10-01 to 2024-03-22 (continuing resolutions; no source gives their "
            "bed count): capacity_basis says 'unsourced'.",
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES),
        build=_against_capacity,
        filters=POPULATION_FILTERS,
        count_column="population_midnight",
        needs=(BOOK_OUTS, STAY_IDENTIFIERS),
        national=(NationalFigure(FOIA_STAYS, "the count of funded detention beds"),),
        disclosure=Disclosure(facts=("funded_beds", "capacity_basis", "capacity_source")),
    )
)


def complete_months(windows: Windows) -> ir.Table:
    """month, days: the calendar months every day of which a release speaks for (`windows_of`).

    Monthly totals of a part-covered month (a release starting or ending mid-month) would read
    as a fall; comparisons with published monthly figures use whole months only.
    """
    covered = covered_days(windows, MetricParams())
    per_month: dict[date, int] = {}
    for covered_day in covered:
        month = covered_day.replace(day=1)
        per_month[month] = per_month.get(month, 0) + 1
    whole = {m: n for m, n in per_month.items() if n == calendar.monthrange(m.year, m.month)[1]}
    return memtable(
        pa.table(
            {
                "month": pa.array(sorted(whole), pa.date32()),
                "days": pa.array([whole[m] for m in sorted(whole)], pa.int64()),
            }
        )
    )


def published_latest(backend: ibis.BaseBackend, spec: SeriesSpec, **fixed: str) -> ir.Table:
    """The latest published value of a monthly workbook table per month, with the workbook it is
    from (iceledger.metrics.published_series), for the dimension values given (agency="Total")."""
    source_table(backend, spec.table)
    rows = latest(backend, spec)
    for column, wanted in fixed.items():
        rows = rows.filter(rows[column] == wanted)
    return rows


def whole_months(params: MetricParams) -> MetricParams:
    """The period widened to the whole months it touches, for monthly figures."""
    end = params.end
    if end is not None:
        end = end.replace(day=calendar.monthrange(end.year, end.month)[1])
    start = params.start.replace(day=1) if params.start is not None else None
    return MetricParams(by=params.by, start=start, end=end, filters=params.filters)


def foia_adp(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    """month, breakdown, days, foia_adp: mean midnight population over each whole month."""
    by = list(params.by)
    population = daily_population(backend, whole_months(params))
    stays = source_table(backend, FOIA_STAYS)
    months = complete_months(windows_of(backend, stays, "stay_book_in"))
    monthly = population.group_by([population.date.truncate("M").name("month"), *by]).aggregate(
        bed_days=population.population_midnight.sum()
    )
    monthly = monthly.join(months, "month")
    monthly = monthly.select(
        "month", *by, "days", foia_adp=monthly.bed_days / monthly.days.cast("float64")
    )
    return during(monthly, params, "month")


def adp_beside_published(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    foia = foia_adp(backend, params)
    published = published_latest(
        backend, SeriesSpec(STATS_ADP, "adp", ("agency", "criminality")), agency="Total"
    )
    if not by:
        published = published.filter(published.criminality == "Total")
    published = published.select(
        "month", *by, published_adp="value", published_workbook="workbook"
    )
    joined = foia.left_join(published, ["month", *by])
    return joined.select(
        "month", *by, "days", "foia_adp", "published_adp", "published_workbook"
    ).order_by(["month", *by])


register(
    Metric(
        name="adp_monthly",
        title="Average daily detained population per month, FOIA records beside ICE's figure",
        question="detention",
        definition=(
            "foia_adp is the mean over the days of a month of the midnight detained population "
            "counted from the FOIA records (detained_population_daily), for whole months the "
            "records cover; published_adp is the average daily population ICE printed for that "
            f"month ({STATS_ADP}, all arresting agencies), in the latest workbook that printed "
            "the month (published_workbook), since ICE revises months until the fiscal year "
            "is locked."
        ),
        unit="people (average per day)",
        view=View("foia_adp", "people (average per day)", also=("published_adp",)),
        caveats=(
            "Months a release covers only in part are left out.",
            "ICE's ADP counts people in ICE detention facilities arrested by ICE or CBP; the FOIA "
            "records are ICE's detention records of the same population, but the two extracts "
            "were made on different dates and need not agree exactly.",
            "By criminality, FOIA uses criminality at book-in of the stay; ICE's table uses its "
            "own classification.",
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES, STATS_ADP, STATS_WORKBOOKS),
        build=adp_beside_published,
        dimensions=("criminality",),
        filters=("citizenship_country",),
        count_column=None,
        needs=(BOOK_OUTS, STAY_IDENTIFIERS),
        national=(NationalFigure(FOIA_STAYS, "ICE's published average daily population"),),
    )
)


def _book_outs_beside_published(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    stays = apply_filters(source_table(backend, FOIA_STAYS), params)
    stays = stays.filter(stays.stay_book_out.notnull())
    windows = windows_of(backend, stays, "stay_book_out")
    months = complete_months(windows)
    # Only the whole months the period touches are shown: read only their book-outs.
    stays = during(owned(backend, stays, "stay_book_out", windows), whole_months(params),
                   "stay_book_out")
    foia = stays.group_by(
        month=stays.stay_book_out.date().truncate("M"),
        release_reason=stays.stay_release_reason,
    ).aggregate(foia_book_outs=ibis._.count())
    foia = foia.join(months, "month").drop("days")
    published = published_latest(
        backend,
        SeriesSpec(STATS_BOOK_OUTS, "book_outs", ("release_reason", "criminality")),
        criminality="Total",
    )
    published = published.filter(published.release_reason != "Total").select(
        "month",
        published_reason="release_reason",
        published_book_outs="value",
        published_workbook="workbook",
    )
    published = published.join(months, "month").drop("days")
    joined = foia.outer_join(
        published,
        [
            foia.month == published.month,
            foia.release_reason.lower() == published.published_reason.lower(),
        ],
    )
    result = joined.select(
        month=ibis.coalesce(joined.month, joined.month_right),
        release_reason=ibis.coalesce(joined.release_reason, joined.published_reason),
        foia_book_outs=joined.foia_book_outs.fill_null(0),
        published_book_outs=joined.published_book_outs,
        published_workbook=joined.published_workbook,
    )
    return during(result, params, "month").order_by(["month", "release_reason"])


register(
    Metric(
        name="book_outs_by_reason",
        title="Book-outs by release reason, FOIA records beside ICE's published releases",
        question="detention",
        definition=(
            f"foia_book_outs counts detention stays ({FOIA_STAYS}) that ended in the month, by "
            "stay release reason as recorded; published_book_outs is ICE's printed number of "
            f"book-outs for the same month and reason ({STATS_BOOK_OUTS}, all criminality "
            "classes, latest workbook printing the month). ICE's table covers releases "
            "(bond, recognizance, supervision, parole, ...), not removals, so removal and "
            "transfer reasons have FOIA counts only; reasons are matched by their exact label, "
            "ignoring case. Whole months the FOIA records cover only."
        ),
        unit="book-outs",
        view=View("foia_book_outs", "book-outs per month", group="release_reason"),
        caveats=(
            "Reasons ICE prints that the FOIA records name differently appear as two rows, "
            "each with one side empty.",
            "ICE's sub-reasons (bond set by ICE or by an immigration judge) are parts of "
            "'Bonded Out', not additional book-outs.",
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES, STATS_BOOK_OUTS, STATS_WORKBOOKS),
        build=_book_outs_beside_published,
        filters=POPULATION_FILTERS,
        count_column="foia_book_outs",
        needs=(BOOK_OUTS, RELEASE_REASONS),
        national=(NationalFigure(FOIA_STAYS, "ICE's published book-outs"),),
        disclosure=Disclosure(
            keys=("release_reason",), facts=("published_book_outs", "published_workbook")
        ),
    )
)


ALOS_SPEC = SeriesSpec(STATS_ALOS, "alos_days", ("agency", "criminality"))
_NO_PUBLISHED_ALOS = pa.schema([("month", pa.date32()), ("criminality", pa.string()),
                                ("published_alos_days", pa.float64()),
                                ("published_workbook", pa.string())])


def _published_alos(backend: ibis.BaseBackend, by: list[str]) -> ir.Table:
    """ICE's printed ALOS per month (all arresting agencies), latest workbook; no rows when the
    warehouse has no workbooks, so the FOIA side stands alone."""
    if not has_tables(backend, ALOS_SPEC.table, STATS_WORKBOOKS):
        return memtable(_NO_PUBLISHED_ALOS.empty_table()).select("month", *by,
                                                                 "published_alos_days",
                                                                 "published_workbook")
    published = published_latest(backend, ALOS_SPEC, agency="Total")
    if not by:
        published = published.filter(published.criminality == "Total")
    return published.select("month", *by, published_alos_days="value",
                            published_workbook="workbook")


def _alos_by_book_out(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    stays = apply_filters(source_table(backend, FOIA_STAYS), params)
    stays = stays.filter(stays.stay_book_out.notnull() & stays.stay_book_in.notnull())
    windows = windows_of(backend, stays, "stay_book_out")
    stays = during(owned(backend, stays, "stay_book_out", windows), whole_months(params),
                   "stay_book_out")
    foia = stays.group_by([stays.stay_book_out.date().truncate("M").name("month"), *by]).aggregate(
        book_outs=ibis._.count(), alos_days=stays.length_days.mean()
    )
    foia = foia.join(complete_months(windows), "month").drop("days")
    joined = foia.left_join(_published_alos(backend, by), ["month", *by])
    result = joined.select("month", *by, "book_outs", "alos_days", "published_alos_days",
                           "published_workbook")
    return during(result, params, "month").order_by(["month", *by])


register(
    Metric(
        name="alos_monthly",
        view=View("alos_days", "days", also=("published_alos_days",)),
        title="Average length of stay of the people booked out each month (ICE's ALOS)",
        question="detention",
        definition=(
            "ICE's definition of average length of stay (ALOS), the one its detention-statistics "
            f"workbooks print: for the detention stays ({FOIA_STAYS}) that ended in the month, the "
            "mean number of days from stay book-in to stay book-out (alos_days, the stays' "
            "length_days, part-days included); book_outs is how many there were. Beside it, "
            f"published_alos_days is the ALOS ICE printed for the month ({STATS_ALOS}, all "
            "arresting agencies, latest workbook printing the month), when workbooks are "
            "loaded. Whole months the FOIA records cover only. Unlike length_of_stay (stays booked in during a period, open ones censored, "
            "Kaplan-Meier), it averages only stays that have ended, over the month they ended."
        ),
        unit="days",
        caveats=(
            "An average over people booked out leaves out everyone still held: while long stays "
            "are building up it is lower than the length of stay of the people booked in, and "
            "after a surge of long stays ends it is higher.",
            "ICE does not say whether it counts whole days or part-days; alos_days counts "
            "part-days, so the two can differ by up to a day.",
            "By criminality, FOIA uses criminality at book-in of the stay; ICE's table uses its "
            "own classification.",
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES),
        build=_alos_by_book_out,
        dimensions=("criminality",),
        filters=POPULATION_FILTERS,
        count_column="book_outs",
        needs=(BOOK_OUTS,),
    )
)
