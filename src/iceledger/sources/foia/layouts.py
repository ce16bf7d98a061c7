"""The FOIA layout catalogue: which header row is which dataset and release layout, and how each
raw column maps onto the canonical schema (docs/codebook.md, "FOIA records").

All of it is read from src/iceledger/data/layouts/foia_layouts.toml (the release layouts known
whole) and foia_vocabulary.toml (header spellings, for layouts not known whole); this module only
indexes them. A header row is matched after snake_casing, so ICE's verbatim headers ("Book In Date
Time") and the Deportation Data Project's processed parquet columns ("book_in_date_time") are
recognised alike. A header row no listed layout holds is read by its vocabulary (`Catalog.match`),
and a user's declared layout file (iceledger.sources.foia.declared) adds to both.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources

from iceledger.sources.stats.cells import snake_case

CANONICAL_TYPES = ("timestamp", "date", "integer", "decimal", "yes_no", "criminality", "aor",
                   "gender", "country")


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


EXTRA_PREFIX = "extra:"  # canonical name of a column kept verbatim in the row's `extras`


@dataclass(frozen=True)
class HeaderMatch:
    """A header row recognised as a layout, with the canonical name of each of its columns
    (a column the vocabulary does not know is named EXTRA_PREFIX + its header)."""

    layout: Layout
    raw_headers: tuple[str, ...]
    canonical: tuple[str, ...]
    by_vocabulary: bool = False  # recognised word by word, not as a layout listed whole

    @property
    def dataset(self) -> Dataset:
        return self.layout.dataset


@dataclass(frozen=True)
class Candidate:
    """How a header row reads as one dataset: what it maps and what it lacks."""

    dataset: Dataset
    mapped: dict[str, str]  # raw header -> canonical column, for the headers this dataset knows
    unmapped: tuple[str, ...]
    has_key_date: bool
    hinted: int  # 2: the sheet's name names the dataset; 1: its title rows do; 0: neither
    distinguishing: tuple[str, ...]


@dataclass(frozen=True)
class Vocabulary:
    """Header spellings -> canonical columns, and what makes a header row a dataset."""

    columns: dict[str, str]  # header_key(spelling) -> canonical column
    min_columns: int
    hints: dict[str, tuple[str, ...]]
    distinguishing: dict[str, tuple[str, ...]]
    summary_names: tuple[str, ...]
    notes_names: tuple[str, ...]
    summary_header: str
    fiscal_year: re.Pattern
    updated_through: re.Pattern
    compare: dict[str, str]
    identifier_columns: tuple[str, ...]
    placeholder_min_rows: int
    placeholder_min_days: int
    # Declared layouts (a user's --layout file): sheet-name or header matches forcing a dataset,
    # and header -> canonical column mappings that win over every other.
    declared: tuple[DeclaredSheet, ...] = ()
    declared_columns: dict[str, str] = field(default_factory=dict)
    header_rewrites: tuple[tuple[re.Pattern, str], ...] = ()

    def column(self, header: str) -> str | None:
        """The canonical column a header spells, if the vocabulary knows it, perhaps once a
        note in parentheses at its end is dropped ("Arrest Date (MM/DD/YYYY)")."""
        found = self.columns.get(header_key(self.header_rewrites, header))
        if found is None and header.rstrip().endswith(")"):
            bare = _TRAILING_NOTE.sub("", header)
            found = self.columns.get(header_key(self.header_rewrites, bare)) if bare else None
        return found


def header_key(rewrites: Sequence[tuple[re.Pattern, str]], header: str) -> str:
    """A header as the vocabulary's spellings are looked up: snake_cased, its words joined as
    the spellings join them ("date_and_time" -> "date_time")."""
    key = snake_case(header)
    for pattern, replacement in rewrites:
        key = pattern.sub(replacement, key)
    return key


_TRAILING_NOTE = re.compile(r"\s*\([^()]*\)\s*$")


@dataclass(frozen=True)
class DeclaredSheet:
    dataset: str
    sheet: re.Pattern | None
    headers: frozenset[str]  # snake_case headers the row must hold


def hint_level(words: tuple[str, ...], sheet_name: str | None, title: str) -> int:
    """2 when the sheet's name holds one of the words, 1 when its title rows do, else 0."""
    def names(text: str) -> bool:
        text = " " + re.sub(r"[^0-9a-z-]+", " ", text.casefold()) + " "
        return any(f" {word} " in text for word in words)

    if sheet_name and names(sheet_name):
        return 2
    return 1 if title and names(title) else 0


