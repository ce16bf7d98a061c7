"""ICE's published monthly series, read from the workbooks alone: book-ins, ADP and ALOS.

Each month takes its latest published value (iceledger.metrics.published_series): the workbooks
reprint every month of the fiscal year and revise it until the year closes, so every row also
says how many releases printed it, how often it was revised and by how much since first printed.
National totals (all arresting agencies, all criminality classes) by default; `--by agency` or
`--by criminality` splits them as ICE prints them.
"""

from __future__ import annotations

import ibis

from iceledger.metrics.published_series import SeriesSpec, latest
from iceledger.metrics.registry import Metric, MetricParams, View, register
from iceledger.metrics.volume import apply_filters, during
from iceledger.tables import STATS_ADP, STATS_ALOS, STATS_BOOK_INS, STATS_WORKBOOKS

TOTAL = "Total"
REVISION_COLUMNS = ("n_releases", "n_revisions", "first_value", "change_since_first",
                    "max_abs_revision", "failed_checks")
_CAVEATS = (
    "Latest published value per month: figures 'fluctuate until locked at the conclusion of the "
    "fiscal year' (the workbooks' own header); n_revisions and change_since_first say how much "
    "this month moved between releases.",
    "A month's value is from the newest release that printed it; the last month of a release "
    "is usually partial (fiscal year to date).",
)


def _series(table: str, value: str, dimensions: tuple[str, ...]):
    def build(backend: ibis.BaseBackend, params: MetricParams) -> ibis.Table:
        rows = latest(backend, SeriesSpec(table, value, dimensions))
        for dimension in dimensions:
            if dimension not in params.by and dimension not in params.filters:
                rows = rows.filter(rows[dimension] == TOTAL)
        rows = during(apply_filters(rows, params), params, "month")
        return rows.select(
            "month", *params.by, **{value: rows.value}, workbook=rows.workbook,
            as_of_date=rows.as_of_date,
            **{c: rows[c] for c in REVISION_COLUMNS},
        ).order_by(["month", *params.by])

    return build


for _name, _title, _table, _value, _dims, _unit, _what in (
    ("published_book_ins", "Initial book-ins per month, as ICE publishes them", STATS_BOOK_INS,
     "book_ins", ("agency",), "book-ins per month",
     "Initial book-ins into ICE detention per month (people booked in, by arresting agency)"),
    ("published_adp", "Average daily detained population per month, as ICE publishes it",
     STATS_ADP, "adp", ("agency", "criminality"), "people (average per day)",
     "Average daily population in ICE detention per month, by arresting agency and criminality"),
    ("published_alos", "Average length of stay per month, as ICE publishes it", STATS_ALOS,
     "alos_days", ("agency", "criminality"), "days",
     "Average length of stay in ICE detention, in days, of people booked out in the month"),
):
    register(
        Metric(
            name=_name,
            title=_title,
            question="detention",
            definition=f"{_what}, from the workbooks' {_table} table: the latest published value "
            "of each month, national totals unless broken down.",
            unit=_unit,
            caveats=_CAVEATS,
            tables=(_table, STATS_WORKBOOKS),
            build=_series(_table, _value, _dims),
            dimensions=_dims,
            filters=_dims,
            view=View(_value, _unit),
        )
    )
