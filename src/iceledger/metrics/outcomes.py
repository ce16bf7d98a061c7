"""Outcomes: what follows an ICE arrest, within fixed horizons, with right-censoring.

Each non-duplicate arrest is followed through its links: to the detention stay that began within
10 days of it (foia_arrest_stay_links) and to the removal that ended that stay
(foia_removal_links, foia_removals), as foia_derived writes them on the arrest. An outcome "within N days" needs N days of follow-up: an
arrest made fewer than N days before its release's end is left out of that horizon's denominator,
never counted as "not removed" (right-censoring), so every share is over arrests whose outcome
at N days is known.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from iceledger.metrics.detention import (
    BOOK_OUTS,
    RELEASE_REASONS,
    owned,
    reason_in,
    require_derived,
    source_table,
)
from iceledger.metrics.registry import Metric, MetricParams, Need, View, register
from iceledger.metrics.volume import ARREST_FILTERS, apply_filters, during
from iceledger.tables import (
    FOIA_ARREST_STAY_LINKS,
    FOIA_ARRESTS,
    FOIA_RELEASES,
    FOIA_REMOVAL_LINKS,
    FOIA_REMOVALS,
    FOIA_STAYS,
)

DETENTION_HORIZON_DAYS = 10
REMOVAL_HORIZONS_DAYS = (30, 60, 90)
FINAL_HORIZON_DAYS = 90
# What foia_derived writes on each linked arrest of its stay and removal.
FOLLOWED_COLUMNS = ("days_to_stay", "stay_ended_at", "stay_end_reason", "days_to_removal")
OUTCOME_TABLES = (
    FOIA_ARRESTS,
    FOIA_ARREST_STAY_LINKS,
    FOIA_STAYS,
    FOIA_REMOVAL_LINKS,
    FOIA_REMOVALS,
    FOIA_RELEASES,
)
_LINKED = (
    "an arrest is followed to its detention stay and removal only through the person's identifier"
)
# Without identifiers no arrest links to a stay, and every share would read 0.
OUTCOME_NEEDS = (
    *(Need(table, "person_id", _LINKED)
      for table in (FOIA_ARRESTS, FOIA_STAYS, FOIA_REMOVALS)),
    BOOK_OUTS,
    RELEASE_REASONS,
)


def followed_arrests(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    """One row per non-duplicate arrest in the period, with its linked stay and removal.

    foia_derived writes on each arrest what its links lead to (the days to its stay, when and
    why that stay ended, the days to the removal that ended it), so no link is joined here.
    """
    arrests = source_table(backend, FOIA_ARRESTS)
    require_derived(arrests, FOIA_ARRESTS, FOLLOWED_COLUMNS)
    arrests = apply_filters(arrests.filter(~arrests.is_duplicate.fill_null(False)), params)
    arrests = arrests.filter(arrests.apprehension_date.notnull())
    arrests = during(owned(backend, arrests, "apprehension_date"), params, "apprehension_date")
    return arrests.select(
        *params.by,
        "apprehension_date",
        "censor_at",
        "stay_ended_at",
        "stay_end_reason",
        "days_to_removal",
        arrest_day=arrests.apprehension_date.date(),
        detained=arrests.days_to_stay.notnull(),
    )


def _outcome_flags(arrests: ir.Table) -> dict[str, tuple[int, ir.BooleanValue]]:
    """Outcome name -> (horizon in days, whether the arrest had it within that horizon)."""

    def by_day(days: int) -> ir.TimestampValue:
        return arrests.apprehension_date + ibis.interval(days=days)

    final = by_day(FINAL_HORIZON_DAYS)
    stay_ended = arrests.stay_ended_at.notnull() & (arrests.stay_ended_at <= final)
    flags = {
        f"detained_within_{DETENTION_HORIZON_DAYS}d": (DETENTION_HORIZON_DAYS, arrests.detained)
    }
    for days in REMOVAL_HORIZONS_DAYS:
        flags[f"removed_within_{days}d"] = (days, arrests.days_to_removal <= days)
    flags[f"voluntary_departure_within_{FINAL_HORIZON_DAYS}d"] = (
        FINAL_HORIZON_DAYS, stay_ended & reason_in(arrests.stay_end_reason, "voluntary_departure")
    )
    flags[f"released_within_{FINAL_HORIZON_DAYS}d"] = (
        FINAL_HORIZON_DAYS, stay_ended & reason_in(arrests.stay_end_reason, "released")
    )
    flags[f"still_held_at_{FINAL_HORIZON_DAYS}d"] = (
        FINAL_HORIZON_DAYS,
        arrests.detained & (arrests.stay_ended_at.isnull() | (arrests.stay_ended_at > final)),
    )
    return flags


def _outcome_counts(backend: ibis.BaseBackend, params: MetricParams, monthly: bool) -> ir.Table:
    arrests = followed_arrests(backend, params)
    flags = _outcome_flags(arrests)
    horizons = sorted({days for days, _ in flags.values()})
    followed = {
        days: arrests.apprehension_date + ibis.interval(days=days) <= arrests.censor_at
        for days in horizons
    }
    counts = {"arrests": ibis._.count()}
    for days in horizons:
        counts[f"arrests_followed_{days}d"] = followed[days].cast("int64").sum()
    for name, (days, happened) in flags.items():
        counts[name] = (followed[days] & happened.fill_null(False)).cast("int64").sum()
    period = [arrests.arrest_day.truncate("M").name("month")] if monthly else []
    keys = [*period, *params.by]
    grouped = arrests.aggregate(by=keys, **counts)
    shares = {
        f"share_{name}": ibis.ifelse(
            grouped[f"arrests_followed_{days}d"] > 0,
            grouped[name] / grouped[f"arrests_followed_{days}d"].cast("float64"),
            ibis.null("float64"),
        )
        for name, (days, _) in flags.items()
    }
    with_shares = grouped.mutate(**shares)
    # The group keys lead the aggregate's columns; a whole-period funnel has none to order by.
    return with_shares.order_by(grouped.columns[: len(keys)]) if keys else with_shares


def _arrest_outcomes(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    return _outcome_counts(backend, params, monthly=True)


def _arrest_outcome_funnel(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    return _outcome_counts(backend, params, monthly=False)


register(
    Metric(
        name="arrest_outcomes",
        title="What follows an ICE arrest: detention, removal, release, still held",
        question="outcomes",
        definition=(
            "For non-duplicate ICE arrests made each month: the share booked into detention "
            "within 10 days (a linked stay, booked in from 5 days before to 10 days after the "
            "arrest); removed within 30, 60 and 90 days (a removal linked to that stay, departed "
            "within N days of the arrest day); and at 90 days, the share whose stay ended in "
            "voluntary departure, ended in a release from custody (bond, recognizance, "
            "supervision, parole and the other release reasons of docs/methodology.md), or was "
            "still open. Each share's denominator is arrests_followed_Nd: the arrests made at "
            "least N days before the release end; arrests too recent for N days of follow-up "
            "are excluded from that horizon, not counted as a 'no'."
        ),
        unit="share of arrests",
        view=View("share_removed_within_90d", "share of arrests",
                  also=("share_released_within_90d", "share_still_held_at_90d")),
        caveats=(
            "Only removals linked to the detention stay that followed the arrest count; a "
            "person removed without being booked into ICE detention is not counted as removed.",
            "Arrests without a person identifier cannot be linked and count as not detained.",
            "The most recent three months of a release have few or no arrests with 90 days of "
            "follow-up; read their 90-day shares from arrests_followed_90d.",
        ),
        tables=OUTCOME_TABLES,
        needs=OUTCOME_NEEDS,
        build=_arrest_outcomes,
        dimensions=("criminality", "arrest_setting", "aor"),
        filters=ARREST_FILTERS,
        count_column="arrests",
    )
)


register(
    Metric(
        name="arrest_outcome_funnel",
        title="From arrest to detention to removal, over the whole period (funnel)",
        question="outcomes",
        definition=(
            "The counts and shares of arrest_outcomes over the whole period asked for instead "
            "of by month: of the non-duplicate ICE arrests with N days of follow-up "
            "(arrests_followed_Nd), how many were booked into detention within 10 days, "
            "removed within 30, 60 and 90 days, and, at 90 days, left by voluntary departure, "
            "were released, or were still held. The steps of the funnel are these counts."
        ),
        unit="arrests; share of arrests",
        view=View("share_detained_within_10d", "share of arrests", "funnel",
                  also=("share_removed_within_30d", "share_removed_within_60d",
                        "share_removed_within_90d", "share_released_within_90d",
                        "share_still_held_at_90d")),
        caveats=(
            "Each step has its own denominator (arrests with enough follow-up for its horizon); "
            "compare a step's share, not its count, with a step of another horizon.",
            "Only removals linked to the detention stay that followed the arrest count.",
        ),
        tables=OUTCOME_TABLES,
        needs=OUTCOME_NEEDS,
        build=_arrest_outcome_funnel,
        dimensions=("criminality", "arrest_setting", "aor"),
        filters=ARREST_FILTERS,
        count_column="arrests",
    )
)