@dataclass(frozen=True)
class Catalog:
    layouts: tuple[Layout, ...]
    datasets: dict[str, Dataset]
    types: dict[str, str]  # canonical column -> one of CANONICAL_TYPES
    redaction_markers: tuple[str, ...]
    empty_markers: tuple[str, ...]  # whole cells that hold nothing (an export's NULL)
    redaction_pattern: re.Pattern
    totals_label: re.Pattern  # a whole cell that labels a row of totals (no record)
    datetime_formats: tuple[str, ...]
    excel_epoch: str
    yes_no: dict[str, bool]
    criminality: dict[str, str]
    gender: dict[str, str]
    release_date_pattern: re.Pattern
    fiscal_years_pattern: re.Pattern
    synthetic_marker: str
    vocabulary: Vocabulary

    def match(self, row: Sequence[object], sheet_name: str | None = None,
              title: str = "") -> HeaderMatch | None:
        """The layout a header row belongs to, or None if the row is not a known header row.

        A layout listed whole wins (the Deportation Data Project's releases); otherwise the row
        is read by its vocabulary (`candidates`), helped by the sheet's name and title rows."""
        cells = _cells(row)
        keys = {snake_case(c) for c in cells if c}
        candidates = [layout for layout in self.layouts if layout.keys <= keys]
        if candidates:
            layout = max(candidates, key=lambda candidate: len(candidate.keys))
            return HeaderMatch(layout, tuple(cells),
                               tuple(layout.dataset.canonical_name(c) if c else "" for c in cells))
        chosen = self.recognise(cells, sheet_name, title)
        if chosen is None:
            return None
        canonical = tuple(chosen.mapped.get(c, EXTRA_PREFIX + c) if c else "" for c in cells)
        layout = Layout(f"vocabulary:{chosen.dataset.name}", chosen.dataset, 0,
                        tuple(c for c in cells if c))
        return HeaderMatch(layout, tuple(cells), canonical, by_vocabulary=True)

    def recognise(self, cells: Sequence[str], sheet_name: str | None,
                  title: str) -> Candidate | None:
        """The dataset a header row reads as by its vocabulary, or None when none or several."""
        cells = _cells(cells)
        if len([c for c in cells if c]) < self.vocabulary.min_columns:
            return None
        keys = {snake_case(c) for c in cells if c}
        for declared in self.vocabulary.declared:
            named = declared.sheet is not None and sheet_name is not None and bool(
                declared.sheet.search(sheet_name))
            if (named or declared.sheet is None) and declared.headers <= keys:
                chosen = self.candidate(self.datasets[declared.dataset], cells, sheet_name, title)
                if chosen.has_key_date:
                    return chosen
        readings = self.candidates(cells, sheet_name, title)
        # A sheet or file named for a dataset is read as that dataset or not at all: an arrests
        # file that lacks its date column must not load as removals because it has theirs.
        named = max(c.hinted for c in readings)
        found = [c for c in readings if c.has_key_date and c.hinted == named]
        if not found:
            return None
        rank = [(c.hinted, len(c.distinguishing)) for c in found]
        best = max(rank)
        if rank.count(best) > 1 or len(found[rank.index(best)].mapped) < (
                self.vocabulary.min_columns):
            return None
        return found[rank.index(best)]

    def candidates(self, row: Sequence[object], sheet_name: str | None = None,
                   title: str = "") -> list[Candidate]:
        """The header row read as each dataset, most plausible first."""
        found = [self.candidate(d, row, sheet_name, title) for d in self.datasets.values()]
        return sorted(found, key=lambda c: (c.has_key_date, c.hinted, len(c.distinguishing),
                                            len(c.mapped)), reverse=True)

    def candidate(self, dataset: Dataset, row: Sequence[object], sheet_name: str | None,
                  title: str) -> Candidate:
        """The header row read as one dataset: each header by the dataset's own renames, then
        the vocabulary, then as a canonical name itself."""
        cells = [c for c in _cells(row) if c]
        mapped: dict[str, str] = {}
        for cell in cells:
            key = snake_case(cell)
            name = (self.vocabulary.declared_columns.get(key) or dataset.renames.get(key)
                    or self.vocabulary.column(cell) or key)
            if name in self.known_columns and name not in mapped.values():
                mapped[cell] = name
        names = set(mapped.values())
        return Candidate(
            dataset, mapped, tuple(c for c in cells if c not in mapped),
            dataset.key_date in names,
            hint_level(self.vocabulary.hints.get(dataset.name, ()), sheet_name, title),
            tuple(c for c in self.vocabulary.distinguishing.get(dataset.name, ()) if c in names))

    @cached_property
    def known_columns(self) -> frozenset[str]:
        """Every canonical column name: the vocabulary's, the datasets' renames, the typed ones
        and those of the layouts listed whole."""
        names = (set(self.vocabulary.columns.values()) | set(self.types)
                 | set(self.vocabulary.declared_columns.values()))
        for dataset in self.datasets.values():
            names |= set(dataset.renames.values())
            names.add(dataset.key_date)
        for layout in self.layouts:
            names |= {layout.dataset.canonical_name(h) for h in layout.headers}
        return frozenset(names)

    def closest(self, row: Sequence[object]) -> tuple[Layout, list[str]]:
        """The layout a near-miss header row resembles most, and the headers it lacks."""
        keys = {snake_case(str(c)) for c in row if c not in (None, "")}
        layout = max(self.layouts, key=lambda candidate: len(candidate.keys & keys))
        return layout, [h for h in layout.headers if snake_case(h) not in keys]

    def is_redaction(self, text: str) -> bool:
        return text in self.redaction_markers or bool(self.redaction_pattern.fullmatch(text))


