"""The FOIA layout catalogue: which header row is which dataset and release layout, and how each
raw column maps onto the canonical schema (docs/codebook.md, "FOIA records").

All of it is read from src/iceledger/data/layouts/foia_layouts.toml; this module only indexes it. A header
row is matched after snake_casing, so ICE's verbatim headers ("Book In Date Time") and the
Deportation Data Project's processed parquet columns ("book_in_date_time") are recognised alike.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from iceledger.sources.stats.cells import snake_case

CANONICAL_TYPES = ("timestamp", "date", "integer", "decimal", "yes_no", "criminality", "aor")


@dataclass(frozen=True)
class DerivedColumn:
    """A column computed from another through a value map (e.g. arrest_setting)."""

    column: str
    source: str
    values: dict[str, str]
    otherwise: str


@dataclass(frozen=True)
class Dataset:
    name: str
    table: str
    key_date: str
    renames: dict[str, str]  # snake_case raw header -> canonical name
    derived: tuple[DerivedColumn, ...]

    def canonical_name(self, raw_header: str) -> str:
        key = snake_case(raw_header)
        return self.renames.get(key, key)


@dataclass(frozen=True)
class Layout:
    name: str
    dataset: Dataset
    title_rows: int
    headers: tuple[str, ...]  # verbatim, as ICE writes them

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(snake_case(h) for h in self.headers)


@dataclass(frozen=True)
class HeaderMatch:
    """A header row recognised as a layout, with the canonical name of each of its columns."""

    layout: Layout
    raw_headers: tuple[str, ...]
    canonical: tuple[str, ...]

    @property
    def dataset(self) -> Dataset:
        return self.layout.dataset


@dataclass(frozen=True)
class Catalog:
    layouts: tuple[Layout, ...]
    datasets: dict[str, Dataset]
    types: dict[str, str]  # canonical column -> one of CANONICAL_TYPES
    redaction_markers: tuple[str, ...]
    datetime_formats: tuple[str, ...]
    excel_epoch: str
    yes_no: dict[str, bool]
    criminality: dict[str, str]
    release_date_pattern: re.Pattern
    fiscal_years_pattern: re.Pattern
    synthetic_marker: str

    def match(self, row: Sequence[object]) -> HeaderMatch | None:
        """The layout a header row belongs to, or None if the row is not a known header row."""
        cells = [("" if c is None else str(c)).strip() for c in row]
        while cells and not cells[-1]:
            cells.pop()
        keys = {snake_case(c) for c in cells if c}
        candidates = [layout for layout in self.layouts if layout.keys <= keys]
        if not candidates:
            return None
        layout = max(candidates, key=lambda candidate: len(candidate.keys))
        return HeaderMatch(layout, tuple(cells),
                           tuple(layout.dataset.canonical_name(c) if c else "" for c in cells))

    def closest(self, row: Sequence[object]) -> tuple[Layout, list[str]]:
        """The layout a near-miss header row resembles most, and the headers it lacks."""
        keys = {snake_case(str(c)) for c in row if c not in (None, "")}
        layout = max(self.layouts, key=lambda candidate: len(candidate.keys & keys))
        return layout, [h for h in layout.headers if snake_case(h) not in keys]


@cache
def catalog() -> Catalog:
    text = resources.files("iceledger.data").joinpath("layouts", "foia_layouts.toml").read_text("utf-8")
    return parse_catalog(tomllib.loads(text))


def parse_catalog(data: dict) -> Catalog:
    """Build the catalogue from the TOML document, rejecting contradictions in it."""
    value_maps = data["values"]
    datasets = {
        name: Dataset(
            name=name,
            table=spec["table"],
            key_date=spec["key_date"],
            renames={snake_case(raw): canonical for raw, canonical in spec["columns"].items()},
            derived=tuple(
                DerivedColumn(d["column"], d["from"], value_maps[d["values"]], d["otherwise"])
                for d in spec.get("derived", ())
            ),
        )
        for name, spec in data["datasets"].items()
    }
    types: dict[str, str] = {}
    for type_name, columns in data["types"].items():
        if type_name not in CANONICAL_TYPES:
            raise ValueError(f"foia_layouts.toml: unknown type {type_name!r}")
        for column in columns:
            if column in types:
                raise ValueError(f"foia_layouts.toml: {column!r} has two types")
            types[column] = type_name
    by_name: dict[str, Layout] = {}
    for spec in data["layouts"]:
        headers = spec.get("headers")
        if "like" in spec:
            renamed = spec.get("renamed", {})
            headers = [renamed.get(h, h) for h in by_name[spec["like"]].headers]
        layout = Layout(spec["name"], datasets[spec["dataset"]], spec["title_rows"], tuple(headers))
        canonical = [layout.dataset.canonical_name(h) for h in layout.headers]
        clashes = sorted({c for c in canonical if canonical.count(c) > 1})
        if clashes:
            raise ValueError(f"foia_layouts.toml: layout {layout.name} maps two headers to {clashes}")
        by_name[layout.name] = layout
    file_names = data["file_names"]
    return Catalog(
        layouts=tuple(by_name.values()),
        datasets=datasets,
        types=types,
        redaction_markers=tuple(data["redaction_markers"]),
        datetime_formats=tuple(data["datetime_formats"]),
        excel_epoch=data["excel_epoch"],
        yes_no=dict(value_maps["yes_no"]),
        criminality=dict(value_maps["criminality"]),
        release_date_pattern=re.compile(file_names["release_date"]),
        fiscal_years_pattern=re.compile(file_names["fiscal_years"]),
        synthetic_marker=file_names["synthetic_marker"],
    )
