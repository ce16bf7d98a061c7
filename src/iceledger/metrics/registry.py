"""What a metric is, and the one registry every presentation layer reads.

A metric is written once, as a function that builds an Ibis expression from a backend and a set of
validated parameters. The same expression runs on DuckDB (the default) and on PySpark. Reports,
the dashboard, the API and the CLI only ever call `compute`; none of them computes a number.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

import ibis
import pyarrow as pa
from ibis.common.exceptions import IbisTypeError, TableNotFound

from iceledger.errors import IceledgerError
from iceledger.tables import key_dates

# The questions metrics answer, in the order shown, with the title of each one's report section
# and dashboard page.
QUESTIONS = {
    "volume": "Volume against targets",
    "targeting": "Who is targeted",
    "detention": "Detention",
    "outcomes": "Outcomes",
    "pipeline": "Pipeline: detainers, encounters, who feeds ICE",
    "cost": "Cost",
    "claims": "Claims",
    "reconciliation": "Reconciliation",
    "human_cost": "Human cost",
}


# The days a period may name: wide enough for any record, narrow enough that a day after the
# last (`end + 1 day`) and a window before the first stay ordinary dates.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2100, 12, 31)


@dataclass(frozen=True)
class MetricParams:
    """Parameters a caller may set; validated against the metric's allow-lists before use."""

    by: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


class NotServable(IceledgerError):
    """A metric that exists but cannot be computed on this warehouse (a table it reads is
    absent)."""


class NotMeasurable(NotServable):
    """The records hold what a metric reads, but not what it needs to mean something: a column
    the period's records lack (no book-out dates, identifiers all redacted...)."""

    PREFIX = "not measurable from these records: "

    def __init__(self, why: str):
        super().__init__(f"{self.PREFIX}{why}")


@dataclass(frozen=True)
class Need:
    """A canonical column a metric needs in a table's records, and why.

    Where the period's records lack it (iceledger.metrics.capabilities), the metric is not
    measurable; unless `otherwise` says how it still counts without it, in which case it is
    computed and `otherwise` becomes a caveat of the result.
    """

    table: str
    column: str
    why: str
    otherwise: str | None = None


@dataclass(frozen=True)
class NationalFigure:
    """A national figure (a target, ICE's published counts, the funded beds) the metric sets the
    records of a table beside. ICE answers some FOIA requests with the records of one field
    office (the UW v. DHS production is the Seattle office's): where the period's records name
    only part of the field offices, the metric is not measurable nationally, and where they name
    none, it says that their reach is not in them (iceledger.metrics.capabilities). A metric
    that can be broken down by field office compares office by office when asked so (`--by
    aor`, `--filter aor=...`: the arrest targets per office), and is then not judged."""

    table: str
    figure: str


# The marks a metric's default view can ask for (serving/charts.py draws each):
# "line"    a time series: points and straight segments, gaps left as gaps, intervals as bands;
#           `reference` adds a named step line per value of `group` (targets in force);
# "bars"    a bar per month (totals such as dollars), or per group without a time column;
# "dots"    one dot per measure (and per group), each with its interval: whole-period figures;
# "paired"  before and after dots per split date, with the interval of the difference;
# "funnel"  one row's measures as ordered bars;
# "heatmap" groups by month, coloured by the measure;
# "step"    a step line over a quantitative x (`x`), e.g. days since book-in.
VIEW_MARKS = ("line", "bars", "dots", "paired", "funnel", "heatmap", "step")


@dataclass(frozen=True)
class View:
    """The chart that answers a metric's question by default: which column, in what unit, how.

    `unit` is the unit of `measure` (and of every column in `also`, drawn beside it): it becomes
    the axis title, so a chart can never put counts under a share axis.
    """

    measure: str
    unit: str
    mark: str = "line"
    also: tuple[str, ...] = ()
    group: str | None = None
    reference: str | None = None
    x: str | None = None
    # Each group's own page: a path the group's value is appended to ("/facilities/").
    link: str | None = None

    def __post_init__(self):
        if self.mark not in VIEW_MARKS:
            raise ValueError(f"view mark {self.mark!r} is not one of {', '.join(VIEW_MARKS)}")

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.measure, *self.also)


# The row keys of a metric whose rows are the spans before and after each split date (one row per
# date, event and definition); two events on one date repeat the same people.
SPLIT_KEYS = ("split_date", "split_event", "definition")


@dataclass(frozen=True)
class NestsIn:
    """A row key (`key`) whose every value lies in one group of `metric`'s rows, the group named
    by `group`, a column of the tables both metrics read (the load derives it from the key)."""

    key: str
    metric: str
    group: str


