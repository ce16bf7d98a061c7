"""Declared layouts: a user's small TOML file for a production in a layout iceledger does not know
(`iceledger ingest foia PATH --layout FILE`; `iceledger inspect FILE` prints one to edit).

    date_formats = ["%d.%m.%Y"]    # text dates, tried before those foia_layouts.toml lists
    redactions = ["WITHHELD"]      # cell texts that are redactions, besides exemption markers

    [[sheets]]
    dataset = "arrests"            # arrests, stints, removals, detainers or encounters
    sheet = "Arrests"              # a regular expression the sheet's name must contain, and/or
    headers = ["Arrest Date"]      # headers the header row must hold
    [sheets.columns]               # header as ICE wrote it -> canonical column
    "Arrest Date" = "apprehension_date"
    "Site" = ""                    # left blank: kept in the row's `extras`

A declared sheet is read as its dataset whatever its vocabulary says, as long as its key date maps;
its columns win over the vocabulary's.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from pathlib import Path

from iceledger.errors import IceledgerError
from iceledger.sources.foia.layouts import Catalog, DeclaredSheet, catalog
from iceledger.sources.stats.cells import snake_case

_KEYS = {"sheets", "date_formats", "redactions"}
_SHEET_KEYS = {"dataset", "sheet", "headers", "columns"}


def declared_catalog(path: Path, base: Catalog | None = None) -> Catalog:
    """The catalogue with a declared layout file added; one clear line for any mistake in it."""
    base = base or catalog()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IceledgerError(f"{path}: cannot read the layout file ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise IceledgerError(f"{path}: not a TOML layout file ({exc})") from None
    _no_unknown(path, "the layout file", data, _KEYS)
    sheets, columns = [], {}
    for number, spec in enumerate(data.get("sheets", []), start=1):
        where = f"{path}: [[sheets]] entry {number}"
        if not isinstance(spec, dict):
            raise IceledgerError(f"{where}: not a table")
        _no_unknown(path, f"[[sheets]] entry {number}", spec, _SHEET_KEYS)
        dataset = spec.get("dataset")
        if dataset not in base.datasets:
            raise IceledgerError(f"{where}: dataset {dataset!r} is none of "
                                 f"{', '.join(base.datasets)}")
        if "sheet" not in spec and "headers" not in spec:
            raise IceledgerError(f"{where}: say which sheets it is for: `sheet` (a pattern of "
                                 "the sheet's name) or `headers` (headers it holds), or both")
        try:
            pattern = re.compile(spec["sheet"], re.IGNORECASE) if "sheet" in spec else None
        except (re.error, TypeError) as exc:
            raise IceledgerError(f"{where}: sheet {spec['sheet']!r} is not a pattern ({exc})"
                                 ) from None
        for header, canonical in dict(spec.get("columns", {})).items():
            if canonical == "":
                continue  # left blank: the column is kept in `extras`
            if not isinstance(canonical, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", canonical):
                raise IceledgerError(f"{where}: column {header!r} must map to a snake_case "
                                     f"canonical name, not {canonical!r}")
            columns[snake_case(header)] = canonical
        sheets.append(DeclaredSheet(dataset, pattern,
                                    frozenset(snake_case(str(h)) for h in spec.get("headers", ()))))
    formats = _texts(path, data, "date_formats")
    redactions = _texts(path, data, "redactions")
    vocabulary = replace(base.vocabulary, declared=tuple(sheets), declared_columns=columns)
    return replace(base, vocabulary=vocabulary,
                   # Tried first: the file's own form decides "3/6/2025" (day first or not).
                   datetime_formats=(*formats, *base.datetime_formats),
                   redaction_markers=(*base.redaction_markers, *redactions))


def _texts(path: Path, data: dict, key: str) -> tuple[str, ...]:
    values = data.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise IceledgerError(f"{path}: {key} must be a list of texts")
    return tuple(values)


def _no_unknown(path: Path, where: str, data: dict, known: set[str]) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise IceledgerError(f"{path}: {where} has unknown key(s) {', '.join(unknown)} (known: "
                             f"{', '.join(sorted(known))})")
