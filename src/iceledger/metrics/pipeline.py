"""The pipeline upstream of ICE arrests: detainers, encounters and the agencies that feed ICE.

A detainer asks a jail or prison to hold a person for ICE; an encounter is an ICE officer's contact
with a person; an arrest may follow either. Both are linked to what follows by the release's person
identifier, which links a person's rows across datasets within one release (never across
releases): a detainer or encounter is *followed by an arrest within N days* when the same release
holds a non-duplicate ICE arrest of the same person on the day of the detainer or encounter or up
to N days after it (for detainers, a custodial arrest: taken from a jail or prison). Follow-up is
right-censored as in the outcomes metrics: a record made fewer than N days before its release's end
is left out of that horizon's denominator, never counted as "not arrested". docs/methodology.md,
"Pipeline", gives every rule.
"""

from __future__ import annotations

from datetime import timedelta

import ibis
import ibis.expr.types as ir
from ibis import _

from iceledger.metrics.backends import memtable
from iceledger.metrics.detention import owned, require_derived, source_table
from iceledger.metrics.registry import (
    SPLIT_KEYS,
    Disclosure,
    Metric,
    MetricParams,
    NationalFigure,
    NestsIn,
    Need,
    NotMeasurable,
    View,
    register,
)
from iceledger.metrics.targeting import (
    SPLIT_FILTER,
    category_shares,
    period_bounds,
    share_columns,
    share_difference,
    split_days,
    without_split,
)
from iceledger.metrics.volume import (
    Windows,
    apply_filters,
    book_ins_compared,
    covered_days,
    during,
    event_windows,
    foia_events,
    on_every_day,
    with_rolling_means,
)
from iceledger.tables import (
    ARREST_FOLLOW_UP_DAYS,
    ARREST_STAY_DAYS_AFTER,
    ARREST_STAY_DAYS_BEFORE,
    FOIA_ARREST_STAY_LINKS,
    FOIA_ARRESTS,
    FOIA_DETAINERS,
    FOIA_ENCOUNTERS,
    FOIA_RELEASES,
    FOIA_STAYS,
    STATS_BOOK_INS,
    STATS_WORKBOOKS,
)

FOLLOW_UP_DAYS = (7, 30, ARREST_FOLLOW_UP_DAYS)
SHIFT_HORIZON_DAYS = 30
PROGRAM_287G = "287(g) Program"
NOT_RECORDED = "(none recorded)"

# The detaining facility's type, from words in its name (records carry no type column): the first
# group with a word the upper-cased name contains wins, so a "FEDERAL DETENTION CENTER" in a county
# is federal. Names matching no group are "other"; records with no name have no type.
FACILITY_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("federal", ("FEDERAL", "FCI ", "USP ", "FDC ", "MDC ", "BUREAU OF PRISONS",
                 "U.S. PENITENTIARY")),
    ("state prison", ("STATE PRISON", "DEPARTMENT OF CORRECTIONS", "DEPT OF CORRECTIONS",
                      "CORRECTIONAL INSTITUTION", "STATE PENITENTIARY", "STATE CORRECTIONAL")),
    ("county jail", ("COUNTY", "PARISH", "JAIL", "SHERIFF")),
)

# Lift reasons grouped by who ended the detainer, matched as lower-case parts of the recorded
# text: the project has seen no real detainer file, so the groups match words, not exact values.
LIFT_GROUPS: dict[str, tuple[str, ...]] = {
    "ice_custody": ("ice custody", "arrested by ice", "taken into ice"),
    "released_or_declined": ("released by", "declin", "not honored", "refus"),
}

DETAINER_DIMENSIONS = ("month", "aor", "criminality", "facility_type", "facility_state",
                       "detainer_type")
DETAINER_FILTERS = ("aor", "criminality", "facility_type", "facility_state", "detainer_type")
ENCOUNTER_DIMENSIONS = ("month", "aor", "criminality", "event_type", "lead_source")
ENCOUNTER_FILTERS = ("aor", "criminality", "event_type", "lead_source")
NOT_MEASURABLE = {
    "county": "detainer records name the detaining facility's state and city (facility_state, "
    "facility_city), not its county",
}

# Why public outputs withhold a metric whose rows cut across what public mode publishes.
STATE_ROWS = (
    "its rows are the detaining facilities' states, and public mode's one geography is the field "
    "office: a state's count beside the field offices' could be differenced (a state less the "
    "offices inside it gives back the part of an office that crosses its border); "
    "detainer_outcomes_period --by aor gives the same figures per field office"
)

