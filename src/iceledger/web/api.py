"""The JSON API: the metrics (list, rows, filters, chart) and their downloads, the map, and the
strategy simulator (iceledger.simulate).

Every number is a registered metric computed by `iceledger.metrics.compute`; no endpoint returns
warehouse rows, so no person-level record is ever served.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from iceledger.serving.service import STANDARD_FILTERS, NotServable, WarehouseService
from iceledger.web import geo
from iceledger.web.errors import RateLimited, metric_or_404
from iceledger.web.params import Args, MapRelease, MetricName, QueryArgs
from iceledger.web.rendering import respond
from iceledger.web.state import Dashboard, DashboardDep, ServiceDep


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


class SimulationBody(BaseModel):
    synthetic: bool
    strategy: str
    description: str
    steady_state: list[dict[str, Any]]
    path: list[dict[str, Any]]
    assumptions: list[str]
    sources: list[str]


ERRORS = {
    400: {"model": ErrorBody, "description": "a parameter outside the metric's allow-lists"},
    404: {"model": ErrorBody, "description": "no such metric"},
    409: {"model": ErrorBody, "description": "the warehouse lacks a table the metric reads"},
    413: {"model": ErrorBody, "description": "the result is larger than the row cap"},
}
SIMULATE_ERRORS = {
    400: {"model": ErrorBody,
          "description": "a parameter out of range, or the records cannot support the model"},
    409: {"model": ErrorBody, "description": "not served in public mode"},
}
DOWNLOAD_ERRORS = {
    **ERRORS,
    429: {"model": ErrorBody, "description": "download budget spent; see Retry-After"},
}

metrics_router = APIRouter()


@metrics_router.get("/api/metrics", response_model=MetricList, tags=["metrics"])
def list_metrics(service: ServiceDep) -> dict:
    """Every registered metric with its definition, unit, caveats, tables and allow-lists."""
    return {
        "warehouse_synthetic": service.synthetic,
        "public": service.public,
        "metrics": [service.describe(m) for m in service.metrics()],
    }


@metrics_router.get("/api/sources", response_model=list[Source], tags=["metrics"])
def list_sources(service: ServiceDep) -> list[dict]:
    """Every loaded source file: name, SHA-256, kind, row accounting, synthetic or not."""
    return [{k: v for k, v in s.items() if k != "tables"} for s in service.sources]


@metrics_router.get("/api/metrics/{name}.csv", responses=DOWNLOAD_ERRORS, tags=["downloads"],
                    response_class=Response)
async def metric_csv(
    name: MetricName, args: Args, request: Request, dashboard: DashboardDep
) -> Response:
    """The metric's rows as CSV (the same rows as the JSON endpoint)."""
    return await _download(dashboard, "csv", name, args, request)


@metrics_router.get("/api/metrics/{name}.parquet", responses=DOWNLOAD_ERRORS,
                    tags=["downloads"], response_class=Response)
async def metric_parquet(
    name: MetricName, args: Args, request: Request, dashboard: DashboardDep
) -> Response:
    """The metric's rows as Parquet; the file's metadata carries the definition and sources."""
    return await _download(dashboard, "parquet", name, args, request)


@metrics_router.get("/api/metrics/{name}/filters", responses=ERRORS, tags=["metrics"])
def metric_filters(name: MetricName, service: ServiceDep) -> dict[str, list[str]]:
    """The values each of the metric's filters accepts (those present in the warehouse)."""
    metric = metric_or_404(name)
    return {f: list(service.allowed_values(name, f)) for f in metric.filters}


@metrics_router.get("/api/metrics/{name}/chart", response_model=ChartBody, responses=ERRORS,
                    tags=["metrics"])
async def metric_chart(
    name: MetricName,
    args: Args,
    request: Request,
    dashboard: DashboardDep,
    value: Annotated[str | None, Query(description="the numeric column to draw")] = None,
) -> Response:
    """A Vega-Lite spec drawing the metric's rows, with the response's metadata beside it."""
    return await respond(dashboard, "chart", name, args, request, value)


@metrics_router.get("/api/metrics/{name}", response_model=MetricData, responses=ERRORS,
                    tags=["metrics"])
async def metric_rows(
    name: MetricName, args: Args, request: Request, dashboard: DashboardDep
) -> Response:
    """The metric's rows, with definition, unit, caveats, period and source files."""
    return await respond(dashboard, "json", name, args, request)


async def _download(
    dashboard: Dashboard, kind: str, name: str, args: QueryArgs, request: Request
) -> Response:
    attachment = {"Content-Disposition": f'attachment; filename="{name}.{kind}"'}
    response = await respond(dashboard, kind, name, args, request, headers=attachment)
    wait = dashboard.budget.take(request.client.host if request.client else "unknown")
    if wait:
        raise RateLimited(wait)
    return response


map_router = APIRouter()


@map_router.get("/api/map", tags=["map"], responses={400: ERRORS[400]})
def map_data(service: ServiceDep, release: MapRelease = None) -> dict:
    """Facilities and field offices placed on the map, with the population each holds."""
    return geo.map_data(service, release)


@map_router.get("/api/map/chart", response_model=ChartBody, tags=["map"],
                responses={400: ERRORS[400]})
def map_chart(service: ServiceDep, release: MapRelease = None) -> dict:
    """A Vega-Lite map of facilities and field offices, with what it shows beside it."""
    data = geo.map_data(service, release)
    about = {k: v for k, v in data.items() if k not in ("facilities", "field_offices")}
    return {"spec": geo.map_spec(data), "meta": about}


simulate_router = APIRouter()


@simulate_router.get("/api/simulate", response_model=SimulationBody, responses=SIMULATE_ERRORS,
                     tags=["simulate"])
def simulate_strategy(
    dashboard: DashboardDep,
    strategy: Annotated[Literal["observed", "volume", "targeted"], Query()] = "volume",
    target: Annotated[float | None, Query(gt=0, le=100_000)] = None,
    fill: Annotated[Literal["same-budget", "funded-beds"], Query()] = "same-budget",
    beds: Annotated[float | None, Query(gt=0, le=10_000_000)] = None,
    days: Annotated[int, Query(ge=1, le=3650)] = 365,
) -> dict:
    """A strategy's steady state (90% intervals) and expected daily population, with the
    model's assumptions (docs/methodology.md, "Strategy simulator")."""
    from iceledger.simulate.estimate import estimate
    from iceledger.simulate.output import steady_state_answer

    service = dashboard.service
    if service.public:
        raise NotServable(
            "the strategy simulator is not served in public mode: its parameters are "
            f"estimated per class of people, and a class may hold fewer than {service.k}")
    with dashboard.fitting:
        if dashboard.simulator_model is None:
            dashboard.simulator_model = estimate(service.backend())
    answer = steady_state_answer(dashboard.simulator_model, strategy, days, target, fill, beds)
    return {"synthetic": service.synthetic, **answer}


def name_allow_lists_in_schema(app: FastAPI) -> None:
    """Have the app's OpenAPI schema name the values `by` and each filter accept for some metric
    here (each metric accepts its own subset; /api/metrics and /api/metrics/{name}/filters say
    which)."""
    generate_schema = app.openapi

    def openapi_with_allow_lists() -> dict[str, Any]:
        if app.openapi_schema is None:
            _add_allow_lists(generate_schema(), app.state.dashboard.service)
        return app.openapi_schema

    app.openapi = openapi_with_allow_lists


def _add_allow_lists(schema: dict, service: WarehouseService) -> None:
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
