"""Dated, sourced public facts: arrest targets, events, the claims register, deaths in custody.

Each is a CSV shipped in src/iceledger/data/facts/ (targets.csv, events.csv, claims.csv), one row per
fact with its source. Reports disagree and get revised, so a user can replace any of the files: put
a file of the same name in a directory given by `--facts DIR` or `$ICELEDGER_FACTS_DIR`; files
missing there fall back to the shipped ones. Every file is validated when read, and a bad value is
reported as one line naming the file, the row and the column.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, timedelta
from importlib import resources
from importlib.abc import Traversable
from itertools import pairwise
from pathlib import Path

import pyarrow as pa

from iceledger.errors import IceledgerError, Location, SourceError

FACTS_ENV = "ICELEDGER_FACTS_DIR"

_facts_dir: ContextVar[Path | None] = ContextVar("facts_dir", default=None)


@contextmanager
def facts_dir(path: Path | None) -> Iterator[None]:
    """Read facts files from `path` (where present) while the block runs; None changes nothing."""
    if path is not None and not path.is_dir():
        raise IceledgerError(f"{path}: facts directory not found")
    token = _facts_dir.set(path)
    try:
        yield
    finally:
        _facts_dir.reset(token)


def facts_file(name: str) -> Traversable:
    """The file a fact table is read from: the user's override if there is one, else the shipped."""
    from_env = Path(os.environ[FACTS_ENV]) if os.environ.get(FACTS_ENV) else None
    override = _facts_dir.get() or from_env
    if override is not None and (override / name).is_file():
        return override / name
    return resources.files("iceledger.data").joinpath("facts", name)


@dataclass(frozen=True)
class FuzzyDate:
    """A date as precise as the source gives it: a day, a month or a year (first day stands in)."""

    start: date
    precision: str  # "day", "month" or "year"

    def __str__(self) -> str:
        return self.start.isoformat()[: {"day": 10, "month": 7, "year": 4}[self.precision]]


@dataclass(frozen=True)
class Target:
    target_id: str
    effective_from: date
    effective_to: date | None  # inclusive; None while the target is still in force
    date_note: str
    scope: str  # "national" or "field_office"
    arrests_per_day: float
    status: str  # "primary" (the timeline) or "alternative" (a competing report, shown beside it)
    description: str
    source: str
    source_date: date
    url: str
    line: int


@dataclass(frozen=True)
class Event:
    date: FuzzyDate
    event: str
    kind: str
    confirmed: bool
    source: str
    url: str
    line: int


@dataclass(frozen=True)
class Claim:
    claim_id: str
    date: FuzzyDate
    who: str
    wording: str
    source: str
    url: str
    metric: str  # empty when no metric can test the claim yet
    period_start: date
    period_end: date | None  # None: through the end of the data
    claimed_value: float | None  # None: a claim with no figure in it
    claimed_definition: str | None  # a key of CLAIM_DEFINITIONS; None with no figure
    note: str
    line: int


@dataclass(frozen=True)
class DeathCount:
    """Deaths in ICE custody over a period (a fiscal year, or several), as one source counts
    them."""

    period_start: date
    period_end: date
    deaths: int
    status: str  # "primary" (one per period) or "alternative" (a competing count, shown beside it)
    counted_by: str
    source: str
    title: str
    url: str
    source_date: FuzzyDate | None
    quote: str  # the source's words stating the figure
    note: str
    line: int


# What a claimed figure measures; the register shows the observed value under each of them.
CLAIM_DEFINITIONS = {
    "convicted": "convicted only",
    "convicted_or_pending": "convicted or pending charges (the official 'criminal')",
    "no_conviction": "no conviction (pending charges or neither)",
    "no_conviction_no_charge": "no conviction and no pending charge",
    "violent_conviction": "convicted, most serious charge classed violent (book-ins only)",
    "count": "number of records",
    "detainers_declined": "detainers the holding agency released or declined, of all detainers",
    "deaths_per_100k_bed_days": "deaths in custody per 100,000 detention bed-days",
}
# Claimed figures that are rates, neither shares (at most 1) nor counts.
RATE_DEFINITIONS = ("deaths_per_100k_bed_days",)


