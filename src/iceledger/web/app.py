"""The dashboard and JSON API over a warehouse: `create_app(warehouse_path, public=False, k=10)`.

Presentation only. Every number is a registered metric computed by `iceledger.metrics.compute`;
no endpoint returns warehouse rows, so no person-level record is ever served. Pages are Jinja2
templates whose charts are Vega-Lite specs from this API, drawn by vega-embed from /static (no CDN).
In public mode every count of people goes through `iceledger.serving.disclosure` before it leaves.

This module only assembles the app. The views live in the modules ROUTERS names, in the order
their paths are matched; what they share (the warehouse service, the rendered bodies, the download
budget) is one `state.Dashboard` on `app.state`, and `errors` answers what goes wrong.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from iceledger import metrics  # noqa: F401 - importing registers every metric
from iceledger.web import api, assets, pages, rendering
from iceledger.web.errors import add_error_handlers
from iceledger.web.guards import HeadAsGet, SecurityHeaders, fewer_malloc_arenas
from iceledger.web.state import Dashboard

ROUTERS = (api.metrics_router, api.map_router, api.simulate_router, assets.router, pages.router)


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
        lifespan=_warm_up if warm else None,
    )
    app.state.dashboard = dashboard
    api.name_allow_lists_in_schema(app)
    # A path missing its slash is not redirected: the redirect would name the host the request's
    # Host header claims.
    app.router.redirect_slashes = False
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    add_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", assets.static_files(), name="static")
    return app


@asynccontextmanager
async def _warm_up(app: FastAPI):
    await rendering.warm(app.state.dashboard)
    yield


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

    fewer_malloc_arenas()
    app = create_app(warehouse_path, public=public, k=k)
    mode = f"public mode, counts under {k} suppressed" if public else "full detail"
    announce(f"iceledger dashboard on http://{host}:{port}/ ({mode}; warehouse {warehouse_path}, read-only)")
    # A port already in use is reported by uvicorn itself, as one line, with exit status 3.
    uvicorn.run(app, host=host, port=port, server_header=False, log_level="warning")
