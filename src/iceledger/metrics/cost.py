"""Cost: detention bed-days priced at a dated, sourced, editable daily rate.

A bed-day is one person in custody at the end of one day (the midnight population of
detention.daily_population: still held at the midnight that closes the day). The rate in force
on each day comes from src/iceledger/data/facts/cost_rates.csv (or the user's copy in
--facts DIR / $ICELEDGER_FACTS_DIR); every row carries the rate it used, the rate's basis and its
source, and a day with no rate in the table is left unpriced (cost NULL) rather than priced at a
neighbouring year's rate.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from iceledger.facts import load_timeline
from iceledger.metrics.detention import (
    BOOK_OUTS,
    POPULATION_FILTERS,
    RELEASE_REASONS,
    daily_population,
    nights_held,
    on_timeline,
    owned,
    reason_in,
    source_table,
)
from iceledger.metrics.registry import Disclosure, Metric, MetricParams, View, register
from iceledger.metrics.volume import STAY_IDENTIFIERS, apply_filters, during
from iceledger.tables import FOIA_RELEASES, FOIA_STAYS

RATE_COLUMNS = ("rate_usd_per_day", "rate_basis", "rate_source")
UNPRICED = "no rate in the cost-rate table for these days: not priced"


def cost_rates() -> pa.Table:
    return load_timeline("cost_rates.csv", "rate_usd_per_day")


def priced(table: ir.Table, day: ir.DateValue) -> ir.Table:
    """`table` with the rate in force on `day`: rate_usd_per_day, rate_basis, rate_source."""
    joined = on_timeline(table, day, cost_rates())
    return joined.mutate(
        rate_basis=joined.basis,
        rate_source=joined.source.fill_null(UNPRICED),
    ).drop("basis", "source")


def _detention_cost(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    population = daily_population(backend, params)
    days = priced(population, population.date)
    monthly = days.group_by([days.date.truncate("M").name("month"), *by, *RATE_COLUMNS]).aggregate(
        days=ibis._.count(), bed_days=days.population_midnight.sum()
    )
    return monthly.select(
        "month",
        *by,
        "days",
        "bed_days",
        "rate_usd_per_day",
        cost_usd=monthly.bed_days * monthly.rate_usd_per_day,
        rate_basis=monthly.rate_basis,
        rate_source=monthly.rate_source,
    ).order_by(["month", *by, "rate_usd_per_day"])


RATE_CAVEATS = (
    "Rates are adult-bed averages; family beds cost more, and the true cost varies by facility "
    "and contract.",
    "A month whose days fall under two rates has one row per rate.",
    "Days with no rate in the table are left unpriced (cost_usd empty); add a sourced rate to "
    "cost_rates.csv to price them.",
    "The default table carries the FY2023 rate forward to mid-2025 and then uses a second-hand "
    "mid-2025 figure (rate_basis says which).",
)

register(
    Metric(
        name="detention_cost",
        title="Cost of ICE detention by month (bed-days × a sourced daily rate)",
        question="cost",
        definition=(
            "Bed-days are the sum over the month's days of the midnight detained population "
            "(detained_population_daily); cost_usd is bed-days times the daily bed rate in "
            "force on each day, from the dated, sourced table src/iceledger/data/facts/cost_rates.csv "
            "(use your own with --facts DIR or $ICELEDGER_FACTS_DIR). Each row names the rate, its "
            "basis (reported or second-hand) and its source; days is the number of days in the "
            "month the FOIA data cover."
        ),
        unit="US dollars; bed-days",
        view=View("cost_usd", "US dollars", "bars"),
        caveats=RATE_CAVEATS,
        tables=(FOIA_STAYS, FOIA_RELEASES),
        build=_detention_cost,
        dimensions=("criminality", "aor"),
        filters=POPULATION_FILTERS,
        needs=(BOOK_OUTS, STAY_IDENTIFIERS),
    )
)


def _cost_per_removal(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    by = list(params.by)
    stays = apply_filters(source_table(backend, FOIA_STAYS), params)
    stays = stays.filter(
        stays.stay_book_in.notnull()
        & stays.stay_book_out.notnull()
        & reason_in(stays.stay_release_reason, "removed")
    )
    stays = during(owned(backend, stays, "stay_book_out"), params, "stay_book_out")
    stays = stays.mutate(out_day=stays.stay_book_out.date())
    stays = priced(stays.mutate(nights=nights_held(stays.stay_book_in, stays.stay_book_out)),
                   stays.out_day)
    monthly = stays.group_by([stays.out_day.truncate("M").name("month"), *by, *RATE_COLUMNS])
    monthly = monthly.aggregate(removals=ibis._.count(), bed_days=ibis._.nights.sum())
    cost = monthly.bed_days * monthly.rate_usd_per_day
    return monthly.select(
        "month",
        *by,
        "removals",
        "bed_days",
        "rate_usd_per_day",
        cost_usd=cost,
        cost_per_removal_usd=cost / monthly.removals,
        rate_basis=monthly.rate_basis,
        rate_source=monthly.rate_source,
    ).order_by(["month", *by, "rate_usd_per_day"])


register(
    Metric(
        name="detention_cost_per_removal",
        title="Detention cost per removal (the stays that ended in removal)",
        question="cost",
        definition=(
            "For detention stays that ended in removal (stay release reason 'Removed') in each "
            "month: removals is the number of such stays, bed_days the midnights they spent in "
            "custody, cost_usd those bed-days times the daily rate in force on the day of "
            "removal (cost_rates.csv), and cost_per_removal_usd cost_usd / removals: the "
            "detention cost behind one removal, not the whole cost of removing someone "
            "(transport, flights and staff are not counted)."
        ),
        unit="US dollars per removal",
        view=View("cost_per_removal_usd", "US dollars per removal"),
        caveats=(
            *RATE_CAVEATS,
            "All nights of a stay are priced at the rate in force on its removal day.",
            "Removals by voluntary departure and removals without an ICE detention stay are not "
            "counted.",
        ),
        tables=(FOIA_STAYS, FOIA_RELEASES),
        build=_cost_per_removal,
        dimensions=("criminality", "aor"),
        filters=POPULATION_FILTERS,
        count_column="removals",
        needs=(BOOK_OUTS, RELEASE_REASONS),
        # A month under two rates has a row per rate: the rate is a key of the rows.
        disclosure=Disclosure(
            keys=("rate_usd_per_day",), facts=RATE_COLUMNS, measures=("bed_days",)
        ),
    )
)
