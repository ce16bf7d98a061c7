"""What the dashboard and API know about the warehouse: metrics, their allowed parameters, sources.

Read-only: the warehouse is opened with DuckDB's read_only flag, so nothing served can change it,
and while the server runs no load can change it either (DuckDB's file lock). That is also why
computed results can be cached for the life of the process.

Every number comes from `iceledger.metrics.compute`. User text never reaches SQL: breakdowns and
filter names are checked against the metric's own allow-lists, and filter values against the
distinct values present in the warehouse, before any query is built.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import calendar
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from iceledger.byte_budget import ByteBudgetLRU
from iceledger.serving import disclosure
from iceledger.errors import IceledgerError
from iceledger.metrics import registry
from iceledger.metrics.backends import ReadOnlyWarehouse
from iceledger.metrics.capabilities import assess
from iceledger.metrics.claims import ClaimCheck, check_claims
from iceledger.metrics.human_cost import default_split_dates
# NotServable and NotMeasurable (a column the period's records lack) are the metrics' own;
# importing them here keeps `from iceledger.serving.service import NotServable` working.
from iceledger.metrics.registry import (
    FISCAL_YEAR,
    Curve,
    Metric,
    MetricParams,
    NestsIn,
    NotMeasurable,
    NotServable,  # noqa: F401
    record_caveats,
)
from iceledger.metrics.volume import fiscal_year
from iceledger.tables import SOURCES
from iceledger.warehouse import (
    STALE_DERIVED,
    SYNTHETIC_NOTICE,
    Warehouse,
    derived_stale,
)

TIME_COLUMNS = ("date", "month")
# How many months a row keyed by its first month covers, by its grain.
PERIOD_MONTHS = {"month": 1, "quarter": 3, "fiscal_year": 12}
# Public mode serves each metric over the whole record, broken down by at most this many of its
# dimensions (a filter is a slice of the same breakdown), so that every response is one of a fixed
# set of tables whose suppression is planned together (docs/dashboard.md, "Public mode").
PUBLIC_MAX_BREAKDOWNS = 1
# What the server's queries may hold at once: DuckDB's cap for the read-only connection, and how
# many metric queries run together (more only queue for the same cores, each holding memory).
SERVING_MEMORY_LIMIT = os.environ.get("ICELEDGER_SERVE_MEMORY", "512MB")
QUERY_SLOTS = max(2, os.cpu_count() or 2)
# The metrics' rows before suppression are kept in this share of the results' byte budget.
RUNS_SHARE = 4
# Breakdowns public mode does not serve, and why: each nests in or cuts across one it serves, so
# the two tables would difference each other (an office covering one state is that state).
NOT_PUBLIC_BREAKDOWNS = {
    "apprehension_state": "public mode's one geography is the field office (aor)",
    "facility_code": "public mode's one geography is the field office (aor)",
    "facility_state": "public mode's one geography is the field office (aor)",
    "county": "public mode's one geography is the field office (aor)",
    "apprehension_method": "public mode serves its grouping, arrest_setting (the methods "
    "themselves only in arrests_by_method, planned against arrest_setting_share)",
}
# The filters the dashboard offers on every page, in the order shown; a metric may allow others.
STANDARD_FILTERS = (
    "aor",
    "criminality",
    "citizenship_country",
    "apprehension_method",
    "arrest_setting",
)

class NotPublic(IceledgerError):
    """A request that public mode does not serve: it could be differenced against another."""


class TooManyRows(IceledgerError):
    """A result larger than the server's row cap."""


class MetricFailed(Exception):
    """A metric that raised while computing: a bug, or a warehouse the metric does not expect."""


@dataclass(frozen=True)
class MetricRequest:
    """A validated request: every value here has been checked against an allow-list."""

    name: str
    by: tuple[str, ...] = ()
    start: date | None = None
    end: date | None = None
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def params(self, typed_values: Mapping[tuple[str, str], object]) -> MetricParams:
        return MetricParams(
            by=self.by,
            start=self.start,
            end=self.end,
            filters={
                name: tuple(typed_values[(name, v)] for v in values) for name, values in self.filters
            },
        )


def month_end(day: date | datetime) -> date:
    """The last day of `day`'s month."""
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