@dataclass(frozen=True)
class Curve:
    """A survival curve's columns: the step (days since book-in), the stays at risk at the start
    of it and those that ended during it; the rest (the survival) hold at the end of the step.
    `ended_total` names a metric and its column publishing each group's ended stays over every
    length, the curve's last step and beyond (less the curve's, they count the stays that ended
    after it)."""

    step: str
    at_risk: str
    ended: str
    ended_total: tuple[str, str] = ()


@dataclass(frozen=True)
class Disclosure:
    """How public outputs read a metric's columns (serving/disclosure.py; docs/dashboard.md).

    Every integer column of a metric with a count_column counts people, unless named here: a
    new count column is protected without anyone remembering to list it.
    """

    # Row keys besides the time column and `by` (one row per arrest setting, per field office).
    keys: tuple[str, ...] = ()
    # Keys whose rows may count the same people twice (one row per target in force that day).
    copies: tuple[str, ...] = ()
    # Keys whose values no table adds up (one row per action: the arrests, book-ins and removals
    # of the same people; one per release, whose records overlap): public outputs publish no total
    # across them, so the planner does not protect cells against one.
    unsummed: tuple[str, ...] = ()
    # Columns holding a total of another over one key, as (column, counted column, key): the
    # month's arrests with a setting beside each setting's arrests. The auditor reads them so.
    totals: tuple[tuple[str, str, str], ...] = ()
    # Public facts beside the counts (a target, a rate, a date): never hidden.
    facts: tuple[str, ...] = ()
    # Integer columns that count no one (days in a month, a rank); hidden with their row.
    measures: tuple[str, ...] = ()
    # Columns of a row counting parts of another's people, as (whole, *parts): the whole minus
    # its parts counts people too (`records` minus `with_data`: the records without the value),
    # and is protected like a column.
    parts: tuple[tuple[str, ...], ...] = ()
    # Rows counting part of another row's people, as (key, narrower value, wider value): with
    # the other keys equal, the wider row's count minus the narrower's counts people too (over
    # 5 years in the country but not over 10), and is protected like a column.
    nested: tuple[tuple[str, str, str], ...] = ()
    # The filter naming split dates, for a metric whose rows are the spans before and after each
    # date: a span less the whole months beside it counts the people of part of a month, so
    # public outputs publish a date's rows only when every part of the month it cuts counts 0 or
    # at least k people, and every day too unless the daily tables were planned against those
    # parts (the default split dates; serving/disclosure.py, unsafe_splits).
    splits: str = ""
    # Whether a public daily table may count a split metric's matching records day by day (a
    # daily breakdown by criminality or citizenship): then, under the day rule (a split date the
    # daily tables were not planned against), each day of a cut month must be safe in them too.
    # The records themselves are then always checked day by day (arrests, book-ins, removals,
    # detainers and encounters are all published per day).
    shares_by_day: bool = True
    # A row key whose values nest in the groups another metric publishes as its rows
    # (apprehension methods in arrest settings): public outputs plan this metric's rows with
    # the groups' totals as published and the groups that metric hid as secrets.
    nests_in: NestsIn | None = None
    # For a daily metric: the monthly metrics counting, month by month, the people it counts day
    # by day (each month's total of its count column is this metric's month total). A monthly
    # table hides a month beside a small one so that no total gives the small one back; a daily
    # table publishing every day of that month would, so public outputs plan this metric's days
    # with the months (and cells) those tables hid as secrets.
    months: tuple[str, ...] = ()
    # For a daily metric: the keys by which the `months` tables that break its people down are
    # planned as one table, their finest crossing by month (a month's arrests by criminality,
    # by setting, and by both): each row, a sum of its cells, hidden in every table or shown
    # (serving/disclosure.py, plan_linked). Breakdowns by other keys are planned table by table.
    crossed: tuple[str, ...] = ()
    # Columns counting the rows of one value of a key, as (column, key, value): `convicted`, a
    # month's arrests whose criminality is "Convicted Criminal". Planned as sums (`crossed`).
    classes: tuple[tuple[str, str, object], ...] = ()
    # The columns of a survival curve, whose rows are steps (days since book-in) with the stays
    # at risk at each: public outputs show it at coarser steps (serving/disclosure.py,
    # coarsen_curve), since two neighbouring rows differ by the stays that left between them.
    curve: Curve | None = None
    # Why public outputs cannot serve the metric at all (empty: they can).
    withheld: str = ""
    # What public outputs serve in its place, when withheld: another metric and its breakdown
    # answering the same question at a grain they publish (detainers by field office, not state).
    instead: tuple[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Metric:
    name: str
    title: str
    question: str
    definition: str
    unit: str
    caveats: tuple[str, ...]
    tables: tuple[str, ...]
    build: Callable[[ibis.BaseBackend, MetricParams], ibis.Table]
    dimensions: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    # Column holding the number of people behind each row; public outputs suppress by it.
    count_column: str | None = None
    # The canonical columns the metric needs in the records it reads (see Need).
    needs: tuple[Need, ...] = ()
    # The national figures it sets the records beside (see NationalFigure).
    national: tuple[NationalFigure, ...] = ()
    view: View | None = None


    disclosure: Disclosure = Disclosure()

    def validate(self, params: MetricParams) -> None:
        unknown_dims = [d for d in params.by if d not in self.dimensions]
        if unknown_dims:
            raise IceledgerError(
                f"metric {self.name!r} cannot be broken down by {', '.join(unknown_dims)}; "
                f"allowed: {', '.join(self.dimensions) or 'none'}"
            )
        unknown_filters = [f for f in params.filters if f not in self.filters]
        if unknown_filters:
            raise IceledgerError(
                f"metric {self.name!r} cannot be filtered by {', '.join(unknown_filters)}; "
                f"allowed: {', '.join(self.filters) or 'none'}"
            )
        for option, day in (("--from", params.start), ("--to", params.end)):
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                raise IceledgerError(
                    f"{option} {day.isoformat()} is outside the days iceledger computes, "
                    f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}"
                )
        if params.start and params.end and params.start > params.end:
            raise IceledgerError(f"--from {params.start} is after --to {params.end}")


