"""How the dashboard answers what goes wrong: one JSON line, `{"detail": ...}`, with the status
that says whose the problem is (400 a parameter, 404 no such metric, 409 not servable here, 413
too many rows, 429 download budget spent, 500 a metric that failed)."""

from __future__ import annotations

import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from iceledger.errors import IceledgerError
from iceledger.metrics.registry import REGISTRY, Metric
from iceledger.serving.service import MetricFailed, NotServable, TooManyRows

ERROR_CHARACTERS = 1_000


class NoSuchMetric(Exception):
    def __init__(self, name: str):
        known = ", ".join(sorted(REGISTRY)) or "none"
        super().__init__(f"no metric named {name!r} (known: {known})")


class RateLimited(IceledgerError):
    def __init__(self, wait: float):
        self.wait = wait
        super().__init__(f"download budget spent; try again in {math.ceil(wait)} s")


def metric_or_404(name: str) -> Metric:
    if name not in REGISTRY:
        raise NoSuchMetric(name)
    return REGISTRY[name]


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, bad_parameter)
    app.add_exception_handler(IceledgerError, user_error)
    app.add_exception_handler(MetricFailed, metric_failed)
    app.add_exception_handler(NoSuchMetric, no_metric)


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    # Messages quote the request's own values; a huge one is not sent back whole.
    if len(message) > ERROR_CHARACTERS:
        message = message[:ERROR_CHARACTERS] + f"... ({len(message):,} characters)"
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


async def bad_parameter(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
    )
    return error(400, problems or "invalid request")


async def user_error(_: Request, exc: IceledgerError) -> JSONResponse:
    if isinstance(exc, RateLimited):
        return error(429, str(exc), {"Retry-After": str(math.ceil(exc.wait))})
    status = 409 if isinstance(exc, NotServable) else 413 if isinstance(exc, TooManyRows) else 400
    return error(status, str(exc))


async def metric_failed(_: Request, exc: MetricFailed) -> JSONResponse:
    return error(500, str(exc))


async def no_metric(_: Request, exc: NoSuchMetric) -> JSONResponse:
    return error(404, str(exc))