def _cells(row: Sequence[object]) -> list[str]:
    cells = [("" if c is None else str(c)).strip() for c in row]
    while cells and not cells[-1]:
        cells.pop()
    return cells


@cache
def catalog() -> Catalog:
    folder = resources.files("iceledger.data").joinpath("layouts")
    return parse_catalog(tomllib.loads(folder.joinpath("foia_layouts.toml").read_text("utf-8")),
                         tomllib.loads(folder.joinpath("foia_vocabulary.toml").read_text("utf-8")))


def parse_vocabulary(data: dict) -> Vocabulary:
    rewrites = tuple((re.compile(pattern), replacement)
                     for pattern, replacement in data["header_rewrites"].items())
    columns: dict[str, str] = {}
    for canonical, spellings in data["columns"].items():
        for spelling in spellings:
            key = header_key(rewrites, spelling)
            if columns.setdefault(key, canonical) != canonical:
                raise ValueError(f"foia_vocabulary.toml: {spelling!r} names both "
                                 f"{columns[key]!r} and {canonical!r}")
    recognition, sheets, guard = data["recognition"], data["ice_sheets"], data["placeholder_guard"]
    return Vocabulary(
        columns=columns,
        min_columns=recognition["min_columns"],
        hints={k: tuple(v) for k, v in recognition["hints"].items()},
        distinguishing={k: tuple(v) for k, v in recognition["distinguishing"].items()},
        summary_names=tuple(sheets["summary"]),
        notes_names=tuple(sheets["notes"]),
        summary_header=sheets["header_first_cell"],
        fiscal_year=re.compile(sheets["fiscal_year"], re.IGNORECASE),
        updated_through=re.compile(sheets["updated_through"]),
        compare=dict(sheets["compare"]),
        identifier_columns=tuple(guard["identifiers"]),
        placeholder_min_rows=guard["min_rows"],
        placeholder_min_days=guard["min_days"],
        header_rewrites=rewrites,
    )


def redaction_regex(marker: str, words: str) -> re.Pattern:
    """Whole cells made of FOIA exemption markers joined by commas, spaces or "and", perhaps
    with `words` before or after them ("REDACTED - b6"), or of the word "redacted" alone, in
    brackets or other marks around them ("*REDACTED*")."""
    markers = rf"{marker}(?:\s*(?:[,;/&+]|\band\b)?\s*{marker})*"
    gap = r"[\s:,;.\-]*"
    core = rf"(?:(?:{words}){gap})*{markers}(?:{gap}(?:{words}))*|redacted"
    return re.compile(rf"[\s(\[<*\-（\"']*(?:{core})[\s)\]>*\-.,;:）\"']*", re.IGNORECASE)


def parse_catalog(data: dict, vocabulary: dict) -> Catalog:
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
        empty_markers=tuple(data["empty_markers"]),
        redaction_pattern=redaction_regex(data["redaction_marker_pattern"],
                                          data["redaction_word_pattern"]),
        totals_label=re.compile(data["totals_label_pattern"], re.IGNORECASE),
        datetime_formats=tuple(data["datetime_formats"]),
        excel_epoch=data["excel_epoch"],
        yes_no=dict(value_maps["yes_no"]),
        criminality=dict(value_maps["criminality"]),
        gender=dict(value_maps["gender"]),
        release_date_pattern=re.compile(file_names["release_date"]),
        fiscal_years_pattern=re.compile(file_names["fiscal_years"]),
        synthetic_marker=file_names["synthetic_marker"],
        vocabulary=parse_vocabulary(vocabulary),
    )
