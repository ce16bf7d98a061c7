"""The map: ICE detention facilities and ERO field offices, sized by the population they hold.

What is drawn, and from where:
- Facilities: the facilities sheet of the newest detention-statistics workbook in the warehouse
  (`stats_facilities`, newest by `stats_workbooks.as_of_date`), sized by the average daily
  population ICE prints there (fiscal year to date; `adp` is the sum of the four criminality-by-sex
  columns, see src/iceledger/data/stats_tables.toml). Placed at the centre of the facility's ZIP
  code, or failing that of its city, or of its state (ZIP centroids from the `zipcodes` package,
  offline); each point says which. These are not street addresses.
- Field offices: placed at the city each office is named for (static/field-office-places.csv),
  sized by the sum of the ADPs of the facilities ICE lists under that office in the same workbook.
- States: static/states-10m.json (us-atlas 3.0.1, U.S. Census Bureau geometry; see the note
  beside it).

In public mode facility and office populations under k are shown as `<k`, with complementary
suppression within each field office and across offices (iceledger.disclosure).
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources
from statistics import fmean

import pyarrow as pa

from iceledger import disclosure
from iceledger.field_offices import normalise_aor
from iceledger.web import charts
from iceledger.web.service import iso_or_none

FACILITIES_TABLE = "stats_facilities"
WORKBOOKS_TABLE = "stats_workbooks"
FACILITY_COLUMNS = ("workbook", "name", "city", "state", "zip", "aor", "adp")
DEFINITION = (
    "Facilities in ICE's newest published detention-statistics workbook, sized by their average "
    "daily population (fiscal year to date) as ICE prints it; field offices sized by the sum of "
    "their facilities' populations in the same workbook."
)
CAVEATS = (
    (
        "Average daily population is ICE's fiscal-year-to-date figure from the facilities sheet, "
        "not a count on one day."
    ),
    (
        "Facilities are placed at their ZIP code's centre (or their city's or state's when the ZIP "
        "is unknown), not at their street address; field offices at the city they are named for."
    ),
    (
        "Facilities outside the lower 48 states, Alaska and Hawaii (e.g. Puerto Rico, Guam) are "
        "not drawn by this projection; they are listed as not drawn."
    ),
)


@cache
def _gazetteer() -> tuple[dict, dict, dict]:
    """ZIP, city and state centres from the `zipcodes` package (loaded once, ~0.5 s)."""
    import zipcodes

    by_zip: dict[str, tuple[float, float]] = {}
    by_city: dict[tuple[str, str], list[tuple[float, float]]] = {}
    by_state: dict[str, list[tuple[float, float]]] = {}
    for entry in zipcodes.list_all():
        if not entry["lat"] or not entry["long"]:
            continue
        point = (float(entry["lat"]), float(entry["long"]))
        by_zip[entry["zip_code"]] = point
        by_city.setdefault((_norm(entry["city"]), entry["state"]), []).append(point)
        by_state.setdefault(entry["state"], []).append(point)
    centre = {key: _centre(points) for key, points in by_city.items()}
    return by_zip, centre, {state: _centre(points) for state, points in by_state.items()}


def locate(zip_code: str | None, city: str | None, state: str | None) -> dict | None:
    """The best point for a place: its ZIP centre, else its city's, else its state's."""
    by_zip, by_city, by_state = _gazetteer()
    state = (state or "").strip().upper()
    zip5 = (zip_code or "").strip()[:5]
    for precision, point in (
        ("zip", by_zip.get(zip5)),
        ("city", by_city.get((_norm(city or ""), state))),
        ("state", by_state.get(state)),
    ):
        if point:
            return {"lat": point[0], "lon": point[1], "placed_by": precision}
    return None


@cache
def field_office_places() -> dict[str, dict]:
    with resources.files("iceledger.web").joinpath("static/field-office-places.csv").open() as f:
        return {row["aor_code"]: row for row in csv.DictReader(f)}


def map_data(service) -> dict:
    """Facilities and field offices with their populations and places (cached by the service)."""
    return service.memo("map", lambda: _map_data(service))


def _map_data(service) -> dict:
    base = {"definition": DEFINITION, "caveats": list(CAVEATS), "synthetic": service.synthetic}
    missing = [t for t in (FACILITIES_TABLE, WORKBOOKS_TABLE) if not service.has_table(t)]
    if missing:
        return base | {
            "available": False,
            "reason": f"the warehouse has no {' or '.join(missing)}; ingest detention-statistics "
            "workbooks first",
            "facilities": [],
            "field_offices": [],
            "not_drawn": [],
        }
    backend = service.backend()
    workbooks = backend.table(WORKBOOKS_TABLE)
    facilities = backend.table(FACILITIES_TABLE)
    with_facilities = workbooks.filter(workbooks.workbook.isin(facilities.workbook))
    newest = (
        with_facilities.order_by([with_facilities.as_of_date.desc(), with_facilities.workbook.desc()])
        .select("workbook", "as_of_date")
        .limit(1)
        .to_pyarrow()
        .to_pylist()
    )
    if not newest:
        return base | {"available": False, "reason": "no workbook lists facilities",
                       "facilities": [], "field_offices": [], "not_drawn": []}
    workbook = newest[0]["workbook"]
    rows = (
        facilities.filter([facilities.workbook == workbook, facilities.adp.notnull()])
        .select(*FACILITY_COLUMNS)
        .order_by("name")
        .to_pyarrow()
        .to_pylist()
    )
    facilities = []
    for row in rows:
        office = normalise_aor(row["aor"])
        point = locate(row["zip"], row["city"], row["state"]) or {
            "lat": None, "lon": None, "placed_by": None
        }
        facilities.append(
            {
                "name": row["name"],
                "city": row["city"],
                "state": row["state"],
                "aor_code": office.code if office else None,
                "aor": office.name if office else row["aor"],
                "adp": float(row["adp"]),
                **point,
            }
        )
    offices = _field_offices(facilities)
    if service.public:
        facilities, offices = _suppress(facilities, offices, service.k)
    source = [s for s in service.sources if s["file_name"] == workbook]
    return base | {
        "available": True,
        "workbook": workbook,
        "as_of_date": iso_or_none(newest[0]["as_of_date"]),
        "sources": [{k: v for k, v in s.items() if k != "tables"} for s in source],
        "facilities": [f for f in facilities if _drawn_by_projection(f)],
        "field_offices": offices,
        "not_drawn": [f["name"] for f in facilities if not _drawn_by_projection(f)],
        "suppressed": service.public,
        "k": service.k if service.public else None,
    }


def _field_offices(facilities: list[dict]) -> list[dict]:
    totals: dict[str, float] = {}
    for facility in facilities:
        if facility["aor_code"]:
            totals[facility["aor_code"]] = totals.get(facility["aor_code"], 0.0) + facility["adp"]
    offices = []
    for code, total in sorted(totals.items()):
        place = field_office_places().get(code)
        point = locate(None, place["city"], place["state"]) if place else None
        if point:
            offices.append(
                {"aor_code": code, "aor": normalise_aor(code).name, "adp": total,
                 "lat": point["lat"], "lon": point["lon"], "placed_at": place["city"]}
            )
    return offices


def _suppress(facilities: list[dict], offices: list[dict], k: int) -> tuple[list[dict], list[dict]]:
    """Hide small facility populations; office totals are the published margins (and cells)."""
    table = pa.table(
        {
            "aor_code": [f["aor_code"] or "" for f in facilities],
            "name": [f["name"] for f in facilities],
            "adp": [f["adp"] for f in facilities],
        }
    )
    # Published beside the facilities: each office's total and the national total (a facility
    # name is an identifier, not something anyone sums over).
    hidden = disclosure.suppress(
        table, "adp", ["aor_code", "name"], k=k, totals=[("aor_code",), ()]
    )
    shown = []
    for facility, row in zip(facilities, hidden.table.to_pylist()):
        shown.append(facility | {"adp": row["adp"], "suppressed": row[disclosure.SUPPRESSION_COLUMN]})
    small = f"<{k}"
    offices = [
        o | ({"adp": None, "suppressed": small} if 0 < o["adp"] < k else {"suppressed": None})
        for o in offices
    ]
    return shown, offices


def map_spec(data: dict) -> dict:
    """Vega-Lite: state outlines, facility circles and field-office squares sized by population."""
    size = {"type": "quantitative", "scale": {"range": [15, 900]}, "title": "average daily population"}
    projection = {"type": "albersUsa"}
    tooltip_fields = ("name", "city", "state", "aor", "adp", "suppressed", "placed_by")
    return {
        "$schema": charts.SCHEMA,
        "width": "container",
        "height": 520,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "projection": projection,
        "layer": [
            {
                "data": {
                    "url": "/static/states-10m.json",
                    "format": {"type": "topojson", "feature": "states"},
                },
                "mark": {"type": "geoshape", "fill": "#f2f2f2", "stroke": "#999", "strokeWidth": 0.5},
            },
            {
                "data": {"name": "facilities", "values": data["facilities"]},
                "mark": {"type": "circle", "opacity": 0.55, "color": "#1f5f8b"},
                "encoding": {
                    "longitude": {"field": "lon", "type": "quantitative"},
                    "latitude": {"field": "lat", "type": "quantitative"},
                    "size": {"field": "adp", **size},
                    "tooltip": [{"field": f} for f in tooltip_fields],
                },
            },
            {
                "data": {"name": "field_offices", "values": data["field_offices"]},
                "mark": {"type": "square", "filled": False, "color": "#c0392b", "strokeWidth": 2},
                "encoding": {
                    "longitude": {"field": "lon", "type": "quantitative"},
                    "latitude": {"field": "lat", "type": "quantitative"},
                    "size": {"field": "adp", **size},
                    "tooltip": [{"field": f} for f in ("aor", "adp", "suppressed", "placed_at")],
                },
            },
        ],
    }


def _drawn_by_projection(point: dict) -> bool:
    # albersUsa draws the 50 states; anything else (PR, Guam, ...) projects to nothing.
    lat, lon = point["lat"], point["lon"]
    if lat is None or lon is None:
        return False
    lower48 = 24 <= lat <= 50 and -125 <= lon <= -66
    alaska = 51 <= lat <= 72 and -180 <= lon <= -129
    hawaii = 18 <= lat <= 23 and -161 <= lon <= -154
    return lower48 or alaska or hawaii


def _norm(text: str) -> str:
    return " ".join(text.replace(".", "").upper().split())


def _centre(points: list[tuple[float, float]]) -> tuple[float, float]:
    return fmean(p[0] for p in points), fmean(p[1] for p in points)
