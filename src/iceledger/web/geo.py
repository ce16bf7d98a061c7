"""The map: ICE detention facilities and ERO field offices, sized by the population they hold.

Presentation only: every number drawn comes from two registered metrics, computed through the
same `WarehouseService.compute` path as the API (iceledger.metrics.facilities):
- `facility_population`: each facility in the newest published workbook's facilities sheet, with
  ICE's fiscal-year-to-date average daily population (ADP);
- `field_office_population`: per field office, the sum of its facilities' ADPs, how many
  facilities it lists and how many of them have no figure.

What this module adds is where to draw them:
- Facilities at the centre of their ZIP code, or failing that of their city, or of their state
  (ZIP centroids from the `zipcodes` package, offline); each point says which. These are not
  street addresses.
- Field offices at the city each is named for (static/field-office-places.csv).
- States: static/states-10m.json (us-atlas 3.0.1, U.S. Census Bureau geometry; see the note
  beside it).

Nothing is dropped: a facility or office that cannot be placed, or that the Albers USA projection
cannot draw, is listed with the reason; a facility with no ADP figure is drawn at the smallest
size, in grey, with a note, and listed.

In public mode facility and office populations under k are shown as `<k`, with complementary
suppression within each field office and across offices (iceledger.serving.disclosure).
"""

from __future__ import annotations

import csv
from datetime import date
from functools import cache
from importlib import resources
from statistics import fmean

import pyarrow as pa

from iceledger.errors import IceledgerError
from iceledger.serving import disclosure
from iceledger.field_offices import normalise_aor
from iceledger.serving import charts
from iceledger.serving.service import WarehouseService, iso_or_none

FACILITY_METRIC = "facility_population"
HISTORY_METRIC = "facility_population_history"
OFFICE_METRIC = "field_office_population"
PLACEMENT_CAVEATS = (
    (
        "Facilities are placed at their ZIP code's centre (or their city's or state's when the ZIP "
        "is unknown), not at their street address; field offices at the city they are named for."
    ),
    (
        "Facilities outside the lower 48 states, Alaska and Hawaii (e.g. Puerto Rico, Guam) are "
        "not drawn by this projection; they are listed as not drawn, with every facility or "
        "office that could not be placed."
    ),
    (
        "A facility with no population figure (or, in public mode, a hidden one) is drawn at the "
        "smallest size in grey and listed; it is not a facility with no one in it."
    ),
)
NO_FIGURE = "ICE prints no population figure for this facility"
HIDDEN_NOTES = {
    disclosure.COMPLEMENTARY_LABEL: "hidden so that a smaller figure cannot be worked out",
}
UNDRAWABLE = "outside the map: the Albers USA projection draws the 50 states only"


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


def map_data(service: WarehouseService, release: date | None = None) -> dict:
    """Facilities and field offices with their populations and places (cached by the service):
    from the newest workbook, or from the one published on `release` (one of `releases`)."""
    # Read before the map's own memo: service.memo holds its lock while building.
    known = releases(service)
    if release is not None and release.isoformat() not in {r["date"] for r in known}:
        listed = ", ".join(r["date"] for r in known) or "none"
        raise IceledgerError(f"release={release}: no workbook listing facilities was published "
                             f"that day; releases: {listed}")
    return service.memo(f"map:{release}", lambda: _map_data(service, release, known))


def releases(service: WarehouseService) -> list[dict]:
    """Every workbook that lists facilities, oldest first: its publication date and name."""
    def build() -> list[dict]:
        metric = service.metric(HISTORY_METRIC)
        if not service.servable(metric):
            return []
        rows = service.compute(service.request(HISTORY_METRIC)).table.to_pylist()
        return [{"date": iso_or_none(r["date"]), "workbook": r["workbook"]} for r in rows]
    return service.memo("map:releases", build)


