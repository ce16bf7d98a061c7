"""Dashboard pages that are not a list of metric cards: the claims register.

Presentation only: the claims are checked by `iceledger.metrics.claims` (as `iceledger claims
check` and the report do), once per process, since the warehouse cannot change while it is open.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from iceledger.facts import CLAIM_DEFINITIONS
from iceledger.metrics.claims import check_claims
from iceledger.report.views import share_with_interval
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
                observed = _count_text(service, r.observed)
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


def _count_text(service: WarehouseService, value: float | None) -> str:
    if value is None:
        return ""
    if service.public and value < service.k:
        return f"fewer than {service.k}"
    return f"{value:,.0f}"


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
