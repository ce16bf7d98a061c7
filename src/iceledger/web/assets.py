"""What the pages load from /static: the files in static/, and Vega, Vega-Lite and vega-embed as
one script built from vl-convert (no CDN)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from iceledger.serving import charts

router = APIRouter()


@router.get("/static/vega-bundle.js", include_in_schema=False)
def vega_bundle() -> Response:
    return Response(
        charts.vega_bundle(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def static_files() -> StaticFiles:
    """Mounted at /static after `router` is included, so that the bundle's path is matched first."""
    return StaticFiles(directory=str(resources.files("iceledger.web") / "static"))
