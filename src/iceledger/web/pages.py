"""The dashboard's HTML pages: the index, a page of metric cards per question (and one of ICE's
published statistics), the map, the strategy simulator, the claims register, and a page per
detention facility and per field office.

Presentation only: every number is a registered metric served through `WarehouseService`, which
applies public-mode suppression; the charts are drawn from the JSON API. The claims are checked by
`iceledger.metrics.claims` (as `iceledger claims check` and the report do), once per process,
since the warehouse cannot change while it is open. Facility and field-office pages draw the
registered metric facility_population_history, filtered to one facility or office (a name not in
the warehouse is a 404, as in the API). A field office is reached by its code or any spelling of
it (the FOIA records name offices, the workbooks print codes), and its page stands without the
workbooks too, linking the dashboard's pages filtered to it.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from iceledger.errors import IceledgerError
from iceledger.facts import CLAIM_DEFINITIONS, RATE_DEFINITIONS
from iceledger.field_offices import normalise_aor
from iceledger.metrics.registry import QUESTIONS, Metric
from iceledger.serving import charts
from iceledger.serving.formatting import (
    DIMENSION_LABELS,
    cell_text,
    claim_gap,
    share_with_interval,
)
from iceledger.serving.headlines import headline_facts
from iceledger.serving.output import json_rows
from iceledger.serving.service import STANDARD_FILTERS, NotServable, WarehouseService
from iceledger.web.state import ServiceDep

CLAIMS_PAGE = "claims"
PUBLISHED_PAGE = "published"
PAGE_TITLES = {**QUESTIONS, PUBLISHED_PAGE: "Published statistics"}

templates = Jinja2Templates(directory=str(resources.files("iceledger.web") / "templates"))
# Matched in the order defined: the named /pages/... routes before the generic /pages/{page}.
router = APIRouter()


def page_context(request: Request, service: WarehouseService, page: str) -> dict:
    return {
        "request": request,
        "page": page,
        "pages": PAGE_TITLES | {"map": "Map", "simulate": "Strategies"},
        "synthetic": service.synthetic,
        "public": service.public,
        "k": service.k,
    }


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def index(request: Request, service: ServiceDep) -> HTMLResponse:
    counts = {page: len(_metrics_on(service, page)) for page in PAGE_TITLES}
    return templates.TemplateResponse(
        request,
        "index.html",
        page_context(request, service, "index")
        | {"counts": counts, "sources": service.sources,
           "facts": headline_facts(service)},
    )


@router.get("/map", response_class=HTMLResponse, include_in_schema=False)
def map_page(request: Request, service: ServiceDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "map.html", page_context(request, service, "map"))


@router.get("/pages/simulate", response_class=HTMLResponse, include_in_schema=False)
def simulate_page(request: Request, service: ServiceDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "simulate.html",
                                      page_context(request, service, "simulate"))


def claim_rows(service: WarehouseService) -> list[dict]:
    """Each claim with its readings as the page prints them; in public mode counts under k stay
    hidden, and a claim whose period could give a count under k away shows no observed reading
    (WarehouseService.checked_claims)."""
    rows = []
    for check in service.checked_claims():
        readings = []
        for r in check.readings:
            rate = r.definition in RATE_DEFINITIONS
            if check.withheld:
                observed = "withheld in public mode"
            elif r.definition == "count":
                observed = service.count_text(r.observed)
            elif r.observed is None:
                observed = "not measurable from these records"
            elif rate:
                observed = f"{r.observed:.3f}"
            else:
                observed = share_with_interval(r.observed, r.ci_low, r.ci_high)
            readings.append({
                "definition": CLAIM_DEFINITIONS.get(r.definition, r.definition),
                "observed": observed,
                "claimed": "" if r.claimed is None else (
                    f"{r.claimed:,.0f}" if r.definition == "count" else
                    f"{r.claimed:.3f}" if rate else f"{r.claimed:.0%}"),
                "gap": "" if r.definition == "count" else claim_gap(r),
                "stated": r.claimed is not None,
            })
        rows.append({"check": check, "claim": check.claim, "readings": readings,
                     "verdict": check.verdict})
    return rows


@router.get(f"/pages/{CLAIMS_PAGE}", response_class=HTMLResponse, include_in_schema=False)
def claims_page(request: Request, service: ServiceDep) -> HTMLResponse:
    return templates.TemplateResponse(
        request, "claims.html",
        page_context(request, service, CLAIMS_PAGE) | {
            "title": "Claims against the record",
            "claims": claim_rows(service),
            "metric_pages": {m.name: m.question for m in service.metrics()},
        },
    )


HISTORY = "facility_population_history"
NEWEST = "facility_population"


def history(service: WarehouseService, by: str, value: str) -> dict:
    """One facility's or office's population over every release: chart spec, table, sources."""
    request = service.request(HISTORY, by=[by], filters={by: [value]})
    result = service.compute(request)
    metric = result.metric
    rows = json_rows(result.table)
    spec = charts.metric_chart(metric.unit, result.table, rows, result.time_column, (),
                               view=metric.view)
    columns = [c for c in ("date", "workbook", "adp", "facilities", "facilities_without_adp",
                           "as_of_date") if c in result.table.column_names]
    table = [{c: cell_text(r[c], c) for c in columns} for r in result.table.to_pylist()]
    return {"metric": service.describe(metric), "spec": spec, "columns": columns, "rows": table,
            "last": result.table.to_pylist()[-1] if result.table.num_rows else {},
            "sources": service.sources_for(metric), "period": result.period()}


def _not_found(request: Request, context: dict, what: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "notfound.html", context | {"what": what},
                                      status_code=404)


@router.get("/facilities/{name:path}", response_class=HTMLResponse, include_in_schema=False)
def facility_page(request: Request, service: ServiceDep, name: str) -> HTMLResponse:
    context = page_context(request, service, "map")
    try:
        found = history(service, "facility", name)
    except IceledgerError as exc:
        return _not_found(request, context, f"facility {name!r}: {exc}")
    return templates.TemplateResponse(request, "place.html", context | found | {
        "kind": "facility", "title": name, "office": found["last"].get("aor")})


@router.get("/field-offices/{aor}", response_class=HTMLResponse, include_in_schema=False)
def field_office_page(request: Request, service: ServiceDep, aor: str) -> HTMLResponse:
    context = page_context(request, service, "map")
    office = normalise_aor(aor)
    if office and office.code != aor:
        # A name or another spelling (a FOIA ranking links the office's name): one address.
        return RedirectResponse(f"/field-offices/{quote(office.code)}")
    pages = {"office_name": office.name if office else None,
             "question_pages": {q: t for q, t in QUESTIONS.items() if q != CLAIMS_PAGE}}
    try:
        found = history(service, "aor", aor)
        newest = service.compute(service.request(NEWEST)).table.to_pylist()
    except NotServable as exc:
        if office is None:
            return _not_found(request, context, f"field office {aor!r}: {exc}")
        # No workbooks: the office's page still leads to its figures in the FOIA records.
        return templates.TemplateResponse(request, "place.html", context | pages | {
            "kind": "field office", "title": f"Field office {office.name} ({aor})",
            "office": aor, "unavailable": str(exc)})
    except IceledgerError as exc:
        return _not_found(request, context, f"field office {aor!r}: {exc}")
    listed = sorted((f for f in newest if f["aor"] == aor),
                    key=lambda f: -(f["adp"] or 0))
    title = f"Field office {office.name} ({aor})" if office else f"Field office {aor}"
    return templates.TemplateResponse(request, "place.html", context | found | pages | {
        "kind": "field office", "title": title, "office": aor, "facilities": listed})


@router.get("/pages/{page}", response_class=HTMLResponse, include_in_schema=False)
def question_page(request: Request, service: ServiceDep, page: str) -> HTMLResponse:
    if page not in PAGE_TITLES:
        return HTMLResponse("<h1>No such page</h1>", status_code=404)
    cards = [
        service.describe(m) | {"allowed": _page_filters(service, m)}
        for m in _metrics_on(service, page)
    ]
    filters = {
        f: sorted({v for card in cards for v in card["allowed"].get(f, ())})
        for f in STANDARD_FILTERS
    }
    return templates.TemplateResponse(
        request,
        "page.html",
        page_context(request, service, page)
        | {
            "title": PAGE_TITLES[page],
            "cards": cards,
            "filters": {f: v for f, v in filters.items() if v},
            "filter_labels": DIMENSION_LABELS,
        },
    )


def _metrics_on(service: WarehouseService, page: str) -> list[Metric]:
    if page == PUBLISHED_PAGE:
        # The published-statistics page gathers metrics read only from ICE's own workbooks.
        return [m for m in service.metrics() if all(t.startswith("stats_") for t in m.tables)]
    return [m for m in service.metrics() if m.question == page]


def _page_filters(service: WarehouseService, metric: Metric) -> dict[str, tuple[str, ...]]:
    if not service.servable(metric):
        return {}
    return {f: service.allowed_values(metric.name, f) for f in service.filters(metric)
            if f in STANDARD_FILTERS}
