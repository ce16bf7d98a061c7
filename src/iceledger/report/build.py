"""`iceledger report`: one self-contained HTML file (and optionally a PDF) of every metric.

Presentation only. Every number comes from `WarehouseService.compute`, the same path the dashboard
and the API use, with small cells suppressed as in the public dashboard: a report is a public
output. Charts are Vega-Lite specs with their data inlined, drawn by the Vega bundle that
vl-convert-python ships, inlined too, so the file works offline and from an e-mail attachment.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import pyarrow as pa
import pyarrow.csv as pa_csv

from iceledger import __version__, facts
from iceledger.metrics.claims import ClaimCheck
from iceledger.metrics.registry import (
    FISCAL_YEAR,
    QUESTIONS,
    REGISTRY,
    SHIFT_SUFFIX,
    Metric,
    by_fiscal_year,
)
from iceledger.report.provenance import Provenance, read_provenance
from iceledger.report.vega_process import VegaProcess
from iceledger.serving import charts
from iceledger.serving.formatting import (
    cell_text,
    claim_gap,
    claim_value_text,
    dimension_text,
    listed_text,
)
from iceledger.serving.headlines import headline_facts
from iceledger.serving.output import json_rows
from iceledger.serving.service import (
    MetricRequest,
    MetricResult,
    NotMeasurable,
    NotServable,
    WarehouseService,
)
from iceledger.warehouse import Warehouse

# The report's backtest: fewer runs and replicates than the command's, enough for its summary.
REPORT_RUNS, REPORT_REPLICATES = 200, 50

SECTION_BLURBS = {
    "volume": "How many arrests, book-ins and removals a day, against the arrest targets set in "
    "2025.",
    "targeting": "Convicted, pending charges, or neither; arrested in a jail or in the community. "
    "Both headline definitions are shown together.",
    "detention": "How many people are held (midnight and 24-hour counts), for how long, how they "
    "leave custody, and against funded capacity.",
    "outcomes": "What happens after an arrest: detention, removal, release.",
    "pipeline": "Upstream of arrests: detainers lodged with jails and how they end, encounters "
    "that become arrests, and which programs and agencies bring people to ICE.",
    "cost": "Bed-days times a dated, sourced daily rate.",
    "claims": "What officials said, against what the record shows, under every definition.",
    "reconciliation": "ICE's published figures against the FOIA records for the same dates.",
    "human_cost": "Long-settled residents, recorded U.S. citizens, children and families, people "
    "held and then not removable, re-arrests and identification errors. Family separation is not "
    "recorded; citizenship errors appear only as records.",
}


# A result this small is printed as a table too, beside its chart.
TABLE_MAX_ROWS = 12

# Why a view shows no data, each said on the view in a sentence that opens with its words: the
# records cannot say it; public outputs do not publish it; the warehouse lacks its records.
NOT_MEASURABLE = "Not measurable from these records"
WITHHELD = "Withheld from public outputs"
NO_DATA = "No data"


@dataclass
class ReportView:
    id: str
    title: str
    metric: Metric
    caveats: tuple[str, ...]
    period: str
    spec: dict | None = None
    table_rows: list[dict] | None = None
    csv_href: str | None = None
    rows: int = 0
    # Empty when the view has data; else why not, opening with one of the phrases above.
    empty_reason: str = ""
    # Said under the title when the view shows a coarser grain than its metric's (by fiscal year).
    grain_note: str = ""
    # What the chart and CSV show: the metric's default request, or its grain's.
    shown: MetricRequest | None = None

    @property
    def empty_kind(self) -> str:
        """NOT_MEASURABLE, WITHHELD or NO_DATA for a view without data, else ""."""
        return self.empty_reason.split(":")[0] if self.empty_reason else ""


@dataclass
class ReportSection:
    id: str
    title: str
    question: str
    views: list[ReportView] = field(default_factory=list)


@dataclass(frozen=True)
class ReportResult:
    html_path: Path
    pdf_path: Path | None
    sections: list[ReportSection]
    claims: list[ClaimCheck]
    provenance: Provenance

    def summary(self) -> str:
        """How many views have data, and how many have none for each reason."""
        views = [v for s in self.sections for v in s.views]
        kinds = Counter(v.empty_kind for v in views if v.empty_reason)
        parts = [f"{len(views) - sum(kinds.values())} with data"]
        parts += [f"{count} {kind[0].lower()}{kind[1:]}" for kind, count in sorted(kinds.items())]
        return f"{len(views)} views: {', '.join(parts)}"


def build_report(
    warehouse_path: Path,
    html_path: Path,
    pdf: bool = False,
    k: int = 10,
    progress: Callable[[str], None] | None = None,
) -> ReportResult:
    with VegaProcess() as vega:
        return _build_report(warehouse_path, html_path, pdf, k, progress, vega)


def _build_report(warehouse_path: Path, html_path: Path, pdf: bool, k: int,
                  progress: Callable[[str], None] | None, vega: VegaProcess) -> ReportResult:
    service = WarehouseService(warehouse_path, public=True, k=k, max_rows=200_000)
    events = facts.load_events()
    sections = []
    for question, title in QUESTIONS.items():
        section = ReportSection(question, title, SECTION_BLURBS[question])
        for metric in service.metrics():
            if metric.question != question:
                continue
            if progress:
                progress(metric.name)
            view = _view(service, metric, events)
            if pdf and view.spec:
                vega.draw(view.id, view.spec)
            section.views.append(view)
        sections.append(section)
    claims = service.checked_claims()
    backtest = simulator_backtest(service)
    facts_found = headline_facts(service)
    with Warehouse(warehouse_path).connect(read_only=True) as con:
        provenance = read_provenance(con)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(
        _render(sections, claims, provenance, warehouse_path, k, facts_found, backtest,
                vega.vega_bundle()),
        encoding="utf-8",
    )
    pdf_path = None
    if pdf:
        from iceledger.report.pdf import write_pdf  # fpdf2 is only needed for --pdf

        pdf_path = html_path.with_suffix(".pdf")
        write_pdf(sections, claims, provenance, pdf_path, k, facts_found, vega)
    return ReportResult(html_path, pdf_path, sections, claims, provenance)


def _view(service: WarehouseService, metric: Metric, events) -> ReportView:
    view = ReportView(
        id=metric.name.replace("_", "-"),
        title=metric.title,
        metric=metric,
        caveats=service.caveats(metric),
        period="",
    )
    try:
        result = service.compute(service.request(metric.name))
    except NotMeasurable as exc:
        view.empty_reason = f"{NOT_MEASURABLE}: {str(exc).removeprefix(NotMeasurable.PREFIX)}"
        view.period = "no data"
        return view
    except NotServable as exc:
        withheld = metric.disclosure.withheld
        stand_in = _served_instead(service, metric) if withheld else None
        if stand_in is None:
            view.empty_reason = f"{WITHHELD}: {withheld}" if withheld else f"{NO_DATA}: {exc}"
            view.period = "no data"
            return view
        result, metric = stand_in, stand_in.metric
        grain = " and ".join(dimension_text(d) for d in result.request.by)
        view.title = f"{metric.title}, by {grain}"
        view.grain_note = (f"By {grain}: public outputs do not serve {view.metric.name}, since "
                           f"{withheld}.")
    yearly = None if view.grain_note else _by_fiscal_year(service, metric, result)
    if yearly is not None:
        split = metric.name.endswith(SHIFT_SUFFIX)
        hidden_because = (
            f"before and after each split date, public mode hides {_hidden_share(result.table)} of "
            f"the rows: {charts.hidden_reason(result.table)}" if split else
            f"most months count fewer than {service.k} people, so a monthly chart would be "
            "mostly blank")
        result, metric = yearly, yearly.metric
        view.title = (f"{view.title.removesuffix(', before and after a date')}, by fiscal year "
                      "(before and after withheld)" if split else
                      f"{view.title.removesuffix(', by month')}, by fiscal year")
        view.grain_note = (f"By fiscal year (October to September): {hidden_because}. The "
                           f"figures are {metric.name} by {FISCAL_YEAR}.")
    view.shown = result.request
    view.caveats = service.result_caveats(result)
    view.period = _period_text(result)
    view.rows = result.table.num_rows
    view.csv_href = _csv_data_uri(result.table)
    if result.table.num_rows == 0:
        view.empty_reason = f"{NO_DATA}: the metric returned no rows for this warehouse"
        return view
    rows = json_rows(result.table)
    # By fiscal year, each dot is a figure's year: the figure names both (`... · FY2025`).
    breakdowns = tuple(d for d in result.request.by if d != FISCAL_YEAR)
    view.spec = charts.metric_chart(
        metric.unit, result.table, rows, result.time_column, breakdowns,
        count_column=metric.count_column, view=metric.view,
    )
    if view.grain_note:
        view.spec = charts.with_note(view.spec, view.grain_note)
    if result.table.num_rows <= TABLE_MAX_ROWS:
        view.table_rows = rows
    if result.time_column and "layer" in view.spec:
        view.spec["layer"].extend(_event_layers(events, result))
    return view


def _served_instead(service: WarehouseService, metric: Metric) -> MetricResult | None:
    """What public outputs serve in place of a metric they withhold (Disclosure.instead)."""
    if metric.disclosure.instead is None:
        return None
    name, by = metric.disclosure.instead
    try:
        return service.compute(service.request(name, by=by))
    except NotServable:
        return None


def _by_fiscal_year(service: WarehouseService, metric: Metric,
                    result: MetricResult) -> MetricResult | None:
    """The metric's period sibling by fiscal year, when most rows of its monthly or before/after
    view are hidden (events too rare to count month by month, or in the parts of the month a
    split date cuts): the same people at a grain that publishes them, the years either side of
    the split among them."""
    monthly = REGISTRY.get(metric.name.removesuffix(SHIFT_SUFFIX))
    yearly = by_fiscal_year(monthly) if monthly is not None else None
    shown_by = "month" if monthly is metric else "split_date"
    if (yearly is None or shown_by not in result.table.column_names
            or not charts.mostly_hidden(result.table)):
        return None
    try:
        return service.compute(service.request(yearly.name, by=(FISCAL_YEAR,)))
    except NotServable:
        return None


def _hidden_share(table: pa.Table) -> str:
    hidden = charts.hidden_rows(table)
    return "all" if hidden == table.num_rows else f"{hidden:,} of {table.num_rows:,}"


def _event_layers(events, result: MetricResult) -> list[dict]:
    """Dated, confirmed events inside the chart's period, as labelled vertical rules."""
    period = result.period()
    start, end = period["data_from"], period["data_to"]
    marks = [
        {"date": e.date.start.isoformat(), "event": e.event[:60]}
        for e in events
        if e.confirmed and e.date.precision == "day"
        and start <= e.date.start.isoformat() <= end
    ]
    if not marks:
        return []
    x = {"field": "date", "type": "temporal"}
    return [
        {"data": {"values": marks}, "mark": {"type": "rule", "color": "#555", "strokeDash": [2, 2]},
         "encoding": {"x": x, "tooltip": [{"field": "event"}, {"field": "date"}]}},
        {"data": {"values": marks},
         "mark": {"type": "text", "angle": 270, "align": "right", "baseline": "bottom",
                  "dx": -4, "dy": -2, "fontSize": 9, "color": "#555", "y": 0},
         "encoding": {"x": x, "text": {"field": "event"}}},
    ]