def _map_data(service: WarehouseService, release: date | None, known: list[dict]) -> dict:
    metrics = [service.metric(name) for name in (FACILITY_METRIC, OFFICE_METRIC)]
    metric_caveats = dict.fromkeys(c for m in metrics for c in service.caveats(m))
    base = {
        "metrics": [
            {"name": m.name, "title": m.title, "definition": m.definition, "unit": m.unit}
            for m in metrics
        ],
        "caveats": [*metric_caveats, *PLACEMENT_CAVEATS],
        "synthetic": service.synthetic,
    }
    missing = sorted({t for m in metrics for t in service.missing_tables(m)})
    if missing:
        return base | _unavailable(
            f"the warehouse has no {' or '.join(missing)}; ingest detention-statistics "
            "workbooks first"
        )
    facility_rows = _metric_rows(service, FACILITY_METRIC, release)
    if not facility_rows:
        return base | _unavailable("no workbook in the warehouse lists facilities")
    facilities = [_facility(row) for row in facility_rows]
    offices = [_office(row) for row in _metric_rows(service, OFFICE_METRIC, release)]
    if service.public:
        facilities, offices = _suppress(facility_rows, facilities, offices, service.k)
    drawn_facilities, facilities_not_drawn = _split(facilities)
    drawn_offices, offices_not_drawn = _split(offices)
    newest = facility_rows[0]
    return base | {
        "available": True,
        "workbook": newest["workbook"],
        "publication_date": iso_or_none(newest["publication_date"]),
        "as_of_date": iso_or_none(newest["as_of_date"]),
        "sources": [
            {k: v for k, v in s.items() if k != "tables"}
            for s in service.sources
            if s["file_name"] == newest["workbook"]
        ],
        "facilities": drawn_facilities,
        "not_drawn": [f["name"] for f in facilities_not_drawn],
        "facilities_not_drawn": facilities_not_drawn,
        "facilities_without_adp": [row["name"] for row in facility_rows if row["adp"] is None],
        "field_offices": drawn_offices,
        "field_offices_not_drawn": offices_not_drawn,
        "suppressed": service.public,
        "k": service.k if service.public else None,
        "releases": known,
    }


def _metric_rows(service: WarehouseService, name: str, release: date | None = None) -> list[dict]:
    # The metrics read the newest workbook published on or before --to: the release asked for.
    return service.compute(service.request(name, end=release)).table.to_pylist()


def _unavailable(reason: str) -> dict:
    empty = ("facilities", "not_drawn", "facilities_not_drawn", "facilities_without_adp",
             "field_offices", "field_offices_not_drawn")
    return {"available": False, "reason": reason} | {key: [] for key in empty}


def _facility(row: dict) -> dict:
    office = normalise_aor(row["aor"])
    point = locate(row["zip"], row["city"], row["state"])
    unplaced = "no ZIP code, city or state of its address is in the gazetteer"
    return {
        "name": row["name"],
        "type": row["type_detailed"],
        "city": row["city"],
        "state": row["state"],
        "zip": row["zip"],
        "aor_code": office.code if office else None,
        "aor": office.name if office else row["aor"],
        "adp": row["adp"],
        "alos": row["alos"],
        "note": NO_FIGURE if row["adp"] is None else None,
        **(point or {"lat": None, "lon": None, "placed_by": None}),
        "reason": _why_not_drawn(point, unplaced),
    }


def _office(row: dict) -> dict:
    office = normalise_aor(row["aor"])
    place = field_office_places().get(office.code) if office else None
    point = locate(None, place["city"], place["state"]) if place else None
    if row["aor"] is None:
        unplaced = "facilities ICE lists under no field office"
    elif office is None:
        unplaced = f"ICE's code {row['aor']!r} names no field office in field_offices.csv"
    elif place is None:
        unplaced = "no city is recorded for the office in field-office-places.csv"
    else:
        unplaced = f"its city ({place['city']}, {place['state']}) is not in the gazetteer"
    without = row["facilities_without_adp"]
    return {
        "aor_code": office.code if office else None,
        "aor": office.name if office else row["aor"],
        "adp": row["adp"],
        "facilities": row["facilities"],
        "facilities_without_adp": without,
        "note": (
            f"the sum leaves out {without} of its {row['facilities']} facilities, which have no "
            "population figure" if without else None
        ),
        "lat": point["lat"] if point else None,
        "lon": point["lon"] if point else None,
        "placed_at": place["city"] if point else None,
        "reason": _why_not_drawn(point, unplaced),
    }