REGISTRY: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.question not in QUESTIONS:
        raise ValueError(f"{metric.name}: unknown question {metric.question!r}")
    if metric.name in REGISTRY:
        raise ValueError(f"metric {metric.name!r} registered twice")
    REGISTRY[metric.name] = metric
    return metric


# The dimension of a monthly metric's period sibling (`<name>_period`) that counts its rows per
# U.S. federal fiscal year: the coarser grain of events too rare to count month by month.
FISCAL_YEAR = "fiscal_year"
# The name ending of a metric whose rows are the spans before and after split dates.
SHIFT_SUFFIX = "_shift"
# Dimensions the rows carry as loaded (a column of a table the metric reads), as against those a
# metric makes (a month, a target, a split): a metric grouped by or filtered on one of these that
# none of its tables holds is not measurable. tests/test_metrics_capabilities.py sorts every
# dimension a metric declares into one of the two.
RECORD_DIMENSIONS = frozenset({
    "agency", "aor", "apprehension_method", "apprehension_state", "arrest_setting",
    "case_category", "citizenship_country", "criminality", "departure_country", "detainer_type",
    "event_type", "facility_code", "facility_state", "lead_source", "placement_reason",
    "release_reason",
})
# Made by metrics: from other columns (a detainer's facility_type from its facility's code, its
# lift_reason and county from theirs), from dates, or from the facts (targets, rates, splits).
MADE_DIMENSIONS = frozenset({
    "action", "county", "days", "definition", "facility", "facility_type", "fiscal_year",
    "indicator", "lift_reason", "month", "population", "rate_usd_per_day", "release", "split",
    "split_date", "split_event", "target",
})


def by_fiscal_year(metric: Metric) -> Metric | None:
    """The period metric that counts `metric`'s rows per fiscal year, if there is one: each year's
    total is a sum of the monthly metric's months."""
    sibling = REGISTRY.get(f"{metric.name}_period")
    return sibling if sibling is not None and FISCAL_YEAR in sibling.dimensions else None


def get(name: str) -> Metric:
    try:
        return REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, REGISTRY, n=3, cutoff=0.6)
        if close:
            raise IceledgerError(f"no metric named {name!r}; did you mean "
                                 f"{' or '.join(close)}? (iceledger metrics list)") from None
        known = ", ".join(sorted(REGISTRY)) or "none"
        raise IceledgerError(f"no metric named {name!r} (known: {known})") from None


# What the records can say decides whether a metric is computed. The check lives in
# iceledger.metrics.capabilities, which reads release coverage through metric modules; it installs
# itself here when the package loads, so that the registry imports no metric module.
MeasurabilityCheck = Callable[[Metric, ibis.BaseBackend, MetricParams], tuple[str, ...]]
_require_measurable: MeasurabilityCheck | None = None


def install_measurability_check(check: MeasurabilityCheck) -> None:
    global _require_measurable
    _require_measurable = check


