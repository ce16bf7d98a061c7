"""Headline facts: the numbers the public argues about, one quotable sentence each.

Each fact says its value, the period or day it describes, the date the data are "as of", the metric
(or published table) that defines it, and a citation line naming the source files and when they
were loaded. ICE's published workbooks answer most of them on their own; the FOIA records answer
the rest, and a fact neither can answer says so rather than going missing. Shared by the
dashboard's home page and the top of the report.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial

import ibis

from iceledger import facts
from iceledger.metrics.detention import published_latest
from iceledger.metrics.published_series import SeriesSpec
from iceledger.metrics.registry import REGISTRY, NotMeasurable
from iceledger.serving.service import WarehouseService, month_end
from iceledger.tables import STATS_ADP, STATS_BOOK_INS, STATS_WORKBOOKS

# The date the 3,000-arrests-a-day target was set: FOIA shares are read from then on.
TARGET_START = date(2025, 5, 21)


@dataclass(frozen=True)
class Fact:
    key: str
    sentence: str
    value: str
    period: str
    as_of: str
    metric: str  # the metric defining it ("" for a published table)
    definition_url: str
    citation: str


def headline_facts(service: WarehouseService) -> list[Fact]:
    """Every headline the warehouse can support, workbook figures first; computed once."""
    return service.memo("headlines", lambda: _collect(service))


class Unanswered(Exception):
    """A metric a fact reads is not measurable from these records: the next source of the fact
    is tried, and the fact says why only when no source answers."""

    def __init__(self, metric: str, reason: str):
        super().__init__(reason)
        self.metric = metric


def _collect(service: WarehouseService) -> list[Fact]:
    found = []
    for build in (_detained_now, _detained_criminality, _arrests_vs_target, _book_ins,
                  _adp_vs_beds, _no_conviction, _cost_per_day):
        try:
            fact = build(service)
        except Unanswered as refused:
            fact = Fact(build.__name__.strip("_"), f"Not available: {refused}",
                        "not measurable", "", "", refused.metric, _url(refused.metric), "")
        except Exception as exc:  # noqa: BLE001 - a fact that fails is reported, not fatal
            fact = Fact(build.__name__.strip("_"), f"Not available: {exc}", "not measurable",
                        "", "", "", "", "")
        if fact:
            found.append(fact)
    return found


def _first_answer(service: WarehouseService,
                  *sources: Callable[[WarehouseService], Fact | None]) -> Fact | None:
    """The fact from the first source that answers. A source whose metric the records cannot
    measure gives way to the next; when none answers, the first refusal is the fact's."""
    refusals = []
    for source in sources:
        try:
            fact = source(service)
        except Unanswered as refused:
            refusals.append(refused)
            continue
        if fact:
            return fact
    if refusals:
        raise refusals[0]
    return None


# --- helpers -------------------------------------------------------------------------------------


def _citation(service: WarehouseService, kind: str, files: list[str] | None = None) -> str:
    sources = [s for s in service.sources if s["kind"] == kind
               and (files is None or s["file_name"] in files)]
    names = [s["file_name"] for s in sources]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    loaded = max((s["loaded_at"] or "" for s in sources), default="")[:10]
    synthetic = " (SYNTHETIC)" if any(s["synthetic"] for s in sources) else ""
    return f"iceledger, {shown or 'no source file'}{synthetic}, retrieved {loaded or 'unknown'}"


def _has(service: WarehouseService, *tables: str) -> bool:
    return all(service.has_table(t) for t in tables)


def _last_row(service: WarehouseService, metric: str, keep: Callable[[dict], bool] = bool,
              **request) -> dict | None:
    if not service.servable(service.metric(metric)):
        return None
    try:
        result = service.compute(service.request(metric, **request))
    except NotMeasurable as refused:
        raise Unanswered(metric, str(refused)) from None
    rows = [r for r in result.table.to_pylist() if keep(r)]
    return rows[-1] if rows else None


def _url(metric: str) -> str:
    """The metric's card on its dashboard page: its definition and caveats, shown even where the
    warehouse cannot compute it."""
    return f"/pages/{REGISTRY[metric].question}#metric-{metric}"


def _published(service: WarehouseService, table: str, value: str, dims: tuple[str, ...],
               **fixed: str) -> dict | None:
    """The latest whole month ICE published for a workbook table (its last month is often
    partial: fiscal year to date)."""
    if not _has(service, table, STATS_WORKBOOKS):
        return None
    backend: ibis.BaseBackend = service.backend()
    rows = published_latest(backend, SeriesSpec(table, value, dims), **fixed).to_pyarrow()
    whole = [r for r in rows.to_pylist()
             if r["as_of_date"] is None or month_end(r["month"]) <= r["as_of_date"]]
    return max(whole, key=lambda r: r["month"]) if whole else None