_INTERVAL_CAVEAT = (
    "The 95% Wilson intervals treat the records as draws from the enforcement process; they "
    "describe random variation of a share, not errors in ICE's records."
)
_RELEASE_CAVEAT = (
    "FOIA releases overlap; each day is counted from the newest release that covers it, and its "
    "links are made within that release."
)
_LINK_CAVEATS = (
    "A person's identifier links rows only within one release; records without one are never "
    "linked and count as not followed by an arrest.",
    "An arrest made before the detainer or encounter day, or by another agency (CBP, a local "
    "police force), is not a follow-up. Two detainers or encounters of one person may be "
    "followed by the same arrest.",
    "Records made fewer than N days before their release's end are left out of the N-day share "
    "(arrests too recent to see); read the N-day denominators.",
)
_FACILITY_TYPE_CAVEAT = (
    "The facility type is read from words in the facility's name (docs/methodology.md, "
    "'Pipeline'); a name with none of them is 'other', a redacted name has no type."
)


def facility_type(name: ir.StringValue) -> ir.StringValue:
    upper = name.upper()
    return ibis.cases(
        (name.isnull(), ibis.null("string")),
        *((ibis.or_(*(upper.contains(word) for word in words)), kind)
          for kind, words in FACILITY_TYPES),
        else_="other",
    )


def lift_group(reason: ir.StringValue) -> ir.StringValue:
    lower = reason.lower()
    return ibis.cases(
        (reason.isnull(), ibis.null("string")),
        *((ibis.or_(*(lower.contains(word) for word in words)), group)
          for group, words in LIFT_GROUPS.items()),
        else_="other",
    )


def refuse_unmeasurable(params: MetricParams) -> None:
    for column in (*params.by, *params.filters):
        if column in NOT_MEASURABLE:
            raise NotMeasurable(NOT_MEASURABLE[column])


def records(
    backend: ibis.BaseBackend, name: str, moment: str, params: MetricParams
) -> tuple[ir.Table, Windows]:
    """A detainer or encounter table's rows, one release per day, in the period and filtered,
    with `date`, `month`, their release's `censor_at` and (detainers) `facility_type`.

    Exact duplicates (every cell equal to an earlier row of the file) are left out.
    """
    refuse_unmeasurable(params)
    table = source_table(backend, name)
    table = table.filter(~table.is_exact_duplicate.fill_null(False))
    windows = event_windows(backend, table, moment)
    rows = owned(backend, during(table, params, moment), moment, windows)
    derived = {"date": rows[moment].date(), "month": rows[moment].date().truncate("M")}
    if "facility_name" in rows.columns:
        derived["facility_type"] = facility_type(rows.facility_name)
    return apply_filters(rows.mutate(**derived), without_split(params)), windows


