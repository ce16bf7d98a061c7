"""Human cost as ICE publishes it: the detention-statistics workbooks' counts of families,
transgender detainees, vulnerable people in segregation and other special populations.

Each metric is a series over releases, read from the workbook tables as loaded
(docs/codebook.md) and defined in docs/methodology.md, "Human cost: ICE's published counts":

- figures ICE reprints and revises (a month's family-facility population, a quarter's segregation
  placements, a fiscal year's arrests of U.S. citizens) take their latest published value, with
  how often and how much releases revised them (iceledger.metrics.published_series);
- figures that describe one day (people held on the snapshot date, book-ins so far in the fiscal
  year) are one row per snapshot, from the newest release that printed it.

These are ICE's own aggregates, shown as ICE printed them (counts under 10 included: ICE published
them); a workbook table a release lacks leaves the series without that release, and a warehouse
without the table cannot serve the metric (it names the table missing).
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from iceledger.metrics.published_series import SeriesSpec, latest, snapshots
from iceledger.metrics.registry import Metric, MetricParams, View, register
from iceledger.metrics.volume import apply_filters, during
from iceledger.tables import (
    STATS_ADP_BY_FACILITY_TYPE,
    STATS_ALOS_BY_FACILITY_TYPE,
    STATS_ATD_STATUS,
    STATS_BOOK_INS_BY_FACILITY_TYPE,
    STATS_REMOVALS,
    STATS_SEGREGATION_VULNERABLE,
    STATS_SEMIANNUAL,
    STATS_TRANSGENDER,
    STATS_WORKBOOKS,
)

QUESTION = "human_cost"
TOTAL = "Total"
# ICE's family facilities: family residential centers (FRC), renamed family staging centers (FSC)
# in 2021; the workbooks print one or the other, never both in one release.
FAMILY_FACILITY_TYPES = ("FSC", "FRC")
FAMILY = "Family (FSC/FRC)"
REVISION_COLUMNS = ("workbook", "as_of_date", "n_releases", "n_revisions", "change_since_first",
                    "failed_checks")
LATEST_CAVEAT = (
    "Latest published value: ICE revises figures between releases until the fiscal year closes; "
    "n_revisions and change_since_first say how much this one moved, workbook which release it "
    "is from."
)
SNAPSHOT_CAVEAT = (
    "One row per snapshot date (the table's own date, from its caption or the Footnotes sheet, "
    "else the workbook's data-as-of date); releases found to be stale re-posts are left out. "
    "Where several releases print the same snapshot the first printing is used: n_printings "
    "counts them, reprints_differing those that printed another figure."
)
PUBLISHED_CAVEAT = (
    "ICE's own published aggregates, as printed, including counts under 10: ICE published them, "
    "and no record of a person is read."
)


# --- shared -------------------------------------------------------------------------------------


def fiscal_period_start(fiscal_year: ir.IntegerValue, quarter: ir.IntegerValue | None = None
                        ) -> ir.DateValue:
    """The first day of a fiscal year (1 October of the year before) or of one of its quarters."""
    # Months counted from January of the year before: October is 10, January 13.
    month = ibis.literal(10) if quarter is None else 10 + 3 * (quarter.cast("int32") - 1)
    year = fiscal_year.cast("int32") - 1 + ibis.ifelse(month > 12, 1, 0)
    return ibis.date(year, ibis.ifelse(month > 12, month - 12, month), 1)


def _revisions(rows: ir.Table) -> dict[str, ir.Value]:
    return {c: rows[c] for c in REVISION_COLUMNS}


# --- families in family facilities (monthly) -----------------------------------------------------


def _family_typed(table: ir.Table) -> ir.Table:
    kind = table.facility_type
    return table.mutate(facility_type=ibis.ifelse(kind.isin(FAMILY_FACILITY_TYPES), FAMILY, kind))


def _by_facility_type(backend: ibis.BaseBackend, table: str, value: str, kind: str) -> ir.Table:
    rows = latest(backend, SeriesSpec(table, value, ("facility_type",)),
                  _family_typed(backend.table(table)))
    return rows.filter(rows.facility_type == kind)


def _family_detention(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    family = _by_facility_type(backend, STATS_ADP_BY_FACILITY_TYPE, "adp", FAMILY)
    every = _by_facility_type(backend, STATS_ADP_BY_FACILITY_TYPE, "adp", TOTAL).select(
        "month", all_adp="value")
    alos = _by_facility_type(backend, STATS_ALOS_BY_FACILITY_TYPE, "alos_days", FAMILY).select(
        "month", family_alos_days="value")
    all_alos = _by_facility_type(backend, STATS_ALOS_BY_FACILITY_TYPE, "alos_days", TOTAL).select(
        "month", all_alos_days="value")
    rows = family.left_join(every, "month").drop("month_right")
    rows = rows.left_join(alos, "month").drop("month_right")
    rows = rows.left_join(all_alos, "month").drop("month_right")
    rows = during(rows, params, "month")
    return rows.select(
        "month",
        family_adp=rows.value,
        all_adp=rows.all_adp,
        family_adp_share=rows.value / rows.all_adp.nullif(0),
        family_alos_days=rows.family_alos_days,
        all_alos_days=rows.all_alos_days,
        **_revisions(rows),
    ).order_by("month")


register(
    Metric(
        name="published_family_detention",
        title="Families held in family facilities per month, as ICE publishes it",
        question=QUESTION,
        definition=(
            "ICE's published average daily population in its family facilities (facility type "
            "FSC, family staging center, or FRC, family residential center, its name before "
            f"2021) per month ({STATS_ADP_BY_FACILITY_TYPE}), beside the population in all "
            "facilities and the family facilities' share of it, and the average length of stay "
            f"of those booked out of family facilities and of all facilities "
            f"({STATS_ALOS_BY_FACILITY_TYPE}): each the latest published value of the month."
        ),
        unit="people (average per day); days",
        caveats=(
            LATEST_CAVEAT,
            "Family facilities hold parents with their children; the figures count people, "
            "children included, not families.",
            "The workbooks print FSC or FRC; both are read as one family-facility series. A "
            "facility type other than FSC, FRC and Adult (none in the archived workbooks; the "
            "ingest warns of one) is not counted as family; it stays in all_adp.",
            "ICE's FSC ADPs appear to be averaged over the days a family facility held anyone, "
            "not over the whole month or year (docs/stats-checks.md: FY2025's printed 357.59 is "
            "Total less Adult, 168.22 a day over 355 days, re-averaged over the 167 days FSC "
            "was in use): in a month the "
            "facilities were open only in part, family_adp and family_adp_share overstate the "
            "month's average, and FSC plus Adult need not add to the Total.",
            "Revision columns (workbook, n_revisions, change_since_first) are of family_adp.",
            PUBLISHED_CAVEAT,
        ),
        tables=(STATS_ADP_BY_FACILITY_TYPE, STATS_ALOS_BY_FACILITY_TYPE, STATS_WORKBOOKS),
        build=_family_detention,
        view=View("family_adp", "people (average per day)"),
    )
)


# --- families: fiscal-year-to-date counts per release ---------------------------------------------

# What ICE prints about families, each beside the total of the same table: (population, table,
# the column holding the figure, the label column, a pattern the part's labels match, the total's
# label). Labels are matched in lower case.
FAMILY_UNIT_COUNTS = (
    ("book-ins into family facilities (FSC/FRC)", STATS_BOOK_INS_BY_FACILITY_TYPE, "book_ins",
     "facility_type", "^(fsc|frc)$", "total"),
    ("removals after a family-facility detention (FRC/FSC)", STATS_REMOVALS, "removals",
     "category", r"with an? (frc|fsc) detention", "total"),
    ("removals with a family-unit (FAMU) identifier", STATS_REMOVALS, "removals", "category",
     "famu identifier", "total"),
    ("alternatives to detention: family units (FAMU)", STATS_ATD_STATUS, "participants",
     "status", "^(ecms-)?famu$", "total"),
)
_PROVENANCE = ("workbook", "sha256", "fiscal_year", "snapshot_date", "sheet")


def _family_part(backend: ibis.BaseBackend, population: str, table: str, value: str,
                 label: str, part: str, total: str) -> ir.Table:
    rows = backend.table(table)
    if table == STATS_BOOK_INS_BY_FACILITY_TYPE:  # all criminality classes
        rows = rows.filter(rows.criminality == TOTAL)
    text = rows[label].lower()
    keys = [c for c in _PROVENANCE if c in rows.columns]
    counted = rows.group_by(keys).aggregate(
        count=rows[value].sum(where=text.re_search(part)),
        parts=text.re_search(part).cast("int64").sum(),
        of_all=rows[value].max(where=text == total),
    )
    counted = counted.filter(counted.parts > 0).drop("parts")
    return counted.mutate(population=ibis.literal(population))


def _family_units(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    parts = [_family_part(backend, *spec) for spec in FAMILY_UNIT_COUNTS]
    rows = snapshots(backend, ibis.union(*parts), ["population", "fiscal_year"], "count")
    rows = during(apply_filters(rows, params), params, "date")
    return rows.select(
        "date",
        "fiscal_year",
        "population",
        count=rows["count"].cast("int64"),
        of_all=rows.of_all.cast("int64"),
        share=rows["count"] / rows.of_all.nullif(0),
        workbook=rows.workbook,
        sheet=rows.sheet,
        n_printings=rows.n_printings,
        reprints_differing=rows.reprints_differing,
    ).order_by(["date", "population"])


register(
    Metric(
        name="published_family_units",
        title="Families in ICE's published counts: book-ins, removals and ATD, per release",
        question=QUESTION,
        definition=(
            "Per release, the family figures ICE prints beside the whole of the same table: "
            "book-ins into family facilities (FSC or FRC, all criminality classes) of all book-ins "
            f"so far in the fiscal year ({STATS_BOOK_INS_BY_FACILITY_TYPE}); removals after a "
            "family-facility detention, and (from FY2024, when ICE changed the row) removals with "
            f"a family-unit identifier, of all removals so far in the fiscal year "
            f"({STATS_REMOVALS}); family-unit participants (FAMU and ECMS-FAMU) of all "
            f"participants in alternatives to detention on the snapshot day ({STATS_ATD_STATUS}). "
            "count, of_all and share = count / of_all, per snapshot date and fiscal year."
        ),
        unit="people; share (0-1)",
        caveats=(
            SNAPSHOT_CAVEAT,
            "Book-ins and removals are fiscal year to date: they grow through the year and "
            "restart each October; compare releases of the same fiscal year.",
            "'Removals after a family-facility detention' and 'removals with a FAMU identifier' "
            "are different definitions (the second also counts family members never held in a "
            "family facility) and are never joined into one series.",
            "ATD participants are those enrolled on the snapshot day, not a yearly total.",
            "The release of 2021-10-28 reprints the FY2020 year-end book-ins by facility type "
            "with the Adult and FRC rows swapped (181,039 book-ins into family facilities of "
            "182,869); the first printing (the FY2020 workbook: 1,830) is used, and "
            "reprints_differing counts the reprint.",
            PUBLISHED_CAVEAT,
        ),
        tables=(STATS_BOOK_INS_BY_FACILITY_TYPE, STATS_REMOVALS, STATS_ATD_STATUS,
                STATS_WORKBOOKS),
        build=_family_units,
        filters=("population",),
        view=View("share", "share of the table's total", group="population"),
    )
)


# --- transgender detainees -----------------------------------------------------------------------

# The rows of ICE's transgender table, by the words of their printed labels (lower case): the
# labels changed between releases ("Currently Detained", "Current in ICE Custody", once "Current
# Book-Ins"), the meaning did not.
TRANSGENDER_ROWS = (
    ("book_ins_fytd", r"^total book-?ins"),
    ("detained_total", r"^currently detained( total)?$"),
    ("detained_by_aor_total", "location/area of responsibility"),
    ("detained_with_final_order", r"\bwith final order$"),
    ("detained_without_final_order", r"\bwithout final order$"),
)


def _transgender(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    table = backend.table(STATS_TRANSGENDER)
    label = table.category.lower()
    row = ibis.cases(*((label.re_search(pattern), name) for name, pattern in TRANSGENDER_ROWS),
                     else_=ibis.null("string"))
    rows = table.mutate(row=row).filter(lambda t: t.row.notnull())
    rows = snapshots(backend, rows, ["row"], "people")
    figures = rows.group_by(["date", "fiscal_year"]).aggregate(
        workbook=rows.workbook.collect(distinct=True).sort().join("; "),
        n_printings=rows.n_printings.max(),
        reprints_differing=rows.reprints_differing.max(),
        **{name: rows.people.max(where=rows.row == name) for name, _ in TRANSGENDER_ROWS},
    )
    figures = during(figures, params, "date")
    return figures.select(
        "date",
        "fiscal_year",
        book_ins_fytd=figures.book_ins_fytd.cast("int64"),
        detained=ibis.coalesce(figures.detained_total, figures.detained_by_aor_total)
        .cast("int64"),
        detained_with_final_order=figures.detained_with_final_order.cast("int64"),
        detained_without_final_order=figures.detained_without_final_order.cast("int64"),
        workbook=figures.workbook,
        n_printings=figures.n_printings,
        reprints_differing=figures.reprints_differing,
    ).order_by("date")


register(
    Metric(
        name="published_transgender_detainees",
        title="Transgender people in ICE detention, as ICE publishes it, per release",
        question=QUESTION,
        definition=(
            f"ICE's transgender detainee table ({STATS_TRANSGENDER}) per snapshot: book-ins of "
            "transgender people so far in the fiscal year (book_ins_fytd), transgender people "
            "held on the snapshot date (detained), and of them those with and without a final "
            "order of removal. detained is the table's 'Currently Detained' total, or where a "
            "release prints none its total over areas of responsibility."
        ),
        unit="people",
        caveats=(
            SNAPSHOT_CAVEAT,
            "Only releases with the transgender sheet: the shared workbooks print it from FY2021 "
            "to January 2025 and not after.",
            "ICE's labels changed between releases ('Currently Detained', 'Current in ICE "
            "Custody', once 'Current Book-Ins ... Location/Area of Responsibility'); each is read "
            "as the people held on the snapshot date. The release of 2024-01-04 prints only a "
            "total over areas of responsibility, read as such.",
            "ICE's counts per area of responsibility are not served: most are under 10.",
            PUBLISHED_CAVEAT,
        ),
        tables=(STATS_TRANSGENDER, STATS_WORKBOOKS),
        build=_transgender,
        view=View("detained", "people",
                  also=("detained_with_final_order", "detained_without_final_order")),
    )
)


# --- vulnerable and special populations in segregation (quarterly) ------------------------------

SEGREGATION_SPEC = SeriesSpec(STATS_SEGREGATION_VULNERABLE, "placements", ("placement_reason",),
                              ("data_fiscal_year", "quarter"))


def _vulnerable_segregation(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    table = apply_filters(backend.table(STATS_SEGREGATION_VULNERABLE), params)
    rows = latest(backend, SEGREGATION_SPEC, table)
    # The averages of days are read from the same printed row as the latest placements.
    keys = [c for c in ("workbook", "sha256", "sheet", "cell_range", "data_fiscal_year",
                        "quarter", "placement_reason") if c in rows.columns and c in table.columns]
    days = table.select(*keys, "avg_consecutive_days", "avg_cumulative_days")
    rows = rows.left_join(days, keys).drop(*[f"{k}_right" for k in keys])
    rows = rows.mutate(month=fiscal_period_start(rows.data_fiscal_year, rows.quarter))
    rows = during(rows, params, "month")
    return rows.select(
        "month",
        "data_fiscal_year",
        "quarter",
        "placement_reason",
        placements=rows.value.cast("int64"),
        avg_consecutive_days=rows.avg_consecutive_days,
        avg_cumulative_days=rows.avg_cumulative_days,
        **_revisions(rows),
    ).order_by(["month", "placement_reason"])


register(
    Metric(
        name="published_vulnerable_segregation",
        title="Vulnerable and special populations placed in segregation, per quarter, as ICE "
        "publishes it",
        question=QUESTION,
        definition=(
            "ICE's 'Vulnerable & Special Population' table "
            f"({STATS_SEGREGATION_VULNERABLE}): segregation placements of people with a special "
            "vulnerability recorded in ICE's Segregation Review Management System (serious "
            "mental or medical illness, hunger strike, suicide watch, or risk of harm in general "
            "population from how others perceive their sexual orientation or gender expression, "
            "in ICE's words), per fiscal quarter and placement reason (ICE's 'Total' row "
            "included), with the average consecutive and cumulative days in segregation; the "
            "latest published value of each quarter. month is the quarter's first month."
        ),
        unit="placements; days",
        caveats=(
            LATEST_CAVEAT,
            "Placements, not people: ICE's footnotes say some people are placed more than once in "
            "a quarter (the footnotes' counts of unique people are not read).",
            "The averages are read from the same release as the placements.",
            PUBLISHED_CAVEAT,
        ),
        tables=(STATS_SEGREGATION_VULNERABLE, STATS_WORKBOOKS),
        build=_vulnerable_segregation,
        filters=("placement_reason",),
        view=View("placements", "segregation placements", group="placement_reason"),
    )
)


# --- special populations: U.S. citizens, parents of U.S. citizens, armed forces -----------------

SPECIAL_POPULATIONS_SPEC = SeriesSpec(STATS_SEMIANNUAL, "people", ("population", "action"),
                                      ("data_fiscal_year",))
# What as_of_date is for these figures, said on every row: ICE's refresh date, or only the
# release's date where the release printed none.
REFRESH_DATED = "ICE's semiannual refresh: the Footnotes say the data run through as_of_date"
RELEASE_DATED = ("no refresh date printed (or none that fits its year): as_of_date is the "
                 "release's data-as-of date, not the day the figures run to")


def _without_placeholder_zeros(table: ir.Table) -> ir.Table:
    """The rows less every 0 printed for a fiscal year another release printed a figure for:
    ICE's placeholder until the semiannual refresh, not a revision to zero."""
    keys = ["population", "action", "data_fiscal_year"]
    largest = table.people.max().over(ibis.window(group_by=keys))
    return table.mutate(largest=largest).filter(lambda t: ~((t.people == 0) & (t.largest > 0))
                                                ).drop("largest")