def _in_force(file_name: str, column: str, day: date) -> dict | None:
    timeline = facts.load_timeline(file_name, column).to_pylist()
    return next((r for r in timeline if r["effective_from"] <= day <= r["effective_to"]), None)


# --- the facts -----------------------------------------------------------------------------------


def _detained_now(service: WarehouseService) -> Fact | None:
    return _first_answer(service, _detained_published, _detained_in_records)


def _detained_published(service: WarehouseService) -> Fact | None:
    row = _last_row(service, "detained_criminality")
    if row:
        value = service.count_text(row["detained"], "not measurable")
        return Fact("detained_now", f"ICE held {value} people in detention on {row['date']}, "
                    "by its own published count.", value, str(row["date"]), str(row["date"]),
                    "detained_criminality", _url("detained_criminality"),
                    _citation(service, "stats", [row["workbook"]]))
    return None


def _detained_in_records(service: WarehouseService) -> Fact | None:
    row = _last_row(service, "detained_population_daily")
    if row:
        value = service.count_text(row["population_midnight"], "not measurable")
        return Fact("detained_now", f"{value} people were in ICE detention at midnight on "
                    f"{row['date']}, counted from the FOIA records.", value, str(row["date"]),
                    str(row["date"]), "detained_population_daily",
                    _url("detained_population_daily"), _citation(service, "foia"))
    return None


def _detained_criminality(service: WarehouseService) -> Fact | None:
    return _first_answer(
        service,
        partial(_detained_mix, "detained_criminality", "stats", "ICE's published count"),
        partial(_detained_mix, "population_criminality", "foia", "the FOIA records"))


def _detained_mix(metric: str, kind: str, what: str, service: WarehouseService) -> Fact | None:
    row = _last_row(service, metric, lambda r: r["no_conviction_share"] is not None)
    if not row:
        return None
    share = f"{row['no_conviction_share']:.0%}"
    neither = f"{row['no_conviction_no_charge_share']:.0%}"
    files = [row["workbook"]] if "workbook" in row else None
    return Fact(
        "detained_criminality",
        f"Of the people detained on {row['date']}, {share} had no criminal conviction; "
        f"{neither} had neither a conviction nor a pending charge ({what}).",
        share, str(row["date"]), str(row["date"]), metric, _url(metric),
        _citation(service, kind, files))


def _arrests_vs_target(service: WarehouseService) -> Fact | None:
    return _first_answer(service, _arrests_against_target, _target_alone)


def _arrests_against_target(service: WarehouseService) -> Fact | None:
    row = _last_row(service, "arrests_vs_target",
                    lambda r: r["target_status"] == "primary" and r["arrests_7d_avg"] is not None)
    if row:
        value = f"{row['arrests_7d_avg']:,.0f}"
        return Fact(
            "arrests_vs_target",
            f"ICE made {value} arrests a day in the week to {row['date']}, against the target "
            f"of {row['target_per_day']:,.0f} a day in force then ({row['target']}).",
            value, f"7 days to {row['date']}", str(row["date"]), "arrests_vs_target",
            _url("arrests_vs_target"), _citation(service, "foia"))
    return None


def _target_alone(service: WarehouseService) -> Fact | None:
    targets = [t for t in facts.load_targets() if t.status == "primary"]
    latest = max(targets, key=lambda t: t.effective_from, default=None)
    if latest is None:
        return None
    return Fact(
        "arrests_vs_target",
        f"The arrest target in force since {latest.effective_from} is "
        f"{latest.arrests_per_day:,.0f} a day; arrests per day are not measurable from these "
        f"records ({_why_no_arrests(service, latest.effective_from)}).",
        f"{latest.arrests_per_day:,.0f}", f"from {latest.effective_from}",
        str(latest.source_date), "arrests_vs_target", _url("arrests_vs_target"),
        f"iceledger, targets.csv ({latest.source})")


def _why_no_arrests(service: WarehouseService, since: date) -> str:
    """Why no arrests stand beside a target: no arrest records, or arrest records that end
    before it (a reader told "FOIA arrest records do" would think none were loaded)."""
    try:
        last = _last_row(service, "arrests_per_day")
    except Unanswered as refused:
        return str(refused)
    if last and last["date"] < since:
        return f"the FOIA arrest records loaded end on {last['date']}, before any target"
    return "ICE's detention workbooks do not count arrests; FOIA arrest records do"


def _book_ins(service: WarehouseService) -> Fact | None:
    row = _published(service, STATS_BOOK_INS, "book_ins", ("agency",), agency="Total")
    if row:
        days = calendar.monthrange(row["month"].year, row["month"].month)[1]
        value = f"{row['value'] / days:,.0f}"
        month = row["month"].strftime("%B %Y")
        return Fact("book_ins", f"ICE booked {value} people a day into detention in {month} "
                    f"({row['value']:,.0f} initial book-ins, all arresting agencies).", value,
                    month, str(row["as_of_date"]), "published_book_ins",
                    _url("published_book_ins"),
                    _citation(service, "stats", [row["workbook"]]))
    row = _last_row(service, "book_ins_per_day", lambda r: r["book_ins_28d_avg"] is not None)
    if row:
        value = f"{row['book_ins_28d_avg']:,.0f}"
        return Fact("book_ins", f"{value} people a day were booked into ICE detention over the "
                    f"28 days to {row['date']} (FOIA records).", value,
                    f"28 days to {row['date']}", str(row["date"]), "book_ins_per_day",
                    _url("book_ins_per_day"), _citation(service, "foia"))
    return None


