"""Detention facilities and field offices: the population ICE lists at each, in its newest workbook.

Every detention-statistics workbook carries a facilities sheet (`stats_facilities`): one row per
facility, with ICE's fiscal-year-to-date average daily population (ADP) split four ways by
criminality and sex, which the loader sums into `adp`. These metrics read that sheet from one
workbook, the newest published one, so that every facility is counted once and every figure
comes from the same release. "Newest" is the publication order of
`iceledger.metrics.published_series`: the date in the file name, else the web-archive capture
date, else the printed "data as of" date; ties by data date, then name and hash.

Facilities with no ADP figure, and facilities listed under no field office, are kept and counted,
never dropped: a sum over what is known is only honest beside the count of what is not.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from iceledger.metrics.detention import source_table
from iceledger.metrics.published_series import PUBLICATION_DATES
from iceledger.metrics.registry import Metric, MetricParams, View, register
from iceledger.metrics.volume import apply_filters, during
from iceledger.tables import STATS_FACILITIES, STATS_WORKBOOKS

# A workbook version is its name and, where recorded, the hash of its bytes (a workbook re-posted
# under the same name is another version).
VERSION_KEYS = ("workbook", "sha256")
# What the facilities sheet says about each facility, in the order shown; ADP first among the
# numbers so that a chart draws it.
FACILITY_COLUMNS = ("name", "type_detailed", "city", "state", "zip", "aor", "adp", "alos")

NEWEST_WORKBOOK_DEFINITION = (
    f"from the facilities sheet ({STATS_FACILITIES}) of the newest detention-statistics workbook "
    "that lists facilities, newest by publication date (the date in the file name, else the "
    "web-archive capture date, else the printed 'data as of' date); with --to, the newest "
    "published on or before that day, and with --from, none published before it"
)
ADP_CAVEATS = (
    (
        "ADP is ICE's fiscal-year-to-date average daily population at the facility up to the "
        "workbook's 'data as of' date, as printed (the sum of its four criminality-by-sex "
        "columns): an average over months, not a count on one day, and revised in later "
        "workbooks."
    ),
    (
        "ICE lists the facilities it used in the fiscal year; a facility that held people "
        "earlier and closed may still be listed, with a small average."
    ),
)


def newest_workbook(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    """The one workbook version whose facilities sheet the metrics read: its keys and dates."""
    facilities = source_table(backend, STATS_FACILITIES)
    workbooks = source_table(backend, STATS_WORKBOOKS)
    keys = [k for k in VERSION_KEYS if k in facilities.schema() and k in workbooks.schema()]
    dates = [c for c in PUBLICATION_DATES if c in workbooks.schema()]
    listed = facilities.select(*keys).distinct()
    versions = workbooks.select(*keys, *dates).distinct().join(listed, keys)
    versions = versions.mutate(publication_date=ibis.coalesce(*[versions[c] for c in dates]))
    if params.start:
        versions = versions.filter(versions.publication_date >= params.start)
    if params.end:
        versions = versions.filter(versions.publication_date <= params.end)
    newest_first = ibis.window(
        order_by=[ibis.desc(versions.publication_date), ibis.desc(versions.as_of_date),
                  *[ibis.desc(versions[k]) for k in keys]]
    )
    versions = versions.mutate(rank=ibis.row_number().over(newest_first))
    return versions.filter(versions.rank == 0).select(*keys, "publication_date", "as_of_date")


def facility_rows(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    facilities = source_table(backend, STATS_FACILITIES)
    newest = newest_workbook(backend, params)
    keys = [k for k in VERSION_KEYS if k in newest.schema()]
    return facilities.join(newest, keys)


def _facility_population(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows = facility_rows(backend, params)
    return rows.select(
        *FACILITY_COLUMNS, "fiscal_year", "workbook", "publication_date", "as_of_date",
        "sheet", "cell_range",
    ).order_by(["aor", "name"])


def _field_office_population(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    rows = facility_rows(backend, params)
    # count() - count(adp) rather than a sum of booleans: Spark SQL cannot sum a boolean.
    return (
        rows.group_by(["aor", "workbook", "publication_date", "as_of_date"])
        .aggregate(
            adp=rows.adp.sum(),
            facilities=rows.count(),
            facilities_without_adp=rows.count() - rows.adp.count(),
        )
        .select("aor", "adp", "facilities", "facilities_without_adp", "workbook",
                "publication_date", "as_of_date")
        .order_by("aor")
    )


register(
    Metric(
        name="facility_population",
        title="Average daily population at each detention facility, as ICE lists it",
        question="detention",
        definition=(
            "One row per facility, " + NEWEST_WORKBOOK_DEFINITION + ": adp is ICE's "
            "fiscal-year-to-date average daily population there, alos its average length of "
            "stay in days, with the facility's type, city, state, ZIP code and field office "
            "(aor, ICE's three-letter code) as printed. A facility ICE prints no population "
            "for has an empty adp; it is listed, not left out."
        ),
        unit="people (average per day)",
        view=View("adp", "people (average per day)", "bars", group="name",
                  link="/facilities/"),
        caveats=(
            *ADP_CAVEATS,
            "The address columns are ICE's; a blank or mistyped ZIP code is kept as printed.",
        ),
        tables=(STATS_FACILITIES, STATS_WORKBOOKS),
        build=_facility_population,
    )
)

register(
    Metric(
        name="field_office_population",
        title="Average daily population held in each field office's facilities",
        question="detention",
        definition=(
            "One row per field office (aor, as printed) " + NEWEST_WORKBOOK_DEFINITION + ": "
            "adp is the sum of the average daily populations of the facilities ICE lists under "
            "the office, facilities the number of facilities listed, and "
            "facilities_without_adp how many of them have no population figure (left out of "
            "the sum, which is empty when none has one). Facilities listed under no office "
            "form a row with an empty aor."
        ),
        unit="people (average per day)",
        view=View("adp", "people (average per day)", "bars", group="aor",
                  link="/field-offices/"),
        caveats=(
            *ADP_CAVEATS,
            (
                "The office is the one ICE prints beside the facility; people held there may "
                "have been arrested by another office."
            ),
            (
                "The sum of averages is the office's average daily population only if every one "
                "of its facilities has a figure (facilities_without_adp = 0)."
            ),
        ),
        tables=(STATS_FACILITIES, STATS_WORKBOOKS),
        build=_field_office_population,
    )
)


# --- every release, not only the newest -----------------------------------------------------------


def _population_history(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    facilities = source_table(backend, STATS_FACILITIES)
    facilities = facilities.mutate(facility=facilities.name)
    workbooks = source_table(backend, STATS_WORKBOOKS)
    keys = [k for k in VERSION_KEYS if k in facilities.schema() and k in workbooks.schema()]
    dates = [c for c in PUBLICATION_DATES if c in workbooks.schema()]
    versions = workbooks.select(*keys, *dates).distinct()
    versions = versions.mutate(date=ibis.coalesce(*[versions[c] for c in dates]))
    rows = facilities.join(versions.select(*keys, "date", "as_of_date"), keys)
    rows = during(apply_filters(rows, params), params, "date")
    by = list(params.by)
    # Where a facility is the breakdown, what ICE prints about it comes along (as printed last).
    described = ({c: rows[c].max() for c in ("type_detailed", "city", "state", "aor")
                  if c not in by} if "facility" in by else {})
    return rows.group_by(["date", "workbook", *by]).aggregate(
        adp=rows.adp.sum(),
        facilities=rows.count(),
        facilities_without_adp=rows.count() - rows.adp.count(),
        as_of_date=rows.as_of_date.max(),
        **described,
    ).order_by(["date", *by])


register(
    Metric(
        name="facility_population_history",
        title="Average daily population in ICE's facility lists, release by release",
        question="detention",
        definition=(
            f"For every detention-statistics workbook that lists facilities ({STATS_FACILITIES}), "
            "dated by its publication date (the date in the file name, else the web-archive "
            "capture date, else the printed 'data as of' date): adp, the sum of the average "
            "daily populations ICE prints for the facilities (all of them, or per field office "
            "with --by aor, or per facility with --by facility), facilities the number listed "
            "and facilities_without_adp those with no figure (left out of the sum)."
        ),
        unit="people (average per day)",
        caveats=(
            *ADP_CAVEATS,
            "Each release's figure is fiscal-year-to-date: the first releases of a fiscal year "
            "average over a few weeks, the last over the whole year.",
            "Facility names are as printed; a facility renamed between releases is two series.",
        ),
        tables=(STATS_FACILITIES, STATS_WORKBOOKS),
        build=_population_history,
        dimensions=("aor", "facility"),
        filters=("aor", "facility"),
        view=View("adp", "people (average per day)"),
    )
)