def _special_populations(backend: ibis.BaseBackend, params: MetricParams) -> ir.Table:
    table = _without_placeholder_zeros(apply_filters(backend.table(STATS_SEMIANNUAL), params))
    rows = latest(backend, SPECIAL_POPULATIONS_SPEC, table)
    rows = rows.mutate(month=fiscal_period_start(rows.data_fiscal_year))
    rows = during(rows, params, "month")
    return rows.select(
        "month",
        "data_fiscal_year",
        "population",
        "action",
        series=rows.population + ": " + rows.action,
        people=rows.value.cast("int64"),
        **_revisions(rows),
        dated_by=ibis.ifelse(rows.as_of_source == "footnote", REFRESH_DATED, RELEASE_DATED),
    ).order_by(["month", "population", "action"])


register(
    Metric(
        name="published_special_populations",
        title="Arrests, book-ins and removals of U.S. citizens, parents of U.S. citizens and "
        "armed-forces members, per fiscal year, as ICE publishes it",
        question=QUESTION,
        definition=(
            f"ICE's semiannual tables ({STATS_SEMIANNUAL}): arrests, book-ins and removals per "
            "fiscal year of people ICE recorded as United States citizens, as parents of U.S. "
            "citizens, and as members of the U.S. armed forces (ICE's own populations); the "
            "latest published value of each fiscal year. month is the fiscal year's first month "
            "(October of the year before)."
        ),
        unit="people",
        caveats=(
            LATEST_CAVEAT,
            "A 0 printed for a fiscal year that another release printed a figure for is read as "
            "ICE's placeholder before its semiannual refresh (the FY2026 workbooks print 0 for "
            "FY2025) and left out, so the figure shown is the last one ICE filled in.",
            "The latest fiscal year may be a part year (ICE prints it 'YTD').",
            "ICE refreshes these tables about twice a year, apart from the rest of the "
            "workbook: as_of_date is the refresh date the Footnotes print ('FY2025 ICE Arrests "
            "data are updated through 04/22/2025'). Some releases print none, or one outside "
            "the year it names (FY2023 releases: 'FY2023 ... through 03/31/2022'); for them "
            "as_of_date is only the release's data-as-of date, which orders the releases but "
            "is not the day the figures run to. dated_by says which, row by row.",
            "A U.S. citizen is one ICE recorded as such; compare recorded_us_citizens, read from "
            "the FOIA records.",
            PUBLISHED_CAVEAT,
        ),
        tables=(STATS_SEMIANNUAL, STATS_WORKBOOKS),
        build=_special_populations,
        filters=("population", "action"),
        view=View("people", "people", group="series"),
    )
)
