"""The dashboard and JSON API over a warehouse: `create_app(warehouse_path, public=False, k=10)`.

Presentation only. Every number is a registered metric computed by `iceledger.metrics.compute`;
no endpoint returns warehouse rows, so no person-level record is ever served. Pages are Jinja2
templates whose charts are Vega-Lite specs from this API, drawn by vega-embed from /static (no CDN).
In public mode every count of people goes through `iceledger.serving.disclosure` before it leaves.
"""

from __future__ import annotations

import io
import json
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from iceledger import metrics  # noqa: F401 - importing registers every metric
from iceledger.errors import IceledgerError
from iceledger.serving.output import json_rows
from iceledger.metrics.registry import QUESTIONS, Metric
from iceledger.serving import charts
from iceledger.serving.headlines import headline_facts
from iceledger.web import geo, pages
from iceledger.web.errors import RateLimited, add_error_handlers, metric_or_404
from iceledger.web.guards import HeadAsGet, SecurityHeaders
from iceledger.web.params import Args, MapRelease, MetricName, QueryArgs
from iceledger.web.state import Body, Dashboard
from iceledger.serving.service import (
    STANDARD_FILTERS,
    MetricFailed,
    MetricRequest,
    MetricResult,
    NotServable,
    WarehouseService,
    iso_or_none,
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


class ErrorBody(BaseModel):
    detail: str


class MetricInfo(BaseModel):
    name: str
    title: str
    question: str
    definition: str
    unit: str
    caveats: list[str]
    tables: list[str]
    dimensions: list[str]
    filters: list[str]
    count_column: str | None
    available: bool
    missing_tables: list[str]


class MetricList(BaseModel):
    warehouse_synthetic: bool
    public: bool
    metrics: list[MetricInfo]


class Source(BaseModel):
    file_name: str
    sha256: str
    kind: str
    dataset: str | None
    layout: str | None
    loaded_at: str | None
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    rows_duplicate: int
    synthetic: bool


class MetricData(MetricInfo):
    params: dict[str, Any]
    period: dict[str, str | None]
    columns: list[dict[str, str]]
    row_count: int
    rows: list[dict[str, Any]]
    sources: list[Source]
    synthetic: bool
    suppression: dict[str, Any] | None


class ChartBody(BaseModel):
    spec: dict[str, Any]
    meta: dict[str, Any]


ERRORS = {
    400: {"model": ErrorBody, "description": "a parameter outside the metric's allow-lists"},
    404: {"model": ErrorBody, "description": "no such metric"},
    409: {"model": ErrorBody, "description": "the warehouse lacks a table the metric reads"},
    413: {"model": ErrorBody, "description": "the result is larger than the row cap"},
}
MEDIA_TYPES = {
    "json": "application/json",
    "chart": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


class SimulationBody(BaseModel):
    synthetic: bool
    strategy: str
    description: str
    steady_state: list[dict[str, Any]]
    path: list[dict[str, Any]]
    assumptions: list[str]
    sources: list[str]


SIMULATE_ERRORS = {
    400: {"model": ErrorBody,
          "description": "a parameter out of range, or the records cannot support the model"},
    409: {"model": ErrorBody, "description": "not served in public mode"},
}
DOWNLOAD_ERRORS = {
    **ERRORS,
    429: {"model": ErrorBody, "description": "download budget spent; see Retry-After"},
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
            await run_in_threadpool(service.warm)
            await warm_bodies()
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
    generate_schema = app.openapi

    def openapi_with_allow_lists() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_allow_lists(generate_schema(), service)
        return app.openapi_schema

    app.openapi = openapi_with_allow_lists

    # A path missing its slash is not redirected: the redirect would name the host the request's
    # Host header claims.
    app.router.redirect_slashes = False
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    app.state.dashboard = dashboard
    add_error_handlers(app)

    def request_for(name: str, args: QueryArgs) -> MetricRequest:
        metric_or_404(name)
        return service.request(name, args.by, args.start, args.end, args.filters)

    def described(result: MetricResult) -> dict:
        """Everything a response says about its numbers, except the rows themselves."""
        return {
            **service.describe(result.metric),
            "params": {
                "by": list(result.request.by),
                "from": iso_or_none(result.request.start),
                "to": iso_or_none(result.request.end),
                "filters": {f: list(v) for f, v in result.request.filters},
            },
            "period": result.period(),
            "columns": [{"name": f.name, "type": str(f.type)} for f in result.table.schema],
            "row_count": result.table.num_rows,
            "sources": service.sources_for(result.metric),
            "synthetic": service.synthetic,
            "suppression": result.suppression,
        }

    bodies = dashboard.bodies

    async def warm_bodies() -> None:
        """Render each default view a page draws first (its rows and its chart)."""
        default = QueryArgs([], None, None)
        for metric in service.metrics():
            for kind in ("json", "chart"):
                try:
                    body = await run_in_threadpool(render, kind, metric.name, default, None)
                except (IceledgerError, MetricFailed):
                    continue  # answered as an error when asked for, as without warming
                bodies.put((kind, metric.name, default.key(), None), body)

    async def respond(
        kind: str,
        name: str,
        args: QueryArgs,
        request: Request,
        value: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        # Bodies are cached whole (the warehouse cannot change while the server holds it open)
        # and a cached one is answered on the event loop; validating and computing a new one
        # may query the warehouse, so that runs in the thread pool.
        key = (kind, name, args.key(), value)
        body = bodies.get(key)
        if body is None:
            body = await run_in_threadpool(render, kind, name, args, value)
            bodies.put(key, body)
        return body.response(MEDIA_TYPES[kind], request.headers.get("accept-encoding", ""), headers)

    def render(kind: str, name: str, args: QueryArgs, value: str | None) -> Body:
        with dashboard.renderings:
            return Body.of(render_bytes(kind, name, args, value), compress=kind != "parquet")

    def render_bytes(kind: str, name: str, args: QueryArgs, value: str | None) -> bytes:
        request = request_for(name, args)
        result = service.compute(request)
        if kind == "csv":
            sink = io.BytesIO()
            pa_csv.write_csv(result.table, sink)
            return sink.getvalue()
        if kind == "parquet":
            meta = json.dumps(described(result), default=str)
            sink = io.BytesIO()
            pq.write_table(result.table.replace_schema_metadata({"iceledger": meta}), sink)
            return sink.getvalue()
        rows = json_rows(result.table)
        if kind == "chart":
            drawable = charts.value_columns(result.table, result.dimensions)
            if value is not None and value not in drawable:
                raise IceledgerError(
                    f"value={value!r} is not a numeric column of metric {name!r}; "
                    f"allowed: {', '.join(drawable) or 'none'}"
                )
            spec = charts.metric_chart(
                result.metric.unit, result.table, rows, result.time_column, result.request.by,
                value=value, count_column=result.metric.count_column,
                view=result.metric.view,
            )
            meta = described(result) | {"value_columns": drawable}
            return _json_bytes({"spec": spec, "meta": meta})
        return _json_bytes(described(result) | {"rows": rows})

    def spend_download(request: Request) -> None:
        wait = dashboard.budget.take(request.client.host if request.client else "unknown")
        if wait:
            raise RateLimited(wait)

    # --- JSON API ----------------------------------------------------------------------------

    @app.get("/api/metrics", response_model=MetricList, tags=["metrics"])
    def list_metrics() -> dict:
        """Every registered metric with its definition, unit, caveats, tables and allow-lists."""
        return {
            "warehouse_synthetic": service.synthetic,
            "public": public,
            "metrics": [service.describe(m) for m in service.metrics()],
        }

    @app.get("/api/sources", response_model=list[Source], tags=["metrics"])
    def list_sources() -> list[dict]:
        """Every loaded source file: name, SHA-256, kind, row accounting, synthetic or not."""
        return [{k: v for k, v in s.items() if k != "tables"} for s in service.sources]

    async def download(kind: str, name: str, args: QueryArgs, request: Request) -> Response:
        attachment = {"Content-Disposition": f'attachment; filename="{name}.{kind}"'}
        response = await respond(kind, name, args, request, headers=attachment)
        spend_download(request)
        return response

    @app.get("/api/metrics/{name}.csv", responses=DOWNLOAD_ERRORS, tags=["downloads"],
             response_class=Response)
    async def metric_csv(name: MetricName, args: Args, request: Request) -> Response:
        """The metric's rows as CSV (the same rows as the JSON endpoint)."""
        return await download("csv", name, args, request)

    @app.get("/api/metrics/{name}.parquet", responses=DOWNLOAD_ERRORS, tags=["downloads"],
             response_class=Response)
    async def metric_parquet(name: MetricName, args: Args, request: Request) -> Response:
        """The metric's rows as Parquet; the file's metadata carries the definition and sources."""
        return await download("parquet", name, args, request)

    @app.get("/api/metrics/{name}/filters", responses=ERRORS, tags=["metrics"])
    def metric_filters(name: MetricName) -> dict[str, list[str]]:
        """The values each of the metric's filters accepts (those present in the warehouse)."""
        metric = metric_or_404(name)
        return {f: list(service.allowed_values(name, f)) for f in metric.filters}

    @app.get("/api/metrics/{name}/chart", response_model=ChartBody, responses=ERRORS,
             tags=["metrics"])
    async def metric_chart(
        name: MetricName,
        args: Args,
        request: Request,
        value: Annotated[str | None, Query(description="the numeric column to draw")] = None,
    ) -> Response:
        """A Vega-Lite spec drawing the metric's rows, with the response's metadata beside it."""
        return await respond("chart", name, args, request, value)

    @app.get("/api/metrics/{name}", response_model=MetricData, responses=ERRORS, tags=["metrics"])
    async def metric_rows(name: MetricName, args: Args, request: Request) -> Response:
        """The metric's rows, with definition, unit, caveats, period and source files."""
        return await respond("json", name, args, request)

    @app.get("/api/map", tags=["map"], responses={400: ERRORS[400]})
    def map_data(release: MapRelease = None) -> dict:
        """Facilities and field offices placed on the map, with the population each holds."""
        return geo.map_data(service, release)

    @app.get("/api/map/chart", response_model=ChartBody, tags=["map"],
             responses={400: ERRORS[400]})
    def map_chart(release: MapRelease = None) -> dict:
        """A Vega-Lite map of facilities and field offices, with what it shows beside it."""
        data = geo.map_data(service, release)
        about = {k: v for k, v in data.items() if k not in ("facilities", "field_offices")}
        return {"spec": geo.map_spec(data), "meta": about}

    # --- strategy simulator (iceledger.simulate) ----------------------------------------------

    @app.get("/api/simulate", response_model=SimulationBody, responses=SIMULATE_ERRORS,
             tags=["simulate"])
    def simulate_strategy(
        strategy: Annotated[Literal["observed", "volume", "targeted"], Query()] = "volume",
        target: Annotated[float, Query(gt=0, le=100_000)] = 3000,
        fill: Annotated[Literal["same-budget", "funded-beds"], Query()] = "same-budget",
        beds: Annotated[float | None, Query(gt=0, le=10_000_000)] = None,
        days: Annotated[int, Query(ge=1, le=3650)] = 365,
    ) -> dict:
        """A strategy's steady state (90% intervals) and expected daily population, with the
        model's assumptions (docs/methodology.md, "Strategy simulator")."""
        from iceledger.simulate.estimate import estimate
        from iceledger.simulate.output import steady_state_answer

        if public:
            raise NotServable(
                "the strategy simulator is not served in public mode: its parameters are "
                f"estimated per class of people, and a class may hold fewer than {k}")
        with dashboard.fitting:
            if dashboard.simulator_model is None:
                dashboard.simulator_model = estimate(service.backend())
        answer = steady_state_answer(dashboard.simulator_model, strategy, days, target, fill, beds)
        return {"synthetic": service.synthetic, **answer}

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


def _add_allow_lists(schema: dict, service: WarehouseService) -> None:
    """Name, in the schema, the values `by` and each filter accept for some metric here (each
    metric accepts its own subset; /api/metrics and /api/metrics/{name}/filters say which)."""
    servable = [m for m in service.metrics() if service.servable(m)]
    allowed = {"by": sorted({d for m in servable for d in m.dimensions})}
    for filter_name in STANDARD_FILTERS:
        allowed[filter_name] = sorted(
            {v for m in servable if filter_name in m.filters
             for v in service.allowed_values(m.name, filter_name)}
        )
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", ()):
                values = allowed.get(parameter["name"])
                items = parameter.get("schema", {}).get("items")
                if values and parameter["in"] == "query" and items is not None:
                    items["enum"] = values


def _json_bytes(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False, default=str).encode()


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