def _adp(service: WarehouseService) -> tuple[float, date, str, str, str] | None:
    """(average daily population, month, as-of date, citation, defining metric), the published
    figure first."""
    row = _published(service, STATS_ADP, "adp", ("agency", "criminality"), agency="Total",
                     criminality="Total")
    if row:
        return (row["value"], row["month"], str(row["as_of_date"]),
                _citation(service, "stats", [row["workbook"]]), "published_adp")
    row = _last_row(service, "detention_cost", lambda r: r["bed_days"] is not None)
    if row:
        return (row["bed_days"] / row["days"], row["month"], str(row["month"]),
                _citation(service, "foia"), "detention_cost")
    return None


def _adp_vs_beds(service: WarehouseService) -> Fact | None:
    adp = _adp(service)
    if not adp:
        return None
    population, month, as_of, citation, metric = adp
    capacity = _in_force("capacity.csv", "funded_beds", month) or {}
    beds = capacity.get("funded_beds")
    against = (f"against {beds:,.0f} funded beds ({capacity['source']})" if beds else
               "no sourced funded-bed count applies to that month "
               f"({capacity.get('source', 'capacity.csv has no row')})")
    value = service.count_text(population, "not measurable")
    return Fact("adp_vs_beds", f"ICE held an average of {value} people a day in "
                f"{month.strftime('%B %Y')}, {against}.", value, month.strftime("%B %Y"),
                as_of, metric, _url(metric), citation)


def _no_conviction(service: WarehouseService) -> Fact | None:
    return _first_answer(service, _no_conviction_arrested, _no_conviction_held)


def _no_conviction_arrested(service: WarehouseService) -> Fact | None:
    # Public mode serves whole records only (no window can be differenced): there the period is
    # the data's whole span, which the sentence names.
    since = {} if service.public else {"start": TARGET_START}
    row = _last_row(service, "arrest_criminality_period", **since)
    if row and row["no_conviction_share"] is not None:
        share = f"{row['no_conviction_share']:.0%}"
        return Fact(
            "no_conviction",
            f"{share} of the people ICE arrested from {row['period_start']} to "
            f"{row['period_end']} had no criminal conviction "
            f"({row['no_conviction_no_charge_share']:.0%} had no pending charge either).",
            share, f"{row['period_start']} to {row['period_end']}", str(row["period_end"]),
            "arrest_criminality_period", _url("arrest_criminality_period"),
            _citation(service, "foia"))
    return None


def _no_conviction_held(service: WarehouseService) -> Fact | None:
    row = _published(service, STATS_ADP, "adp", ("agency", "criminality"), agency="Total",
                     criminality="Convicted Criminal")
    total = _published(service, STATS_ADP, "adp", ("agency", "criminality"), agency="Total",
                       criminality="Total")
    if row and total and total["value"] and row["month"] == total["month"]:
        share = f"{1 - row['value'] / total['value']:.0%}"
        month = row["month"].strftime("%B %Y")
        return Fact("no_conviction", f"{share} of the people ICE held on an average day in "
                    f"{month} had no criminal conviction (ICE's published ADP by criminality).",
                    share, month, str(row["as_of_date"]), "published_adp",
                    _url("published_adp"),
                    _citation(service, "stats", [row["workbook"]]))
    return None


def _cost_per_day(service: WarehouseService) -> Fact | None:
    adp = _adp(service)
    if not adp:
        return None
    # The metric the population comes from defines the fact: detention_cost where the FOIA
    # records price their bed-days, ICE's published ADP where the workbooks give it (a reader
    # following the link to detention_cost would find it not measurable from workbooks alone).
    population, month, as_of, citation, metric = adp
    rate = _in_force("cost_rates.csv", "rate_usd_per_day", month)
    if not rate or rate["rate_usd_per_day"] is None:
        return None
    cost = population * rate["rate_usd_per_day"]
    value = f"${cost / 1e6:,.1f} million" if cost >= 1e6 else f"${cost:,.0f}"
    return Fact("cost_per_day", f"Detention cost about {value} a day in "
                f"{month.strftime('%B %Y')}: {population:,.0f} people at "
                f"${rate['rate_usd_per_day']:,.2f} a bed-day ({rate['basis']}: {rate['source']}).",
                value, month.strftime("%B %Y"), as_of, metric, _url(metric),
                f"{citation}; cost_rates.csv")