def _why_not_drawn(point: dict | None, unplaced: str) -> str | None:
    if point is None:
        return unplaced
    return None if _drawn_by_projection(point) else UNDRAWABLE


def _split(entries: list[dict]) -> tuple[list[dict], list[dict]]:
    """Entries the map draws (without a reason) and those it lists as not drawn (with one)."""
    drawn = [{k: v for k, v in e.items() if k != "reason"} for e in entries if e["reason"] is None]
    return drawn, [e for e in entries if e["reason"] is not None]


def _suppress(
    rows: list[dict], facilities: list[dict], offices: list[dict], k: int
) -> tuple[list[dict], list[dict]]:
    """Hide small facility populations; office totals are the published margins (and cells)."""
    table = pa.table(
        {
            "aor": [row["aor"] or "" for row in rows],
            "name": [row["name"] for row in rows],
            "adp": pa.array([row["adp"] for row in rows], pa.float64()),
        }
    )
    # Published beside the facilities: each office's total and the national total (a facility
    # name is an identifier, not something anyone sums over).
    hidden = disclosure.suppress(table, "adp", ["aor", "name"], k=k, totals=[("aor",), ()])
    small = f"<{k}"
    notes = HIDDEN_NOTES | {small: f"fewer than {k}: hidden in public mode"}
    shown = []
    for facility, row in zip(facilities, hidden.table.to_pylist(), strict=True):
        label = row[disclosure.SUPPRESSION_COLUMN]
        note = notes[label] if label else facility["note"]
        shown.append(facility | {"adp": row["adp"], "suppressed": label, "note": note})
    offices = [
        o | ({"adp": None, "suppressed": small, "note": notes[small]}
             if o["adp"] is not None and 0 < o["adp"] < k else {"suppressed": None})
        for o in offices
    ]
    return shown, offices


def map_spec(data: dict) -> dict:
    """Vega-Lite: state outlines, facility circles and field-office squares sized by population.

    A point with no figure (none printed, or hidden) is drawn at the smallest size, in grey.
    """
    size = {
        "field": "marker_adp",
        "type": "quantitative",
        "scale": {"range": [15, 900]},
        "title": "average daily population",
    }
    no_figure = "datum.adp == null"
    marker_adp = {"calculate": f"{no_figure} ? 0 : datum.adp", "as": "marker_adp"}
    facility_tooltip = ("name", "type", "city", "state", "aor", "adp", "alos", "note",
                        "suppressed", "placed_by")
    office_tooltip = ("aor", "adp", "facilities", "facilities_without_adp", "note", "suppressed",
                      "placed_at")
    return {
        "$schema": charts.SCHEMA,
        "width": "container",
        "height": 520,
        "autosize": {"type": "fit-x", "contains": "padding"},
        "projection": {"type": "albersUsa"},
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
                "transform": [marker_adp, {"calculate": "'/facilities/' + datum.name",
                                           "as": "page"}],
                "mark": {"type": "circle", "opacity": 0.55, "cursor": "pointer"},
                "encoding": {
                    "longitude": {"field": "lon", "type": "quantitative"},
                    "latitude": {"field": "lat", "type": "quantitative"},
                    "size": size,
                    "color": {"condition": {"test": no_figure, "value": "#8c8c8c"},
                              "value": "#1f5f8b"},
                    "tooltip": [{"field": f} for f in facility_tooltip],
                    "href": {"field": "page"},
                },
            },
            {
                "data": {"name": "field_offices", "values": data["field_offices"]},
                "transform": [marker_adp, {"calculate": "'/field-offices/' + datum.aor_code",
                                           "as": "page"}],
                "mark": {"type": "square", "filled": False, "strokeWidth": 2,
                         "cursor": "pointer"},
                "encoding": {
                    "longitude": {"field": "lon", "type": "quantitative"},
                    "latitude": {"field": "lat", "type": "quantitative"},
                    "size": size,
                    "color": {"condition": {"test": no_figure, "value": "#8c8c8c"},
                              "value": "#c0392b"},
                    "tooltip": [{"field": f} for f in office_tooltip],
                    "href": {"field": "page"},
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
