"""A metric view's response body (JSON rows, chart, CSV, Parquet), rendered once and kept.

Bodies are cached whole (the warehouse cannot change while the server holds it open) and a cached
one is answered on the event loop; validating and computing a new one may query the warehouse,
so that runs in the thread pool, a few renderings at a time.
"""

from __future__ import annotations

import io
import json

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from iceledger.errors import IceledgerError
from iceledger.serving import charts
from iceledger.serving.output import json_rows
from iceledger.serving.service import (
    MetricFailed,
    MetricResult,
    WarehouseService,
    iso_or_none,
)
from iceledger.web.errors import metric_or_404
from iceledger.web.params import QueryArgs
from iceledger.web.state import Body, Dashboard

MEDIA_TYPES = {
    "json": "application/json",
    "chart": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


async def respond(
    dashboard: Dashboard,
    kind: str,
    name: str,
    args: QueryArgs,
    request: Request,
    value: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    key = (kind, name, args.key(), value)
    body = dashboard.bodies.get(key)
    if body is None:
        body = await run_in_threadpool(render, dashboard, kind, name, args, value)
        dashboard.bodies.put(key, body)
    return body.response(MEDIA_TYPES[kind], request.headers.get("accept-encoding", ""), headers)


async def warm(dashboard: Dashboard) -> None:
    """Compute every metric's default view, then render each body a page draws first (its rows
    and its chart)."""
    await run_in_threadpool(dashboard.service.warm)
    default = QueryArgs([], None, None)
    for metric in dashboard.service.metrics():
        for kind in ("json", "chart"):
            try:
                body = await run_in_threadpool(render, dashboard, kind, metric.name, default, None)
            except (IceledgerError, MetricFailed):
                continue  # answered as an error when asked for, as without warming
            dashboard.bodies.put((kind, metric.name, default.key(), None), body)


def render(dashboard: Dashboard, kind: str, name: str, args: QueryArgs, value: str | None) -> Body:
    with dashboard.renderings:
        raw = _render_bytes(dashboard.service, kind, name, args, value)
        return Body.of(raw, compress=kind != "parquet")


def _render_bytes(
    service: WarehouseService, kind: str, name: str, args: QueryArgs, value: str | None
) -> bytes:
    metric_or_404(name)
    request = service.request(name, args.by, args.start, args.end, args.filters)
    result = service.compute(request)
    if kind == "csv":
        sink = io.BytesIO()
        pa_csv.write_csv(result.table, sink)
        return sink.getvalue()
    if kind == "parquet":
        meta = json.dumps(_described(service, result), default=str)
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
        meta = _described(service, result) | {"value_columns": drawable}
        return _json_bytes({"spec": spec, "meta": meta})
    return _json_bytes(_described(service, result) | {"rows": rows})


def _described(service: WarehouseService, result: MetricResult) -> dict:
    """Everything a response says about its numbers, except the rows themselves."""
    return {
        **service.describe(result.metric),
        "caveats": list(service.result_caveats(result)),
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


def _json_bytes(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), allow_nan=False, default=str).encode()