def _fuzzy_date(text: str) -> FuzzyDate:
    for pattern, precision, fmt in (
        (r"\d{4}-\d{2}-\d{2}", "day", "{}"),
        (r"\d{4}-\d{2}", "month", "{}-01"),
        (r"\d{4}", "year", "{}-01-01"),
    ):
        if re.fullmatch(pattern, text):
            return FuzzyDate(_day(fmt.format(text), shown=text), precision)
    raise ValueError(f"{text!r} is not a date (YYYY-MM-DD, YYYY-MM or YYYY)")


def _day(text: str, shown: str | None = None) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{shown or text!r} is not a date (YYYY-MM-DD): {exc}") from None


def _optional(parse: Callable[[str], object]) -> Callable[[str], object]:
    return lambda text: parse(text) if text else None


def _required(text: str) -> str:
    if not text:
        raise ValueError("is empty")
    return text


def _one_of(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _count(text: str) -> int:
    if not re.fullmatch(r"\d+", text):
        raise ValueError(f"{text!r} is not a whole number of 0 or more")
    return int(text)


def _positive(text: str) -> float:
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{text!r} is not positive")
    return value


def _claimed_value(text: str) -> float | None:
    if not text:
        return None
    if text.endswith("%"):
        return _positive(text[:-1]) / 100
    return _positive(text)


def _yes_no(text: str) -> bool:
    return _one_of("yes", "no")(text) == "yes"


def _text(text: str) -> str:
    return text


def _read(name: str, columns: dict[str, Callable[[str], object]], record: type) -> list:
    """Parse every row of one facts file; the first bad value stops with file, row and column."""
    source = facts_file(name)
    with source.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in columns if c not in header]
        unknown = [c for c in header if c not in columns]
        if missing or unknown:
            problems = [f"missing column(s) {', '.join(missing)}"] if missing else []
            problems += [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
            raise SourceError(
                Location(str(source), row=1),
                f"{'; '.join(problems)} (expected: {', '.join(columns)})",
            )
        rows = []
        for raw in reader:
            values = {}
            for column, parse in columns.items():
                try:
                    values[column] = parse((raw[column] or "").strip())
                except ValueError as exc:
                    raise SourceError(
                        Location(str(source), row=reader.line_num), f"column {column!r}: {exc}"
                    ) from None
            rows.append(record(**values, line=reader.line_num))
    return rows


def _fail(name: str, line: int, problem: str) -> SourceError:
    return SourceError(Location(str(facts_file(name)), row=line), problem)


def _check_unique(name: str, rows: list, key: str) -> None:
    seen: set[str] = set()
    for row in rows:
        value = getattr(row, key)
        if value in seen:
            raise _fail(name, row.line, f"{key} {value!r} appears more than once")
        seen.add(value)


def load_targets() -> list[Target]:
    """The arrest-target timeline; primary targets may not overlap in time."""
    name = "targets.csv"
    targets = _read(
        name,
        {
            "target_id": _required,
            "effective_from": _day,
            "effective_to": _optional(_day),
            "date_note": _text,
            "scope": _one_of("national", "field_office"),
            "arrests_per_day": _positive,
            "status": _one_of("primary", "alternative"),
            "description": _required,
            "source": _required,
            "source_date": _day,
            "url": _text,
        },
        Target,
    )
    _check_unique(name, targets, "target_id")
    for target in targets:
        if target.effective_to and target.effective_to < target.effective_from:
            raise _fail(name, target.line, "effective_to is before effective_from")
    primary = sorted((t for t in targets if t.status == "primary"), key=lambda t: t.effective_from)
    for earlier, later in pairwise(primary):
        if earlier.effective_to is None or earlier.effective_to >= later.effective_from:
            raise _fail(
                name,
                later.line,
                f"primary target {later.target_id!r} starts while primary target "
                f"{earlier.target_id!r} (row {earlier.line}) is still in force; end the earlier "
                "one first (effective_to) or mark one of them alternative",
            )
    return targets


def load_events() -> list[Event]:
    name = "events.csv"
    return _read(
        name,
        {
            "date": _fuzzy_date,
            "event": _required,
            "kind": _required,
            "confirmed": _yes_no,
            "source": _required,
            "url": _text,
        },
        Event,
    )


def load_claims() -> list[Claim]:
    name = "claims.csv"
    claims = _read(
        name,
        {
            "claim_id": _required,
            "date": _fuzzy_date,
            "who": _required,
            "wording": _required,
            "source": _required,
            "url": _text,
            "metric": _text,
            "period_start": _day,
            "period_end": _optional(_day),
            "claimed_value": _claimed_value,
            "claimed_definition": _optional(_one_of(*CLAIM_DEFINITIONS)),
            "note": _text,
        },
        Claim,
    )
    _check_unique(name, claims, "claim_id")
    for claim in claims:
        if (claim.claimed_value is None) != (claim.claimed_definition is None):
            raise _fail(name, claim.line, "claimed_value and claimed_definition go together: "
                        "give both or neither")
        if claim.period_end and claim.period_end < claim.period_start:
            raise _fail(name, claim.line, "period_end is before period_start")
        if (
            claim.claimed_definition not in (None, "count", *RATE_DEFINITIONS)
            and claim.claimed_value is not None
            and claim.claimed_value > 1
        ):
            raise _fail(name, claim.line, f"claimed share {claim.claimed_value} is above 1 "
                        "(write 0.75 or 75%)")
    return claims


def load_deaths() -> list[DeathCount]:
    """Deaths in ICE custody per period, each with the words and address of its source; primary
    counts may not overlap in time, and each quote must state its figure."""
    name = "deaths.csv"
    counts = _read(
        name,
        {
            "period_start": _day,
            "period_end": _day,
            "deaths": _count,
            "status": _one_of("primary", "alternative"),
            "counted_by": _required,
            "source": _required,
            "title": _required,
            "url": _required,
            "source_date": _optional(_fuzzy_date),
            "quote": _required,
            "note": _text,
        },
        DeathCount,
    )
    for count in counts:
        if count.period_end < count.period_start:
            raise _fail(name, count.line, "period_end is before period_start")
        if not re.search(rf"(?<![\d,]){count.deaths}(?![\d,])", count.quote):
            raise _fail(name, count.line, f"the quote does not state the figure {count.deaths}")
    primary = sorted((c for c in counts if c.status == "primary"), key=lambda c: c.period_start)
    for earlier, later in pairwise(primary):
        if later.period_start <= earlier.period_end:
            raise _fail(name, later.line, f"primary count for {later.period_start}.."
                        f"{later.period_end} overlaps the one of row {earlier.line}; mark one of "
                        "them alternative")
    return counts


# The end of a timeline row that is still in force.
FAR_FUTURE = date(9999, 12, 31)


def load_timeline(file_name: str, value_column: str) -> pa.Table:
    """A dated, sourced facts file (effective_from, value_column, basis, source, source_date,
    note) as intervals: each row holds from its effective_from to the day before the next row's,
    the last one on. An empty value means "no sourced figure from this date".

    Like every facts file: the user's copy in --facts DIR or $ICELEDGER_FACTS_DIR if there is
    one, else the shipped one; a bad value names file, row and column.
    """
    rows = _read(
        file_name,
        {
            "effective_from": _day,
            value_column: _optional(_positive),
            "basis": _required,
            "source": _required,
            "source_date": _optional(_fuzzy_date),
            "note": _text,
        },
        dict,
    )
    rows.sort(key=lambda row: row["effective_from"])
    for earlier, later in zip(rows, rows[1:]):
        if earlier["effective_from"] == later["effective_from"]:
            raise _fail(file_name, later["line"], "two rows share one effective_from date")
    if not rows:
        raise _fail(file_name, 1, "no rows")
    starts = [row["effective_from"] for row in rows]
    ends = [later - timedelta(days=1) for later in starts[1:]] + [FAR_FUTURE]
    return pa.table(
        {
            "effective_from": pa.array(starts, pa.date32()),
            "effective_to": pa.array(ends, pa.date32()),
            value_column: pa.array([row[value_column] for row in rows], pa.float64()),
            "basis": [row["basis"] for row in rows],
            "source": [row["source"] for row in rows],
        }
    )