def _daily(name: str, moment: str, value: str):
    def build(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
        rows, windows = records(backend, name, moment, params)
        counts = rows.group_by(["date", *params.by]).aggregate(**{value: _.count()})
        series = on_every_day(counts, covered_days(windows, params), params.by, value)
        return with_rolling_means(series, params.by, value).order_by(["date", *params.by])

    return build


# --- links to the arrests that follow ------------------------------------------------------------


def followed_by_arrest(
    backend: ibis.BaseBackend, params: MetricParams, name: str, moment: str, days_column: str
) -> tuple[ir.Table, Windows]:
    """One row per record in the period, with `days_to_arrest`: days from its day to the first
    linked arrest's day (NULL when none within the longest horizon), which the FOIA derivation
    writes on each record (`days_column`); and the release windows."""
    rows, windows = records(backend, name, moment, params)
    source_table(backend, FOIA_ARRESTS)  # the links were made from it; without it, none are
    require_derived(rows, name, (days_column,))
    return rows.mutate(days_to_arrest=rows[days_column]), windows


def _followed_within(rows: ir.Table, days: int) -> ir.BooleanValue:
    """Whether the N days after a record's day all lie before its release's end (the release
    date, whose own day is not fully in the records)."""
    return rows.date + ibis.interval(days=days) < rows.coverage_end


def _follow_up(name: str, moment: str, days_column: str, count: str):
    def build(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
        rows, _windows = followed_by_arrest(backend, params, name, moment, days_column)
        columns = {count: _.count()}
        for days in FOLLOW_UP_DAYS:
            columns[f"{count}_followed_{days}d"] = _followed_within(rows, days).cast("int64").sum()
            columns[f"arrested_within_{days}d"] = (
                _followed_within(rows, days) & (rows.days_to_arrest <= days).fill_null(False)
            ).cast("int64").sum()
        longest = max(FOLLOW_UP_DAYS)
        columns[f"mean_days_to_arrest_within_{longest}d"] = ibis.ifelse(
            _followed_within(rows, longest), rows.days_to_arrest, ibis.null("int64")
        ).mean()
        by = list(params.by)
        grouped = rows.group_by(by).aggregate(**columns) if by else rows.aggregate(**columns)
        shares = {}
        for days in FOLLOW_UP_DAYS:
            arrested = f"arrested_within_{days}d"
            shares.update(share_columns(arrested, grouped[arrested],
                                        grouped[f"{count}_followed_{days}d"]))
        result = grouped.mutate(**shares)
        return result.order_by(by) if by else result

    return build


def _follow_up_shift(name: str, moment: str, days_column: str):
    def build(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
        rows, windows = followed_by_arrest(backend, params, name, moment, days_column)
        rows = rows.filter(_followed_within(rows, SHIFT_HORIZON_DAYS))
        splits = memtable(split_days(params, covered_days(windows, params)))
        paired = rows.cross_join(splits)
        after = paired.date >= paired.split_date
        arrested = (paired.days_to_arrest <= SHIFT_HORIZON_DAYS).fill_null(False)
        prefix = f"arrested_within_{SHIFT_HORIZON_DAYS}d"
        keys = ["split_date", "split_event", *params.by]
        counted = paired.group_by(keys).aggregate(
            before_records=(~after).cast("int64").sum(),
            after_records=after.cast("int64").sum(),
            **{f"before_{prefix}": (~after & arrested).cast("int64").sum(),
               f"after_{prefix}": (after & arrested).cast("int64").sum()},
        )
        return share_difference(counted, keys, prefix).order_by(keys)

    return build


def _register(*, name: str, title: str, definition: str, unit: str, caveats: tuple[str, ...],
              tables: tuple[str, ...], build, dimensions: tuple[str, ...],
              filters: tuple[str, ...], count_column: str, view: View,
              needs: tuple[Need, ...] = (), national: tuple[NationalFigure, ...] = (),
              disclosure: Disclosure = Disclosure()) -> Metric:
    """Register a pipeline metric; every one also reads the releases' coverage."""
    return register(
        Metric(name=name, title=title, question="pipeline", definition=definition, unit=unit,
               caveats=caveats, tables=(*tables, FOIA_RELEASES), build=build,
               dimensions=dimensions, filters=filters, count_column=count_column, needs=needs,
               national=national, view=view, disclosure=disclosure)
    )


# Without identifiers no record links to an arrest, and every followed share would read 0.
_FOLLOWED = "a record is followed to an ICE arrest only through the person's identifier"
DETAINER_LINK_NEEDS = (Need(FOIA_DETAINERS, "person_id", _FOLLOWED),
                       Need(FOIA_ARRESTS, "person_id", _FOLLOWED))
ENCOUNTER_LINK_NEEDS = (Need(FOIA_ENCOUNTERS, "person_id", _FOLLOWED),
                        Need(FOIA_ARRESTS, "person_id", _FOLLOWED))
LIFT_REASONS = Need(FOIA_DETAINERS, "detainer_lift_reason",
                    "how a detainer ended is known only from its recorded lift reason")
APPREHENSION_METHODS = Need(FOIA_ARRESTS, "apprehension_method",
                            "who fed an arrest to ICE is known only from its apprehension method")


# --- detainers -----------------------------------------------------------------------------------

_register(
    name="detainers_per_day",
    view=View("detainers_7d_avg", "detainers per day", also=("detainers_28d_avg",)),
    title="Detainers issued per day",
    definition="Immigration detainers (and requests for notification) prepared per calendar day, "
    "from the FOIA detainer records by Detainer Prepare Date, nationally or per field office (the "
    "detaining facility's AOR), by the facility's type (county jail, state prison, federal, "
    "other), detainer criminality or detainer type. Zero-filled, with 7- and 28-day trailing "
    "means.",
    unit="detainers per day",
    caveats=(_RELEASE_CAVEAT, _FACILITY_TYPE_CAVEAT,
     "Exact duplicate rows (every cell equal) are counted once.",
     "The 7- and 28-day averages are NULL until the series has that many days."),
    tables=(FOIA_DETAINERS,),
    build=_daily(FOIA_DETAINERS, "detainer_prepare_date", "detainers"),
    dimensions=tuple(d for d in DETAINER_DIMENSIONS if d != "month"),
    filters=DETAINER_FILTERS,
    count_column="detainers",
    disclosure=Disclosure(months=("detainer_arrest_followup", "detainer_jurisdictions",
                                  "detainer_lift_reasons")),
)


def _lift_reasons(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows, _windows = records(backend, FOIA_DETAINERS, "detainer_prepare_date", params)
    rows = rows.mutate(lift_reason=rows.detainer_lift_reason.fill_null(NOT_RECORDED))
    shares = category_shares(rows, list(params.by), "lift_reason", "detainers")
    return shares.rename(group_detainers="detainers_with_lift_reason")


_register(
    name="detainer_lift_reasons",
    disclosure=Disclosure(
        keys=("lift_reason",), totals=(("group_detainers", "detainers", "lift_reason"),)
    ),
    view=View("share", "share of detainers", "dots", group="lift_reason"),
    title="How detainers end: lift reasons as recorded",
    definition="Detainers prepared in the period by Detainer Lift Reason exactly as ICE recorded "
    f"it ('{NOT_RECORDED}' when the cell is empty: the detainer was still in force when the "
    "release was pulled, or no reason was entered), with each reason's share of the group's "
    "detainers (group_detainers: all of the period's, or of the breakdown's group) and a 95% "
    "Wilson interval.",
    unit="detainers; share (0-1) with 95% interval",
    caveats=(_INTERVAL_CAVEAT, _RELEASE_CAVEAT, _FACILITY_TYPE_CAVEAT,
     "Recent detainers have had less time to be lifted, so their share with no reason is "
     "higher; compare months of equal age or use detainer_arrest_followup."),
    tables=(FOIA_DETAINERS,),
    build=_lift_reasons,
    dimensions=DETAINER_DIMENSIONS,
    filters=DETAINER_FILTERS,
    count_column="detainers",
    needs=(LIFT_REASONS,),
)

_DETAINER_LINK = (
    "a detainer is followed by an arrest when the same release holds a non-duplicate custodial "
    "ICE arrest (arrest_setting custodial: CAP, 287(g), custodial, probation and parole) of the "
    "same person identifier on the detainer's prepare day or up to N days after it"
)

_register(
    name="detainer_arrest_followup",
    view=View("arrested_within_30d_share", "share of detainers", "dots",
              also=("arrested_within_7d_share", "arrested_within_90d_share")),
    title="Detainers followed by an ICE custodial arrest, and how soon",
    definition=f"Of detainers prepared in the period: {_DETAINER_LINK}. For N = 7, 30 and 90 days, "
    "the share arrested within N days with a 95% Wilson interval, over detainers_followed_Nd "
    "(those prepared at least N days before their release's end), and the mean days from "
    "detainer to the first linked arrest among those followed 90 days and arrested within them.",
    unit="detainers; share (0-1) with 95% interval; days",
    caveats=(_INTERVAL_CAVEAT, *_LINK_CAVEATS, _RELEASE_CAVEAT, _FACILITY_TYPE_CAVEAT),
    tables=(FOIA_DETAINERS, FOIA_ARRESTS),
    build=_follow_up(FOIA_DETAINERS, "detainer_prepare_date", "days_to_custodial_arrest",
                     "detainers"),
    dimensions=DETAINER_DIMENSIONS,
    filters=DETAINER_FILTERS,
    count_column="detainers",
    needs=DETAINER_LINK_NEEDS,
)

_SHIFT_DEFINITION = (
    "For each split date, the {what} with {days} days of follow-up that were followed by an "
    "arrest within {days} days ({link}), before the date (from --from or the data's start) and "
    "from the date on, with 95% Wilson intervals, and the difference after minus before with "
    "Newcombe's hybrid score interval. Split dates: --filter split=YYYY-MM-DD (repeatable); by "
    "default every confirmed event in events.csv (2025-05-21, the 3,000/day meeting, among them) "
    "and every target start in targets.csv inside the data's span."
)
_SHIFT_CAVEAT = (
    "Before and after are the whole spans on either side of the split; a trend that began "
    "earlier shows up as a change at any split. Narrow the span with --from/--to."
)

_register(
    name="detainer_arrest_shift",
    # No daily table counts the records followed by an arrest.
    disclosure=Disclosure(keys=SPLIT_KEYS, copies=("split_event",), splits=SPLIT_FILTER,
                          shares_by_day=False),
    view=View("after_share", "share of detainers", "paired", also=("before_share",)),
    title="Detainers followed by an ICE arrest, before and after a date",
    definition=_SHIFT_DEFINITION.format(what="share of detainers", days=SHIFT_HORIZON_DAYS,
                             link=_DETAINER_LINK),
    unit="share (0-1); difference in share",
    caveats=(_INTERVAL_CAVEAT, _SHIFT_CAVEAT, *_LINK_CAVEATS),
    tables=(FOIA_DETAINERS, FOIA_ARRESTS, "events.csv", "targets.csv"),
    build=_follow_up_shift(FOIA_DETAINERS, "detainer_prepare_date", "days_to_custodial_arrest"),
    dimensions=tuple(d for d in DETAINER_DIMENSIONS if d != "month"),
    filters=(*DETAINER_FILTERS, SPLIT_FILTER),
    count_column="smaller_group",
    needs=DETAINER_LINK_NEEDS,
)


def lift_outcomes(rows: ir.Table, keys: list[str]) -> ir.Table:
    """Per group of `keys` (one row without): detainers, lifted (with a recorded lift reason),
    and those lifted into ICE custody and released or declined by the holding agency."""
    # Detainers are counted per recorded reason first, so that the words are looked for in the
    # few distinct reasons, not in every detainer's.
    reasons = rows.group_by([*keys, "detainer_lift_reason"]).aggregate(n=_.count())
    group = lift_group(reasons.detainer_lift_reason)

    def detainers(where: ir.BooleanValue) -> ir.IntegerValue:
        return ibis.ifelse(where.fill_null(False), reasons.n, 0).sum()

    return (reasons.group_by(keys) if keys else reasons).aggregate(
        detainers=reasons.n.sum().fill_null(0),
        lifted=detainers(group.notnull()),
        ice_custody=detainers(group == "ice_custody"),
        released_or_declined=detainers(group == "released_or_declined"),
    )


def _jurisdictions(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows, _windows = records(backend, FOIA_DETAINERS, "detainer_prepare_date", params)
    keys = ["facility_state", *params.by]
    counts = lift_outcomes(rows, keys)
    return counts.mutate(
        **share_columns("ice_custody", counts.ice_custody, counts.lifted),
        **share_columns("released_or_declined", counts.released_or_declined, counts.lifted),
    ).order_by(keys)


_register(
    name="detainer_jurisdictions",
    disclosure=Disclosure(withheld=STATE_ROWS, instead=("detainer_outcomes_period", ("aor",))),
    view=View("ice_custody_share", "share of detainers", "dots",
              also=("released_or_declined_share",), group="facility_state"),
    title="Detainers by state of the detaining facility, and how the jails ended them",
    definition="Detainers prepared in the period per state of the detaining facility (Facility "
    "State): "
    "how many, how many have a recorded lift reason (lifted), and of those the share lifted "
    "because ICE took the person into custody (ice_custody) and the share the holding agency "
    "released or declined (released_or_declined), each with a 95% Wilson interval. Lift reasons "
    "are grouped by words in the recorded text (docs/methodology.md, 'Pipeline'); the "
    "reasons themselves are in detainer_lift_reasons.",
    unit="detainers; share (0-1) with 95% interval",
    caveats=(_INTERVAL_CAVEAT, _RELEASE_CAVEAT,
     "Only what the lift reason records: a release or refusal entered under another reason, or "
     "not entered at all, is not counted. Aggregates per state only; no person or facility is "
     "shown.",
     NOT_MEASURABLE["county"] + "; --by county is refused."),
    tables=(FOIA_DETAINERS,),
    build=_jurisdictions,
    dimensions=("month", "criminality", "facility_type", "county"),
    filters=DETAINER_FILTERS,
    count_column="detainers",
)


def _outcomes_period(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows, windows = records(backend, FOIA_DETAINERS, "detainer_prepare_date", params)
    counts = lift_outcomes(rows, list(params.by))
    table = counts.mutate(
        **period_bounds(windows, params),
        **share_columns("ice_custody", counts.ice_custody, counts.detainers),
        **share_columns("released_or_declined", counts.released_or_declined, counts.detainers),
    ).relocate("period_start", "period_end")
    return table.order_by(list(params.by)) if params.by else table


_register(
    name="detainer_outcomes_period",
    # Detainers not lifted, and lifted for another reason, count people too.
    disclosure=Disclosure(
        facts=("period_start", "period_end"),
        parts=(("detainers", "lifted"), ("lifted", "ice_custody", "released_or_declined")),
    ),
    view=View("released_or_declined_share", "share of detainers", "dots",
              also=("ice_custody_share",)),
    title="Detainers released or declined by the holding agency, over a period",
    definition="Detainers prepared in the whole period asked for (--from/--to; the data's span "
    "by default; period_start and period_end give the days the records cover): how many, how "
    "many have a recorded lift reason (lifted), and, of all the period's detainers, the share "
    "lifted because ICE took the person into custody (ice_custody) and the share the holding "
    "agency released or declined (released_or_declined), each with a 95% Wilson interval; "
    "the lift reasons are grouped as in detainer_jurisdictions; --by aor (the detaining "
    "facility's field office), criminality, facility_type or detainer_type gives one row per "
    "group. The claims register reads officials' figures of declined detainers against it.",
    unit="detainers; share (0-1) with 95% interval",
    caveats=(_INTERVAL_CAVEAT, _RELEASE_CAVEAT,
     "Shares are of all detainers, lifted or not: a release or refusal that no lift reason "
     "records (or not yet: recent detainers have had less time) is not counted, so the "
     "released-or-declined share is a lower bound."),
    tables=(FOIA_DETAINERS,),
    build=_outcomes_period,
    dimensions=tuple(d for d in DETAINER_DIMENSIONS if d != "month"),
    filters=DETAINER_FILTERS,
    count_column="detainers",
    needs=(LIFT_REASONS,),
)


# --- encounters ----------------------------------------------------------------------------------

_register(
    name="encounters_per_day",
    view=View("encounters_7d_avg", "encounters per day", also=("encounters_28d_avg",)),
    title="Encounters per day",
    definition="ICE encounters per calendar day from the FOIA encounter records by Event Date, "
    "nationally "
    "or per field office (Responsible AOR), by encounter criminality, event type or lead source. "
    "Zero-filled, with 7- and 28-day trailing means.",
    unit="encounters per day",
    caveats=(_RELEASE_CAVEAT, "Exact duplicate rows (every cell equal) are counted once.",
     "The 7- and 28-day averages are NULL until the series has that many days."),
    tables=(FOIA_ENCOUNTERS,),
    build=_daily(FOIA_ENCOUNTERS, "event_date", "encounters"),
    dimensions=tuple(d for d in ENCOUNTER_DIMENSIONS if d != "month"),
    filters=ENCOUNTER_FILTERS,
    count_column="encounters",
    disclosure=Disclosure(months=("encounter_conversion",)),
)

_ENCOUNTER_LINK = (
    "an encounter becomes an arrest when the same release holds a non-duplicate ICE arrest "
    "of the same person identifier on the encounter's day or up to N days after it"
)

_register(
    name="encounter_conversion",
    view=View("arrested_within_30d_share", "share of encounters", "dots",
              also=("arrested_within_7d_share", "arrested_within_90d_share")),
    title="Encounters that become an ICE arrest",
    definition=f"Of encounters in the period: {_ENCOUNTER_LINK}. For N = 7, 30 and 90 days, the "
    "share "
    "that became an arrest within N days with a 95% Wilson interval, over encounters_followed_Nd "
    "(those at least N days before their release's end), and the mean days from encounter to "
    "arrest among those followed 90 days and arrested within them; by criminality and event "
    "type as asked.",
    unit="encounters; share (0-1) with 95% interval; days",
    caveats=(_INTERVAL_CAVEAT, *_LINK_CAVEATS, _RELEASE_CAVEAT),
    tables=(FOIA_ENCOUNTERS, FOIA_ARRESTS),
    build=_follow_up(FOIA_ENCOUNTERS, "event_date", "days_to_arrest", "encounters"),
    dimensions=ENCOUNTER_DIMENSIONS,
    filters=ENCOUNTER_FILTERS,
    count_column="encounters",
    needs=ENCOUNTER_LINK_NEEDS,
)

_register(
    name="encounter_conversion_shift",
    # No daily table counts the records followed by an arrest.
    disclosure=Disclosure(keys=SPLIT_KEYS, copies=("split_event",), splits=SPLIT_FILTER,
                          shares_by_day=False),
    view=View("after_share", "share of encounters", "paired", also=("before_share",)),
    title="Encounters that become an arrest, before and after a date",
    definition=_SHIFT_DEFINITION.format(what="share of encounters", days=SHIFT_HORIZON_DAYS,
                             link=_ENCOUNTER_LINK),
    unit="share (0-1); difference in share",
    caveats=(_INTERVAL_CAVEAT, _SHIFT_CAVEAT, *_LINK_CAVEATS),
    tables=(FOIA_ENCOUNTERS, FOIA_ARRESTS, "events.csv", "targets.csv"),
    build=_follow_up_shift(FOIA_ENCOUNTERS, "event_date", "days_to_arrest"),
    dimensions=tuple(d for d in ENCOUNTER_DIMENSIONS if d != "month"),
    filters=(*ENCOUNTER_FILTERS, SPLIT_FILTER),
    count_column="smaller_group",
    needs=ENCOUNTER_LINK_NEEDS,
)


# --- who feeds ICE -------------------------------------------------------------------------------


def _arrest_rows(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows, _windows = foia_events(backend, FOIA_ARRESTS, "apprehension_date", params)
    return rows.mutate(month=rows.date.truncate("M"))


def _arrests_by_method(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows = _arrest_rows(backend, params)
    return category_shares(rows, ["month", *params.by], "apprehension_method", "arrests")


_register(
    name="arrests_by_method",
    # Methods nest in the arrest settings arrest_setting_share publishes: a method's count
    # beside its setting's gives back the setting's other methods, so they are planned together.
    disclosure=Disclosure(
        keys=("apprehension_method",),
        totals=(("arrests_with_apprehension_method", "arrests", "apprehension_method"),),
        nests_in=NestsIn("apprehension_method", "arrest_setting_share", "arrest_setting"),
    ),
    view=View("share", "share of arrests", group="apprehension_method"),
    title="Who feeds ICE: arrests by apprehension method, by month",
    definition="ICE arrest episodes (rows flagged is_duplicate left out) per month by Apprehension "
    "Method as recorded: CAP local, state and federal incarceration (transfers from jails and "
    "prisons), 287(g) Program (arrests by local officers under agreement), custodial arrests, "
    "probation and parole, located (at large), non-custodial and worksite arrests; each "
    "method's share of the month's arrests with a recorded method, with a 95% Wilson interval.",
    unit="arrests; share (0-1) with 95% interval",
    caveats=(_INTERVAL_CAVEAT, _RELEASE_CAVEAT,
     "Arrests with no recorded method are shown with their count and no share."),
    tables=(FOIA_ARRESTS,),
    build=_arrests_by_method,
    dimensions=("aor", "criminality"),
    filters=("aor", "criminality", "arrest_setting"),
    count_column="arrests",
    needs=(APPREHENSION_METHODS,),
)


def _share_287g(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows = _arrest_rows(backend, params)
    keys = ["aor", *params.by]
    counts = rows.group_by(keys).aggregate(
        arrests=_.count(),
        arrests_with_method=rows.apprehension_method.notnull().cast("int64").sum(),
        custodial_arrests=(rows.arrest_setting == "custodial").fill_null(False)
        .cast("int64").sum(),
        arrests_287g=(rows.apprehension_method == PROGRAM_287G).fill_null(False)
        .cast("int64").sum(),
    )
    return counts.mutate(
        **share_columns("program_287g", counts.arrests_287g, counts.arrests_with_method)
    ).order_by(keys)


_register(
    name="arrests_287g_share",
    # 287(g) arrests are custodial, which arrest_setting_share publishes per field office: each
    # count inside the next is protected with its difference from it.
    disclosure=Disclosure(
        keys=("aor",),
        parts=(("arrests", "arrests_with_method"), ("arrests_with_method", "custodial_arrests"),
               ("custodial_arrests", "arrests_287g")),
    ),
    view=View("program_287g_share", "share of arrests", "dots", group="aor"),
    title="287(g) share of ICE arrests, by field office",
    definition="Per field office (the arrest's AOR) over the period: ICE arrest episodes, those "
    "with a recorded Apprehension Method, the custodial ones among them (arrest_setting "
    f"custodial), and those whose method is '{PROGRAM_287G}' (people arrested by local officers "
    "deputised under a 287(g) agreement, a custodial method), with their share of the arrests "
    "with a recorded method and a 95% Wilson interval.",
    unit="arrests; share (0-1) with 95% interval",
    caveats=(_INTERVAL_CAVEAT, _RELEASE_CAVEAT,
     "A 287(g) arrest is counted only when ICE recorded that method; a jail's transfer under "
     "CAP is not 287(g) even where the county has an agreement."),
    tables=(FOIA_ARRESTS,),
    build=_share_287g,
    dimensions=("month", "criminality"),
    filters=("aor", "criminality"),
    count_column="arrests",
    needs=(APPREHENSION_METHODS,),
)


def _book_ins_after_ice_arrest(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    stays, _windows = foia_events(backend, FOIA_STAYS, "stay_book_in", params)
    links = source_table(backend, FOIA_ARREST_STAY_LINKS)
    if "apprehension_date" in links.columns:  # warehouses derived before it have no such column
        # A stay is linked to an arrest from ARREST_STAY_DAYS_AFTER days before its book-in to
        # ARREST_STAY_DAYS_BEFORE days after: only those links of the period's stays are read,
        # and DuckDB skips the rest (the links are stored in arrest order).
        arrested = MetricParams(
            start=params.start and params.start - timedelta(days=ARREST_STAY_DAYS_AFTER),
            end=params.end and params.end + timedelta(days=ARREST_STAY_DAYS_BEFORE),
        )
        links = during(links, arrested, "apprehension_date")
    links = links.select(linked_stay="stay_id")
    stays = stays.left_join(links, stays.stay_id == links.linked_stay)
    stays = stays.mutate(month=stays.date.truncate("M"))
    foia = stays.group_by("month").aggregate(
        foia_book_ins=_.count(),
        foia_after_ice_arrest=stays.linked_stay.notnull().cast("int64").sum(),
    )
    return foia.mutate(
        foia_no_ice_arrest=foia.foia_book_ins - foia.foia_after_ice_arrest,
        **share_columns("foia_after_ice_arrest", foia.foia_after_ice_arrest, foia.foia_book_ins),
    ).order_by("month")


def _book_ins_by_agency(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    foia = _book_ins_after_ice_arrest(backend, params)
    compared = book_ins_compared(backend, MetricParams(start=params.start, end=params.end))
    ice, cbp = compared.workbook_ice_book_ins_per_day, compared.workbook_cbp_book_ins_per_day
    workbook = compared.select(
        workbook_month=compared.month,
        workbook_ice_book_ins_per_day=ice,
        workbook_cbp_book_ins_per_day=cbp,
        # Of the printed Total, not of ICE + CBP: an agency ICE adds stays in the denominator.
        workbook_ice_share=ice / compared.workbook_book_ins_per_day.nullif(0),
        workbook=compared.workbook,
    )
    joined = foia.left_join(workbook, foia.month == workbook.workbook_month)
    return joined.drop("workbook_month").order_by("month")


_FOIA_BOOK_INS = (
    "Per month, FOIA detention book-ins (new stays) split by whether an ICE arrest record of "
    "the same person precedes them (a stay linked to an arrest, booked in from 5 days before to "
    f"10 days after it: {FOIA_ARREST_STAY_LINKS}), with the linked share and a 95% Wilson interval"
)
_NO_AGENCY_CAVEAT = (
    "The FOIA detention records carry no arresting agency: a book-in with no linked ICE arrest "
    "is mostly a CBP (Border Patrol, port) arrest handed to ICE, but also an ICE arrest that "
    "could not be linked (no identifier, or outside the link window); it is not a CBP count."
)

_register(
    name="book_ins_after_ice_arrest",
    view=View("foia_after_ice_arrest_share", "share of book-ins"),
    title="Who feeds ICE detention: book-ins after an ICE arrest (FOIA)",
    definition=f"{_FOIA_BOOK_INS}. Where the warehouse also holds the workbooks, "
    "book_ins_by_arresting_agency sets ICE's published ICE and CBP book-ins beside it.",
    unit="book-ins; share (0-1) with 95% interval",
    caveats=(_INTERVAL_CAVEAT, _RELEASE_CAVEAT, _NO_AGENCY_CAVEAT),
    tables=(FOIA_STAYS, FOIA_ARREST_STAY_LINKS),
    build=_book_ins_after_ice_arrest,
    dimensions=(),
    filters=(),
    count_column="foia_book_ins",
)

_register(
    name="book_ins_by_arresting_agency",
    view=View("foia_after_ice_arrest_share", "share of book-ins",
              also=("workbook_ice_share",)),
    title="Who feeds ICE detention: book-ins after an ICE arrest, and ICE vs CBP in the workbooks",
    definition=f"{_FOIA_BOOK_INS}; beside them, ICE's published initial book-ins per day by "
    "arresting "
    "agency, ICE and CBP, and ICE's share of all agencies' book-ins (the printed Total, "
    "which counts any agency ICE adds beside ICE and CBP), from the latest workbook that "
    "printed the month.",
    unit="book-ins; share (0-1) with 95% interval; book-ins per day",
    caveats=(_INTERVAL_CAVEAT, _RELEASE_CAVEAT, _NO_AGENCY_CAVEAT,
     "The workbook figures are ICE's published totals, not samples: no interval."),
    tables=(FOIA_STAYS, FOIA_ARREST_STAY_LINKS, STATS_BOOK_INS, STATS_WORKBOOKS),
    build=_book_ins_by_agency,
    dimensions=(),
    filters=(),
    count_column="foia_book_ins",
    national=(NationalFigure(FOIA_STAYS, "ICE's published book-ins by arresting agency"),),
)
