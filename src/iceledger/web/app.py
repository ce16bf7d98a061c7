"""The dashboard and JSON API over a warehouse: `create_app(warehouse_path, public=False, k=10)`.

Presentation only. Every number is a registered metric computed by `iceledger.metrics.compute`;
no endpoint returns warehouse rows, so no person-level record is ever served. Pages are Jinja2
templates whose charts are Vega-Lite specs from this API, drawn by vega-embed from /static (no CDN).
In public mode every count of people goes through `iceledger.serving.disclosure` before it leaves.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from iceledger import metrics  # noqa: F401 - importing registers every metric
from iceledger.metrics.registry import QUESTIONS, Metric
from iceledger.serving import charts
from iceledger.serving.headlines import headline_facts
from iceledger.web import api, pages, rendering
from iceledger.web.errors import add_error_handlers
from iceledger.web.guards import HeadAsGet, SecurityHeaders
from iceledger.web.state import Dashboard
from iceledger.serving.service import (
    STANDARD_FILTERS,
    WarehouseService,
)

PUBLISHED_PAGE = "published"
PAGE_TITLES = {**QUESTIONS, PUBLISHED_PAGE: "Published statistics"}
FILTER_LABELS = {
    "aor": "Field office (AOR)",
    "criminality": "Criminality",
    "citizenship_country": "Citizenship country",
    "apprehension_method": "Arrest method",
    "arrest_setting": "Arrest setting",
}


def create_app(
    warehouse_path: Path | str,
    public: bool = False,
    k: int = 10,
    *,
    max_rows: int = 50_000,
    downloads_per_minute: float = 30,
    download_burst: int = 10,
    warm: bool = True,
) -> FastAPI:
    """The dashboard app. Raises IceledgerError (one line) if the warehouse cannot be opened.

    With `warm`, the server computes every metric's default view when it starts (before it
    accepts a connection), so that a cold server's first visitors wait for nothing."""
    dashboard = Dashboard.open(
        warehouse_path, public, k, max_rows, downloads_per_minute, download_burst)
    service = dashboard.service

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if warm:
            await rendering.warm(dashboard)
        yield

    templates = Jinja2Templates(directory=str(resources.files("iceledger.web") / "templates"))
    app = FastAPI(
        title="iceledger dashboard API",
        description=(
            "Aggregate, documented metrics from the public record of U.S. immigration "
            "enforcement. Every response names its definition, unit, caveats, period and source "
            "files. No endpoint serves person-level records."
            + (f" Public mode: counts of people under {k} are suppressed." if public else "")
        ),
        version="1",
        docs_url=None,  # the interactive docs pages load scripts from a CDN; the schema is enough
        redoc_url=None,
        lifespan=lifespan,
    )
    api.name_allow_lists_in_schema(app)

    # A path missing its slash is not redirected: the redirect would name the host the request's
    # Host header claims.
    app.router.redirect_slashes = False
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    app.state.dashboard = dashboard
    add_error_handlers(app)
    app.include_router(api.metrics_router)

    app.include_router(api.map_router)
    app.include_router(api.simulate_router)

    # --- static assets -----------------------------------------------------------------------

    @app.get("/static/vega-bundle.js", include_in_schema=False)
    def vega_bundle() -> Response:
        return Response(
            charts.vega_bundle(),
            media_type="text/javascript; charset=utf-8",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("iceledger.web") / "static")),
        name="static",
    )

    # --- pages -------------------------------------------------------------------------------

    def page_context(request: Request, page: str) -> dict:
        return {
            "request": request,
            "page": page,
            "pages": PAGE_TITLES | {"map": "Map", "simulate": "Strategies"},
            "synthetic": service.synthetic,
            "public": public,
            "k": k,
        }

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index(request: Request) -> HTMLResponse:
        counts = {page: len(_metrics_on(service, page)) for page in PAGE_TITLES}
        return templates.TemplateResponse(
            request,
            "index.html",
            page_context(request, "index")
            | {"counts": counts, "sources": service.sources,
               "facts": headline_facts(service)},
        )

    @app.get("/map", response_class=HTMLResponse, include_in_schema=False)
    def map_page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "map.html", page_context(request, "map"))

    @app.get("/pages/simulate", response_class=HTMLResponse, include_in_schema=False)
    def simulate_page(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "simulate.html",
                                          page_context(request, "simulate"))
    pages.add_pages(app, service, templates, page_context)
    pages.add_facility_pages(app, service, templates, page_context)

    @app.get("/pages/{page}", response_class=HTMLResponse, include_in_schema=False)
    def question_page(request: Request, page: str) -> HTMLResponse:
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
            page_context(request, page)
            | {
                "title": PAGE_TITLES[page],
                "cards": cards,
                "filters": {f: v for f, v in filters.items() if v},
                "filter_labels": FILTER_LABELS,
            },
        )

    return app


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


def serve(
    warehouse_path: Path | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    public: bool = False,
    k: int = 10,
    announce=print,
) -> None:
    """Run the dashboard with uvicorn until interrupted (no `server` banner header)."""
    import uvicorn

    app = create_app(warehouse_path, public=public, k=k)
    mode = f"public mode, counts under {k} suppressed" if public else "full detail"
    announce(f"iceledger dashboard on http://{host}:{port}/ ({mode}; warehouse {warehouse_path}, read-only)")
    # A port already in use is reported by uvicorn itself, as one line, with exit status 3.
    uvicorn.run(app, host=host, port=port, server_header=False, log_level="warning")