def _period_text(result: MetricResult) -> str:
    period = result.period()
    start, end, grain = period["data_from"], period["data_to"], period["grain"]
    # Periods as the rows are: "2026-01-01" would read as the data ending on New Year's Day.
    if start and grain == "fiscal_year":
        return f"FY{int(start[:4]) + 1} to FY{end[:4]} (fiscal years)"
    if start and grain in ("month", "quarter"):
        return f"{start[:7]} to {end[:7]} ({grain}s)"
    if start:
        return f"{start} to {end}"
    return "the whole period the warehouse covers"


def _csv_data_uri(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink)
    encoded = base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")
    return f"data:text/csv;base64,{encoded}"


def _claims_spec(claims: list[ClaimCheck]) -> dict | None:
    """Claimed against observed share, for every claim that states a share."""
    rows = [
        {"claim": check.claim.claim_id, "definition": r.definition, "observed": r.observed,
         "ci_low": r.ci_low, "ci_high": r.ci_high, "claimed": r.claimed}
        for check in claims
        if any(r.claimed is not None and r.definition != "count" for r in check.readings)
        for r in check.readings
        if r.definition in ("convicted", "convicted_or_pending")
    ]
    if not rows:
        return None
    y = {"field": "claim", "type": "nominal", "title": None}
    return {
        "$schema": charts.SCHEMA,
        "data": {"values": rows}, "width": "container", "height": {"step": 40},
        "layer": [
            {"mark": "rule",
             "encoding": {"y": y, "yOffset": {"field": "definition"},
                          "x": {"field": "ci_low", "type": "quantitative",
                                "title": "share of arrests", "scale": {"domain": [0, 1]}},
                          "x2": {"field": "ci_high"},
                          "color": {"field": "definition", "legend": {"orient": "bottom"}}}},
            {"mark": {"type": "point", "filled": True, "size": 60},
             "encoding": {"y": y, "yOffset": {"field": "definition"},
                          "x": {"field": "observed", "type": "quantitative"},
                          "color": {"field": "definition"},
                          "tooltip": [{"field": "claim"}, {"field": "definition"},
                                      {"field": "observed", "format": ".3f"},
                                      {"field": "claimed", "format": ".3f"}]}},
            {"transform": [{"filter": "datum.claimed != null"}],
             "mark": {"type": "tick", "color": "#b22222", "thickness": 3, "size": 30},
             "encoding": {"y": y, "x": {"field": "claimed", "type": "quantitative"},
                          "tooltip": [{"field": "claim"}, {"field": "claimed", "format": ".3f"}]}},
        ],
    }