@dataclass(frozen=True)
class MetricResult:
    metric: Metric
    request: MetricRequest
    table: pa.Table
    dimensions: tuple[str, ...]
    time_column: str | None
    suppression: dict | None

    def period(self) -> dict:
        """The days asked for and the days the rows reach. A row dated by the first day of a
        month names the whole month, or the quarter or fiscal year it opens (ICE's quarterly and
        yearly tables are keyed by their first month): the rows reach the last day of their
        last period, not its first. `grain` says which; the last period may be partial, which
        the metric's caveats say."""
        observed: dict = {"from": None, "to": None}
        grain = self.grain()
        if self.time_column and self.table.num_rows:
            bounds = pc.min_max(self.table.column(self.time_column)).as_py()
            last = bounds["max"]
            if last is not None and grain in PERIOD_MONTHS:
                months = last.month - 1 + PERIOD_MONTHS[grain] - 1
                last = month_end(date(last.year + months // 12, months % 12 + 1, 1))
            observed = {"from": iso_or_none(bounds["min"]), "to": iso_or_none(last)}
        return {
            "requested_from": iso_or_none(self.request.start),
            "requested_to": iso_or_none(self.request.end),
            "data_from": observed["from"],
            "data_to": observed["to"],
            "grain": grain,
        }

    def grain(self) -> str | None:
        """What one row's time covers: a day, a month, or the quarter or fiscal year its month
        opens (a `quarter` column; a fiscal-year column with every month an October)."""
        if self.time_column != "month":
            return "day" if self.time_column else None
        names = self.table.column_names
        if "quarter" in names:
            return "quarter"
        months = {m.month for m in self.table.column("month").to_pylist() if m is not None}
        if months == {10} and any(n.endswith("fiscal_year") for n in names):
            return "fiscal_year"
        return "month"


class WarehouseService:
    def __init__(
        self,
        warehouse_path: Path | str,
        public: bool = False,
        k: int = 10,
        max_rows: int = 50_000,
        result_bytes: int = 64 * 2**20,
    ):
        path = Path(warehouse_path)
        if k < 1:
            raise IceledgerError(f"--k must be at least 1, got {k}")
        self._duck = Warehouse(path).open(read_only=True)
        # Set, not passed as config: another connection to the same file in this process
        # (the report's provenance) must open with the same configuration.
        self._duck.execute(f"SET memory_limit = '{SERVING_MEMORY_LIMIT}'")
        if derived_stale(self._duck):
            self._duck.close()
            raise IceledgerError(f"{path}: {STALE_DERIVED}")
        self.path = path
        self.public = public
        self.k = k
        self.max_rows = max_rows
        self._local = threading.local()
        self._tables = self._table_columns()
        self.sources = self._read_sources()
        self.synthetic = any(s["synthetic"] for s in self.sources)
        # Shared by the renderings of one request (JSON, chart, CSV, Parquet) and by the
        # breakdowns planned against a coarser table; the rendered bodies are what the app keeps.
        self._results = ResultCache(result_bytes)
        # The metrics' own rows, before suppression: a plan reads the same rows as the request
        # it is planned for (the monthly tables beside a daily one, a breakdown's values).
        self._runs = ResultCache(result_bytes // RUNS_SHARE, size_of=self._run_bytes)
        self._query_slots = threading.BoundedSemaphore(QUERY_SLOTS)
        self._value_types = functools.cache(self._distinct_values)
        # Counted as no bytes, nothing is dropped. Built once per key, not under one lock: a
        # memo's build may compute metrics whose public-mode suppression memoises too (the
        # headline facts do), and other threads go on with other keys meanwhile.
        self._memo = ResultCache(0, size_of=lambda _: 0)

    # --- what is served ----------------------------------------------------------------------

    def metrics(self) -> list[Metric]:
        return sorted(registry.REGISTRY.values(), key=lambda m: (m.question, m.name))

    def metric(self, name: str) -> Metric:
        return registry.get(name)

    def has_table(self, name: str) -> bool:
        return name in self._tables

    def missing_tables(self, metric: Metric) -> list[str]:
        # Names with a dot are the project's own data files (targets.csv, ...), not tables.
        return [t for t in metric.tables if "." not in t and not self.has_table(t)]

    def memo(self, key: str, build):
        """`build()` once per process; the warehouse cannot change while it is open read-only."""
        return self._memo.get(key, build)

    def servable(self, metric: Metric) -> bool:
        return not self.missing_tables(metric)

    def describe(self, metric: Metric) -> dict:
        missing = self.missing_tables(metric)
        return {
            "name": metric.name,
            "title": metric.title,
            "question": metric.question,
            "definition": metric.definition,
            "unit": metric.unit,
            "caveats": list(self.caveats(metric)),
            "tables": list(metric.tables),
            "dimensions": list(metric.dimensions),
            "filters": list(self.filters(metric)),
            "count_column": metric.count_column,
            "available": not missing,
            "missing_tables": missing,
            "refusal": self.refusal(metric) if not missing else "",
        }

    def count_text(self, value: float | None, missing: str = "") -> str:
        """A count of people as this server may print it: under k in public mode, "fewer than
        k" (the headline facts and the claims page say it the same way)."""
        if value is None:
            return missing
        if self.public and value < self.k:
            return f"fewer than {self.k}"
        return f"{value:,.0f}"

    def filters(self, metric: Metric) -> tuple[str, ...]:
        """The filters this server takes for the metric: in public mode only its own public
        breakdowns (a filtered response is a slice of one), else every one it allows."""
        if not self.public:
            return metric.filters
        return tuple(f for f in metric.filters
                     if f in metric.dimensions and f not in NOT_PUBLIC_BREAKDOWNS)

    def refusal(self, metric: Metric) -> str:
        """Why the metric's default view cannot be served here, said before anyone asks for it:
        withheld in public mode, or not measurable from these records; empty when it can be."""
        if self.public and metric.disclosure.withheld:
            return f"not served in public mode: {metric.disclosure.withheld}"
        refusals = self.memo(f"refusals of {metric.name}",
                             lambda: assess(metric, self.backend(), MetricParams()).refusals)
        return f"{NotMeasurable.PREFIX}{'; '.join(refusals)}" if refusals else ""

    def caveats(self, metric: Metric) -> tuple[str, ...]:
        caveats = (*metric.caveats, *self.record_caveats(metric), *self._public_caveats(metric))
        return (SYNTHETIC_NOTICE, *caveats) if self.synthetic else caveats

    def result_caveats(self, result: MetricResult) -> tuple[str, ...]:
        """The metric's caveats, then those its rows call for and the metric's do not already
        say: the caveats of the records of the period asked for, and the checks that failed in
        the releases its figures come from (metrics.registry.compute)."""
        caveats = self.caveats(result.metric)
        return (*caveats, *(c for c in record_caveats(result.table) if c not in caveats))

    def _public_caveats(self, metric: Metric) -> tuple[str, ...]:
        """How public mode shows the metric otherwise than its definition says."""
        if self.public and metric.count_column and metric.disclosure.curve:
            return (disclosure.curve_caveat(self.k),)
        return ()

    def record_caveats(self, metric: Metric) -> tuple[str, ...]:
        """How the metric counts without columns the warehouse's records lack (Need.otherwise),
        and where its records' reach is unknown beside the national figures it names."""
        counts_without = any(need.otherwise for need in metric.needs) or metric.national
        if not counts_without or not self.servable(metric):
            return ()
        return self.memo(
            f"record caveats of {metric.name}",
            lambda: assess(metric, self.backend(), MetricParams()).caveats,
        )

    def sources_for(self, metric: Metric) -> list[dict]:
        """The loaded files a metric's tables come from.

        A table no source loaded directly is derived (foia_stays from foia_stints, ...): it comes
        from every source of its family, named by the table's prefix (`foia_`, `stats_`).
        """
        loaded = {t for s in self.sources for t in s["tables"]}
        used = []
        for source in self.sources:
            direct = set(metric.tables) & set(source["tables"])
            derived = any(
                t not in loaded and t.startswith(f"{source['kind']}_") for t in metric.tables
            )
            if direct or derived:
                used.append({k: v for k, v in source.items() if k != "tables"})
        return used

    # --- validating a request ----------------------------------------------------------------

    def allowed_values(self, name: str, filter_name: str) -> tuple[str, ...]:
        metric = self.metric(name)
        if filter_name not in metric.filters:
            raise IceledgerError(
                f"metric {name!r} cannot be filtered by {filter_name}; "
                f"allowed: {', '.join(metric.filters) or 'none'}"
            )
        return tuple(sorted(self._value_types(name, filter_name)))

    def request(
        self,
        name: str,
        by: Sequence[str] = (),
        start: date | None = None,
        end: date | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> MetricRequest:
        metric = self.metric(name)
        self._require_servable(metric)
        chosen = {f: tuple(dict.fromkeys(v)) for f, v in (filters or {}).items() if v}
        for filter_name, values in chosen.items():
            allowed = set(self.allowed_values(name, filter_name))
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise IceledgerError(
                    f"{filter_name}={unknown[0]!r} is not a value present for metric {name!r}; "
                    f"see /api/metrics/{name}/filters"
                )
        request = MetricRequest(
            name=name,
            # Sorted: a reordering of `by` is the same request (and the same cache entry).
            by=tuple(sorted(set(by))),
            start=start,
            end=end,
            filters=tuple(sorted(chosen.items())),
        )
        metric.validate(request.params(self._typed_values(request)))
        if self.public and metric.count_column:
            self._require_public(metric, request)
        return request

    def _require_public(self, metric: Metric, request: MetricRequest) -> None:
        if metric.disclosure.withheld:
            raise NotServable(
                f"metric {metric.name!r} is not served in public mode: {metric.disclosure.withheld}"
            )
        if request.start or request.end:
            raise NotPublic(
                "public mode serves the whole record, in the metric's own months or days; "
                "from/to are not accepted (two windows a day apart differ by one day's people)"
            )
        for filter_name, values in request.filters:
            if filter_name not in metric.dimensions or len(values) != 1:
                raise NotPublic(
                    f"public mode filters {metric.name!r} by one value of one of its breakdowns "
                    f"({', '.join(metric.dimensions) or 'none'}); {filter_name} is not one"
                )
        breakdowns = set(request.by) | {f for f, _ in request.filters}
        for breakdown in sorted(breakdowns & set(NOT_PUBLIC_BREAKDOWNS)):
            raise NotPublic(
                f"public mode does not break down by {breakdown}: "
                f"{NOT_PUBLIC_BREAKDOWNS[breakdown]}"
            )
        if len(breakdowns) > PUBLIC_MAX_BREAKDOWNS:
            raise NotPublic(
                f"public mode breaks a metric down by at most {PUBLIC_MAX_BREAKDOWNS} dimension "
                f"(by and filters together); asked for {', '.join(sorted(breakdowns))}"
            )

    # --- computing ---------------------------------------------------------------------------

    def compute(self, request: MetricRequest) -> MetricResult:
        if request.by and request not in self._results:
            self._refuse_if_too_big(request)
        return self._cached_compute(request)

    def warm(self) -> None:
        """Compute each servable metric's default view (what a page first asks for), so that a
        cold server answers from the cache; a request arriving meanwhile waits for it."""
        for metric in self.metrics():
            if self.servable(metric) and not metric.disclosure.withheld:
                try:
                    self.compute(self.request(metric.name))
                except (IceledgerError, MetricFailed):
                    continue  # answered as an error when asked for, as without warming

    def _cached_compute(self, request: MetricRequest) -> MetricResult:
        return self._results.get(request, lambda: self._compute(request))

    def _refuse_if_too_big(self, request: MetricRequest) -> None:
        """Refuse a breakdown before computing it when it could exceed the row cap: at most the
        rows without it times the values of each dimension it breaks down by."""
        base = self._cached_compute(
            MetricRequest(request.name, (), request.start, request.end, request.filters)
        ).table.num_rows
        chosen = dict(request.filters)
        estimate = max(base, 1)
        for dimension in request.by:
            estimate *= len(chosen.get(dimension) or self._value_types(request.name, dimension))
        if estimate > self.max_rows:
            raise TooManyRows(
                f"metric {request.name!r} by {', '.join(request.by)} could return up to "
                f"{estimate:,} rows, more than this server's cap of {self.max_rows:,}; narrow it "
                "with from/to, a filter or fewer `by`"
            )

    def _compute(self, request: MetricRequest) -> MetricResult:
        metric = self.metric(request.name)
        if self.public and metric.count_column and request.filters:
            return self._public_slice(request)
        table = self._run(request.name, request.params(self._typed_values(request)))
        if table.num_rows > self.max_rows:
            # Raised here, so an over-cap result is never kept.
            raise TooManyRows(
                f"metric {request.name!r} returns {table.num_rows:,} rows, more than this "
                f"server's cap of {self.max_rows:,}; narrow it with from/to, a filter or fewer `by`"
            )
        time_column = next((c for c in TIME_COLUMNS if c in table.column_names), None)
        dimensions = tuple(
            c for c in ((time_column,) if time_column else ()) + request.by if c in table.column_names
        )
        suppression = None
        if self.public and metric.count_column and metric.disclosure.curve:
            table, suppression = self._coarsened_curve(metric, request, table)
        elif self.public and metric.count_column:
            table, suppression = self._suppressed(metric, request, table, dimensions, time_column)
            if metric.disclosure.splits:
                table, suppression = self._without_unsafe_splits(metric, request, table,
                                                                 suppression)
        return MetricResult(metric, request, table, dimensions, time_column, suppression)

    def _without_unsafe_splits(
        self, metric: Metric, request: MetricRequest, table: pa.Table, suppression: dict
    ) -> tuple[pa.Table, dict]:
        """Hide the rows of every split date whose spans, beside the monthly and daily tables,
        would give away a count under k (split_check)."""
        rules = metric.disclosure
        splits = sorted(set(table.column("split_date").to_pylist()))
        unsafe = self.split_check(metric, request.params(self._typed_values(request)),
                                  splits).unsafe
        rows = {r for r, split in enumerate(table.column("split_date").to_pylist())
                if split in unsafe}
        kept = {*request.by, *rules.keys, *rules.facts}
        return disclosure.hide_rows(table, rows, disclosure.split_label(self.k), kept), {
            **suppression,
            "unsafe_splits": {split.isoformat(): why for split, why in unsafe.items()},
        }

    def split_check(
        self, metric: Metric, params: MetricParams, splits: Sequence[date],
        also_before: Sequence[date] = (),
    ) -> SplitCheck:
        """The split dates of a before/after metric whose spans, beside the monthly and daily
        tables, would give away a count under k, each with why (disclosure.unsafe_splits), and
        the spans read to decide it. The spans are read from the metric itself, asked to split at
        every day of each month a split date cuts (and at `also_before`). A split date outside
        the data's span (absent from the spans) cuts no month of the data and is not judged. A
        month whose split dates are exactly the planned ones (_planned_splits, which the daily
        tables were planned against) is judged by its parts alone, any other by its days too."""
        rules = metric.disclosure
        cuts = sorted({cut for split in splits if split.day != 1
                       for cut in disclosure.split_cuts(split)} | set(also_before))
        before: dict[date, dict[tuple, list[float]]] = {}
        totals: dict[tuple, list[float]] = {}
        if cuts:
            spans = self._run(metric.name, MetricParams(
                by=params.by, start=params.start, end=params.end,
                filters={**params.filters, rules.splits: tuple(c.isoformat() for c in cuts)},
            ))
            cells = [*params.by,
                     *(c for c in rules.keys if c not in ("split_date", "split_event"))]
            for cut, cell, counts, whole in _span_counts(spans, cells, rules.nested):
                before.setdefault(cut, {})[cell] = counts
                totals[cell] = whole
        # Without a daily table of the shares, only the records (first column) go out per day.
        daily = None if rules.shares_by_day else {
            cell: [0] if len(whole) > 1 else [] for cell, whole in totals.items()}
        judged = [split for split in splits if split.day == 1 or split in before]
        return SplitCheck(disclosure.unsafe_splits(before, totals, judged, self.k, daily,
                                                   planned=self._planned_splits),
                          before, totals)

    def checked_claims(self) -> list[ClaimCheck]:
        """The claims register held against this warehouse, once per process. In public mode a
        claim whose period could give away a count under k (periods_withheld) keeps only its
        claimed values, and says why; facts (no count column, deaths) are never withheld."""

        def check() -> list[ClaimCheck]:
            checks = check_claims(self.backend())
            if not self.public:
                return checks
            read = [c for c in checks if c.status == "checked" and c.readings]
            why: dict[str, str] = {}
            for name in dict.fromkeys(c.claim.metric for c in read):
                mine = [c for c in read if c.claim.metric == name]
                periods = [(c.claim.period_start, c.claim.period_end or c.covered_end)
                           for c in mine]
                why.update(zip((c.claim.claim_id for c in mine),
                               self.periods_withheld(self.metric(name), periods)))
            return [_withheld_claim(c, why[c.claim.claim_id]) if why.get(c.claim.claim_id)
                    else c for c in checks]

        return self.memo("claims", check)

    def periods_withheld(self, metric: Metric, periods: Sequence[tuple[date, date]]) -> list[str]:
        """Why public mode withholds a whole-period metric's reading over each of `periods`
        (start, end: inclusive, end at most the data's last day when a period runs on to it), or
        "" when it may go out.

        The monthly tables publish whole months, so a period's total less them gives each part
        of a month its boundaries cut, and each whole month in it that they hid. A reading goes
        out only when each boundary cutting a month is a safe split date of the metric's
        before/after sibling (`_shift`, split_check), judged with the other periods' boundaries
        and the split dates the sibling publishes (two cuts in a month give the days between
        them), and each whole month in the period counts 0 or at least k in every column
        counting people, read from the same sibling split at each month's first. Boundaries on
        the planned split dates, with no other cut in their month, pass as the sibling's own
        splits do (their month's parts alone); any other cut keeps its month to the day rule.
        And the period holds whole either none of the months the monthly table hid or all of
        them: less the published months, it gives the sum of those it holds, so holding a month
        hidden beside a small one without the small one would give both back.
        """
        if not self.public or not metric.count_column:
            return [""] * len(periods)
        sibling = registry.REGISTRY.get(metric.name.removesuffix("_period") + registry.SHIFT_SUFFIX)
        if sibling is None or not sibling.disclosure.splits or not self.servable(sibling):
            return [f"withheld in public mode: {metric.name} has no before/after metric to check "
                    "that each part of a month and each month in the period counts 0 or at "
                    f"least {self.k} people"] * len(periods)
        bounds = [(start, end + timedelta(days=1)) for start, end in periods]
        cuts = {day for bound in bounds for day in bound if day.day != 1}
        if not sibling.disclosure.withheld:
            served = self.compute(self.request(sibling.name))
            hidden = served.suppression["unsafe_splits"]
            cuts |= {split for split in served.table.column("split_date").to_pylist()
                     if split.isoformat() not in hidden}
        firsts = sorted({first for start, following in bounds
                         for first in _month_firsts(start, following) if start <= first})
        check = self.split_check(sibling, MetricParams(), sorted(cuts), firsts)
        hidden = self._months_hidden_by(metric.name.removesuffix("_period"))
        return [self._period_reason(check, start, following, hidden)
                for start, following in bounds]

    def _months_hidden_by(self, name: str) -> frozenset[date]:
        """The months with a row hidden in the public monthly table of metric `name`, if public
        mode serves one."""
        monthly = registry.REGISTRY.get(name)
        if monthly is None or monthly.disclosure.withheld or not self.servable(monthly):
            return frozenset()
        try:
            table = self.compute(self.request(name)).table
        except IceledgerError:
            return frozenset()  # not served: it publishes nothing
        if "month" not in table.column_names:
            return frozenset()
        rows = table.select(["month", disclosure.SUPPRESSION_COLUMN]).to_pylist()
        return frozenset(row["month"] for row in rows
                         if row[disclosure.SUPPRESSION_COLUMN] is not None)

    def _period_reason(self, check: SplitCheck, start: date, following: date,
                       hidden_months: frozenset[date]) -> str:
        for split in (start, following):
            if split in check.unsafe and split.day != 1:
                return (f"withheld in public mode: the period cuts {split:%Y-%m} and a day or a "
                        f"part of that month counts fewer than {self.k} people, which the "
                        "published months would give away")
        present = sorted(check.before)
        firsts = [first for first in _month_firsts(start, following) if start <= first]
        for first, next_first in zip(firsts, firsts[1:]):
            for cell, whole in check.totals.items():

                def counted_before(day: date) -> list[float]:
                    if day in check.before:
                        return check.before[day].get(cell, [0.0] * len(whole))
                    return [0.0] * len(whole) if present and day < present[0] else whole

                month = [b - a for a, b in zip(counted_before(first), counted_before(next_first))]
                if any(0 < v < self.k for v in month):
                    return (f"withheld in public mode: {first:%Y-%m} counts fewer than {self.k} "
                            "people in a column the monthly tables hide, which the period's "
                            "total less the other months would give away")
        held = sorted(hidden_months & set(firsts[:-1]))
        if held and not hidden_months <= set(firsts[:-1]):
            return (f"withheld in public mode: the monthly table hid {held[0]:%Y-%m} beside a "
                    f"month counting fewer than {self.k} people outside the period; the "
                    "period's total less the published months would give the one back, and "
                    "the whole record's total the other")
        return ""

    def _suppressed(
        self,
        metric: Metric,
        request: MetricRequest,
        table: pa.Table,
        dimensions: tuple[str, ...],
        time_column: str | None,
    ) -> tuple[pa.Table, dict]:
        rules = metric.disclosure
        cells = (*dimensions, *(c for c in rules.keys if c in table.column_names))
        planned, differences, people = _people(metric, table, cells)
        # Day-window columns (`arrests_7d_avg`) run along a daily series, one row a day; a day's
        # month totals are published by the monthly metrics.
        daily = time_column == "date"
        by_year, hidden_by_year = self._fiscal_year_grain(metric, request, cells)
        shared = self._shared_months(metric, request, table, dimensions)
        hidden = disclosure.suppress(
            planned,
            metric.count_column,
            cells,
            k=self.k,
            totals=disclosure.published_totals(cells, rules.unsummed),
            rolling=disclosure.rolling_windows(table.column_names) if daily else {},
            people=people,
            facts=rules.facts,
            secret=[*self._hidden_by_coarser(request, cells), *shared],
            coarser={**(self._daily_coarsenings() if daily
                        else self._monthly_coarsenings(by_year) if time_column == "month"
                        else {}),
                     **self._grouping(metric)},
            coarse_secret=[*hidden_by_year, *self._hidden_by_grouping(metric, request),
                           *(self._hidden_months(metric, request, cells) if daily else ())],
            copies_over=rules.copies,
            # A column of the month's total beside each row publishes it wherever a row shows.
            secret_in_rows=[(kept, value) for kept, value in shared
                            if any(key in cells and key not in kept for _, _, key in rules.totals)],
            hidden_rows=self._linked_rows(metric, request),
        )
        return hidden.table.drop_columns(list(differences)), {
            "k": self.k,
            "count_column": metric.count_column,
            "people_columns": [c for c in people if c not in differences],
            "protected_differences": list(differences),
            "small_cells": len(hidden.plan.primary),
            "complementary_cells": len(hidden.plan.complementary),
            "revealed_by_totals_alone": len(hidden.plan.unprotectable)
            + hidden.plan.unprotectable_totals,
        }

    def _linked_rows(self, metric: Metric, request: MetricRequest) -> list[tuple]:
        """The rows of the request's table that the plan of the tables counting the same people
        hid (Disclosure.crossed; _linked_plan), as values of its cells; none when the table is
        not one of them."""
        for daily in self.metrics():
            if metric.name in daily.disclosure.months and daily.disclosure.crossed:
                plan = self.memo(f"linked plan of {daily.name}",
                                 lambda daily=daily: self._linked_plan(daily))
                return plan.get((metric.name, request.by), [])
        return []

    def _linked_plan(self, daily: Metric) -> dict[tuple[str, tuple[str, ...]], list[tuple]]:
        """One plan for the monthly tables breaking a daily metric's people down by its
        `crossed` keys (Disclosure.months): each table public mode serves whose rows are sums of
        the month's crossed cells, without a breakdown and by each crossed key (arrests by
        criminality; by setting; arrest_setting_share by criminality, the cells themselves), with
        the row keys each must hide (disclosure.plan_linked). A table keyed by another key (the
        field office, the method) is planned alone, against what these hide. A key the records
        cannot count by (no criminality class) is left out; a table they cannot measure
        publishes nothing."""
        crossed = tuple(key for key in daily.disclosure.crossed
                        if not assess(daily, self.backend(), MetricParams(by=(key,))).refusals)
        if not crossed:
            return {}
        counted = daily.count_column
        days = self._run(daily.name, MetricParams(by=crossed)).select(["date", *crossed, counted])
        finest = days.append_column(
            "month", pa.array([_month_of(d) for d in days.column("date").to_pylist()], pa.date32())
        ).group_by(["month", *crossed], use_threads=False).aggregate(
            [(counted, "sum")]).rename_columns({f"{counted}_sum": counted})
        linked, planned = [], []
        for name in daily.disclosure.months:
            metric = self.metric(name)
            rules = metric.disclosure
            if (rules.withheld or rules.copies or rules.unsummed or not self.servable(metric)
                    or not set(rules.keys) <= set(crossed)):
                continue
            served = [d for d in crossed if d in metric.dimensions
                      and d not in NOT_PUBLIC_BREAKDOWNS]
            for by in [(), *((d,) for d in served)]:
                try:
                    table = self._run(name, MetricParams(by=by))
                except IceledgerError:
                    continue  # not measurable so: served as an error, it publishes nothing
                if "month" not in table.column_names or counted not in table.column_names:
                    continue
                keys = ("month", *by, *rules.keys)
                planned_table, _, people = _people(metric, table, keys)
                linked.append(disclosure.LinkedTable(
                    planned_table, keys, counted,
                    classes=tuple(c for c in rules.classes if c[1] in crossed and c[1] not in keys),
                    totals=tuple((column, key) for column, of, key in rules.totals
                                 if of == counted and key in keys),
                    people=tuple(people),
                ))
                planned.append((name, by))
        hidden = disclosure.plan_linked(finest, ("month", *crossed), counted, linked, self.k)
        return dict(zip(planned, hidden))

    @functools.cached_property
    def _months_counted(self) -> dict[str, str]:
        """Each monthly metric counting a daily metric's people month by month
        (Disclosure.months), with the column counting them: the daily metric's count column
        where the monthly table has it (repeat_arrests beside its arrests), else its own."""
        return {name: metric.count_column for metric in self.metrics()
                for name in metric.disclosure.months}

    def _shared_months(
        self, metric: Metric, request: MetricRequest, table: pa.Table,
        dimensions: tuple[str, ...],
    ) -> list[tuple[tuple[str, ...], tuple]]:
        """The month totals (for the request's breakdown, and each month's total without it)
        that a plan of the totals alone hides (disclosure.shared_total_secrets), when the
        metric's rows count, month by month, the people a daily metric counts: every such table
        publishes those totals, so each plans with the same ones as secrets, and no two hide
        different months beside a small one. A table whose rows repeat or overlap people
        (Disclosure.copies, unsummed) sums to no such total."""
        rules = metric.disclosure
        if (metric.name not in self._months_counted or "month" not in dimensions
                or rules.copies or rules.unsummed):
            return []
        counted = self._months_counted[metric.name]
        if counted not in table.column_names:
            counted = metric.count_column
        coarser = self._monthly_coarsenings({"month": fiscal_year})
        national = []
        if set(dimensions) != {"month"}:
            national = self.memo(f"shared months of {metric.name}", lambda: (
                disclosure.shared_total_secrets(self._run(metric.name, MetricParams()), counted,
                                                ("month",), self.k, coarser=coarser)))
        return [*national, *disclosure.shared_total_secrets(
            table, counted, dimensions, self.k, coarser=coarser, secret=national)]

    def _daily_coarsenings(self) -> dict[str, tuple[disclosure.Coarsening, ...]]:
        """The totals of a daily table's days published elsewhere: its months (the monthly
        tables), and for each planned split date the spans before and after it and the parts of
        the month it cuts (disclosure.split_totals). Planned against the parts too, a daily
        table hides a second day in a part holding one hidden day, so the split's rows need no
        day of its month to count 0 or at least k (disclosure.unsafe_splits)."""
        return {"date": (_month_of, *disclosure.split_totals(self._planned_splits))}

    def _monthly_coarsenings(self, by_year: dict | None
                             ) -> dict[str, tuple[disclosure.Coarsening, ...]]:
        """The totals of a monthly table's months published elsewhere: its fiscal years (the
        yearly tables, `by_year`), and for each planned split date the whole months before the
        month it cuts and those after it (disclosure.whole_months_beside): a span less its part
        of the cut month, which the daily tables give. Planned against them, a monthly table
        hides a second month on the side of a split holding a hidden one."""
        return {"month": (*(by_year or {}).values(),
                          *disclosure.whole_months_beside(self._planned_splits))}

    def _hidden_months(
        self, metric: Metric, request: MetricRequest, cells: tuple[str, ...]
    ) -> list[tuple[tuple[str, ...], tuple]]:
        """The cells that the monthly tables counting a daily metric's people
        (Disclosure.months) hid, for the request's breakdown and each coarser one, as totals of
        the daily table's days (`coarse_secret`: the month in place of the day, with the other
        keys). A month hidden beside a small one must stay hidden: a daily table publishing all
        its days would give it back, and the small one with it. A cell another of those tables
        publishes is no secret (a month whose repeat arrests are hidden, its arrests published
        beside their criminality). A hidden row keyed by what the daily table does not break
        down by (a month's arrests in one setting beside national daily arrests) is no total of
        its days; a table public mode does not serve hid nothing."""
        hidden: dict[tuple[tuple[str, ...], tuple], bool] = {}
        for name in metric.disclosure.months:
            monthly = self.metric(name)
            if monthly.disclosure.withheld or not self.servable(monthly):
                continue
            grain = ("month",) if "month" in monthly.dimensions else ()
            for size in range(len(request.by) + 1):
                for by in itertools.combinations(request.by, size):
                    if not set(by) <= set(monthly.dimensions):
                        continue
                    try:
                        result = self._cached_compute(self.request(name, by=(*grain, *by)))
                    except IceledgerError:
                        continue  # not served so: it publishes nothing
                    table = result.table
                    keys = tuple(dict.fromkeys(
                        (*result.dimensions,
                         *(k for k in monthly.disclosure.keys if k in table.column_names))))
                    if "month" not in keys or not set(keys) - {"month"} <= set(cells):
                        continue
                    names = tuple("date" if k == "month" else k for k in keys)
                    for row in table.select([*keys, disclosure.SUPPRESSION_COLUMN]).to_pylist():
                        cell = (names, tuple(row[k] for k in keys))
                        shown = row[disclosure.SUPPRESSION_COLUMN] is None
                        hidden[cell] = hidden.get(cell, True) and not shown
        return [cell for cell, secret in hidden.items() if secret]

    @functools.cached_property
    def _planned_splits(self) -> frozenset[date]:
        """The split dates the daily tables are planned against: those the before/after metrics
        read by default, when no split date is asked for, but those cutting a part of one day
        (disclosure.without_one_day_parts)."""
        return disclosure.without_one_day_parts(default_split_dates())

    def _hidden_by_coarser(
        self, request: MetricRequest, cells: tuple[str, ...]
    ) -> list[tuple[tuple[str, ...], tuple]]:
        """The totals the request's coarser table (no breakdown) hid: a breakdown must not give
        them back, so they are secrets of its plan."""
        if not request.by:
            return []
        coarse = self._cached_compute(MetricRequest(request.name))
        kept = tuple(c for c in cells if c in coarse.table.column_names)
        rows = coarse.table.select([*kept, disclosure.SUPPRESSION_COLUMN]).to_pylist()
        return [
            (kept, tuple(row[c] for c in kept))
            for row in rows
            if row[disclosure.SUPPRESSION_COLUMN] is not None
        ]

    def _fiscal_year_grain(
        self, metric: Metric, request: MetricRequest, cells: tuple[str, ...]
    ) -> tuple[dict | None, list[tuple[tuple[str, ...], tuple]]]:
        """A monthly metric whose period metric is also published by fiscal year: each year's
        total is a sum of its months, so the monthly plan takes those totals as published
        (`coarser`) and the cells the fiscal-year table hid as secrets, each as the monthly
        cells it keeps with the year in place of the month."""
        sibling = registry.by_fiscal_year(metric)
        if "month" not in cells or sibling is None:
            return None, []
        try:
            yearly = self.compute(self.request(
                sibling.name, by=(*request.by, FISCAL_YEAR), start=request.start, end=request.end,
                filters=dict(request.filters),
            )).table
        except IceledgerError:
            return None, []  # no fiscal-year table beside this one (public mode refuses it)
        kept = tuple(c for c in cells if c == "month" or c in yearly.column_names)
        rows = yearly.to_pylist()
        return {"month": fiscal_year}, [
            (kept, tuple(row[FISCAL_YEAR if c == "month" else c] for c in kept))
            for row in rows
            if row[disclosure.SUPPRESSION_COLUMN] is not None
        ]

    def _grouping(self, metric: Metric) -> dict[str, Callable[[object], object]]:
        """The key that nests in another metric's groups (Disclosure.nests_in), mapped to its
        group as the tables both metrics read record it: that metric publishes the groups'
        totals."""
        nest = metric.disclosure.nests_in
        if nest is None:
            return {}
        group_of = self.memo(f"groups of {metric.name}", lambda: self._groups_of(metric, nest))
        return {nest.key: group_of.__getitem__}

    def _groups_of(self, metric: Metric, nest: NestsIn) -> dict[object, object]:
        group_of: dict[object, object] = {}
        for table_name in metric.tables:
            if not {nest.key, nest.group} <= self._tables.get(table_name, frozenset()):
                continue
            table = self.backend().table(table_name)
            pairs = table.select(nest.key, nest.group).distinct().to_pyarrow().to_pylist()
            for pair in pairs:
                value, group = pair[nest.key], pair[nest.group]
                if group_of.setdefault(value, group) != group:
                    raise NotServable(
                        f"metric {metric.name!r} is not served in public mode here: its "
                        f"{nest.key} {value!r} lies in more than one {nest.group} "
                        f"({group_of[value]!r}, {group!r}), so {nest.metric}'s totals do not "
                        "sum its rows; reload the records to group them again"
                    )
        return group_of

    def _hidden_by_grouping(
        self, metric: Metric, request: MetricRequest
    ) -> list[tuple[tuple[str, ...], tuple]]:
        """The groups the grouping metric (Disclosure.nests_in) hid, for the same breakdown and
        without it: this metric's rows must not give them back, so they are secrets of its
        plan (`coarse_secret`: the key named, with its group for value)."""
        nest = metric.disclosure.nests_in
        if nest is None:
            return []
        secrets = []
        for by in dict.fromkeys((request.by, ())):
            grouped = self._cached_compute(MetricRequest(nest.metric, by=by))
            kept = (*grouped.dimensions, nest.group)
            names = (*grouped.dimensions, nest.key)
            rows = grouped.table.select([*kept, disclosure.SUPPRESSION_COLUMN]).to_pylist()
            secrets += [(names, tuple(row[c] for c in kept)) for row in rows
                        if row[disclosure.SUPPRESSION_COLUMN] is not None]
        return secrets

    def _coarsened_curve(
        self, metric: Metric, request: MetricRequest, table: pa.Table
    ) -> tuple[pa.Table, dict]:
        """A survival curve at steps where no interval gives away fewer than k people
        (disclosure.coarsen_curve); a breakdown's steps are among the curve's without it."""
        curve = metric.disclosure.curve
        within = None
        if request.by:
            coarse = self._cached_compute(MetricRequest(request.name)).table
            within = coarse.column(curve.step).to_pylist()
        shown = disclosure.coarsen_curve(table, curve.step, curve.at_risk, curve.ended,
                                         request.by, self.k, within=within,
                                         ended_after=self._ended_after(curve, request, table))
        return shown.table, {
            "k": self.k,
            "count_column": metric.count_column,
            "people_columns": [curve.at_risk, curve.ended],
            "protected_differences": [],
            "small_cells": shown.hidden_groups,
            "complementary_cells": shown.complementary_groups,
            "revealed_by_totals_alone": 0,
            "coarser_steps": {
                "steps_shown": len(shown.steps),
                "rows_folded": shown.folded,
                "why": disclosure.curve_caveat(self.k),
            },
        }

    def _ended_after(self, curve: Curve, request: MetricRequest, table: pa.Table
                     ) -> dict[tuple, float] | None:
        """Each group's stays that ended after the curve's last step: the ended stays another
        metric publishes (Curve.ended_total) less the curve's."""
        if not curve.ended_total:
            return None
        name, column = curve.ended_total
        in_curve: dict[tuple, float] = {}
        for row in table.select([*request.by, curve.ended]).to_pylist():
            key = tuple(row[d] for d in request.by)
            in_curve[key] = in_curve.get(key, 0) + (row[curve.ended] or 0)
        totals = self._run(name, MetricParams(by=request.by)).select([*request.by, column])
        return {key: (row[column] or 0) - in_curve.get(key, 0)
                for row in totals.to_pylist()
                for key in [tuple(row[d] for d in request.by)]}

    def _public_slice(self, request: MetricRequest) -> MetricResult:
        """A filtered public response is a slice of the breakdown by the filtered dimension, so
        that it hides exactly what that breakdown hides (no two plans to difference)."""
        sliced = set(request.by) | {f for f, _ in request.filters}
        whole = self._cached_compute(
            MetricRequest(request.name, by=tuple(sorted(sliced)), start=request.start,
                          end=request.end)
        )
        typed = self._typed_values(request)
        table = whole.table
        for filter_name, values in request.filters:
            wanted = pa.array([typed[(filter_name, v)] for v in values])
            table = table.filter(pc.is_in(table.column(filter_name), value_set=wanted))
            if filter_name not in request.by:
                table = table.drop_columns([filter_name])
        dimensions = tuple(d for d in whole.dimensions if d in table.column_names)
        return MetricResult(
            whole.metric, request, table, dimensions, whole.time_column, whole.suppression
        )

    def _run(self, name: str, params: MetricParams) -> pa.Table:
        key = (name, params.by, params.start, params.end,
               tuple(sorted((f, tuple(v)) for f, v in params.filters.items())))
        return self._runs.get(key, lambda: self._query(name, params))

    def _run_bytes(self, table: pa.Table) -> int:
        # A table over the row cap is refused (_compute) and not kept: counted over the budget.
        return table.nbytes if table.num_rows <= self.max_rows else self._runs.max_bytes + 1

    def _query(self, name: str, params: MetricParams) -> pa.Table:
        try:
            with self._query_slots:
                return registry.compute(name, self.backend(), params)
        except IceledgerError:
            raise
        except Exception as exc:
            problem = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise MetricFailed(
                f"metric {name!r} could not be computed on {self.path.name}: "
                f"{type(exc).__name__}: {problem}"
            ) from exc

    def backend(self) -> ibis.BaseBackend:
        # One DuckDB cursor per server thread: cursors of one read-only database run in parallel.
        # Each keeps the table schemas and compiled SQL of the read-only warehouse.
        backend = getattr(self._local, "backend", None)
        if backend is None:
            backend = ReadOnlyWarehouse.from_connection(self._duck.cursor())
            self._local.backend = backend
        return backend

    # --- internals ---------------------------------------------------------------------------

    def _require_servable(self, metric: Metric) -> None:
        missing = self.missing_tables(metric)
        if missing:
            raise NotServable(
                f"metric {metric.name!r} reads {', '.join(missing)}, which this warehouse does not "
                "have yet; ingest the sources that provide it"
            )

    def _distinct_values(self, name: str, filter_name: str) -> dict[str, object]:
        """Distinct values of a filter's column in the metric's tables, by their text form."""
        metric = self.metric(name)
        self._require_servable(metric)
        found: dict[str, object] = {}
        for table_name in metric.tables:
            if filter_name not in self._tables.get(table_name, ()):
                continue
            column = self.backend().table(table_name)[filter_name]
            distinct = column.name("value").as_table().distinct().to_pyarrow()
            for value in distinct.column("value").to_pylist():
                if value is not None:
                    found.setdefault(str(value), value)
        if not found and filter_name in metric.dimensions:
            try:
                by_filter = self._run(name, MetricParams(by=(filter_name,)))
            except NotMeasurable:
                # Nothing to filter what the records cannot measure; the metric itself says why.
                return found
            for value in by_filter.column(filter_name).to_pylist():
                if value is not None:
                    found.setdefault(str(value), value)
        return found

    def _typed_values(self, request: MetricRequest) -> dict[tuple[str, str], object]:
        return {
            (f, v): self._value_types(request.name, f)[v] for f, values in request.filters for v in values
        }

    def _table_columns(self) -> dict[str, frozenset[str]]:
        rows = self._duck.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'main'"
        ).fetchall()
        columns: dict[str, set[str]] = {}
        for table_name, column_name in rows:
            columns.setdefault(table_name, set()).add(column_name)
        return {t: frozenset(c) for t, c in columns.items()}

    def _read_sources(self) -> list[dict]:
        if SOURCES not in self._tables:
            return []
        cur = self._duck.execute(
            f"SELECT file_name, sha256, kind, dataset, layout, loaded_at, rows_read, rows_loaded, "
            f"rows_quarantined, rows_duplicate, synthetic, tables_loaded "
            f"FROM {SOURCES} ORDER BY loaded_at, file_name"
        )
        names = [d[0] for d in cur.description]
        sources = []
        for row in cur.fetchall():
            source = dict(zip(names, row))
            source["tables"] = json.loads(source.pop("tables_loaded"))
            source["loaded_at"] = iso_or_none(source["loaded_at"])
            sources.append(source)
        return sources


class ResultCache:
    """Computed results up to a byte budget as `size_of` measures them (least recently used
    dropped first; a metric's result by its table), and one computation per key at a time:
    identical requests arriving together wait for the first."""

    def __init__(self, max_bytes: int,
                 size_of: Callable[[object], int] = lambda result: result.table.nbytes):
        self._results: ByteBudgetLRU = ByteBudgetLRU(max_bytes, size_of)
        self._running: dict[object, _Running] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._results

    def get(self, key: object, compute):
        with self._lock:
            kept = self._results.get(key)
            if kept is not None:
                return kept
            running = self._running.get(key)
            first = running is None
            if first:
                running = self._running[key] = _Running()
        if not first:
            running.done.wait()
            if running.error is not None:
                raise running.error
            return running.result
        try:
            running.result = compute()
        except BaseException as exc:
            running.error = exc
            raise
        finally:
            with self._lock:
                del self._running[key]
                if running.error is None:
                    self._results.put(key, running.result)
            running.done.set()
        return running.result

    @property
    def bytes(self) -> int:
        return self._results.bytes

    @property
    def max_bytes(self) -> int:
        return self._results.max_bytes


@dataclass(frozen=True)
class SplitCheck:
    """What WarehouseService.split_check read: the unsafe split dates with why, each cell's
    counts (one per column counting people) before each day read, and over the whole span."""

    unsafe: dict[date, str]
    before: dict[date, dict[tuple, list[float]]]
    totals: dict[tuple, list[float]]


@dataclass
class _Running:
    done: threading.Event = field(default_factory=threading.Event)
    result: MetricResult | None = None
    error: BaseException | None = None


def _people(metric: Metric, table: pa.Table, cells: Sequence[str]
            ) -> tuple[pa.Table, tuple[str, ...], list[str]]:
    """`table` with the differences of its counts that count people (protected like counts,
    never published), their names, and every column counting people: each integer column but
    the cells, facts and measures."""
    rules = metric.disclosure
    planned, differences = disclosure.with_differences(
        table, metric.count_column, cells, rules.parts, rules.nested
    )
    not_people = {*cells, *rules.facts, *rules.measures}
    people = [f.name for f in planned.schema
              if pa.types.is_integer(f.type) and f.name not in not_people]
    return planned, differences, people


def _withheld_claim(check: ClaimCheck, why: str) -> ClaimCheck:
    """The claim with its claimed values only, and why its observed readings are withheld."""
    blank = tuple(replace(r, observed=None, ci_low=None, ci_high=None) for r in check.readings)
    return replace(check, readings=blank, withheld=why)


def _month_firsts(start: date, end: date) -> list[date]:
    """The first day of each month from start's to end's, both included."""
    firsts = [start.replace(day=1)]
    while firsts[-1] < end.replace(day=1):
        firsts.append(disclosure.month_after(firsts[-1]))
    return firsts


def _month_of(day: date) -> date:
    return day.replace(day=1)


def iso_or_none(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _span_counts(spans: pa.Table, cells: Sequence[str], nested: Sequence[tuple[str, str, str]]):
    """(split date, cell, counts before it, counts over the whole span) for each row of a
    before/after table, and for each nested pair of its definitions (the wider's matching less
    the narrower's). A cell is the values of `cells` (the breakdown, keys and definition); its
    counts are the records, those matching and those not (a share times its records gives the
    matching count back, so it counts people as the records do)."""
    matching: dict[tuple, tuple[int, int]] = {}
    for row in spans.to_pylist():
        sides = []
        for side in ("before", "after"):
            records = row[f"{side}_records"] or 0
            sides.append((records, round((row[f"{side}_share"] or 0) * records)))
        (b_records, b_matching), (a_records, a_matching) = sides
        cell = tuple(row[c] for c in cells)
        matching[(row["split_date"], cell)] = (b_matching, b_matching + a_matching)
        yield (row["split_date"], cell, [b_records, b_matching, b_records - b_matching],
               [b_records + a_records, b_matching + a_matching,
                b_records + a_records - b_matching - a_matching])
    at = {c: p for p, c in enumerate(cells)}
    for (split, cell), (inner, inner_total) in list(matching.items()):
        for key, narrower, wider in nested:
            if key not in at or cell[at[key]] != narrower:
                continue
            outer_cell = tuple(wider if p == at[key] else v for p, v in enumerate(cell))
            if (split, outer_cell) in matching:
                outer, outer_total = matching[(split, outer_cell)]
                excess = tuple(f"{wider} less {narrower}" if p == at[key] else v
                               for p, v in enumerate(cell))
                yield split, excess, [outer - inner], [outer_total - inner_total]
