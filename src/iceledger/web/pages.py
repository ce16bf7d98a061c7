"""Dashboard pages that are not a list of metric cards: the claims register, and a page per
detention facility and per field office.

Presentation only: the claims are checked by `iceledger.metrics.claims` (as `iceledger claims
check` and the report do), once per process, since the warehouse cannot change while it is open.
Facility and field-office pages draw the registered metric facility_population_history, filtered
to one facility or office (a name not in the warehouse is a 404, as in the API).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from iceledger.errors import IceledgerError
from iceledger.facts import CLAIM_DEFINITIONS
from iceledger.metrics.claims import check_claims
from iceledger.serving import charts
from iceledger.serving.formatting import cell_text, share_with_interval
from iceledger.serving.output import json_rows
from iceledger.serving.service import WarehouseService

CLAIMS_PAGE = "claims"


def claim_rows(service: WarehouseService) -> list[dict]:
    """Each claim with its readings as the page prints them; counts under k stay hidden in public
    mode, shares are of whole periods and never small cells."""
    checks = service.memo("claims", lambda: check_claims(service.backend()))
    rows = []
    for check in checks:
        readings = []
        for r in check.readings:
            if r.definition == "count":
                observed = service.count_text(r.observed)
            elif r.observed is None:
                observed = "not measurable from these records"
            else:
                observed = share_with_interval(r.observed, r.ci_low, r.ci_high)
            readings.append({
                "definition": CLAIM_DEFINITIONS.get(r.definition, r.definition),
                "observed": observed,
                "claimed": "" if r.claimed is None else (
                    f"{r.claimed:,.0f}" if r.definition == "count" else f"{r.claimed:.0%}"),
                "gap": "" if r.gap is None or r.definition == "count" else
                f"{-r.gap * 100:+.1f} points",
                "stated": r.claimed is not None,
            })
        rows.append({"check": check, "claim": check.claim, "readings": readings,
                     "verdict": check.verdict})
    return rows


def add_pages(app: FastAPI, service: WarehouseService, templates, page_context) -> None:
    """Routes registered before the generic /pages/{page}, so they take their paths first."""

    @app.get(f"/pages/{CLAIMS_PAGE}", response_class=HTMLResponse, include_in_schema=False)
    def claims_page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(
            request, "claims.html",
            page_context(request, CLAIMS_PAGE) | {
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


def _not_found(templates, request, context, what: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "notfound.html", context | {"what": what},
                                      status_code=404)


def add_facility_pages(app: FastAPI, service: WarehouseService, templates, page_context) -> None:
    @app.get("/facilities/{name:path}", response_class=HTMLResponse, include_in_schema=False)
    def facility_page(request: Request, name: str) -> HTMLResponse:
        context = page_context(request, "map")
        try:
            found = history(service, "facility", name)
        except IceledgerError as exc:
            return _not_found(templates, request, context, f"facility {name!r}: {exc}")
        return templates.TemplateResponse(request, "place.html", context | found | {
            "kind": "facility", "title": name, "office": found["last"].get("aor")})

    @app.get("/field-offices/{aor}", response_class=HTMLResponse, include_in_schema=False)
    def field_office_page(request: Request, aor: str) -> HTMLResponse:
        context = page_context(request, "map")
        try:
            found = history(service, "aor", aor)
            newest = service.compute(service.request(NEWEST)).table.to_pylist()
        except IceledgerError as exc:
            return _not_found(templates, request, context, f"field office {aor!r}: {exc}")
        listed = sorted((f for f in newest if f["aor"] == aor),
                        key=lambda f: -(f["adp"] or 0))
        return templates.TemplateResponse(request, "place.html", context | found | {
            "kind": "field office", "title": f"Field office {aor}", "office": aor,
            "facilities": listed})
