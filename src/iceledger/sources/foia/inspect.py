"""`iceledger inspect FILE`: how iceledger reads each sheet of a FOIA production, and a declared
layout file (iceledger.sources.foia.declared) to edit when it does not.

Per sheet: its title rows, the header row found (or the likeliest one), which headers map to which
canonical column and which do not, and the dataset it loads as, or the closest readings and what
they lack. Nothing is loaded.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from iceledger.errors import IceledgerError, Location, SourceError
from iceledger.sources.foia.layouts import EXTRA_PREFIX, Candidate, Catalog, HeaderMatch
from iceledger.sources.foia.readers import (
    CSV_DELIMITERS,
    WHOLE_SHEET_FORMS,
    WholeSheetReader,
    WorkbookReader,
    XlsxReader,
    csv_head_rows,
    holds_totals,
    ice_sheet_kind,
)
from iceledger.sources.xlsx_files import missing_file

LAYOUT_BANNER = "# iceledger layout file"


@dataclass
class SheetReading:
    name: str | None
    kind: str  # "records", "summary", "notes", "empty", "hidden" or "unrecognised"
    title: list[str] = field(default_factory=list)
    header_row: int | None = None
    headers: list[str] = field(default_factory=list)
    match: HeaderMatch | None = None
    closest: list[str] = field(default_factory=list)  # readings of an unrecognised sheet
    best: Candidate | None = None  # the likeliest reading of an unrecognised sheet


def inspect_file(path: Path, cat: Catalog) -> list[SheetReading]:
    if not path.is_file():
        raise SourceError(Location(path.name), missing_file(path))
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", *WHOLE_SHEET_FORMS):
        reader: WorkbookReader = (XlsxReader(path, cat) if suffix in (".xlsx", ".xlsm")
                                  else WholeSheetReader(path, cat))
        try:
            readings = [_read_sheet(cat, name, reader.head_rows(name))
                        for name in reader.sheet_names]
            # As the load does: a hidden sheet's records are not loaded.
            return [SheetReading(r.name, "hidden") if r.name in reader.hidden_sheets and r.kind
                    in ("records", "unrecognised") else r for r in readings]
        finally:
            reader.close()
    if suffix in (".csv", ".tsv", ".txt"):
        # The first records, title rows above the header included, split by the delimiter that
        # splits them widest.
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            text = handle.read(1 << 16)
        rows = max((csv_head_rows(text, d) for d in CSV_DELIMITERS),
                   key=lambda rows: max(map(len, rows), default=0))
        return [_read_sheet(cat, None, rows, title=path.stem)]
    if suffix in (".parquet", ".pq"):
        return [_read_sheet(cat, None, [pq.read_schema(path).names], title=path.stem)]
    raise IceledgerError(f"{path.name}: cannot inspect {suffix or 'extension-less'} files; "
                         "expected .xlsx, .xls, .xlsb, .ods, .csv or .parquet")


def _read_sheet(cat: Catalog, name: str | None, rows: list[list[object]],
                title: str = "") -> SheetReading:
    texts = [[("" if c is None else str(c)).strip() for c in row] for row in rows]
    if not any(any(row) for row in texts):
        return SheetReading(name, "empty")
    kind = ice_sheet_kind(cat, name or "", rows) if name is not None else None
    if kind is not None:
        return SheetReading(name, kind, title=[" ".join(c for c in r if c) for r in texts[:6]
                                               if any(r)])
    for index, row in enumerate(texts):
        above = " ".join(c for r in texts[:index] for c in r if c) or title
        match = cat.match(row, name, above)
        if match is not None:
            return SheetReading(name, "records", _titles(texts[:index]), index + 1,
                                [c for c in row if c], match)
    if name is not None and holds_totals(cat, rows):
        return SheetReading(name, "summary", title=_titles(texts[:6]))
    index = max(range(len(texts)), key=lambda i: sum(1 for c in texts[i] if c))
    headers = [c for c in texts[index] if c]
    above = " ".join(c for r in texts[:index] for c in r if c) or title
    candidates = cat.candidates(headers, name, above)
    closest = []
    for candidate in candidates[:3]:
        lacking = (f"lacks its date column {candidate.dataset.key_date}" if not
                   candidate.has_key_date else "ties with another reading")
        closest.append(f"{candidate.dataset.name}: maps {len(candidate.mapped)} of "
                       f"{len(headers)} headers, {lacking}")
    return SheetReading(name, "unrecognised", _titles(texts[:index]), index + 1, headers,
                        closest=closest, best=candidates[0] if candidates else None)


def _titles(rows: list[list[str]]) -> list[str]:
    return [" ".join(c for c in row if c) for row in rows if any(row)]


def describe(path: Path, readings: list[SheetReading]) -> list[str]:
    """What `iceledger inspect` prints before the layout file."""
    lines = [f"{path.name}"]
    for reading in readings:
        where = f"sheet {reading.name!r}" if reading.name is not None else "file"
        if reading.kind in ("empty", "hidden"):
            lines.append(f"{where}: " + ("empty" if reading.kind == "empty" else
                                         "hidden in the workbook, so not loaded"))
            continue
        if reading.kind in ("summary", "notes"):
            label = "ICE's summary (totals per fiscal year, compared with the records)" if (
                reading.kind == "summary") else "notes (stored with the release)"
            lines.append(f"{where}: {label}")
            lines.extend(f"  | {t[:100]}" for t in reading.title[:3])
            continue
        if reading.match is not None:
            match = reading.match
            how = ("by its vocabulary" if match.by_vocabulary
                   else f"as layout {match.layout.name}")
            lines.append(f"{where}: header row {reading.header_row}; loads as "
                         f"{match.dataset.name} ({how}) into {match.dataset.table}")
            lines.extend(f"  title: {t[:100]}" for t in reading.title)
            pairs = [(raw, name) for raw, name in zip(match.raw_headers, match.canonical,
                                                      strict=True) if raw]
            lines.extend(f"  {raw} -> {name}" for raw, name in pairs
                         if not name.startswith(EXTRA_PREFIX))
            kept = [raw for raw, name in pairs if name.startswith(EXTRA_PREFIX)]
            if kept:
                lines.append(f"  not mapped (kept in `extras`): {', '.join(kept)}")
        else:
            lines.append(f"{where}: not recognised; likeliest header row {reading.header_row} "
                         f"({len(reading.headers)} headers)")
            lines.extend(f"  title: {t[:100]}" for t in reading.title)
            lines.extend(f"  closest {c}" for c in reading.closest)
            if reading.best is not None:
                lines.append(f"  as {reading.best.dataset.name}:")
                lines.extend(f"  {raw} -> {name}" for raw, name in reading.best.mapped.items())
                if reading.best.unmapped:
                    lines.append(f"  not mapped: {', '.join(reading.best.unmapped)}")
    return lines


def layout_file(path: Path, readings: list[SheetReading]) -> str:
    """A declared layout for the file's record sheets, as they read now: blanks to fill in."""
    out = [f"{LAYOUT_BANNER} for {path.name}: fill in the empty names, then run",
           f"#   iceledger ingest foia {shlex.quote(path.name)} --layout THIS_FILE.toml",
           "# Datasets: arrests, stints, removals, detainers, encounters. Canonical columns:",
           "# docs/codebook.md (\"FOIA records\"). A column left \"\" is kept in `extras`.",
           "date_formats = []  # e.g. [\"%d.%m.%Y\"], for dates written as text",
           "redactions = []  # cell texts that mean withheld, besides (b)(6)-style markers", ""]
    for reading in readings:
        if reading.kind not in ("records", "unrecognised"):
            continue
        match = reading.match
        dataset = match.dataset.name if match is not None else ""
        if match is not None:
            mapping = {raw: name for raw, name in zip(match.raw_headers, match.canonical,
                                                      strict=True) if raw}
        else:
            known = reading.best.mapped if reading.best is not None else {}
            mapping = {h: known.get(h, "") for h in reading.headers}
        out.append("[[sheets]]")
        out.append(f"dataset = {json.dumps(dataset)}")
        if reading.name is not None:
            pattern = "^" + re.escape(reading.name).replace("\\ ", " ") + "$"
            out.append(f"sheet = {json.dumps(pattern)}")
        else:
            out.append(f"headers = {json.dumps(reading.headers[:3])}")
        out.append("[sheets.columns]")
        for raw, name in mapping.items():
            name = "" if name.startswith(EXTRA_PREFIX) else name
            out.append(f"{json.dumps(raw)} = {json.dumps(name)}")
        out.append("")
    return "\n".join(out)