def compute(name: str, backend: ibis.BaseBackend, params: MetricParams | None = None) -> pa.Table:
    """The metric's rows, or NotMeasurable when the period's records lack a column it needs.

    The result's schema metadata carries, under CAVEATS_KEY, the caveats of needs the records
    lack that the metric counts without (Need.otherwise), as a JSON list.
    """
    if _require_measurable is None:
        raise RuntimeError("import iceledger.metrics, which installs the measurability check")
    metric = get(name)
    params = params or MetricParams()
    metric.validate(params)
    caveats = _require_measurable(metric, backend, params)
    try:
        result = metric.build(backend, params).to_pyarrow()
    except TableNotFound as exc:
        raise NotServable(no_table(exc.args[0])) from None
    except (IbisTypeError, AttributeError) as exc:
        unheld = _tables_without(metric, backend, exc)
        if not unheld:
            raise
        column, *lacking = unheld
        raise NotMeasurable(unheld_text(lacking, column)) from None
    caveats = (*caveats, *failed_check_caveats(result))
    if caveats:
        result = result.replace_schema_metadata(
            {**(result.schema.metadata or {}), CAVEATS_KEY: json.dumps(list(caveats))}
        )
    return result


def failed_check_caveats(result: pa.Table) -> tuple[str, ...]:
    """What a reader of ICE's printed figures must know before citing them: how many of the
    rows come from a release whose validation checks failed for their table (the published
    series' `failed_checks` column), and which checks, said once beside the figures rather than
    only in the provenance list."""
    if FAILED_CHECKS not in result.column_names:
        return ()
    failed = [v for v in result.column(FAILED_CHECKS).to_pylist() if v]
    if not failed:
        return ()
    names = sorted({name for value in failed for name in value.split("; ")})
    workbooks = (sorted({w for w, v in zip(result.column("workbook").to_pylist(),
                                            result.column(FAILED_CHECKS).to_pylist()) if v and w})
                 if "workbook" in result.column_names else [])
    where = (f" ({len(workbooks)} release{'s' if len(workbooks) > 1 else ''}: "
             f"{', '.join(workbooks[:3])}{' and more' if len(workbooks) > 3 else ''})"
             if workbooks else "")
    return (f"{len(failed)} of {result.num_rows} rows are figures from a release whose checks "
            f"failed for this table or its dates{where}: {'; '.join(names)}. They are shown as "
            "ICE printed them; failed_checks names each row's, and `iceledger stats checks` the "
            "cells (docs/stats-checks.md).",)


CAVEATS_KEY = b"iceledger.record_caveats"
# The column of the published series naming the checks that failed for a row's release.
FAILED_CHECKS = "failed_checks"
# How Ibis names a column a table lacks, when an expression asks for it.
_NO_SUCH_COLUMN = re.compile(r"^Column '(\w+)' is not found in table|^'Table' object has no "
                             r"attribute '(\w+)'$")


def no_table(name: str) -> str:
    """Why a metric reading table `name` cannot be computed on a warehouse without it."""
    return (f"the warehouse has no table {name!r}; ingest the FOIA release or workbooks it comes "
            "from first (`iceledger ingest ...`)")


def table_columns(backend: ibis.BaseBackend, names: Iterable[str]) -> dict[str, set[str]]:
    """The columns of each of the named tables the warehouse has."""
    held = {}
    for name in names:
        try:
            held[name] = set(backend.table(name).columns)
        except TableNotFound:
            continue
    return held


def unheld_text(tables: list[str], column: str) -> str:
    """Why records cannot be read by a column: "<table> has no <column> column ..."."""
    return (f"{' and '.join(tables)} {'have' if len(tables) > 1 else 'has'} no {column} column "
            "(no loaded layout carries it)")


def _tables_without(metric: Metric, backend: ibis.BaseBackend, exc: Exception) -> tuple[str, ...]:
    """The column an expression asked for and the tables of the metric's that lack it (records
    in a layout without it, which the measurability check cannot foresee for every column a
    metric reads); () when the error is anything else, a fault of the metric's to be seen, or
    when only a table that is no table of records lacks it."""
    found = _NO_SUCH_COLUMN.match(str(exc))
    if found is None:
        return ()
    column = found.group(1) or found.group(2)
    records = table_columns(backend, (t for t in metric.tables if t in key_dates()))
    lacking = [name for name, columns in records.items() if column not in columns]
    return (column, *lacking) if lacking else ()


def record_caveats(result: pa.Table) -> tuple[str, ...]:
    """The caveats `compute` attached to a result for columns its records lack."""
    text = (result.schema.metadata or {}).get(CAVEATS_KEY)
    return tuple(json.loads(text)) if text else ()
