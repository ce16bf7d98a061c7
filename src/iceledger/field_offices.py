"""ICE's 25 ERO field offices (Areas of Responsibility) and the spellings each appears under.

The table is the project's own (src/iceledger/data/reference/field_offices.csv): canonical name, three-letter
code as ICE prints it in the detention-statistics facilities sheet, and the raw spellings seen in
FOIA releases ("Atlanta Area of Responsibility", "ATL", ...). Matching ignores case, dots and
repeated spaces because releases vary in exactly those ways.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class FieldOffice:
    code: str
    name: str


# The words releases write around a field office's name, dropped from the lookup key: "ERO Los
# Angeles", "Los Angeles Field Office", "LOS ANGELES AOR", "Los Angeles Field Office (LOS)".
# Written for both Python's re and RE2 (the FOIA load looks keys up in SQL), over a key already
# in lower case with its spaces collapsed.
AOR_AFFIXES = (r"^(?:ice ero |ice |ero )?(.*?)"
               r"(?: (?:field office|area of responsibility|aor|ero))*(?: ?\([^()]*\))?$")


def aor_key(raw: str) -> str:
    """The text of an AOR as it is looked up: dots dropped, spaces collapsed, case folded, the
    words around the office's name (AOR_AFFIXES) dropped."""
    return re.sub(AOR_AFFIXES, r"\1", re.sub(r"\s+", " ", raw.replace(".", "")).strip().casefold())


@cache
def _rows() -> tuple[dict[str, str], ...]:
    with resources.files("iceledger.data").joinpath("reference", "field_offices.csv").open() as handle:
        return tuple(csv.DictReader(handle))


def field_offices() -> tuple[FieldOffice, ...]:
    return tuple(FieldOffice(row["aor_code"], row["aor"]) for row in _rows())


@cache
def spellings() -> dict[str, FieldOffice]:
    """Every known spelling's lookup key (aor_key) -> the field office it names."""
    table: dict[str, FieldOffice] = {}
    for row in _rows():
        office = FieldOffice(row["aor_code"], row["aor"])
        for spelling in [row["aor"], row["aor_code"], *row["raw_names"].split("|")]:
            table[aor_key(spelling)] = office
    return table


@cache
def written_spellings() -> dict[str, FieldOffice]:
    """Every known spelling as written -> the field office its lookup key names."""
    return {spelling: spellings()[aor_key(spelling)] for row in _rows()
            for spelling in [row["aor"], row["aor_code"], *row["raw_names"].split("|")]}


def normalise_aor(raw: str | None) -> FieldOffice | None:
    """The field office a raw AOR string names, or None if it names none we know."""
    if raw is None:
        return None
    return spellings().get(aor_key(raw))
