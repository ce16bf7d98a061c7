"""The API's parameters: a metric's name, the query every metric view takes (breakdown, period,
filters), and the map's release."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated

from fastapi import Depends, Query
from fastapi import Path as PathParameter
from pydantic import BeforeValidator

from iceledger.metrics.registry import REGISTRY


@dataclass
class QueryArgs:
    by: list[str]
    start: date | None
    end: date | None
    filters: dict[str, list[str]] = field(default_factory=dict)

    def key(self) -> tuple:
        # Canonical: the order of `by` and of a filter's values changes no number.
        filters = tuple(sorted((f, tuple(sorted(set(v)))) for f, v in self.filters.items() if v))
        return tuple(sorted(set(self.by))), self.start, self.end, filters


def _iso_day(value: object) -> object:
    # Pydantic reads `to=0` as a Unix time (1970-01-01); a day is only ever written YYYY-MM-DD.
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("not a day written YYYY-MM-DD")
    return value


Day = Annotated[date | None, BeforeValidator(_iso_day)]


# async so that FastAPI does not hand it to the thread pool: it only gathers parameters.
async def query_args(
    by: Annotated[list[str], Query(description="break down by these dimensions (repeat)")] = [],  # noqa: B006
    start: Annotated[Day, Query(alias="from", description="first day, YYYY-MM-DD")] = None,
    end: Annotated[Day, Query(alias="to", description="last day, YYYY-MM-DD (inclusive)")] = None,
    aor: Annotated[list[str], Query(description="field office(s)")] = [],  # noqa: B006
    criminality: Annotated[list[str], Query(description="ICE criminality label(s)")] = [],  # noqa: B006
    citizenship_country: Annotated[list[str], Query()] = [],  # noqa: B006
    apprehension_method: Annotated[list[str], Query(description="arrest method(s)")] = [],  # noqa: B006
    arrest_setting: Annotated[list[str], Query()] = [],  # noqa: B006
) -> QueryArgs:
    chosen = {
        "aor": aor,
        "criminality": criminality,
        "citizenship_country": citizenship_country,
        "apprehension_method": apprehension_method,
        "arrest_setting": arrest_setting,
    }
    return QueryArgs(by, start, end, {f: v for f, v in chosen.items() if v})


Args = Annotated[QueryArgs, Depends(query_args)]
MapRelease = Annotated[date | None, Query(
    description="publication date of a workbook listing facilities (meta.releases); "
                "default the newest")]


def _list_metric_names(schema: dict) -> None:
    # The schema lists the metrics registered when it is first generated, so that clients (and
    # the fuzzer) know the valid names; any other name is answered with 404.
    schema["enum"] = sorted(REGISTRY)


MetricName = Annotated[
    str,
    PathParameter(
        description="a registered metric; GET /api/metrics lists them",
        json_schema_extra=_list_metric_names,
    ),
]