def simulator_backtest(service: WarehouseService) -> dict:
    """The simulator's backtest as lines of text: its error (MAPE) and misses against each
    target, what it can and cannot do; totals only, no per-day figures. Where the records
    cannot support it, the one line saying why."""
    from iceledger.simulate.backtest import DEFAULT_CUTOFF, backtest
    from iceledger.simulate.estimate import NotMeasurable

    try:
        result = backtest(service.backend(), DEFAULT_CUTOFF, runs=REPORT_RUNS,
                          replicates=REPORT_REPLICATES)
    except NotMeasurable as refused:
        return {"cutoff": DEFAULT_CUTOFF, "lines": [str(refused)]}
    lines = [c.verdict() + f" (source: {c.source})" for c in result.comparisons]
    lines += [f"Can: {line}" for line in result.can]
    lines += [f"Cannot: {line}" for line in result.cannot]
    return {"cutoff": result.cutoff, "lines": lines + result.assumptions}


def _render(sections, claims, provenance: Provenance, warehouse_path: Path, k: int,
            headlines, backtest: dict, vega_bundle: str) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("iceledger.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    environment.filters["cell"] = cell_text
    environment.filters["claim_value"] = claim_value_text
    environment.filters["claim_gap"] = claim_gap
    environment.filters["listed"] = listed_text
    specs = {v.id: v.spec for s in sections for v in s.views if v.spec}
    claims_spec = _claims_spec(claims)
    if claims_spec:
        specs["claims"] = claims_spec
    return environment.get_template("report.html.j2").render(
        title="iceledger report: ICE enforcement in the public record",
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        warehouse=str(warehouse_path),
        synthetic=provenance.synthetic,
        sections=sections,
        provenance=provenance,
        claims=claims,
        claims_spec=claims_spec,
        backtest=backtest,
        headlines=headlines,
        k=k,
        vega_bundle=vega_bundle.replace("</script", "<\\/script"),
        specs_json=json.dumps(specs, default=str).replace("</", "<\\/"),
    )
